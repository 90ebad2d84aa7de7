/*
 * Multifd receive path: read + pwrite, or splice through a pipe?
 *
 * A sender thread writes SIZE bytes of pseudo-random 4 KiB pages into one
 * end of a unix socket pair, as writev() of 128 pages (one multifd packet
 * of 512 KiB).  The receiver puts each packet at its offset of a memfd:
 *
 *   read    read() into a 512 KiB staging buffer, then pwrite() into the
 *           memfd (the branch's multifd receive path, patch 0004)
 *   splice  splice() from the socket into a pipe of 512 KiB, then from
 *           the pipe into the memfd (tried and dropped: it wins here, and
 *           loses in a real migration, see ram-engine.rst "Ideas measured")
 *
 * With --prefill (the default) the memfd's pages exist before the clock
 * starts, so the numbers show the receive path itself; without it, the
 * first touch of fresh memory is measured too, which on a host that backs
 * its guests' memory lazily varies more than the difference measured.
 *
 * Each sample runs in a child forked for it, and the repetitions are
 * interleaved (read, splice, splice, read, ...).  Reported per sample:
 * throughput, the receiving thread's CPU seconds per GB, the sender's.
 * After each sample the memfd is compared with the sent data.
 *
 * Usage: splice [--size MiB] [--reps N] [--no-prefill]
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
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

#define PAGE 4096
#define PAGES_PER_PACKET 128
#define PACKET (PAGE * PAGES_PER_PACKET)

static size_t size;
static int sv[2];
static char *src;
static double send_cpu;

static void *sender(void *opaque)
{
    double c0 = now(CLOCK_THREAD_CPUTIME_ID);
    struct iovec iov[PAGES_PER_PACKET];

    for (size_t off = 0; off < size; off += PACKET) {
        struct iovec *v = iov;
        int n = PAGES_PER_PACKET;

        for (int i = 0; i < n; i++) {
            iov[i].iov_base = src + off + i * PAGE;
            iov[i].iov_len = PAGE;
        }
        while (n) {
            ssize_t r = writev(sv[0], v, n);

            if (r < 0) {
                die("writev");
            }
            n = advance(&v, n, r);
        }
    }
    send_cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

static void recv_read(int mfd, char *stage, size_t off)
{
    for (size_t done = 0; done < PACKET;) {
        ssize_t r = read(sv[1], stage + done, PACKET - done);

        if (r <= 0) {
            die("read");
        }
        done += r;
    }
    for (size_t done = 0; done < PACKET;) {
        ssize_t r = pwrite(mfd, stage + done, PACKET - done, off + done);

        if (r <= 0) {
            die("pwrite");
        }
        done += r;
    }
}

static void recv_splice(int mfd, int pipefd[2], size_t off)
{
    for (size_t done = 0; done < PACKET;) {
        ssize_t in = splice(sv[1], NULL, pipefd[1], NULL, PACKET - done,
                            SPLICE_F_MOVE);

        if (in <= 0) {
            die("splice from the socket");
        }
        while (in) {
            loff_t pos = off + done;
            ssize_t out = splice(pipefd[0], NULL, mfd, &pos, in,
                                 SPLICE_F_MOVE);

            if (out <= 0) {
                die("splice into the file");
            }
            in -= out;
            done += out;
        }
    }
}

static void sample(bool use_splice, bool prefill)
{
    int mfd = memfd_create("dst", 0);
    int pipefd[2];
    char *stage = aligned_alloc(PAGE, PACKET);
    pthread_t th;
    double t0, c0, recv_cpu, wall;
    char *dst;

    if (mfd < 0 || ftruncate(mfd, size) || pipe(pipefd) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        die("setup");
    }
    if (fcntl(pipefd[1], F_SETPIPE_SZ, PACKET) < 0) {
        die("F_SETPIPE_SZ");
    }
    memset(stage, 1, PACKET);
    if (prefill) {
        for (size_t off = 0; off < size; off += PACKET) {
            if (pwrite(mfd, stage, PACKET, off) != PACKET) {
                die("prefill");
            }
        }
    }
    t0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_THREAD_CPUTIME_ID);
    pthread_create(&th, NULL, sender, NULL);
    for (size_t off = 0; off < size; off += PACKET) {
        if (use_splice) {
            recv_splice(mfd, pipefd, off);
        } else {
            recv_read(mfd, stage, off);
        }
    }
    recv_cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    pthread_join(th, NULL);
    wall = now(CLOCK_MONOTONIC) - t0;
    dst = mmap(NULL, size, PROT_READ, MAP_SHARED, mfd, 0);
    if (dst == MAP_FAILED || memcmp(dst, src, size)) {
        fprintf(stderr, "%s: the file differs from what was sent\n",
                use_splice ? "splice" : "read");
        exit(1);
    }
    printf("%-6s %6.2f GB/s  recv %.3f s/GB  send %.3f s/GB\n",
           use_splice ? "splice" : "read", size / 1e9 / wall,
           recv_cpu / (size / 1e9), send_cpu / (size / 1e9));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int reps = 8;
    bool prefill = true;

    size = 1024ul << 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size = strtoul(argv[++i], NULL, 0) << 20;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--no-prefill")) {
            prefill = false;
        } else {
            fprintf(stderr, "usage: %s [--size MiB] [--reps N] "
                    "[--no-prefill]\n", argv[0]);
            return 2;
        }
    }
    size -= size % PACKET;
    src = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (src == MAP_FAILED) {
        die("mmap");
    }
    srandom(1);
    for (size_t i = 0; i < size; i += sizeof(long)) {
        *(long *)(src + i) = random();
    }
    for (int r = 0; r < reps; r++) {
        /* read, splice, splice, read, ... */
        for (int k = 0; k < 2; k++) {
            bool use_splice = (k + r) % 2;
            pid_t pid = fork();
            int status;

            if (pid < 0) {
                die("fork");
            }
            if (!pid) {
                sample(use_splice, prefill);
                _exit(0);
            }
            if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
                WEXITSTATUS(status)) {
                return 1;
            }
        }
    }
    return 0;
}
