/*
 * Destination page placement: what is the cheapest way for a migration
 * destination to put received 4 KiB pages into fresh guest RAM?
 * (docs/engine-plan.md, section 5.4, step 1)
 *
 * Every case places SIZE bytes of pages, taken cyclically from a warm,
 * pre-filled 2 MiB source buffer of non-zero data, into a fresh region:
 *
 *   a  anon-4k       memcpy per page into anonymous memory, MADV_NOHUGEPAGE
 *   b  anon-thp      the same with MADV_HUGEPAGE (AnonHugePages is reported)
 *   c  shm-memcpy    memcpy per page into a MAP_SHARED mapping of a memfd
 *   d  shm-pwritev   pwritev of up to 64 one-page iovecs into the memfd; no
 *                    mapping is touched
 *   e1 uffd-anon     UFFDIO_COPY of runs of 64 pages into anonymous memory
 *                    registered with userfaultfd (MISSING mode)
 *   e2 uffd-shm      the same into the memfd's MAP_SHARED mapping
 *   e3 uffd-staged   e1, but each run is first copied into a warm staging
 *                    buffer, as a multifd channel receives into one
 *   f  populate      MADV_POPULATE_WRITE of the whole anonymous region, then
 *                    memcpy per page; both parts are also timed apart
 *   g  warm          memcpy per page into anonymous memory that was touched
 *                    beforehand (untimed): the cost of the copy alone
 *   h1 huge-memcpy   memcpy per page into a MAP_SHARED mapping of a
 *                    hugetlbfs memfd (2 MiB pages, cleared at the fault)
 *   h2 huge-uffd     each 2 MiB page assembled in a warm staging buffer,
 *                    then placed whole with UFFDIO_COPY (no clearing)
 *
 * Each sample runs in a child forked for it, so that the memory is fresh,
 * and the repetitions are interleaved: every round runs each case once,
 * starting one case later than the round before.  Wall time and the
 * child's user+system CPU time (getrusage) cover the placement only; the
 * mapping, the userfaultfd registration and, for g, the pre-touch are set
 * up before the clock starts.  After the clock stops, a sample of the pages
 * is compared with the source.
 *
 * Usage: placement [--size MiB] [--reps N] [--json FILE] [--cases a,c,e1]
 *
 * Prints a table; --json also writes every sample and the machine.  GB is
 * 10^9 bytes, as in limits.c.  userfaultfd needs root (or CAP_SYS_PTRACE,
 * vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd); without
 * it the e cases are reported as unsupported.  The h cases need 2 MiB
 * huge pages reserved (vm.nr_hugepages); without them they are reported
 * as unsupported.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define GB          1e9
#define PAGE        4096
#define RUN_PAGES   64                  /* pwritev iovecs, UFFDIO_COPY run */
#define SRC_SIZE    (2u << 20)
#define SRC_PAGES   (SRC_SIZE / PAGE)
#define HUGE_SIZE   (2u << 20)
#define VERIFY_STEP 61                  /* compare every 61st page */
#define MAX_CASES   11
#define MAX_REPS    100
#define CHILD_LIMIT 600                 /* seconds; a stuck uffd would hang */

typedef enum { MEM_ANON, MEM_SHM_MAP, MEM_SHM_FD, MEM_HUGE_MAP } Mem;
typedef enum { PREP_NONE, PREP_TOUCH, PREP_POPULATE } Prep;
typedef enum { PLACE_MEMCPY, PLACE_PWRITEV, PLACE_UFFD } Place;

typedef struct Case {
    const char *id;
    const char *name;
    const char *what;
    Mem mem;
    int advice;                         /* madvise, or -1 */
    Prep prep;
    Place place;
    size_t stage;                       /* PLACE_UFFD: staged runs, or 0 */
} Case;

static const Case cases[MAX_CASES] = {
    { "a", "anon-4k", "memcpy into fresh anonymous memory, 4 KiB pages",
      MEM_ANON, MADV_NOHUGEPAGE, PREP_NONE, PLACE_MEMCPY, 0 },
    { "b", "anon-thp", "memcpy into fresh anonymous memory, MADV_HUGEPAGE",
      MEM_ANON, MADV_HUGEPAGE, PREP_NONE, PLACE_MEMCPY, 0 },
    { "c", "shm-memcpy", "memcpy into a MAP_SHARED mapping of a memfd",
      MEM_SHM_MAP, -1, PREP_NONE, PLACE_MEMCPY, 0 },
    { "d", "shm-pwritev", "pwritev (64 one-page iovecs) into the memfd",
      MEM_SHM_FD, -1, PREP_NONE, PLACE_PWRITEV, 0 },
    { "e1", "uffd-anon", "UFFDIO_COPY of 64-page runs into anonymous 4K",
      MEM_ANON, MADV_NOHUGEPAGE, PREP_NONE, PLACE_UFFD, 0 },
    { "e2", "uffd-shm", "UFFDIO_COPY of 64-page runs into the memfd mapping",
      MEM_SHM_MAP, -1, PREP_NONE, PLACE_UFFD, 0 },
    { "e3", "uffd-staged", "64 pages copied to a staging buffer, then "
      "UFFDIO_COPY into anonymous 4K",
      MEM_ANON, MADV_NOHUGEPAGE, PREP_NONE, PLACE_UFFD, RUN_PAGES * PAGE },
    { "f", "populate", "MADV_POPULATE_WRITE (anonymous 4K), then memcpy",
      MEM_ANON, MADV_NOHUGEPAGE, PREP_POPULATE, PLACE_MEMCPY, 0 },
    { "g", "warm", "memcpy into touched anonymous memory (copy alone)",
      MEM_ANON, MADV_NOHUGEPAGE, PREP_TOUCH, PLACE_MEMCPY, 0 },
    { "h1", "huge-memcpy", "memcpy into a hugetlbfs memfd mapping (2 MiB)",
      MEM_HUGE_MAP, -1, PREP_NONE, PLACE_MEMCPY, 0 },
    { "h2", "huge-uffd", "2 MiB pages assembled in a staging buffer, then "
      "UFFDIO_COPY into the hugetlbfs mapping",
      MEM_HUGE_MAP, -1, PREP_NONE, PLACE_UFFD, HUGE_SIZE },
};

typedef enum { S_FAILED, S_OK, S_UNSUPPORTED } Status;

/* One measurement, written by the child into a pipe. */
typedef struct Sample {
    Status status;
    char err[200];
    double wall, cpu, user, sys;        /* placement, seconds */
    double part_wall[2], part_cpu[2];   /* f: populate, then memcpy */
    long minflt;
    long anon_huge_kb, shmem_pmd_kb;    /* /proc/self/smaps_rollup */
    long verified;                      /* pages compared */
    int seq;                            /* position in the whole run */
} Sample;

typedef struct Stats {
    int n;
    double min, med, max;
} Stats;

typedef struct Clock {
    double wall, user, sys;
    long minflt;
} Clock;

static size_t size = 1024u << 20;
static int reps = 5;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv(struct timeval t)
{
    return t.tv_sec + t.tv_usec / 1e6;
}

static void clock_read(Clock *c)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    c->wall = now();
    c->user = tv(ru.ru_utime);
    c->sys = tv(ru.ru_stime);
    c->minflt = ru.ru_minflt;
}

static double cpu_between(const Clock *a, const Clock *b)
{
    return (b->user - a->user) + (b->sys - a->sys);
}

static int fail(Sample *s, Status st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    s->status = st;
    return -1;
}

/* Anonymous or shared mapping at a 2 MiB boundary, so THP can be used. */
static char *map_aligned(size_t len, int flags, int fd)
{
    size_t span = len + HUGE_SIZE;
    char *p, *q;

    if (fd >= 0) {
        /* Reserve, then map the file over the aligned part. */
        p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    } else {
        p = mmap(NULL, span, PROT_READ | PROT_WRITE, flags, -1, 0);
    }
    if (p == MAP_FAILED) {
        return NULL;
    }
    q = (char *)(((uintptr_t)p + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1));
    if (q > p) {
        munmap(p, q - p);
    }
    if (q + len < p + span) {
        munmap(q + len, p + span - (q + len));
    }
    if (fd >= 0 && mmap(q, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED,
                        fd, 0) == MAP_FAILED) {
        munmap(q, len);
        return NULL;
    }
    return q;
}

/* Non-zero pseudo-random data; every page differs from its neighbours. */
static char *make_source(void)
{
    uint64_t *p = mmap(NULL, SRC_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t i;

    if (p == MAP_FAILED) {
        return NULL;
    }
    for (i = 0; i < SRC_SIZE / sizeof(*p); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = x | 1;
    }
    return (char *)p;
}

static const char *src_page(const char *src, size_t page)
{
    return src + (page % SRC_PAGES) * PAGE;
}

static void place_memcpy(char *dst, const char *src)
{
    size_t page, pages = size / PAGE;

    for (page = 0; page < pages; page++) {
        memcpy(dst + page * PAGE, src_page(src, page), PAGE);
    }
}

static int place_pwritev(int fd, const char *src, Sample *s)
{
    struct iovec iov[RUN_PAGES];
    size_t page, pages = size / PAGE;

    for (page = 0; page < pages; page += RUN_PAGES) {
        size_t i, n = pages - page < RUN_PAGES ? pages - page : RUN_PAGES;
        size_t left = n * PAGE;
        off_t off = (off_t)page * PAGE;
        struct iovec *v = iov;
        int cnt = n;

        for (i = 0; i < n; i++) {
            iov[i].iov_base = (void *)src_page(src, page + i);
            iov[i].iov_len = PAGE;
        }
        while (left) {
            ssize_t r = pwritev(fd, v, cnt, off);

            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                return fail(s, S_FAILED, "pwritev: %s", strerror(errno));
            }
            left -= r;
            off += r;
            while (r > 0 && (size_t)r >= v->iov_len) {
                r -= v->iov_len;
                v++;
                cnt--;
            }
            if (r > 0) {
                v->iov_base = (char *)v->iov_base + r;
                v->iov_len -= r;
            }
        }
    }
    return 0;
}

static int uffd_open(Sample *s)
{
    struct uffdio_api api = { .api = UFFD_API };
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC);
    int err = errno;

#ifdef USERFAULTFD_IOC_NEW
    if (fd < 0) {
        int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

        if (dev >= 0) {
            fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
            close(dev);
        }
    }
#endif
    if (fd < 0) {
        return fail(s, S_UNSUPPORTED, "userfaultfd: %s", strerror(err));
    }
    if (ioctl(fd, UFFDIO_API, &api)) {
        fail(s, S_UNSUPPORTED, "UFFDIO_API: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int uffd_register(int uffd, char *p, Sample *s)
{
    struct uffdio_register reg = {
        .range = { .start = (uintptr_t)p, .len = size },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };

    if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
        return fail(s, S_UNSUPPORTED, "UFFDIO_REGISTER (MISSING): %s",
                    strerror(errno));
    }
    if (!(reg.ioctls & (1ull << _UFFDIO_COPY))) {
        return fail(s, S_UNSUPPORTED, "UFFDIO_COPY not offered for range");
    }
    return 0;
}

/*
 * UFFDIO_COPY of runs of @stage bytes that are first copied page by page
 * into @buf, or with @stage 0, of 64-page runs straight from the source.
 */
static int place_uffd(int uffd, char *dst, const char *src, size_t stage,
                      char *buf, Sample *s)
{
    const size_t run = stage ? stage : RUN_PAGES * PAGE;
    size_t off;

    /* SRC_SIZE is a multiple of a run, so a run never wraps the source. */
    for (off = 0; off < size; off += run) {
        struct uffdio_copy c = {
            .dst = (uintptr_t)(dst + off),
            .src = (uintptr_t)src_page(src, off / PAGE),
            .len = size - off < run ? size - off : run,
            .mode = 0,
        };

        if (stage) {
            for (size_t i = 0; i < c.len; i += PAGE) {
                memcpy(buf + i, src_page(src, (off + i) / PAGE), PAGE);
            }
            c.src = (uintptr_t)buf;
        }

        while (ioctl(uffd, UFFDIO_COPY, &c)) {
            if (errno != EAGAIN && errno != EINTR) {
                return fail(s, S_FAILED, "UFFDIO_COPY at %zu: %s", off,
                            strerror(errno));
            }
            if (c.copy > 0) {           /* partial copy: go on after it */
                c.dst += c.copy;
                c.src += c.copy;
                c.len -= c.copy;
            }
            c.copy = 0;
        }
    }
    return 0;
}

static long smaps_kb(const char *key)
{
    char line[256];
    size_t len = strlen(key);
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");

    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, len) && line[len] == ':') {
            kb = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* Compare a sample of the pages, through the fd where there is one. */
static int verify(const char *p, int fd, const char *src, Sample *s)
{
    static char buf[PAGE];
    size_t page, pages = size / PAGE;

    for (page = 0; page < pages; page += VERIFY_STEP) {
        const char *got = p ? p + page * PAGE : buf;

        if (!p && pread(fd, buf, PAGE, (off_t)page * PAGE) != PAGE) {
            return fail(s, S_FAILED, "verify: pread: %s", strerror(errno));
        }
        if (memcmp(got, src_page(src, page), PAGE)) {
            return fail(s, S_FAILED, "verify: page %zu differs", page);
        }
        s->verified++;
        if (page + VERIFY_STEP >= pages && page != pages - 1) {
            page = pages - 1 - VERIFY_STEP;     /* and the last page */
        }
    }
    return 0;
}

/* The child: set up, place, measure, verify. */
static void run_case(const Case *c, Sample *s)
{
    Clock t0, t1, t2;
    char *src, *p = NULL, *buf = NULL;
    int fd = -1, uffd = -1;

    src = make_source();
    if (!src) {
        fail(s, S_FAILED, "mmap source: %s", strerror(errno));
        return;
    }
    if (c->mem == MEM_HUGE_MAP) {
        /* mmap() reserves the huge pages, or fails: never a SIGBUS */
        fd = memfd_create("placement", MFD_CLOEXEC | MFD_HUGETLB);
        if (fd < 0 || ftruncate(fd, size)) {
            fail(s, S_UNSUPPORTED, "hugetlbfs memfd: %s", strerror(errno));
            return;
        }
        p = map_aligned(size, MAP_SHARED, fd);
        if (!p) {
            fail(s, S_UNSUPPORTED, "mmap of %zu MiB of huge pages: %s",
                 size >> 20, strerror(errno));
            return;
        }
    } else if (c->mem != MEM_ANON) {
        fd = memfd_create("placement", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, size)) {
            fail(s, S_FAILED, "memfd: %s", strerror(errno));
            return;
        }
    }
    if (c->mem == MEM_ANON) {
        p = map_aligned(size, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    } else if (c->mem == MEM_SHM_MAP) {
        p = map_aligned(size, MAP_SHARED, fd);
    }
    if (c->mem != MEM_SHM_FD && !p) {
        fail(s, S_FAILED, "mmap: %s", strerror(errno));
        return;
    }
    if (c->stage) {
        /* Warm, as a channel's staging buffer is */
        buf = aligned_alloc(HUGE_SIZE, c->stage);
        if (!buf) {
            fail(s, S_FAILED, "staging buffer: %s", strerror(errno));
            return;
        }
        memset(buf, 0x5a, c->stage);
    }
    if (p && c->advice >= 0 && madvise(p, size, c->advice)) {
        fail(s, S_FAILED, "madvise: %s", strerror(errno));
        return;
    }
    if (c->prep == PREP_TOUCH) {
        memset(p, 0x5a, size);
    }
    if (c->place == PLACE_UFFD) {
        uffd = uffd_open(s);
        if (uffd < 0 || uffd_register(uffd, p, s)) {
            return;
        }
    }

    clock_read(&t0);
    if (c->prep == PREP_POPULATE && madvise(p, size, MADV_POPULATE_WRITE)) {
        fail(s, S_UNSUPPORTED, "MADV_POPULATE_WRITE: %s", strerror(errno));
        return;
    }
    clock_read(&t1);
    switch (c->place) {
    case PLACE_MEMCPY:
        place_memcpy(p, src);
        break;
    case PLACE_PWRITEV:
        if (place_pwritev(fd, src, s)) {
            return;
        }
        break;
    case PLACE_UFFD:
        if (place_uffd(uffd, p, src, c->stage, buf, s)) {
            return;
        }
        break;
    }
    clock_read(&t2);

    s->wall = t2.wall - t0.wall;
    s->cpu = cpu_between(&t0, &t2);
    s->user = t2.user - t0.user;
    s->sys = t2.sys - t0.sys;
    s->minflt = t2.minflt - t0.minflt;
    s->part_wall[0] = t1.wall - t0.wall;
    s->part_cpu[0] = cpu_between(&t0, &t1);
    s->part_wall[1] = t2.wall - t1.wall;
    s->part_cpu[1] = cpu_between(&t1, &t2);
    s->anon_huge_kb = smaps_kb("AnonHugePages");
    s->shmem_pmd_kb = smaps_kb("ShmemPmdMapped");

    if (uffd >= 0) {
        struct uffdio_range r = { .start = (uintptr_t)p, .len = size };

        ioctl(uffd, UFFDIO_UNREGISTER, &r);
    }
    if (verify(c->mem == MEM_SHM_FD ? NULL : p, fd, src, s) == 0) {
        s->status = S_OK;
    }
}

static void run_child(const Case *c, Sample *s)
{
    int pfd[2];
    pid_t pid;
    int wst;
    ssize_t n;

    if (pipe(pfd)) {
        perror("pipe");
        exit(1);
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        Sample r = { .status = S_FAILED };

        close(pfd[0]);
        alarm(CHILD_LIMIT);
        run_case(c, &r);
        n = write(pfd[1], &r, sizeof(r));
        _exit(n == sizeof(r) ? 0 : 1);
    }
    close(pfd[1]);
    memset(s, 0, sizeof(*s));
    n = read(pfd[0], s, sizeof(*s));
    close(pfd[0]);
    waitpid(pid, &wst, 0);
    if (n != sizeof(*s)) {
        memset(s, 0, sizeof(*s));
        s->status = S_FAILED;
        if (WIFSIGNALED(wst)) {
            snprintf(s->err, sizeof(s->err), "child killed by signal %d%s",
                     WTERMSIG(wst),
                     WTERMSIG(wst) == SIGALRM ? " (time limit)" : "");
        } else {
            snprintf(s->err, sizeof(s->err), "child exited with %d",
                     WEXITSTATUS(wst));
        }
    }
}

/* ---- statistics and output ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Over the good samples of one case, of a value picked by @get. */
static Stats stats(const Sample *s, int n, double (*get)(const Sample *))
{
    double v[MAX_REPS];
    Stats st = { 0 };
    int i;

    for (i = 0; i < n; i++) {
        if (s[i].status == S_OK) {
            v[st.n++] = get(&s[i]);
        }
    }
    if (!st.n) {
        return st;
    }
    qsort(v, st.n, sizeof(v[0]), cmp_double);
    st.min = v[0];
    st.max = v[st.n - 1];
    st.med = st.n % 2 ? v[st.n / 2] : (v[st.n / 2 - 1] + v[st.n / 2]) / 2;
    return st;
}

/* The first sample that did not succeed, for its message. */
static const Sample *first_bad(const Sample *s)
{
    int r = 0;

    while (r < reps - 1 && s[r].status == S_OK) {
        r++;
    }
    return &s[r];
}

static double per_gb(double x)
{
    return x / (size / GB);
}

static double get_wall(const Sample *s)
{
    return per_gb(s->wall);
}

static double get_cpu(const Sample *s)
{
    return per_gb(s->cpu);
}

static double get_user(const Sample *s)
{
    return per_gb(s->user);
}

static double get_sys(const Sample *s)
{
    return per_gb(s->sys);
}

static double get_p0_wall(const Sample *s)
{
    return per_gb(s->part_wall[0]);
}

static double get_p0_cpu(const Sample *s)
{
    return per_gb(s->part_cpu[0]);
}

static double get_p1_wall(const Sample *s)
{
    return per_gb(s->part_wall[1]);
}

static double get_p1_cpu(const Sample *s)
{
    return per_gb(s->part_cpu[1]);
}

static double get_faults(const Sample *s)
{
    return (double)s->minflt / (size / PAGE);
}

static double get_thp(const Sample *s)
{
    return s->anon_huge_kb / 1024.0;
}

static double get_shm_pmd(const Sample *s)
{
    return s->shmem_pmd_kb / 1024.0;
}

static void read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");

    snprintf(buf, len, "?");
    if (f) {
        if (fgets(buf, len, f)) {
            buf[strcspn(buf, "\n")] = 0;
        }
        fclose(f);
    }
}

static void cpu_model(char *buf, size_t len)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(buf, len, "?");
    while (f && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');

        if (!strncmp(line, "model name", 10) && colon) {
            line[strcspn(line, "\n")] = 0;
            snprintf(buf, len, "%s", colon + 2);
            break;
        }
    }
    if (f) {
        fclose(f);
    }
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fprintf(f, "\\%c", *s);
        } else if ((unsigned char)*s < 0x20) {
            fprintf(f, "\\u%04x", *s);
        } else {
            fputc(*s, f);
        }
    }
    fputc('"', f);
}

/* sep, then "key": "value" */
static void json_kv(FILE *f, const char *sep, const char *key,
                    const char *value)
{
    fprintf(f, "%s\"%s\": ", sep, key);
    json_str(f, value);
}

static void json_stats(FILE *f, const char *key, Stats st, const char *sep)
{
    if (!st.n) {
        fprintf(f, "\"%s\": null%s", key, sep);
        return;
    }
    fprintf(f, "\"%s\": {\"min\": %.5f, \"median\": %.5f, \"max\": %.5f}%s",
            key, st.min, st.med, st.max, sep);
}

typedef struct Machine {
    char utc[32], kernel[128], cpu[128];
    char thp[128], thp_shmem[128], thp_defrag[128], uffd_sysctl[16];
    char load_start[64], load_end[64];
    long ncpu;
    double duration;
} Machine;

static void write_json(const char *path, const Machine *m, const int *sel,
                       int nsel, Sample res[][MAX_REPS], int order[][MAX_CASES])
{
    FILE *f = fopen(path, "w");
    int i, r;

    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f, "{\n  \"tool\": \"bench/placement\",\n  \"date\": ");
    json_str(f, m->utc);
    fprintf(f, ",\n  \"duration_s\": %.1f,\n", m->duration);
    fprintf(f, "  \"size_bytes\": %zu, \"reps\": %d, \"page_bytes\": %d, "
            "\"run_pages\": %d, \"source_bytes\": %u,\n",
            size, reps, PAGE, RUN_PAGES, SRC_SIZE);
    fprintf(f, "  \"machine\": {");
    json_kv(f, "", "kernel", m->kernel);
    json_kv(f, ", ", "cpu", m->cpu);
    fprintf(f, ", \"cores\": %ld", m->ncpu);
    json_kv(f, ",\n    ", "thp_enabled", m->thp);
    json_kv(f, ", ", "thp_shmem_enabled", m->thp_shmem);
    json_kv(f, ", ", "thp_defrag", m->thp_defrag);
    json_kv(f, ",\n    ", "unprivileged_userfaultfd", m->uffd_sysctl);
    json_kv(f, ", ", "loadavg_start", m->load_start);
    json_kv(f, ", ", "loadavg_end", m->load_end);
    fprintf(f, "},\n  \"order\": [");
    for (r = 0; r < reps; r++) {
        fprintf(f, "%s[", r ? ", " : "");
        for (i = 0; i < nsel; i++) {
            fprintf(f, "%s\"%s\"", i ? ", " : "", cases[order[r][i]].id);
        }
        fprintf(f, "]");
    }
    fprintf(f, "],\n  \"cases\": [\n");
    for (i = 0; i < nsel; i++) {
        const Case *c = &cases[sel[i]];
        const Sample *s = res[sel[i]];

        fprintf(f, "    {\"id\": \"%s\", \"name\": \"%s\", \"what\": ",
                c->id, c->name);
        json_str(f, c->what);
        fprintf(f, ",\n     \"summary\": {");
        json_stats(f, "s_per_gb", stats(s, reps, get_wall), ", ");
        json_stats(f, "cpu_s_per_gb", stats(s, reps, get_cpu), ", ");
        json_stats(f, "user_s_per_gb", stats(s, reps, get_user), ", ");
        json_stats(f, "sys_s_per_gb", stats(s, reps, get_sys), "");
        if (c->prep == PREP_POPULATE) {
            fprintf(f, ",\n       ");
            json_stats(f, "populate_s_per_gb", stats(s, reps, get_p0_wall),
                       ", ");
            json_stats(f, "populate_cpu_s_per_gb",
                       stats(s, reps, get_p0_cpu), ",\n       ");
            json_stats(f, "memcpy_s_per_gb", stats(s, reps, get_p1_wall),
                       ", ");
            json_stats(f, "memcpy_cpu_s_per_gb",
                       stats(s, reps, get_p1_cpu), "");
        }
        fprintf(f, "},\n     \"samples\": [\n");
        for (r = 0; r < reps; r++) {
            fprintf(f, "       {\"rep\": %d, \"seq\": %d, \"status\": \"%s\"",
                    r, s[r].seq, s[r].status == S_OK ? "ok" :
                    s[r].status == S_UNSUPPORTED ? "unsupported" : "failed");
            if (s[r].status != S_OK) {
                fprintf(f, ", \"error\": ");
                json_str(f, s[r].err);
            } else {
                fprintf(f, ", \"wall_s\": %.6f, \"gbps\": %.4f, "
                        "\"user_s\": %.6f, \"sys_s\": %.6f, "
                        "\"minflt\": %ld, \"anon_huge_kb\": %ld, "
                        "\"shmem_pmd_mapped_kb\": %ld, "
                        "\"verified_pages\": %ld",
                        s[r].wall, size / GB / s[r].wall, s[r].user,
                        s[r].sys, s[r].minflt, s[r].anon_huge_kb,
                        s[r].shmem_pmd_kb, s[r].verified);
                if (c->prep == PREP_POPULATE) {
                    fprintf(f, ", \"populate_wall_s\": %.6f, "
                            "\"populate_cpu_s\": %.6f, "
                            "\"memcpy_wall_s\": %.6f, \"memcpy_cpu_s\": %.6f",
                            s[r].part_wall[0], s[r].part_cpu[0],
                            s[r].part_wall[1], s[r].part_cpu[1]);
                }
            }
            fprintf(f, "}%s\n", r + 1 < reps ? "," : "");
        }
        fprintf(f, "     ]}%s\n", i + 1 < nsel ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f)) {
        perror(path);
        exit(1);
    }
}

static void print_row(const char *label, Stats w, Stats cpu, Stats ref_w,
                      Stats ref_cpu, const Sample *s, int full)
{
    printf("%-22s %6.3f %6.3f %6.3f %6.2f  %6.3f %6.3f %6.3f",
           label, w.min, w.med, w.max, 1 / w.med, cpu.min, cpu.med, cpu.max);
    if (ref_w.n) {
        printf("  %5.2f %5.2f", w.med / ref_w.med, cpu.med / ref_cpu.med);
    } else {
        printf("  %5s %5s", "-", "-");
    }
    if (full) {
        Stats fl = stats(s, reps, get_faults);
        Stats thp = stats(s, reps, get_thp);
        Stats pmd = stats(s, reps, get_shm_pmd);

        printf("  %6.3f  %5.0f", fl.med, thp.med + pmd.med);
    }
    printf("\n");
}

static void usage(FILE *f, const char *prog)
{
    int i;

    fprintf(f, "Usage: %s [--size MiB] [--reps N] [--json FILE] "
            "[--cases ID,...]\n"
            "  --size MiB   region per case, a multiple of 2 (default 1024)\n"
            "  --reps N     samples per case, interleaved (default 5)\n"
            "  --json FILE  also write every sample and the machine\n"
            "  --cases IDS  subset, e.g. a,c,d,e1 (default: all)\n"
            "Cases:\n", prog);
    for (i = 0; i < MAX_CASES; i++) {
        fprintf(f, "  %-3s %-12s %s\n", cases[i].id, cases[i].name,
                cases[i].what);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "size", required_argument, NULL, 's' },
        { "reps", required_argument, NULL, 'r' },
        { "json", required_argument, NULL, 'j' },
        { "cases", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static Sample res[MAX_CASES][MAX_REPS];
    static int order[MAX_REPS][MAX_CASES];
    const char *json = NULL, *only = NULL;
    int sel[MAX_CASES], nsel = 0, i, r, opt, seq = 0, ref;
    struct utsname un;
    Machine m = { 0 };
    double start;
    time_t t;

    while ((opt = getopt_long(argc, argv, "s:r:j:c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 's': {
            unsigned long mib = strtoul(optarg, NULL, 0);

            if (!mib || mib % 2) {
                fprintf(stderr, "--size: a positive even number of MiB\n");
                return 2;
            }
            size = (size_t)mib << 20;
            break;
        }
        case 'r':
            reps = atoi(optarg);
            if (reps < 1 || reps > MAX_REPS) {
                fprintf(stderr, "--reps: 1..%d\n", MAX_REPS);
                return 2;
            }
            break;
        case 'j':
            json = optarg;
            break;
        case 'c':
            only = optarg;
            break;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        default:
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr, argv[0]);
        return 2;
    }
    for (i = 0; i < MAX_CASES; i++) {
        char pat[8];
        const char *hit;

        snprintf(pat, sizeof(pat), "%s", cases[i].id);
        hit = only ? strstr(only, pat) : NULL;
        /* Whole items only: "e1" must not select "e", nor "a" "ab". */
        while (hit && ((hit > only && hit[-1] != ',') ||
                       (hit[strlen(pat)] && hit[strlen(pat)] != ','))) {
            hit = strstr(hit + 1, pat);
        }
        if (!only || hit) {
            sel[nsel++] = i;
        }
    }
    if (!nsel) {
        fprintf(stderr, "--cases: nothing selected\n");
        return 2;
    }

    t = time(NULL);
    strftime(m.utc, sizeof(m.utc), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    uname(&un);
    snprintf(m.kernel, sizeof(m.kernel), "%s", un.release);
    cpu_model(m.cpu, sizeof(m.cpu));
    m.ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    read_line("/sys/kernel/mm/transparent_hugepage/enabled", m.thp,
              sizeof(m.thp));
    read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
              m.thp_shmem, sizeof(m.thp_shmem));
    read_line("/sys/kernel/mm/transparent_hugepage/defrag", m.thp_defrag,
              sizeof(m.thp_defrag));
    read_line("/proc/sys/vm/unprivileged_userfaultfd", m.uffd_sysctl,
              sizeof(m.uffd_sysctl));
    read_line("/proc/loadavg", m.load_start, sizeof(m.load_start));

    printf("placement: %zu MiB per case, %d reps, 4 KiB pages from a 2 MiB "
           "source, runs/iovecs of %d pages\n", size >> 20, reps, RUN_PAGES);
    printf("%s, kernel %s, %s, %ld CPUs\n", m.utc, m.kernel, m.cpu, m.ncpu);
    printf("THP enabled: %s; shmem_enabled: %s; defrag: %s\n", m.thp,
           m.thp_shmem, m.thp_defrag);
    printf("load average at start: %s\n\n", m.load_start);

    start = now();
    for (r = 0; r < reps; r++) {
        for (i = 0; i < nsel; i++) {
            int k = sel[(r + i) % nsel];

            order[r][i] = k;
            run_child(&cases[k], &res[k][r]);
            res[k][r].seq = seq++;
        }
    }
    m.duration = now() - start;
    read_line("/proc/loadavg", m.load_end, sizeof(m.load_end));

    /* Ratios are to case a, or to the first case selected. */
    ref = sel[0];
    printf("%-22s %-20s %6s  %-20s  %-11s  %6s  %5s\n", "",
           "wall s/GB", "GB/s", "CPU s/GB (user+sys)", "median/ref",
           "faults", "THP");
    printf("%-22s %6s %6s %6s %6s  %6s %6s %6s  %5s %5s  %6s  %5s\n",
           "case", "min", "med", "max", "med", "min", "med", "max",
           "wall", "CPU", "/page", "MiB");
    for (i = 0; i < nsel; i++) {
        const Case *c = &cases[sel[i]];
        const Sample *s = res[sel[i]];
        Stats w = stats(s, reps, get_wall), cpu = stats(s, reps, get_cpu);
        Stats rw = stats(res[ref], reps, get_wall);
        Stats rc = stats(res[ref], reps, get_cpu);
        char label[64];

        snprintf(label, sizeof(label), "%-2s %s", c->id, c->name);
        if (!w.n) {
            printf("%-22s %s: %s\n", label,
                   s->status == S_UNSUPPORTED ? "unsupported" : "failed",
                   s->err);
            continue;
        }
        print_row(label, w, cpu, rw, rc, s, 1);
        if (c->prep == PREP_POPULATE) {
            print_row("     populate part", stats(s, reps, get_p0_wall),
                      stats(s, reps, get_p0_cpu), rw, rc, s, 0);
            print_row("     memcpy part", stats(s, reps, get_p1_wall),
                      stats(s, reps, get_p1_cpu), rw, rc, s, 0);
        }
        if (w.n < reps) {
            printf("   %d of %d samples failed, e.g.: %s\n", reps - w.n,
                   reps, first_bad(s)->err);
        }
    }

    printf("\nwall s/GB per sample, in the order run (rounds rotate the "
           "starting case):\n");
    for (r = 0; r < reps; r++) {
        printf("  round %d:", r + 1);
        for (i = 0; i < nsel; i++) {
            const Sample *s = &res[order[r][i]][r];

            if (s->status == S_OK) {
                printf("  %s %.3f", cases[order[r][i]].id, get_wall(s));
            } else {
                printf("  %s -", cases[order[r][i]].id);
            }
        }
        printf("\n");
    }
    printf("\nmedian/ref: ratio of the medians to case %s.\n",
           cases[ref].id);
    printf("THP MiB: AnonHugePages + ShmemPmdMapped of the child after "
           "placement (median).\nfaults/page: minor faults during the "
           "timed part per 4 KiB page (median).\n");
    printf("run took %.0f s; load average at end: %s\n", m.duration,
           m.load_end);

    if (json) {
        write_json(json, &m, sel, nsel, res, order);
    }
    return 0;
}
