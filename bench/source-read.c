/*
 * How should a source read pages of shared file-backed RAM that it has
 * not mapped yet?
 *
 * A branch destination writes received pages of shared file-backed RAM
 * with pwritev() into the file, so they are in the page cache but not
 * in the process's page tables.  When that process later becomes a
 * migration source, its first read of every page through the mapping
 * takes a page fault (filemap_map_pages(), 16 pages per fault).
 *
 * A memfd of SIZE bytes of pseudo-random pages is filled with pwrite()
 * by the parent.  Each sample runs in a forked child that maps it and
 * sends every page into a unix socket pair, an 8-byte header before
 * every page, BATCH pages per writev(), after a zero check of the page
 * (first 64 bytes, which is where buffer_is_zero() stops for random
 * data).  A thread of the child drains the socket 1 MiB at a time.
 * The ways:
 *
 *   map       read and send through the mapping, as it comes (faults)
 *   warm      the same, with the mapping populated before the clock
 *             starts (a source whose pages its own guest or an
 *             upstream destination touched)
 *   populate  MADV_POPULATE_READ of each batch before it is read
 *   pread     pread() of each batch into a bounce buffer, check and
 *             send from there (no fault, one copy more)
 *
 * Reported per sample: throughput and the sender thread's CPU seconds
 * per GB.
 *
 * Usage: source-read [--size MiB] [--reps N] [--batch PAGES] [--ways a,b]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define PAGE 4096
#define HEADER 8
#define READ_SIZE (1 << 20)
#define MAX_BATCH 1024

enum way { WAY_MAP, WAY_WARM, WAY_POPULATE, WAY_PREAD, WAY_PREFETCH,
           WAY_WARM_PREFETCH, N_WAYS };
static const char *way_names[N_WAYS] = {
    "map", "warm", "populate", "pread", "prefetch", "warm+prefetch"
};
static int distance = 8;

static size_t size = 1024ull << 20;
static int batch = 64;
static int memfd;
static int sv[2];

static void *drain(void *opaque)
{
    char *buf = malloc(READ_SIZE);
    size_t want = *(size_t *)opaque;
    size_t got = 0;

    while (got < want) {
        ssize_t n = read(sv[1], buf, READ_SIZE);

        if (n <= 0) {
            die("read");
        }
        got += n;
    }
    free(buf);
    return NULL;
}

/* As buffer_is_zero(): three sample bytes first, then the whole page */
static bool page_is_zero(const char *p)
{
    const uint64_t *w = (const uint64_t *)p;
    int i;

    if (p[0] || p[PAGE - 1] || p[PAGE / 2]) {
        return false;
    }
    for (i = 0; i < PAGE / 8; i++) {
        if (w[i]) {
            return false;
        }
    }
    return true;
}

static void send_all(struct iovec *iov, int n)
{
    while (n) {
        ssize_t w = writev(sv[0], iov, n);

        if (w < 0) {
            die("writev");
        }
        n = advance(&iov, n, w);
    }
}

static void run(enum way way, double *gbps, double *cpu_per_gb)
{
    size_t pages = size / PAGE;
    size_t stream = pages * (PAGE + HEADER);
    char *ram = mmap(NULL, size, PROT_READ, MAP_SHARED, memfd, 0);
    char *bounce = aligned_alloc(PAGE, (size_t)MAX_BATCH * PAGE);
    uint64_t *hdr = calloc(MAX_BATCH, sizeof(*hdr));
    struct iovec iov[2 * MAX_BATCH];
    pthread_t t;
    double w0, c0;
    size_t i;

    if (ram == MAP_FAILED) {
        die("mmap");
    }
    if ((way == WAY_WARM || way == WAY_WARM_PREFETCH) &&
        madvise(ram, size, MADV_POPULATE_READ)) {
        die("madvise");
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        die("socketpair");
    }
    pthread_create(&t, NULL, drain, &stream);
    w0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_THREAD_CPUTIME_ID);
    for (i = 0; i < pages; i += batch) {
        int n = pages - i < (size_t)batch ? (int)(pages - i) : batch;
        char *base = ram + i * PAGE;
        int j, k = 0;

        if (way == WAY_POPULATE &&
            madvise(base, (size_t)n * PAGE, MADV_POPULATE_READ)) {
            die("madvise");
        }
        if (way == WAY_PREAD) {
            size_t len = (size_t)n * PAGE;

            if (pread(memfd, bounce, len, i * PAGE) != (ssize_t)len) {
                die("pread");
            }
            base = bounce;
        }
        for (j = 0; j < n; j++) {
            char *p = base + (size_t)j * PAGE;

            if ((way == WAY_PREFETCH || way == WAY_WARM_PREFETCH) &&
                i + j + distance < pages) {
                const char *a = p + (size_t)distance * PAGE;

                __builtin_prefetch(a);
                __builtin_prefetch(a + PAGE / 2);
                __builtin_prefetch(a + PAGE - 1);
            }

            hdr[j] = (i + j) * PAGE | (page_is_zero(p) ? 2 : 8);
            iov[k].iov_base = &hdr[j];
            iov[k++].iov_len = HEADER;
            iov[k].iov_base = p;
            iov[k++].iov_len = PAGE;
        }
        send_all(iov, k);
    }
    *cpu_per_gb = (now(CLOCK_THREAD_CPUTIME_ID) - c0) / (size / 1e9);
    *gbps = size / 1e9 / (now(CLOCK_MONOTONIC) - w0);
    pthread_join(t, NULL);
    munmap(ram, size);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int reps = 5, i, w;
    bool enabled[N_WAYS] = { true, true, true, true, true, true };
    double cpu[N_WAYS][64], thr[N_WAYS][64];
    uint64_t x = 88172645463325252ull;
    char *buf;
    size_t off;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size = strtoull(argv[++i], NULL, 0) << 20;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            batch = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--distance") && i + 1 < argc) {
            distance = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ways") && i + 1 < argc) {
            char *list = strdup(argv[++i]), *tok, *save = NULL;

            memset(enabled, 0, sizeof(enabled));
            for (tok = strtok_r(list, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                for (w = 0; w < N_WAYS; w++) {
                    enabled[w] |= !strcmp(tok, way_names[w]);
                }
            }
            free(list);
        } else {
            fprintf(stderr, "usage: %s [--size MiB] [--reps N] "
                    "[--batch PAGES] [--distance PAGES] [--ways map,warm,...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (batch < 1 || batch > MAX_BATCH || reps < 1 || reps > 64) {
        fprintf(stderr, "batch 1-%d, reps 1-64\n", MAX_BATCH);
        return 2;
    }
    memfd = memfd_create("source-read", 0);
    if (memfd < 0 || ftruncate(memfd, size)) {
        die("memfd");
    }
    buf = malloc(READ_SIZE);
    for (off = 0; off < size; off += READ_SIZE) {
        size_t j;

        for (j = 0; j < READ_SIZE / 8; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((uint64_t *)buf)[j] = x;
        }
        if (pwrite(memfd, buf, READ_SIZE, off) != READ_SIZE) {
            die("pwrite");
        }
    }
    printf("source-read: %zu MiB, batch %d, %d reps\n", size >> 20, batch,
           reps);
    for (i = 0; i < reps; i++) {
        for (w = 0; w < N_WAYS; w++) {
            int way = (w + i) % N_WAYS;
            int p[2];
            pid_t pid;

            if (!enabled[way]) {
                continue;
            }
            if (pipe(p)) {
                die("pipe");
            }
            pid = fork();
            if (pid == 0) {
                double r[2];

                run(way, &r[0], &r[1]);
                if (write(p[1], r, sizeof(r)) != sizeof(r)) {
                    die("write");
                }
                _exit(0);
            }
            if (read(p[0], &thr[way][i], sizeof(double)) != sizeof(double) ||
                read(p[0], &cpu[way][i], sizeof(double)) != sizeof(double)) {
                die("child");
            }
            waitpid(pid, NULL, 0);
            close(p[0]);
            close(p[1]);
            printf("  %-13s %5.2f GB/s  sender %.3f s/GB\n", way_names[way],
                   thr[way][i], cpu[way][i]);
            fflush(stdout);
        }
    }
    printf("medians:\n");
    for (w = 0; w < N_WAYS; w++) {
        if (!enabled[w]) {
            continue;
        }
        qsort(cpu[w], reps, sizeof(double), cmp);
        qsort(thr[w], reps, sizeof(double), cmp);
        printf("  %-13s %5.2f GB/s  sender %.3f s/GB [%.3f-%.3f]\n",
               way_names[w], thr[w][reps / 2], cpu[w][reps / 2], cpu[w][0],
               cpu[w][reps - 1]);
    }
    return 0;
}
