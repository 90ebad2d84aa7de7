/*
 * Sending pages into a unix socket: writev(), or vmsplice() + splice()?
 *
 * Since Linux 6.5 a splice() into a unix stream socket hands the pipe's
 * pages to the socket (MSG_SPLICE_PAGES) instead of copying them, so a
 * source that vmsplice()s guest pages into a pipe and splices the pipe
 * into the migration socket would copy nothing; the destination's read
 * copies once, from the guest's own pages.  That is the only zero-copy
 * send a unix socket has (MSG_ZEROCOPY is for TCP and UDP).
 *
 * A sender writes SIZE bytes of pseudo-random 4 KiB pages into one end of
 * a unix socket pair, BATCH pages per call, in one of two stream shapes:
 *
 *   precopy  an 8-byte record header before every page, as RAM_SAVE_FLAG
 *            records have; the headers come from an append-only arena,
 *            since a spliced byte must not change until it is read
 *   multifd  pages only (a multifd packet's header goes separately)
 *
 * and one of two ways:
 *
 *   writev   the branch's and upstream's way: the kernel copies
 *   splice   vmsplice() of the same iovec into a pipe of 1 MiB, then
 *            splice() from the pipe into the socket
 *
 * The receiver read()s 1 MiB at a time, as the branch's loader does.
 * Each sample runs in a child forked for it, and the repetitions are
 * interleaved.  Reported per sample: the
 * throughput, the sender's and the receiver's CPU seconds per GB.
 *
 * Usage: splice-send [--size MiB] [--reps N] [--batch PAGES]
 *                    [--shape precopy|multifd]
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

#define PAGE 4096
#define HEADER 8
#define READ_SIZE (1 << 20)
#define MAX_BATCH 1024

static size_t size = 1024ull << 20;
static int batch = 64;
static bool headers = true;
static int sv[2];
static char *pages;
static double recv_cpu;

static void *receiver(void *opaque)
{
    double c0 = now(CLOCK_THREAD_CPUTIME_ID);
    char *buf = malloc(READ_SIZE);
    ssize_t r;

    while ((r = read(sv[1], buf, READ_SIZE)) > 0) {
        continue;
    }
    if (r < 0) {
        die("read");
    }
    recv_cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    free(buf);
    return NULL;
}

static void send_batch(struct iovec *iov, int n, int pipefd[2])
{
    while (n) {
        ssize_t r;

        if (pipefd) {
            r = vmsplice(pipefd[1], iov, n, 0);
            if (r < 0) {
                die("vmsplice");
            }
            for (ssize_t left = r; left;) {
                ssize_t out = splice(pipefd[0], NULL, sv[0], NULL, left, 0);

                if (out <= 0) {
                    die("splice");
                }
                left -= out;
            }
        } else {
            r = writev(sv[0], iov, n);
            if (r < 0) {
                die("writev");
            }
        }
        n = advance(&iov, n, r);
    }
}

static void sample(bool use_splice)
{
    size_t npages = size / PAGE;
    char *arena = mmap(NULL, npages * HEADER, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct iovec iov[2 * MAX_BATCH];
    int pipefd[2];
    double t0, c0, send_cpu, wall;
    pthread_t th;

    if (arena == MAP_FAILED || pipe(pipefd) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        die("setup");
    }
    if (fcntl(pipefd[1], F_SETPIPE_SZ, READ_SIZE) < 0) {
        die("F_SETPIPE_SZ");
    }
    pthread_create(&th, NULL, receiver, NULL);
    t0 = now(CLOCK_MONOTONIC);
    c0 = now(CLOCK_THREAD_CPUTIME_ID);
    for (size_t first = 0; first < npages; first += batch) {
        int n = 0;

        for (size_t p = first; p < first + batch && p < npages; p++) {
            if (headers) {
                uint64_t *h = (uint64_t *)(arena + p * HEADER);

                *h = p * PAGE | 8;
                iov[n++] = (struct iovec){ h, HEADER };
            }
            iov[n++] = (struct iovec){ pages + p * PAGE, PAGE };
        }
        send_batch(iov, n, use_splice ? pipefd : NULL);
    }
    send_cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    shutdown(sv[0], SHUT_WR);
    pthread_join(th, NULL);
    wall = now(CLOCK_MONOTONIC) - t0;
    {
        double gb = (size + (headers ? npages * HEADER : 0)) / 1e9;

        printf("%-7s %6.2f GB/s  sender %.3f s/GB  receiver %.3f s/GB\n",
               use_splice ? "splice" : "writev", gb / wall, send_cpu / gb,
               recv_cpu / gb);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int reps = 8;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) {
            size = strtoull(argv[i + 1], NULL, 0) << 20;
        } else if (!strcmp(argv[i], "--reps")) {
            reps = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--batch")) {
            batch = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--shape")) {
            headers = !strcmp(argv[i + 1], "precopy");
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (batch < 1 || batch > MAX_BATCH) {
        fprintf(stderr, "--batch: 1 to %d\n", MAX_BATCH);
        return 2;
    }
    pages = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (pages == MAP_FAILED) {
        die("mmap");
    }
    srandom(1);
    for (size_t i = 0; i < size; i += sizeof(long)) {
        *(long *)(pages + i) = random();
    }
    printf("# %zu MiB, %s shape, %d pages per call\n", size >> 20,
           headers ? "precopy" : "multifd", batch);
    fflush(stdout);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            bool use_splice = (r + k) % 2;
            pid_t pid = fork();

            if (!pid) {
                sample(use_splice);
                _exit(0);
            }
            waitpid(pid, NULL, 0);
        }
    }
    return 0;
}
