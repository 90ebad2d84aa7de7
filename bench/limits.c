/*
 * The machine's physical limits for migration, measured in the same run
 * as the benchmark so that results can be read as a fraction of them:
 *
 *   memcpy      warm memcpy bandwidth, GB/s
 *   unix        one unix-socket stream (writer and reader processes), GB/s
 *   fault_4k    first touch of fresh anonymous memory, 4 KiB pages, s/GB
 *   fault_thp   the same with transparent huge pages, s/GB
 *   populate    MADV_POPULATE_WRITE of fresh memory, s/GB
 *
 * Prints one JSON object.  Usage: limits [MiB]   (default 1024)
 *
 * "limits --warm MiB" instead touches MiB of fresh memory and exits, so
 * that the pages it frees are backed by the outer host when the next
 * process takes them (see "Host memory" in bench/README.md).
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define GB 1e9

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static double memcpy_gbps(size_t size)
{
    char *a = map(size), *b = map(size);
    double best = 0;
    int i;

    memset(a, 1, size);
    memset(b, 2, size);
    for (i = 0; i < 5; i++) {
        double t = now();

        memcpy(b, a, size);
        t = now() - t;
        if (size / t > best) {
            best = size / t;
        }
    }
    munmap(a, size);
    munmap(b, size);
    return best / GB;
}

/*
 * Like a migration stream: the writer sends from, and the reader receives
 * into, buffers much larger than the caches.
 */
static double unix_gbps(size_t size)
{
    const size_t chunk = 256 * 1024, span = 256u << 20;
    int sv[2];
    char *buf = map(span);
    double t;
    size_t done = 0;
    pid_t pid;

    memset(buf, 3, span);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        perror("socketpair");
        exit(1);
    }
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        while (done < size) {
            ssize_t n = write(sv[1], buf + done % span, chunk);

            if (n <= 0) {
                _exit(1);
            }
            done += n;
        }
        _exit(0);
    }
    close(sv[1]);
    t = now();
    while (done < size) {
        ssize_t n = read(sv[0], buf + done % span, chunk);

        if (n <= 0) {
            break;
        }
        done += n;
    }
    t = now() - t;
    waitpid(pid, NULL, 0);
    close(sv[0]);
    munmap(buf, span);
    return done / t / GB;
}

/* Seconds per GB to fault in fresh memory, touching one byte per 4 KiB. */
static double fault_s_per_gb(size_t size, int advice, int populate)
{
    char *p = map(size);
    double t;
    size_t off;

    if (advice >= 0) {
        madvise(p, size, advice);
    }
    t = now();
    if (populate) {
        if (madvise(p, size, MADV_POPULATE_WRITE)) {
            munmap(p, size);
            return -1;
        }
    } else {
        for (off = 0; off < size; off += 4096) {
            p[off] = 1;
        }
    }
    t = now() - t;
    munmap(p, size);
    return t / (size / GB);
}

int main(int argc, char **argv)
{
    size_t mib, size;
    double f4k = 1e9, fthp = 1e9, fpop = 1e9;
    int i;

    if (argc > 2 && !strcmp(argv[1], "--warm")) {
        size = strtoul(argv[2], NULL, 0) << 20;
        printf("{\"warm_s_per_gb\": %.4f}\n",
               fault_s_per_gb(size, MADV_NOHUGEPAGE, 1));
        return 0;
    }
    mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
    size = mib << 20;

    /* Best of three: the first touch of host memory not used recently is
     * much slower on these machines, and that is noise, not a limit. */
    for (i = 0; i < 3; i++) {
        double v;

        v = fault_s_per_gb(size, MADV_NOHUGEPAGE, 0);
        f4k = v < f4k ? v : f4k;
        v = fault_s_per_gb(size, MADV_HUGEPAGE, 0);
        fthp = v < fthp ? v : fthp;
        v = fault_s_per_gb(size, MADV_NOHUGEPAGE, 1);
        fpop = v < fpop ? v : fpop;
    }
    printf("{\"size_mib\": %zu, \"memcpy_gbps\": %.3f, \"unix_gbps\": %.3f, "
           "\"fault_4k_s_per_gb\": %.4f, \"fault_thp_s_per_gb\": %.4f, "
           "\"populate_write_s_per_gb\": %.4f}\n",
           mib, memcpy_gbps(size / 4), unix_gbps(size * 4), f4k, fthp, fpop);
    return 0;
}
