/*
 * /init of the Linux test guest: a self-verifying memory workload.
 *
 * It fills a test area of guest.mib MiB with self-describing pages
 * (pagefmt.h), then loops forever: a heartbeat line every guest.hb ms,
 * page rewrites at guest.dirty MB/s inside a hot set, optional
 * continuous verification, and commands read from the serial console.
 * Every line it prints is plain ASCII; see tests/guest/README.md for the
 * parameters and the serial protocol.
 *
 * Besides the per-page checks of pagefmt.h, the guest keeps the expected
 * generation of every page in a table of its own, so that a page which
 * migration failed to resend after a rewrite (an older, still
 * self-consistent page) is found too ("stale").
 *
 * All work runs on one thread in short slices between heartbeats, so a
 * page is never seen half-written by the guest itself.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "pagefmt.h"

#define MIB                 (UINT64_C(1024) * 1024)
#define PAGES_PER_MIB       (MIB / PAGEFMT_PAGE_SIZE)
#define NS_PER_US           UINT64_C(1000)
#define NS_PER_MS           UINT64_C(1000000)
#define NS_PER_S            UINT64_C(1000000000)

/* Longest stretch of work between two looks at the heartbeat clock. */
#define SLICE_NS            (1 * NS_PER_MS)
/* A dirtying backlog beyond this much time is dropped, not caught up. */
#define DIRTY_BACKLOG_NS    (50 * NS_PER_MS)
/* VERIFY-BAD lines printed per verification pass. */
#define VERIFY_BAD_SHOWN    8
/* Memory left to the kernel besides the test area. */
#define MEM_MARGIN          (16 * MIB)

#define MIN(a, b)           ((a) < (b) ? (a) : (b))
#define MAX(a, b)           ((a) > (b) ? (a) : (b))

struct params {
    uint64_t mib;           /* guest.mib: test area size */
    uint64_t seed;          /* guest.seed */
    bool fill;              /* guest.fill */
    double dirty;           /* guest.dirty: MiB/s, 0 = off */
    uint64_t hot_mib;       /* guest.hot: 0 = whole area */
    unsigned hb_ms;         /* guest.hb: 0 = off */
    bool verify;            /* guest.verify: continuous verification */
    uint64_t touch;         /* guest.touch: random accesses after fill */
    bool thp;               /* guest.thp: transparent huge pages */
};

static struct params params = {
    .mib = 64,
    .seed = 1,
    .fill = true,
    .hb_ms = 10,
    .thp = true,
};

static int con = -1;                /* the serial console */
static uint8_t *area;               /* the test area */
static uint32_t *gens;              /* expected generation of each page */
static uint64_t npages;
static uint64_t hot_pages;
static uint64_t rng;                /* splitmix64 state */
static uint64_t start_ns;           /* CLOCK_MONOTONIC at the loop start */

/* Heartbeat. */
static struct {
    unsigned ms;
    uint64_t seq;
    uint64_t next;
} hb;

/* Dirtying, paced against CLOCK_MONOTONIC. */
static struct {
    double rate;            /* MiB/s */
    uint64_t t0;            /* pacing origin */
    uint64_t done;          /* pages rewritten since t0 */
    uint64_t rep_t0;        /* start of the current DIRTY report period */
    uint64_t rep_pages;
    uint64_t total;
} dirty;

/* Verification pass, on demand or continuous. */
static struct {
    bool active;
    bool continuous;
    uint64_t pos;
    uint64_t errors;
    uint64_t t0;
    unsigned shown;
    uint64_t passes;
    uint64_t last_errors;   /* errors of the last completed pass */
} ver;

/* A permutation of [0, n), to visit distinct pages in random order. */
struct perm {
    uint64_t n;
    uint64_t mask;
    unsigned shift;
    uint64_t mul[3];
    uint64_t add[3];
};

/* Timed random accesses. */
static struct {
    bool active;
    bool write;
    uint64_t n;
    uint64_t done;
    uint64_t bad;
    uint64_t t0;
    uint64_t *lat;          /* ns */
    struct perm perm;
} tch;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(void)
{
    rng += 0x9e3779b97f4a7c15ull;
    return pagefmt_mix(rng);
}

static uint64_t rnd_below(uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rnd() * n) >> 64);
}

static inline uint8_t *page(uint64_t i)
{
    return area + i * PAGEFMT_PAGE_SIZE;
}

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

/* Print one line on the console, terminated by CR LF. */
static void __attribute__((format(printf, 1, 2))) out(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if (n > (int)sizeof(buf) - 3) {
        n = (int)sizeof(buf) - 3;
    }
    buf[n++] = '\r';
    buf[n++] = '\n';
    write_all(con >= 0 ? con : 1, buf, (size_t)n);
}

/* Never return: /init must not exit. */
static void __attribute__((noreturn)) halt(void)
{
    for (;;) {
        pause();
    }
}

/* Format @ns as microseconds with one decimal, in a rotating buffer. */
static const char *us(uint64_t ns)
{
    static char bufs[8][32];
    static unsigned k;
    char *b = bufs[k++ % 8];
    uint64_t tenths = (ns + 50) / 100;

    snprintf(b, sizeof(bufs[0]), "%" PRIu64 ".%" PRIu64,
             tenths / 10, tenths % 10);
    return b;
}

/* ---- set-up ---- */

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

/*
 * Parse the whole of @s as an unsigned number: decimal, or hexadecimal
 * with a 0x prefix when @base is 0.  False on junk or overflow.
 */
static bool parse_u64(const char *s, uint64_t *v, int base)
{
    unsigned radix = 10;
    uint64_t x = 0;

    if (base == 0 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        radix = 16;
        s += 2;
    }
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        unsigned d;

        if (*s >= '0' && *s <= '9') {
            d = (unsigned)(*s - '0');
        } else if (radix == 16 && *s >= 'a' && *s <= 'f') {
            d = (unsigned)(*s - 'a' + 10);
        } else if (radix == 16 && *s >= 'A' && *s <= 'F') {
            d = (unsigned)(*s - 'A' + 10);
        } else {
            return false;
        }
        if (x > (UINT64_MAX - d) / radix) {
            return false;
        }
        x = x * radix + d;
    }
    *v = x;
    return true;
}

static void parse_param(const char *key, const char *val)
{
    uint64_t v = 0;
    bool ok = true;
    char *end;

    if (!strcmp(key, "mib")) {
        ok = parse_u64(val, &v, 10) && v > 0;
        if (ok) {
            params.mib = v;
        }
    } else if (!strcmp(key, "seed")) {
        ok = parse_u64(val, &v, 0);
        if (ok) {
            params.seed = v;
        }
    } else if (!strcmp(key, "fill")) {
        ok = parse_u64(val, &v, 10) && v <= 1;
        if (ok) {
            params.fill = v;
        }
    } else if (!strcmp(key, "dirty")) {
        double d = strtod(val, &end);

        ok = end != val && !*end && d >= 0;
        if (ok) {
            params.dirty = d;
        }
    } else if (!strcmp(key, "hot")) {
        ok = parse_u64(val, &v, 10);
        if (ok) {
            params.hot_mib = v;
        }
    } else if (!strcmp(key, "hb")) {
        ok = parse_u64(val, &v, 10) && v <= 3600000;
        if (ok) {
            params.hb_ms = (unsigned)v;
        }
    } else if (!strcmp(key, "verify")) {
        ok = parse_u64(val, &v, 10) && v <= 1;
        if (ok) {
            params.verify = v;
        }
    } else if (!strcmp(key, "thp")) {
        ok = parse_u64(val, &v, 10) && v <= 1;
        if (ok) {
            params.thp = v;
        }
    } else if (!strcmp(key, "touch")) {
        ok = parse_u64(val, &v, 10);
        if (ok) {
            params.touch = v;
        }
    } else {
        out("WARN unknown parameter guest.%s", key);
        return;
    }
    if (!ok) {
        out("WARN bad value guest.%s=%s", key, val);
    }
}

static void parse_cmdline(void)
{
    char buf[4096];
    char *tok, *save = NULL;
    ssize_t n;
    int fd;

    fd = open("/proc/cmdline", O_RDONLY);
    if (fd < 0) {
        out("WARN cannot read /proc/cmdline: %s", strerror(errno));
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        n = 0;
    }
    buf[n] = 0;

    for (tok = strtok_r(buf, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save)) {
        char *eq;

        if (strncmp(tok, "guest.", 6)) {
            continue;
        }
        eq = strchr(tok, '=');
        if (!eq) {
            out("WARN parameter without value: %s", tok);
            continue;
        }
        *eq = 0;
        parse_param(tok + 6, eq + 1);
    }
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
    for (p += strlen(field); *p == ' '; p++) {
        continue;
    }
    p[strspn(p, "0123456789")] = 0;
    return parse_u64(p, &kib, 10) ? kib * 1024 : 0;
}

static void clock_info(void)
{
    char src[64] = "unknown";
    uint64_t d[255];
    unsigned i, j;
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
    /* Median cost of one clock_gettime(), by insertion sort. */
    for (i = 0; i < 255; i++) {
        uint64_t a = now_ns();
        uint64_t b = now_ns();
        uint64_t x = b - a;

        for (j = i; j > 0 && d[j - 1] > x; j--) {
            d[j] = d[j - 1];
        }
        d[j] = x;
    }
    out("CLOCK source=%s overhead_ns=%" PRIu64, src, d[127]);
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

static void alloc_area(void)
{
    uint64_t size = params.mib * MIB;
    uint64_t avail = meminfo("MemAvailable:");
    uint64_t gsize, t0 = now_ns();
    bool locked;

    npages = params.mib * PAGES_PER_MIB;
    gsize = npages * sizeof(*gens);
    if (avail && size + gsize + MEM_MARGIN > avail) {
        out("ERROR guest.mib=%" PRIu64 " does not fit: MemAvailable=%" PRIu64
            " MiB", params.mib, avail / MIB);
        halt();
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
        out("ERROR cannot map %" PRIu64 " MiB: %s", params.mib,
            strerror(errno));
        halt();
    }
    if (params.thp) {
        /* The cloud kernel defaults to "never". */
        write_file("/sys/kernel/mm/transparent_hugepage/enabled", "madvise");
    }
    madvise(area, size, params.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    locked = mlock(area, size) == 0 && mlock(gens, gsize) == 0;
    if (!locked) {
        /* Populate by hand: the fill may be off. */
        volatile uint8_t *a = area; /* each store must happen */
        volatile uint8_t *g = (uint8_t *)gens; /* each store must happen */
        uint64_t i;

        for (i = 0; i < size; i += PAGEFMT_PAGE_SIZE) {
            a[i] = 0;
        }
        for (i = 0; i < gsize; i += PAGEFMT_PAGE_SIZE) {
            g[i] = 0;
        }
    }
    out("ALLOC mib=%" PRIu64 " pages=%" PRIu64 " ms=%" PRIu64
        " locked=%d thp=%s huge_mib=%" PRIu64, params.mib, npages,
        (now_ns() - t0) / NS_PER_MS, locked, thp_mode(),
        meminfo("AnonHugePages:") / MIB);
}

static void set_hot(uint64_t mib)
{
    params.hot_mib = mib;
    hot_pages = mib ? MIN(mib * PAGES_PER_MIB, npages) : npages;
}

static void fill(void)
{
    uint64_t i, t0 = now_ns();

    for (i = 0; i < npages; i++) {
        pagefmt_write(page(i), params.seed, i, 1);
        gens[i] = 1;
    }
    out("FILL pages=%" PRIu64 " ms=%" PRIu64, npages,
        (now_ns() - t0) / NS_PER_MS);
}

/* ---- heartbeat ---- */

static void hb_set(unsigned ms)
{
    hb.ms = ms;
    hb.next = now_ns();
}

static void hb_run(uint64_t now)
{
    uint64_t iv = hb.ms * NS_PER_MS;

    if (!hb.ms || now < hb.next) {
        return;
    }
    out("HB seq=%" PRIu64, hb.seq++);
    /* Keep the cadence; after a stall, skip the missed beats. */
    hb.next += iv;
    if (hb.next <= now) {
        hb.next = now + iv;
    }
}

/*
 * End of a work slice that starts now: at most SLICE_NS, and no later
 * than the next heartbeat.  Prints a heartbeat that is due.
 */
static uint64_t slice_deadline(void)
{
    uint64_t now = now_ns();

    hb_run(now);
    now = now_ns();
    if (hb.ms) {
        return MIN(now + SLICE_NS, hb.next);
    }
    return now + SLICE_NS;
}

/* ---- dirtying ---- */

static void dirty_set(double rate)
{
    dirty.rate = rate;
    dirty.t0 = now_ns();
    dirty.done = 0;
    dirty.rep_t0 = dirty.t0;
    dirty.rep_pages = 0;
}

static double dirty_pps(void)
{
    return dirty.rate * PAGES_PER_MIB;
}

static void dirty_one(void)
{
    uint64_t i = rnd_below(hot_pages);

    pagefmt_write(page(i), params.seed, i, ++gens[i]);
}

static void dirty_step(uint64_t deadline)
{
    uint64_t now = now_ns(), due;
    double pps = dirty_pps();

    if (dirty.rate <= 0) {
        return;
    }
    if (now - dirty.t0 > DIRTY_BACKLOG_NS) {
        /* Re-base now and then, dropping a backlog that is too old. */
        due = (uint64_t)((double)(now - dirty.t0) * pps / NS_PER_S);
        if (due > dirty.done + (uint64_t)(pps * DIRTY_BACKLOG_NS / NS_PER_S)) {
            dirty.t0 = now;
            dirty.done = 0;
            return;
        }
    }
    for (;;) {
        unsigned k;

        due = (uint64_t)((double)(now - dirty.t0) * pps / NS_PER_S);
        if (dirty.done >= due) {
            return;
        }
        for (k = 0; k < 8 && dirty.done < due; k++) {
            dirty_one();
            dirty.done++;
            dirty.rep_pages++;
            dirty.total++;
        }
        now = now_ns();
        if (now >= deadline) {
            return;
        }
    }
}

static void dirty_report(void)
{
    uint64_t now = now_ns(), dt = now - dirty.rep_t0;

    if (dirty.rate <= 0 || dt < NS_PER_S) {
        return;
    }
    out("DIRTY pages=%" PRIu64 " mbps=%.1f", dirty.rep_pages,
        (double)dirty.rep_pages / PAGES_PER_MIB * NS_PER_S / (double)dt);
    dirty.rep_t0 = now;
    dirty.rep_pages = 0;
}

/* When the next page rewrite is due. */
static uint64_t dirty_next(void)
{
    return dirty.t0 + (uint64_t)((double)(dirty.done + 1) * NS_PER_S /
                                 dirty_pps());
}

/* ---- verification ---- */

static bool all_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    unsigned i;

    for (i = 0; i < PAGEFMT_PAGE_SIZE / sizeof(*w); i++) {
        if (w[i]) {
            return false;
        }
    }
    return true;
}

static void verify_page(uint64_t i)
{
    const struct pagefmt_hdr *h = (const struct pagefmt_hdr *)page(i);
    const char *kind;

    if (pagefmt_check(h, i) || h->seed != params.seed) {
        kind = all_zero(page(i)) ? "zero" : "corrupt";
    } else if (h->gen != gens[i]) {
        kind = "stale";
    } else {
        return;
    }
    ver.errors++;
    if (ver.shown < VERIFY_BAD_SHOWN) {
        ver.shown++;
        out("VERIFY-BAD index=%" PRIu64 " kind=%s magic=0x%08x hdr_index=%"
            PRIu64 " gen=%u want=%u", i, kind, h->magic, h->index, h->gen,
            gens[i]);
    }
}

static void verify_start(bool continuous)
{
    ver.active = true;
    ver.continuous = continuous;
    ver.pos = 0;
    ver.errors = 0;
    ver.shown = 0;
    ver.t0 = now_ns();
}

static void verify_step(uint64_t deadline)
{
    for (;;) {
        uint64_t end = MIN(ver.pos + 16, npages);

        for (; ver.pos < end; ver.pos++) {
            verify_page(ver.pos);
        }
        if (ver.pos == npages) {
            out("VERIFY pages=%" PRIu64 " errors=%" PRIu64 " ms=%" PRIu64,
                npages, ver.errors, (now_ns() - ver.t0) / NS_PER_MS);
            ver.passes++;
            ver.last_errors = ver.errors;
            if (ver.continuous) {
                verify_start(true);
            } else {
                ver.active = false;
            }
            return;
        }
        if (now_ns() >= deadline) {
            return;
        }
    }
}

/* ---- touch ---- */

static void perm_init(struct perm *p, uint64_t n)
{
    unsigned bits = 1, r;

    while (bits < 64 && (1ull << bits) < n) {
        bits++;
    }
    p->n = n;
    p->mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
    p->shift = bits / 2 + 1;
    for (r = 0; r < 3; r++) {
        p->mul[r] = rnd() | 1;
        p->add[r] = rnd();
    }
}

/*
 * Each round is a bijection of [0, mask]; walk the cycle back into
 * [0, n).
 */
static uint64_t perm_get(const struct perm *p, uint64_t x)
{
    unsigned r;

    do {
        for (r = 0; r < 3; r++) {
            x = (x * p->mul[r] + p->add[r]) & p->mask;
            x ^= x >> p->shift;
        }
    } while (x >= p->n);
    return x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static bool touch_start(uint64_t n, bool write)
{
    n = MIN(n, npages);
    tch.lat = malloc(MAX(n, 1) * sizeof(*tch.lat));
    if (!tch.lat) {
        out("ERR touch: out of memory");
        return false;
    }
    tch.active = true;
    tch.write = write;
    tch.n = n;
    tch.done = 0;
    tch.bad = 0;
    tch.t0 = now_ns();
    perm_init(&tch.perm, npages);
    return true;
}

/* The n-th smallest latency for percentile @pct, nearest rank. */
static uint64_t touch_pct(unsigned pct)
{
    uint64_t rank = (tch.n * pct + 99) / 100;

    return tch.lat[rank ? rank - 1 : 0];
}

static void touch_finish(void)
{
    uint64_t hist[40] = { 0 };
    char line[512];
    unsigned top = 0, b;
    size_t len;
    uint64_t i;

    tch.active = false;
    qsort(tch.lat, tch.n, sizeof(*tch.lat), cmp_u64);
    if (!tch.n) {
        tch.lat[0] = 0;
    }
    for (i = 0; i < tch.n; i++) {
        uint64_t u = tch.lat[i] / NS_PER_US;

        b = 0;
        while (u) {
            b++;
            u >>= 1;
        }
        b = MIN(b, 39u);
        hist[b]++;
        top = MAX(top, b);
    }
    out("TOUCH n=%" PRIu64 " p50=%s p90=%s p99=%s max=%s us mode=%s bad=%"
        PRIu64 " ms=%" PRIu64, tch.n, us(touch_pct(50)), us(touch_pct(90)),
        us(touch_pct(99)), us(tch.n ? tch.lat[tch.n - 1] : 0),
        tch.write ? "write" : "read", tch.bad,
        (now_ns() - tch.t0) / NS_PER_MS);

    /* Bucket b > 0 holds [2^(b-1), 2^b) us, labelled by its lower bound. */
    len = (size_t)snprintf(line, sizeof(line), "TOUCH-HIST");
    for (b = 0; b <= top && len < sizeof(line); b++) {
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                " %" PRIu64 "=%" PRIu64,
                                b ? UINT64_C(1) << (b - 1) : 0, hist[b]);
    }
    out("%s", line);
    free(tch.lat);
    tch.lat = NULL;
}

static void touch_step(uint64_t deadline)
{
    while (tch.done < tch.n) {
        uint64_t i = perm_get(&tch.perm, tch.done);
        /* volatile: the timed access must happen between the clocks */
        volatile struct pagefmt_hdr *h = (void *)page(i);
        uint64_t t0, t1;

        if (tch.write) {
            t0 = now_ns();
            h->gen = gens[i] + 1;
            t1 = now_ns();
            pagefmt_write(page(i), params.seed, i, ++gens[i]);
        } else {
            uint64_t idx;

            t0 = now_ns();
            idx = h->index;
            t1 = now_ns();
            if (idx != i || h->magic != PAGEFMT_MAGIC) {
                tch.bad++;
            }
        }
        tch.lat[tch.done++] = t1 - t0;
        if (t1 >= deadline) {
            break;
        }
    }
    if (tch.done == tch.n) {
        touch_finish();
    }
}

/* ---- commands ---- */

static void stats(void)
{
    out("STATS up_ms=%" PRIu64 " mib=%" PRIu64 " seed=%" PRIu64
        " hot_mib=%" PRIu64 " hb_ms=%u hb_seq=%" PRIu64 " dirty=%g"
        " dirty_pages=%" PRIu64 " verify_passes=%" PRIu64
        " verify_errors=%" PRIu64 " verify_active=%d verify_continuous=%d"
        " touch_active=%d",
        (now_ns() - start_ns) / NS_PER_MS, params.mib, params.seed,
        params.hot_mib, hb.ms, hb.seq, dirty.rate, dirty.total, ver.passes,
        ver.last_errors, ver.active, ver.continuous, tch.active);
}

static void command(char *line)
{
    char *argv[4];
    char *save = NULL, *tok, *end;
    int argc = 0;
    uint64_t v;

    for (tok = strtok_r(line, " \t", &save); tok && argc < 4;
         tok = strtok_r(NULL, " \t", &save)) {
        argv[argc++] = tok;
    }
    if (!argc) {
        return;
    }

    if (!strcmp(argv[0], "verify")) {
        if (argc == 1) {
            verify_start(ver.continuous);
        } else if (!strcmp(argv[1], "on") || !strcmp(argv[1], "off")) {
            bool on = !strcmp(argv[1], "on");

            if (on) {
                verify_start(true);
            } else {
                ver.continuous = false;
            }
            out("OK verify=%d", on);
        } else {
            out("ERR usage: verify [on|off]");
        }
    } else if (!strcmp(argv[0], "touch")) {
        bool write = argc > 2 && !strcmp(argv[2], "w");

        if (argc < 2 || !parse_u64(argv[1], &v, 10) || !v ||
            (argc > 2 && !write && strcmp(argv[2], "r"))) {
            out("ERR usage: touch N [r|w]");
        } else if (tch.active) {
            out("ERR touch busy");
        } else {
            touch_start(v, write);
        }
    } else if (!strcmp(argv[0], "dirty")) {
        double d = argc == 2 ? strtod(argv[1], &end) : -1;

        if (argc != 2 || end == argv[1] || *end || d < 0) {
            out("ERR usage: dirty MBPS");
        } else {
            dirty_set(d);
            out("OK dirty=%g", d);
        }
    } else if (!strcmp(argv[0], "hot")) {
        if (argc != 2 || !parse_u64(argv[1], &v, 10)) {
            out("ERR usage: hot MIB");
        } else {
            set_hot(v);
            out("OK hot=%" PRIu64, params.hot_mib);
        }
    } else if (!strcmp(argv[0], "hb")) {
        if (argc != 2 || !parse_u64(argv[1], &v, 10) || v > 3600000) {
            out("ERR usage: hb MS");
        } else {
            hb_set((unsigned)v);
            out("OK hb=%u", hb.ms);
        }
    } else if (!strcmp(argv[0], "quiet")) {
        hb_set(0);
        out("OK hb=0");
    } else if (!strcmp(argv[0], "stats")) {
        stats();
    } else if (!strcmp(argv[0], "ping")) {
        out("PONG%s%s", argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
    } else if (!strcmp(argv[0], "help")) {
        out("OK commands: verify [on|off], touch N [r|w], dirty MBPS, "
            "hot MIB, hb MS, quiet, stats, ping [TOKEN]");
    } else {
        out("ERR unknown command: %.64s", argv[0]);
    }
}

/* Read what has arrived on the console; run each complete line. */
static void console_poll(void)
{
    static char line[128];
    static size_t len;
    static bool overflow;
    char buf[64];
    ssize_t n, k;

    for (;;) {
        n = read(con, buf, sizeof(buf));
        if (n <= 0) {
            return;
        }
        for (k = 0; k < n; k++) {
            char c = buf[k];

            if (c == '\r' || c == '\n') {
                if (overflow) {
                    out("ERR line too long");
                } else if (len) {
                    line[len] = 0;
                    command(line);
                }
                len = 0;
                overflow = false;
            } else if (c >= 0x20 && c < 0x7f) {
                if (len < sizeof(line) - 1) {
                    line[len++] = c;
                } else {
                    overflow = true;
                }
            }
        }
    }
}

/* Sleep until the next timed event or console input. */
static void idle_wait(void)
{
    uint64_t now = now_ns(), wake = now + NS_PER_S;
    struct pollfd pfd = { .fd = con, .events = POLLIN };
    struct timespec ts;

    if (hb.ms) {
        wake = MIN(wake, hb.next);
    }
    if (dirty.rate > 0) {
        uint64_t due = dirty_next();

        if (due <= now) {
            /* Behind: no sleep. */
            return;
        }
        /* Batch rewrites: sleep at least 1 ms. */
        wake = MIN(wake, MAX(due, now + NS_PER_MS));
        wake = MIN(wake, dirty.rep_t0 + NS_PER_S);
    }
    if (wake <= now) {
        return;
    }
    ts.tv_sec = (time_t)((wake - now) / NS_PER_S);
    ts.tv_nsec = (long)((wake - now) % NS_PER_S);
    ppoll(&pfd, 1, &ts, NULL);
}

int main(void)
{
    struct timespec boot;

    mount_one("proc", "/proc", "proc");
    mount_one("devtmpfs", "/dev", "devtmpfs");
    mount_one("sysfs", "/sys", "sysfs");
    setup_console();

    clock_gettime(CLOCK_BOOTTIME, &boot);
    out("BOOT ms=%" PRIu64, (uint64_t)boot.tv_sec * 1000 +
        (uint64_t)boot.tv_nsec / NS_PER_MS);
    if (fs_errors[0]) {
        out("WARN mount failed:%s", fs_errors);
    }
    parse_cmdline();
    out("PARAMS mib=%" PRIu64 " seed=%" PRIu64 " fill=%d dirty=%g hot=%"
        PRIu64 " hb=%u verify=%d touch=%" PRIu64 " thp=%d", params.mib,
        params.seed, params.fill, params.dirty, params.hot_mib, params.hb_ms,
        params.verify, params.touch, params.thp);
    clock_info();

    rng = params.seed ^ 0x6d696772617465ull;
    alloc_area();
    set_hot(params.hot_mib);
    if (params.fill) {
        fill();
    } else {
        out("FILL pages=0 ms=0");
    }
    if (params.touch && touch_start(params.touch, false)) {
        while (tch.active) {
            touch_step(UINT64_MAX);
        }
    }

    start_ns = now_ns();
    hb_set(params.hb_ms);
    dirty_set(params.dirty);
    if (params.verify) {
        verify_start(true);
    }
    out("READY mib=%" PRIu64 " seed=%" PRIu64, params.mib, params.seed);

    for (;;) {
        console_poll();
        dirty_step(slice_deadline());
        dirty_report();
        if (tch.active) {
            touch_step(slice_deadline());
        }
        if (ver.active) {
            verify_step(slice_deadline());
        }
        hb_run(now_ns());
        if (!tch.active && !ver.active) {
            idle_wait();
        }
    }
}
