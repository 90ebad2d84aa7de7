/*
 * LD_PRELOAD shim for the lazy restore's file errors: after
 * PREAD_EIO_AFTER (default 4) pread() calls of at least a page, such
 * pread() calls fail with EIO, as a failing disk would: all of them, or
 * the next PREAD_EIO_COUNT only.  PREAD_DELAY_US=N makes each such
 * pread() N microseconds slower.  QEMU's own
 * channel reads use preadv() and are left alone; the lazy restore reads
 * pages with pread().  Says so on stderr, once.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

ssize_t pread64(int fd, void *buf, size_t count, off_t offset);

ssize_t pread64(int fd, void *buf, size_t count, off_t offset)
{
    static ssize_t (*real)(int, void *, size_t, off_t);
    static long calls;
    static int said;
    const char *after = getenv("PREAD_EIO_AFTER");
    const char *count_env = getenv("PREAD_EIO_COUNT");
    long first = after ? atol(after) : 4;
    long n;

    if (!real) {
        real = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT,
                                                               "pread64");
    }
    if (count >= 4096 && getenv("PREAD_DELAY_US")) {
        usleep(atol(getenv("PREAD_DELAY_US")));
    }
    if (count >= 4096 &&
        (n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST)) > first &&
        (!count_env || n <= first + atol(count_env))) {
        if (!__atomic_exchange_n(&said, 1, __ATOMIC_SEQ_CST)) {
            fprintf(stderr, "pread-eio: pread() of fd %d fails with EIO\n",
                    fd);
        }
        errno = EIO;
        return -1;
    }
    return real(fd, buf, count, offset);
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
    return pread64(fd, buf, count, offset);
}
