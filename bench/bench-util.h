/*
 * What the micro-benchmarks of bench/ share: a clock, dying with errno,
 * and stepping an iovec past what a call wrote.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>

static inline double now(clockid_t clk)
{
    struct timespec t;

    clock_gettime(clk, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Drop @done bytes from the front of @iov; returns the entries left. */
static inline int advance(struct iovec **iov, int n, size_t done)
{
    while (n && done >= (*iov)->iov_len) {
        done -= (*iov)->iov_len;
        (*iov)++;
        n--;
    }
    if (n) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + done;
        (*iov)->iov_len -= done;
    }
    return n;
}

#endif
