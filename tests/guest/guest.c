/*
 * /init of the Linux test guest: the platform of the workload
 * (workload.c) under Linux.
 *
 * It mounts /proc, /dev and /sys, puts the serial console in raw mode,
 * takes the guest.* parameters from the kernel command line and maps
 * the test area (anonymous memory, locked, with transparent huge pages
 * if asked), then runs the workload.  Time is CLOCK_MONOTONIC; the idle
 * loop sleeps in ppoll() on the console.  See README.md.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"
#include "pagefmt.h"

/* Memory left to the kernel besides the test area. */
#define MEM_MARGIN          (16 * MIB)

static int con = -1;                /* the serial console */
static bool locked;                 /* the test area is mlock()ed */

/* ---- time ---- */

uint64_t plat_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* touch times an access with CLOCK_MONOTONIC. */
uint64_t plat_stamp(void)
{
    return plat_now_ns();
}

uint64_t plat_stamp_ns(uint64_t delta)
{
    return delta;
}

/* Guest uptime (CLOCK_BOOTTIME). */
uint64_t plat_boot_ms(void)
{
    struct timespec boot;

    clock_gettime(CLOCK_BOOTTIME, &boot);
    return (uint64_t)boot.tv_sec * 1000 + (uint64_t)boot.tv_nsec / NS_PER_MS;
}

const char *plat_clocksource(void)
{
    static char src[64] = "unknown";
    ssize_t n;
    int fd;

    fd = open("/sys/devices/system/clocksource/clocksource0/"
              "current_clocksource", O_RDONLY);
    if (fd >= 0) {
        n = read(fd, src, sizeof(src) - 1);
        close(fd);
        if (n > 0) {
            src[n] = 0;
            src[strcspn(src, "\n")] = 0;
        }
    }
    return src;
}

/* ---- console ---- */

static void write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

void plat_write(const char *buf, size_t len)
{
    write_all(con >= 0 ? con : 1, buf, len);
}

int plat_getc(void)
{
    static char buf[64];
    static ssize_t len, pos;

    if (pos == len) {
        pos = 0;
        len = read(con, buf, sizeof(buf));
        if (len <= 0) {
            len = 0;
            return -1;
        }
    }
    return (unsigned char)buf[pos++];
}

void plat_idle_until(uint64_t wake)
{
    uint64_t now = plat_now_ns();
    struct pollfd pfd = { .fd = con, .events = POLLIN };
    struct timespec ts;

    if (wake <= now) {
        return;
    }
    ts.tv_sec = (time_t)((wake - now) / NS_PER_S);
    ts.tv_nsec = (long)((wake - now) % NS_PER_S);
    ppoll(&pfd, 1, &ts, NULL);
}

void plat_poll(uint64_t now)
{
    (void)now;
}

/* Never return: /init must not exit. */
void plat_halt(void)
{
    for (;;) {
        pause();
    }
}

static void setup_console(void)
{
    struct termios t;
    int fd;

    fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0) {
        /* Fall back on what the kernel gave us, if anything. */
        con = 1;
        return;
    }
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2) {
        close(fd);
    }
    con = 0;

    if (tcgetattr(con, &t) == 0) {
        cfmakeraw(&t);
        t.c_cflag |= CLOCAL | CREAD;
        /* read() returns at once, with whatever has arrived. */
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        cfsetispeed(&t, B115200);
        cfsetospeed(&t, B115200);
        tcsetattr(con, TCSANOW, &t);
    }
}

/* ---- files ---- */

static char fs_errors[256];

static void mount_one(const char *src, const char *dir, const char *type)
{
    size_t len = strlen(fs_errors);

    mkdir(dir, 0755);
    if (mount(src, dir, type, 0, NULL) < 0 && errno != EBUSY) {
        snprintf(fs_errors + len, sizeof(fs_errors) - len, " %s:%s",
                 dir, strerror(errno));
    }
}

/* The kernel command line, "" if it cannot be read. */
static const char *read_cmdline(void)
{
    static char buf[4096];
    ssize_t n;
    int fd;

    fd = open("/proc/cmdline", O_RDONLY);
    if (fd < 0) {
        out("WARN cannot read /proc/cmdline: %s", strerror(errno));
        return "";
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* A field of /proc/meminfo, in bytes; 0 if not found. */
static uint64_t meminfo(const char *field)
{
    uint64_t kib;
    char buf[4096];
    char *p;
    ssize_t n;
    int fd;

    fd = open("/proc/meminfo", O_RDONLY);
    if (fd < 0) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = 0;
    p = strstr(buf, field);
    if (!p) {
        return 0;
    }
    return sscanf(p + strlen(field), "%" SCNu64, &kib) == 1 ? kib * 1024 : 0;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);

    if (fd >= 0) {
        write_all(fd, text, strlen(text));
        close(fd);
    }
}

/* The kernel's THP mode, the [selected] word of its sysfs knob. */
static const char *thp_mode(void)
{
    static char buf[128];
    char *a, *b;
    ssize_t n;
    int fd;

    fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY);
    if (fd < 0) {
        return "none";
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    a = strchr(buf, '[');
    b = a ? strchr(a, ']') : NULL;
    if (!b) {
        return "unknown";
    }
    *b = 0;
    return a + 1;
}

/* ---- memory ---- */

void plat_alloc(struct wl_area *a)
{
    uint64_t size = a->npages * PAGEFMT_PAGE_SIZE;
    uint64_t gsize = a->npages * sizeof(*a->gens);
    uint64_t avail = meminfo("MemAvailable:");
    uint8_t *area;
    uint32_t *gens;

    if (avail && size + gsize + MEM_MARGIN > avail) {
        wl_no_room(avail / MIB);
    }
    /*
     * Map without populating, choose the page size, then let mlock()
     * populate: with huge pages that is one fault per 2 MiB, which is
     * much faster than 4 KiB faults under TCG.
     */
    area = mmap(NULL, size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    gens = mmap(NULL, gsize, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED || gens == MAP_FAILED) {
        out("ERROR cannot map %" PRIu64 " MiB: %s", wl_params.mib,
            strerror(errno));
        plat_halt();
    }
    if (wl_params.thp) {
        /* The cloud kernel defaults to "never". */
        write_file("/sys/kernel/mm/transparent_hugepage/enabled", "madvise");
    }
    madvise(area, size, wl_params.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    locked = mlock(area, size) == 0 && mlock(gens, gsize) == 0;
    if (!locked) {
        /* Populate by hand: the fill may be off. */
        volatile uint8_t *v = area; /* each store must happen */
        volatile uint8_t *g = (uint8_t *)gens; /* each store must happen */
        uint64_t i;

        for (i = 0; i < size; i += PAGEFMT_PAGE_SIZE) {
            v[i] = 0;
        }
        for (i = 0; i < gsize; i += PAGEFMT_PAGE_SIZE) {
            g[i] = 0;
        }
    }
    a->range[0].base = (uintptr_t)area;
    a->range[0].size = size;
    a->nr_ranges = 1;
    a->gens = gens;
}

uint64_t *plat_lat_alloc(uint64_t n)
{
    return malloc(MAX(n, 1) * sizeof(uint64_t));
}

void plat_lat_free(uint64_t *lat)
{
    free(lat);
}

/* ---- main ---- */

void plat_fields(enum wl_line line, char *buf, size_t size)
{
    switch (line) {
    case WL_PARAMS:
        snprintf(buf, size, " thp=%d", wl_params.thp);
        break;
    case WL_ALLOC:
        snprintf(buf, size, " locked=%d thp=%s huge_mib=%" PRIu64, locked,
                 thp_mode(), meminfo("AnonHugePages:") / MIB);
        break;
    default:
        break;
    }
}

int main(void)
{
    mount_one("proc", "/proc", "proc");
    mount_one("devtmpfs", "/dev", "devtmpfs");
    mount_one("sysfs", "/sys", "sysfs");
    setup_console();

    wl_boot();
    if (fs_errors[0]) {
        out("WARN mount failed:%s", fs_errors);
    }
    wl_main(read_cmdline());
}
