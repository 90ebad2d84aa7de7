/*
 * What the first write to fresh memory costs, against how long the
 * memory was free before.
 *
 * These machines are VMs whose memory the outer host backs lazily: the
 * kernel reports pages that have been free for a while to the outer host
 * (free page reporting), which drops them, and the next first write to
 * such a page waits while the outer host backs it again.  A migration
 * destination writes every page of guest RAM for the first time, so that
 * wait is part of its CPU time, whichever engine writes the page.
 *
 * Each sample frees what the previous one wrote, sleeps IDLE seconds, and
 * writes SIZE MiB of fresh memory for the first time, in one of two ways:
 *
 *   anon    MADV_POPULATE_WRITE of private anonymous 4 KiB pages: the
 *           kernel allocates and clears each page, as for upstream's
 *           destination, which faults guest RAM in by storing into it
 *   shmem   pwrite() of 1 MiB at a time into a memfd: the kernel
 *           allocates each page and the copy is its first write, as for
 *           the branch's destination of shared file-backed RAM (place.c)
 *
 * and reports the CPU seconds (user + system) per GB.  The rounds rotate
 * the order of the idle times.
 *
 *   gcc -O2 -Wall -Wextra -o build/bench/first-touch bench/first-touch.c
 *   build/bench/first-touch [--size MiB] [--reps N] [IDLE ...]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench-util.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_IDLE 16
#define MAX_REPS 16
#define CHUNK (1u << 20)

enum { WAY_ANON, WAY_SHMEM, WAYS };
static const char *const way_name[WAYS] = { "anon", "shmem" };

/* CPU seconds per GB to write @size bytes of fresh memory @way */
static double first_touch(int way, size_t size)
{
    double t;

    if (way == WAY_ANON) {
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED) {
            die("mmap");
        }
        madvise(p, size, MADV_NOHUGEPAGE);
        t = now(CLOCK_PROCESS_CPUTIME_ID);
        if (madvise(p, size, MADV_POPULATE_WRITE)) {
            die("MADV_POPULATE_WRITE");
        }
        t = now(CLOCK_PROCESS_CPUTIME_ID) - t;
        munmap(p, size);
    } else {
        static char *buf;
        int fd = memfd_create("first-touch", 0);
        size_t off;

        if (fd < 0) {
            die("memfd_create");
        }
        if (!buf) {
            buf = malloc(CHUNK);
            if (!buf) {
                die("malloc");
            }
            memset(buf, 0x5a, CHUNK);
        }
        t = now(CLOCK_PROCESS_CPUTIME_ID);
        for (off = 0; off < size; off += CHUNK) {
            if (pwrite(fd, buf, CHUNK, off) != CHUNK) {
                die("pwrite");
            }
        }
        t = now(CLOCK_PROCESS_CPUTIME_ID) - t;
        close(fd);
    }
    return t / (size / 1e9);
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

    while (nanosleep(&ts, &ts) && errno == EINTR) {
        /* interrupted: sleep the rest */
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    double idle[MAX_IDLE] = { 0, 1, 2, 4, 8 };
    double s[WAYS][MAX_IDLE][MAX_REPS];
    size_t size = 2048ul << 20;
    int n_idle = 5, reps = 3, i, j, r, w;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size = strtoul(argv[++i], NULL, 0) << 20;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            break;
        }
    }
    if (i < argc) {
        for (n_idle = 0; i < argc && n_idle < MAX_IDLE; i++) {
            idle[n_idle] = atof(argv[i]);
            if (idle[n_idle++] < 0) {
                break;
            }
        }
    }
    if (reps < 1 || reps > MAX_REPS || size < CHUNK || i < argc ||
        idle[n_idle - 1] < 0) {
        fprintf(stderr, "usage: first-touch [--size MiB] [--reps N<=%d] "
                "[IDLE ...]\n", MAX_REPS);
        return 1;
    }

    printf("first-touch: %zu MiB per sample, %d rounds\n", size >> 20, reps);
    for (r = 0; r < reps; r++) {
        for (j = 0; j < n_idle; j++) {
            int k = (j + r) % n_idle;

            for (w = 0; w < WAYS; w++) {
                sleep_s(idle[k]);
                s[w][k][r] = first_touch(w, size);
                printf("  round %d idle %4.1f s %-5s %.3f s/GB\n", r + 1,
                       idle[k], way_name[w], s[w][k][r]);
                fflush(stdout);
            }
        }
    }

    printf("\nCPU s/GB of the first write, median [min-max]:\n");
    printf("%8s %24s %24s\n", "idle s", way_name[WAY_ANON],
           way_name[WAY_SHMEM]);
    for (j = 0; j < n_idle; j++) {
        printf("%8.1f", idle[j]);
        for (w = 0; w < WAYS; w++) {
            qsort(s[w][j], reps, sizeof(double), cmp);
            printf("   %6.3f [%6.3f-%6.3f]", s[w][j][reps / 2], s[w][j][0],
                   s[w][j][reps - 1]);
        }
        printf("\n");
    }
    return 0;
}
