/*
 * LD_PRELOAD shim for ram-fault-test: read() from a userfaultfd fails
 *
 * A QEMU started with this library preloaded gets EIO from every read()
 * of a userfaultfd, as a kernel could return for a broken one; every
 * other read() goes to the C library.  The fault threads of the RAM
 * engine read their userfaultfd with read(), through
 * uffd_read_events(), after poll() said it is readable: the test then
 * proves that such a failure fails the migration rather than leaving
 * faulting threads waiting for good.  When the shim fails a read it
 * says so on stderr, once.
 *
 * With UFFD_READ_EIO_ONCE=N (N >= 1) in the environment only the N-th
 * such read() fails, and its message stays queued in the userfaultfd: a
 * postcopy destination must then pause, and read it after a recovery
 * (scripts/check-faults.py, fault uffd-eio, which lets the first reads
 * pass so that the failure comes while the guest runs there).
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

static int is_userfaultfd(int fd)
{
    char path[64], target[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return 0;
    }
    target[n] = '\0';
    return !strcmp(target, "anon_inode:[userfaultfd]");
}

ssize_t read(int fd, void *buf, size_t count)
{
    static ssize_t (*real_read)(int, void *, size_t);
    static int said;
    static long reads;
    const char *once = getenv("UFFD_READ_EIO_ONCE");
    long nth = once ? atol(once) : 0;

    if (!real_read) {
        real_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT,
                                                             "read");
    }
    /* Event reads are whole struct uffd_msg; test the fd only then. */
    if (count && count % sizeof(struct uffd_msg) == 0 &&
        is_userfaultfd(fd)) {
        if (nth > 0 && __atomic_add_fetch(&reads, 1, __ATOMIC_SEQ_CST) != nth) {
            return real_read(fd, buf, count);
        }
        if (!__atomic_exchange_n(&said, 1, __ATOMIC_SEQ_CST)) {
            static const char msg[] =
                "uffd-read-eio: read() of a userfaultfd fails with EIO\n";
            ssize_t unused = write(2, msg, sizeof(msg) - 1);

            (void)unused;
        }
        errno = EIO;
        return -1;
    }
    return real_read(fd, buf, count);
}
