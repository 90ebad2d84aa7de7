/*
 * Byte-exact guest RAM after a paused migration
 *
 * The source QEMU never runs its guest (-S).  Its RAM is a shared file
 * on tmpfs, which this test fills with a pattern that exercises every
 * page kind the RAM engine distinguishes: zero pages, pages that are
 * zero but for one byte at either end, repeated-byte pages and
 * incompressible pseudo-random pages.  After the migration the
 * destination's RAM file must equal the source's byte for byte.
 *
 * Each case runs precopy on one channel, multifd with two channels, and
 * multifd with zstd or zlib (the branch places pages by file for every
 * codec, as for none).  The "rewrite" cases also change pages through
 * QEMU (qtest writes, which the dirty bitmap sees) while the first passes
 * run: data pages become zero and holes become data, so that pages go
 * again as the other kind.  The "probe" case also reads the
 * destination's RAM while it loads; the "prealloc" cases have it
 * allocated before (the branch then copies through the mapping instead
 * of writing into the file or filling, see
 * docs/devel/migration/ram-engine.rst), and the "part-written" case
 * has a quarter of it written with zeroes (the branch then writes into
 * the file, with neither of the other two).  The "thp" cases put the
 * destination's RAM file on QTEST_THP_DIR, a tmpfs mounted with huge=
 * (scripts/run-checks.sh mounts one when it can), aligned to 2 MiB: its
 * mapping gets transparent huge pages, and after the migration it must
 * still have them, as upstream's loader leaves it.  The "postcopy" cases
 * switch to postcopy once 16 MiB went, and read two pages on the
 * destination while postcopy runs: one that came as a zero page before
 * the switch (the destination must not leave it a hole, which it would
 * never ask the source for), and one that was still on the source.  The
 * "switchover" cases check when the source stops its guest
 * (upstream's rule, or x-switchover-after-first-pass).  The "anon" cases
 * use anonymous guest RAM, which the test cannot map: the pattern goes
 * in, and both sides' RAM comes back out, through qtest.
 * QTEST_QEMU_BINARY_SRC and QTEST_QEMU_BINARY_DST select different
 * binaries for cross-version runs.
 *
 * The "fs/" cases (issue 21) put both RAM files on another filesystem:
 * ext4, xfs, btrfs and a FUSE passthrough (tests/fuse/passthrough.c),
 * in the directories QTEST_FS_EXT4_DIR, QTEST_FS_XFS_DIR,
 * QTEST_FS_BTRFS_DIR and QTEST_FS_FUSE_DIR name
 * (scripts/test-filesystems.sh mounts them, as root; a case whose
 * variable is unset is skipped).  The pattern is written through a
 * shared mapping of the source's file, with no msync or fsync: the
 * migration starts a second or two later, far inside the kernel's 30 s
 * dirty_expire, and the test asserts that pages are still dirty, not
 * written back, then (/proc/kpageflags, as root).  That is what the
 * branch's hole shortcuts depend on: a page the source's SEEK_DATA
 * calls a hole goes as a zero page unread.  Seen on this project's
 * machines (Linux 6.18): ext4 and xfs keep nearly all of the pattern
 * dirty (large folios: a page written dirties its whole folio); btrfs
 * writes most of it back at once and keeps 300-2000 pages dirty; FUSE
 * (strictlimit) writes half of it back or more (70-8192 pages dirty).
 * ext4, xfs and btrfs report every dirty page as data, and the test
 * asserts it.  The FUSE
 * passthrough forwards lseek to its backing file, as libfuse's examples
 * do, which reports holes over every page not yet written back: a
 * source that trusts those holes sends exactly the dirty pages as zero
 * pages (the paused cases then fail with as many pages differing as
 * were dirty).  The trace must show that the branch trusts holes on
 * ext4, xfs and btrfs (ram_block_policy: "holes seek", and a placement
 * other than "mapping (untrusted ...)"); on FUSE it must take upstream's
 * path ("backing other, holes none", placement "mapping", and no page
 * unread, written with pwritev or filled, or left a hole).  The trace
 * is checked on each side that runs the branch, which query-version
 * tells (runs_branch()); upstream only warns of -trace events it lacks.
 * The "live" cases run upstream migration-test's boot-sector guest on
 * the source, which keeps incrementing a byte in every page of 1-100
 * MiB, as make demo does: the migration goes through a few passes while
 * the guest runs, converges, and the destination (-S) must then hold
 * exactly the RAM of the stopped source.
 *
 * The zero pages this test leaves alone are holes of the source's file.
 * With the same binary on both sides, the test also checks that the
 * migration allocated none of them: on the source by reading them, on
 * the destination by writing or checking a zero page.  That is a
 * property of this branch's engine, so a cross-version run, where one
 * side may be upstream's, only reports the figures.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include <sys/vfs.h>
#include "qemu/cutils.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"
#include "migration/bootfile.h"

#define RAM_MIB         128
#define RAM_SIZE        ((size_t)RAM_MIB << 20)
#define PAGE_SIZE       4096
/* The live cases leave the first MiB to the guest: code, stack, BIOS data */
#define LIVE_KEEP       (1 << 20)

/* What the source may do once the estimate allows the switchover */
typedef enum {
    SWITCHOVER_ANY,         /* not checked */
    SWITCHOVER_FIRST_PASS,  /* wait for the end of the first pass */
    SWITCHOVER_MID_PASS,    /* upstream's rule, the default: at once */
} Switchover;

/* A filesystem for the "fs/" cases */
typedef struct {
    const char *name;   /* as ram_block_policy names its backing */
    const char *env;    /* names a directory on it */
    long magic;         /* statfs() f_type */
    bool trusted;       /* the branch may trust its holes */
} TestFs;

static const TestFs test_fs[] = {
    { "ext4", "QTEST_FS_EXT4_DIR", 0xef53, true },
    { "xfs", "QTEST_FS_XFS_DIR", 0x58465342, true },
    { "btrfs", "QTEST_FS_BTRFS_DIR", 0x9123683e, true },
    /* The trace's backing for FUSE is "other" */
    { "fuse", "QTEST_FS_FUSE_DIR", 0x65735546, false },
};

typedef struct {
    const char *name;
    bool multifd;
    const char *compression;
    bool rewrite;       /* change pages while the migration runs */
    bool anon;          /* memory-backend-ram instead of a shared file */
    bool probe;         /* read the destination's RAM while it loads */
    bool prealloc;      /* the destination's RAM file is allocated */
    Switchover switchover;
    bool part_written;  /* the first quarter of that file is written */
    bool thp;           /* that file is on QTEST_THP_DIR, 2 MiB aligned */
    bool postcopy;      /* switch to postcopy early in the first pass */
    const TestFs *fs;   /* both RAM files on that filesystem */
    bool live;          /* the source runs the boot-sector guest */
} IntegrityCase;

static char *tmpdir;

/* xorshift64*: fast, deterministic, incompressible enough for zstd. */
static uint64_t prng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void fill_page(uint8_t *page, size_t index, uint64_t *seed)
{
    size_t i;

    switch (index % 8) {
    case 0:
    case 1:
        /* zero page: left as the backend gave it */
        break;
    case 2:
        page[0] = 0x5a;                 /* zero but for the first byte */
        break;
    case 3:
        page[PAGE_SIZE - 1] = 0xa5;     /* zero but for the last byte */
        break;
    case 4:
        memset(page, (int)(index & 0xff) | 1, PAGE_SIZE);
        break;
    default:
        for (i = 0; i < PAGE_SIZE; i += sizeof(uint64_t)) {
            uint64_t v = prng_next(seed);
            memcpy(page + i, &v, sizeof(v));
        }
        /* every random page names itself, to find a misplaced page */
        memcpy(page, &index, sizeof(index));
        break;
    }
}

/* Bytes of the file that are backed by memory, holes excluded. */
static uint64_t allocated(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return (uint64_t)st.st_blocks * 512;
}

static bool same_binaries(void)
{
    return !g_strcmp0(getenv("QTEST_QEMU_BINARY_SRC"),
                      getenv("QTEST_QEMU_BINARY_DST"));
}

static uint8_t *map_ram(const char *path, bool writable)
{
    int fd = open(path, writable ? O_RDWR : O_RDONLY);
    void *p;

    g_assert_cmpint(fd, >=, 0);
    p = mmap(NULL, RAM_SIZE, writable ? PROT_READ | PROT_WRITE : PROT_READ,
             MAP_SHARED, fd, 0);
    close(fd);
    g_assert(p != MAP_FAILED);
    return p;
}

/*
 * Create @path as a RAM file whose first @len bytes are written zeroes
 * and the rest a hole: neither all holes nor all data.
 */
static void write_zeroes(const char *path, size_t len)
{
    g_autofree uint8_t *zero = g_malloc0(len);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, RAM_SIZE), ==, 0);
    g_assert_cmpint(pwrite(fd, zero, len, 0), ==, len);
    close(fd);
}

/*
 * @options: more properties of the memory backend of @ram_path, each
 * after a comma.  @extra: more arguments.
 */
static QTestState *start_vm(const char *binary_var, const char *ram_path,
                            bool incoming, const char *options,
                            const char *extra)
{
    g_autofree char *backend = ram_path ?
        g_strdup_printf("memory-backend-file,id=ram0,size=%dM,mem-path=%s,"
                        "share=on%s", RAM_MIB, ram_path, options) :
        g_strdup_printf("memory-backend-ram,id=ram0,size=%dM", RAM_MIB);
    g_autofree char *args = g_strdup_printf(
        "-accel kvm -accel tcg -nodefaults -display none "
        "-machine pc,memory-backend=ram0 -m %dM -object %s -S %s %s",
        RAM_MIB, backend, incoming ? "-incoming defer" : "", extra);

    return qtest_init_ext(binary_var, args, NULL, true);
}

/*
 * The sum of the smaps @field (KiB for sizes) over the mappings of
 * @path in the process @pid.
 */
static uint64_t smaps_sum(pid_t pid, const char *path, const char *field)
{
    g_autofree char *smaps = g_strdup_printf("/proc/%d/smaps", (int)pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    bool inside = false;
    uint64_t kib = 0;
    size_t flen = strlen(field);

    g_assert(g_file_get_contents(smaps, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long start, end;

        if (sscanf(*l, "%lx-%lx ", &start, &end) == 2) {
            inside = g_str_has_suffix(*l, path);
        } else if (inside && !strncmp(*l, field, flen) &&
                   (*l)[flen] == ':') {
            kib += g_ascii_strtoull(*l + flen + 1, NULL, 10);
        }
    }
    return kib;
}

static const char *accel_name(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-kvm' }");
    bool kvm = qdict_get_bool(rsp, "enabled");

    qobject_unref(rsp);
    return kvm ? "kvm" : "tcg";
}

static void setup_channels(QTestState *qts, const IntegrityCase *c)
{
    if (!c->multifd) {
        return;
    }
    migrate_set_capability(qts, "multifd", true);
    migrate_set_parameter_int(qts, "multifd-channels", 2);
    migrate_set_parameter_str(qts, "multifd-compression", c->compression);
}

static bool migration_passes(QTestState *from, uint64_t passes)
{
    g_autofree char *status = migrate_query_status(from);

    return get_migration_pass(from) >= passes ||
           !strcmp(status, "pre-switchover");
}

/*
 * Read pages of the destination's RAM through QEMU while it loads: pages
 * not there yet, pages that are, and pages that will come again.  The
 * reads must not wait for the migration, and a page read before it
 * arrives must still arrive (see the fill in
 * docs/devel/migration/ram-engine.rst).  Only pages that hold data on
 * the source, so that the reads allocate nothing the source lacks.
 * Reads start once the destination loads: a read before would allocate
 * pages of a file that should still be all holes then.
 */
static void probe_destination(QTestState *to, uint64_t *seed)
{
    uint8_t buf[64];
    size_t i, page;

    for (i = 0; i < 64; i++) {
        page = prng_next(seed) % (RAM_SIZE / PAGE_SIZE);
        page = page - page % 8 + 2 + prng_next(seed) % 6;
        qtest_memread(to, page * PAGE_SIZE + i * 8, buf, sizeof(buf));
    }
}

/*
 * Let the migration run slowly through a few passes while pages change
 * kind: random pages are zeroed, zero pages (holes) get data.  The source
 * has pause-before-switchover, so that the last changes are made before
 * the final pass, never after the migration completed.  @to, if not
 * NULL, is read while this goes on.
 */
static void rewrite_during_migration(QTestState *from, QTestState *to)
{
    g_autofree uint8_t *data = g_malloc(PAGE_SIZE);
    uint64_t seed = 0x2545f4914f6cdd1dULL;
    uint64_t probe_seed = 0x853c49e6748fea9bULL;
    size_t wave, i, page;

    while (to && read_ram_property_int(from, "transferred") < (8 << 20)) {
        g_usleep(10 * 1000);
    }

    for (wave = 0; wave < 6; wave++) {
        if (to) {
            probe_destination(to, &probe_seed);
        }
        if (wave == 3) {
            /* Past the first pass, so that rewritten pages go again. */
            while (!migration_passes(from, 3)) {
                g_usleep(10 * 1000);
            }
        }
        for (i = 0; i < 64; i++) {
            page = prng_next(&seed) % (RAM_SIZE / PAGE_SIZE);
            page = page - page % 8 + 5 + wave % 3;       /* random kind */
            qtest_memset(from, page * PAGE_SIZE, 0, PAGE_SIZE);

            page = prng_next(&seed) % (RAM_SIZE / PAGE_SIZE);
            page = page - page % 8 + wave % 2;           /* a hole */
            memset(data, 0, PAGE_SIZE);
            data[wave * 8] = 0xc3;
            memcpy(data + PAGE_SIZE - sizeof(page), &page, sizeof(page));
            qtest_memwrite(from, page * PAGE_SIZE, data, PAGE_SIZE);
        }
        g_usleep(50 * 1000);
    }
    migrate_ensure_converge(from);
    while (!migration_passes(from, UINT64_MAX)) {
        g_usleep(10 * 1000);
    }
    migrate_continue(from, "pre-switchover");
}

#define QTEST_CHUNK     (1 << 20)

static bool has_capability(QTestState *qts, const char *name)
{
    QDict *rsp = qtest_qmp(qts,
                           "{ 'execute': 'query-migrate-capabilities' }");
    QList *caps = qdict_get_qlist(rsp, "return");
    QListEntry *e;
    bool found = false;

    g_assert(caps);
    QLIST_FOREACH_ENTRY(caps, e) {
        QDict *cap = qobject_to(QDict, qlist_entry_obj(e));

        found |= !strcmp(qdict_get_str(cap, "capability"), name);
    }
    qobject_unref(rsp);
    return found;
}

/*
 * With a downtime limit far above what the source holds, the estimate
 * allows the switchover about 100 ms into the first pass.  Upstream's
 * rule, the default, stops the source then, with most of RAM still to
 * send.  With x-switchover-after-first-pass the branch waits for the end
 * of the pass, as the source is paused and dirties nothing: nothing is
 * left for the downtime.  pause-before-switchover shows what is left
 * at that point.
 */
static void check_switchover(QTestState *from, const IntegrityCase *c)
{
    bool branch = has_capability(from, "x-switchover-after-first-pass");
    int64_t remaining;

    wait_for_migration_status(from, "pre-switchover", NULL);
    remaining = read_ram_property_int(from, "remaining");
    g_test_message("%s source: %" PRId64 " KiB left at the switchover",
                   branch ? "branch" : "upstream", remaining >> 10);
    if (branch && c->switchover == SWITCHOVER_FIRST_PASS) {
        g_assert_cmpint(remaining, ==, 0);
    } else {
        g_assert_cmpint(remaining, >, RAM_SIZE / 4);
    }
    migrate_continue(from, "pre-switchover");
}

/* Set @capability; false if @qts refuses it (postcopy needs userfaultfd) */
static bool try_capability(QTestState *qts, const char *capability)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'migrate-set-capabilities',"
                           "  'arguments': { 'capabilities': [ {"
                           "    'capability': %s, 'state': true } ] } }",
                           capability);
    bool ok = !qdict_haskey(rsp, "error");

    if (!ok) {
        g_test_message("%s: %s", capability,
                       qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"));
    }
    qobject_unref(rsp);
    return ok;
}

/*
 * Switch to postcopy once the first 16 MiB went, and read two pages
 * through the destination while postcopy runs.  Page 512 is a zero page
 * (kind 0) that went before the switch.  The page near the end of RAM
 * was still on the source: the destination asks for it.
 */
static void check_postcopy(QTestState *from, QTestState *to,
                           const uint8_t *src)
{
    const size_t zero = 512 * PAGE_SIZE;
    const size_t late = RAM_SIZE - 6 * PAGE_SIZE;
    uint8_t page[PAGE_SIZE];

    while (read_ram_property_int(from, "transferred") < 16 << 20) {
        g_usleep(10 * 1000);
    }
    qtest_qmp_assert_success(from, "{ 'execute': 'migrate-start-postcopy' }");
    wait_for_migration_status(to, "postcopy-active", NULL);

    qtest_bufread(to, zero, page, PAGE_SIZE);
    g_assert(!memcmp(page, src + zero, PAGE_SIZE));
    qtest_bufread(to, late, page, PAGE_SIZE);
    g_assert(!memcmp(page, src + late, PAGE_SIZE));
}

static void write_ram_qtest(QTestState *qts, const uint8_t *buf)
{
    size_t off;

    for (off = 0; off < RAM_SIZE; off += QTEST_CHUNK) {
        qtest_bufwrite(qts, off, buf + off, QTEST_CHUNK);
    }
}

static uint8_t *read_ram_qtest(QTestState *qts)
{
    uint8_t *buf = g_malloc(RAM_SIZE);
    size_t off;

    for (off = 0; off < RAM_SIZE; off += QTEST_CHUNK) {
        qtest_bufread(qts, off, buf + off, QTEST_CHUNK);
    }
    return buf;
}

/* Report the first differing page, if any; return the number of them. */
static size_t compare_ram(const uint8_t *src, const uint8_t *dst)
{
    size_t page, bad = 0;

    for (page = 0; page < RAM_SIZE / PAGE_SIZE; page++) {
        const uint8_t *s = src + page * PAGE_SIZE;
        const uint8_t *d = dst + page * PAGE_SIZE;

        if (memcmp(s, d, PAGE_SIZE)) {
            if (!bad) {
                g_test_message("first differing page: %zu (kind %zu)",
                               page, page % 8);
            }
            bad++;
        }
    }
    return bad;
}

/*
 * The directory on @fs that the environment names, or NULL when it names
 * none: the case is then skipped.  A directory on another filesystem is
 * a mistake of the set-up, and fails.
 */
static const char *fs_dir(const TestFs *fs)
{
    const char *dir = g_getenv(fs->env);
    struct statfs st;

    if (!dir || !*dir) {
        g_autofree char *why = g_strdup_printf(
            "%s names no %s directory (scripts/test-filesystems.sh up DIR "
            "mounts one, as root)", fs->env, fs->name);

        g_test_skip(why);
        return NULL;
    }
    g_assert_cmpint(statfs(dir, &st), ==, 0);
    if (st.f_type != fs->magic) {
        g_test_message("%s=%s is not on %s", fs->env, dir, fs->name);
    }
    g_assert_cmphex(st.f_type, ==, fs->magic);
    return dir;
}

#define KPF_DIRTY       4

/*
 * The pages of @p, a shared mapping of RAM_SIZE bytes, that are dirty:
 * written and not yet written back (/proc/kpageflags of the pages that
 * /proc/self/pagemap names).  -1 if those cannot be read: they take
 * CAP_SYS_ADMIN.
 */
static long dirty_pages(const uint8_t *p)
{
    const size_t batch = 4096;
    g_autofree uint64_t *pm = g_new(uint64_t, batch);
    int pagemap = open("/proc/self/pagemap", O_RDONLY);
    int kflags = open("/proc/kpageflags", O_RDONLY);
    long dirty = -1;
    size_t page, i;

    if (pagemap < 0 || kflags < 0) {
        goto out;
    }
    dirty = 0;
    for (page = 0; page < RAM_SIZE / PAGE_SIZE; page += batch) {
        off_t at = ((uintptr_t)p / PAGE_SIZE + page) * sizeof(uint64_t);

        g_assert_cmpint(pread(pagemap, pm, batch * sizeof(uint64_t), at), ==,
                        batch * sizeof(uint64_t));
        for (i = 0; i < batch; i++) {
            uint64_t pfn = pm[i] & ((1ULL << 55) - 1);
            uint64_t flags;

            if (!(pm[i] >> 63) || !pfn) {
                continue;       /* not present, or no PFN for us */
            }
            if (pread(kflags, &flags, sizeof(flags), pfn * sizeof(flags)) !=
                sizeof(flags)) {
                dirty = -1;
                goto out;
            }
            dirty += (flags >> KPF_DIRTY) & 1;
        }
    }
out:
    if (pagemap >= 0) {
        close(pagemap);
    }
    if (kflags >= 0) {
        close(kflags);
    }
    return dirty;
}

/*
 * The pages of the file @fd that are not all zero in @src, its contents,
 * but that SEEK_DATA/SEEK_HOLE report as holes.
 */
static size_t written_holes(int fd, const uint8_t *src)
{
    off_t data, hole = 0;
    size_t page, bad = 0;

    for (;;) {
        data = lseek(fd, hole, SEEK_DATA);
        if (data < 0) {
            g_assert_cmpint(errno, ==, ENXIO);
            data = RAM_SIZE;
        }
        for (page = hole / PAGE_SIZE; page < data / PAGE_SIZE; page++) {
            bad += !buffer_is_zero(src + page * PAGE_SIZE, PAGE_SIZE);
        }
        if (data >= RAM_SIZE) {
            break;
        }
        hole = lseek(fd, data, SEEK_HOLE);
        g_assert_cmpint(hole, >, data);
    }
    return bad;
}

/*
 * The text after @prefix on its first line in the file @log, or NULL.
 * Lines of the log trace backend may start with "pid@time:".
 */
static char *trace_line(const char *log, const char *prefix)
{
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(log, &text, NULL, NULL)) {
        return NULL;
    }
    p = strstr(text, prefix);
    if (!p) {
        return NULL;
    }
    p += strlen(prefix);
    return g_strndup(p, strcspn(p, "\n"));
}

/*
 * Whether @qts runs this branch: its version names it, as the README
 * says ("migration-branch 10.2.2+mb..." against "vanilla 10.2.2, twin
 * of the migration branch"; upstream's own builds have no package or
 * another one).  Asked of the running QEMU, so that neither the path of
 * its binary nor the names of branch-only capabilities matter.
 */
static bool runs_branch(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-version' }");
    const char *package = qdict_get_try_str(rsp, "package");
    bool branch = package && strstr(package, "migration-branch ");

    g_test_message("%s: %s", branch ? "branch" : "not the branch",
                   package ? package : "(no package)");
    qobject_unref(rsp);
    return branch;
}

/*
 * The placement the branch's destination must choose for case @c's RAM
 * (see "One decision per block" in docs/devel/migration/ram-engine.rst).
 */
static const char *expected_place(const IntegrityCase *c)
{
    g_autofree char *thp = NULL;

    if (c->fs && !c->fs->trusted) {
        return "mapping (untrusted filesystem)";
    }
    if (c->anon && c->postcopy) {
        return "mapping (not a file)";
    }
    if (c->anon) {
        /* Filled unless the host backs it with THP (QEMU advises it) */
        g_file_get_contents("/sys/kernel/mm/transparent_hugepage/enabled",
                            &thp, NULL, NULL);
        return thp && !strstr(thp, "[never]") ?
               "mapping (transparent huge pages)" : "fill";
    }
    if (c->prealloc) {
        return "mapping (preallocated)";
    }
    if (c->thp) {
        return "mapping (transparent huge pages)";
    }
    /* Not a file that had data already; not with postcopy */
    if (c->multifd && !c->part_written && !c->postcopy && !c->fs) {
        return "fill";
    }
    return "pwritev";
}

/*
 * What the trace @log of the branch's @side ("save" or "load") says it
 * did with the RAM block of case @c: the decision, and that the path it
 * names ran.
 */
static void check_trace(const char *log, const char *side,
                        const IntegrityCase *c)
{
    bool load = !strcmp(side, "load");
    g_autofree char *prefix = g_strdup_printf("ram_block_policy %s ram0: ",
                                              side);
    g_autofree char *policy = trace_line(log, prefix);
    g_autofree char *stats = trace_line(log, load ?
                                        "ram_load_block_stats ram0: " :
                                        "ram_save_block_stats ram0: ");
    const char *backing = c->anon ? "anonymous" :
                          !c->fs ? "tmpfs" :
                          c->fs->trusted ? c->fs->name : "other";
    const char *holes = c->anon ? "pagemap" :
                        c->fs && !c->fs->trusted ? "none" : "seek";
    g_autofree char *expect = g_strdup_printf(
        "backing %s, holes %s, placement %s", backing, holes,
        load ? expected_place(c) : "-");
    uint64_t pwritev, fill, copy_file, kept, unread;

    g_test_message("%s: %s", side, policy ? policy : "(no ram_block_policy)");
    g_test_message("%s: %s", side, stats ? stats : "(no block stats)");
    g_assert(policy);
    g_assert(stats);
    if (c->fs && c->fs->trusted && load) {
        /* ext4, xfs, btrfs: pwritev, or the mapping if preallocated */
        g_autofree char *head = g_strdup_printf(
            "backing %s, holes %s, placement ", backing, holes);

        g_assert(g_str_has_prefix(policy, head));
        g_assert(!g_str_has_prefix(policy + strlen(head),
                                   "mapping (untrusted"));
    } else {
        g_assert_cmpstr(policy, ==, expect);
    }

    if (!load) {
        g_assert_cmpint(sscanf(stats, "holes-unread %" SCNu64, &unread),
                        ==, 1);
        if (!strcmp(holes, "none")) {
            /* upstream's path: every page read */
            g_assert_cmpuint(unread, ==, 0);
        } else if (!c->anon && !c->live) {
            /* a quarter of the pattern never written: holes */
            g_assert_cmpuint(unread, >, 0);
        }
        return;
    }
    g_assert_cmpint(sscanf(stats, "pwritev %" SCNu64 " fill %" SCNu64
                           " copy-file %" SCNu64 " holes-kept %" SCNu64,
                           &pwritev, &fill, &copy_file, &kept), ==, 4);
    if (!strcmp(holes, "none")) {
        g_assert_cmpuint(kept, ==, 0);
    }
    if (g_str_has_prefix(expected_place(c), "mapping")) {
        g_assert_cmpuint(pwritev, ==, 0);
        g_assert_cmpuint(fill, ==, 0);
    } else if (!strcmp(expected_place(c), "fill")) {
        g_assert_cmpuint(fill, >, 0);
        g_assert_cmpuint(pwritev, ==, 0);
    } else if (!c->fs) {
        g_assert_cmpuint(pwritev, >, 0);
        g_assert_cmpuint(fill, ==, 0);
    }
}

/*
 * check_trace() for each side that runs the branch, whose trace is not
 * NULL: only the branch has these events; upstream warns and goes on.
 */
static void check_traces(const IntegrityCase *c, const char *src_trace,
                         const char *dst_trace)
{
    if (src_trace) {
        check_trace(src_trace, "save", c);
    }
    if (dst_trace) {
        check_trace(dst_trace, "load", c);
    }
}

/*
 * Run the source's guest, the boot-sector guest: it increments the first
 * byte of every page of 1-100 MiB, round after round.  Its migration
 * will not converge until live_converge().
 */
static void live_start(QTestState *from)
{
    uint8_t first = qtest_readb(from, X86_TEST_MEM_START);
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    qtest_qmp_assert_success(from, "{ 'execute': 'cont' }");
    while (qtest_readb(from, X86_TEST_MEM_START) == first) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    migrate_set_parameter_int(from, "max-bandwidth", 256 << 20);
    migrate_set_parameter_int(from, "downtime-limit", 1);
}

/*
 * After three passes, each resending what the guest dirtied during the
 * one before, let the migration converge: the source stops its guest
 * for the last pass.
 */
static void live_converge(QTestState *from)
{
    while (get_migration_pass(from) < 3) {
        g_autofree char *status = migrate_query_status(from);

        g_assert_cmpstr(status, !=, "failed");
        g_usleep(10 * 1000);
    }
    g_test_message("live: %" PRIu64 " passes while the guest ran",
                   get_migration_pass(from));
    migrate_ensure_converge(from);
}

static void test_ram_integrity(const void *opaque)
{
    const IntegrityCase *c = opaque;
    const char *fs_path = c->fs ? fs_dir(c->fs) : NULL;
    g_autofree char *src_path = fs_path ?
        g_strdup_printf("%s/src-ram-%d", fs_path, (int)getpid()) :
        g_strdup_printf("%s/src-ram", tmpdir);
    const char *thp_dir = g_getenv("QTEST_THP_DIR");
    g_autofree char *dst_path = c->thp && thp_dir ?
        g_strdup_printf("%s/dst-ram-%d", thp_dir, (int)getpid()) :
        fs_path ? g_strdup_printf("%s/dst-ram-%d", fs_path, (int)getpid()) :
        g_strdup_printf("%s/dst-ram", tmpdir);
    g_autofree char *uri = g_strdup_printf("unix:%s/migsocket", tmpdir);
    g_autofree char *src_trace = g_strdup_printf("%s/src-trace", tmpdir);
    g_autofree char *dst_trace = g_strdup_printf("%s/dst-trace", tmpdir);
    g_autofree char *src_extra = NULL;
    g_autofree char *dst_extra = NULL;
    QTestState *from, *to;
    uint8_t *src, *dst = NULL;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    uint64_t src_alloc = 0;
    bool src_branch = false, dst_branch = false;
    int src_fd = -1;
    size_t page;

    if (c->thp && !thp_dir) {
        g_test_skip("QTEST_THP_DIR names no tmpfs with huge pages");
        return;
    }
    if (c->fs && !fs_path) {
        return;
    }
    {
        /* kvmclock off: see CPU_FOR_RAM_COMPARE in scripts/miglib.py */
        const char *guest = c->live ? "-cpu qemu64,kvmclock=off "
            "-drive if=none,id=d0,format=raw,file=" : "";
        const char *boot = c->live ? bootfile_get() : "";
        const char *disk = c->live ?
            " -device ide-hd,drive=d0,secs=1,cyls=1,heads=1" : "";
        /* Which path ran: check_trace() */
        const char *trace = "-trace ram_block_policy "
            "-trace ram_load_block_stats -trace ram_save_block_stats";

        src_extra = g_strdup_printf("%s%s%s %s -D %s", guest, boot, disk,
                                    trace, src_trace);
        dst_extra = g_strdup_printf("%s%s%s %s -D %s", guest, boot, disk,
                                    trace, dst_trace);
        unlink(src_trace);
        unlink(dst_trace);
    }
    if (c->part_written) {
        write_zeroes(dst_path, RAM_SIZE / 4);
    }
    from = start_vm("QTEST_QEMU_BINARY_SRC", c->anon ? NULL : src_path,
                    false, "", src_extra ? src_extra : "");
    to = start_vm("QTEST_QEMU_BINARY_DST", c->anon ? NULL : dst_path, true,
                  c->prealloc ? ",prealloc=on" : c->thp ? ",align=2M" : "",
                  dst_extra ? dst_extra : "");
    g_test_message("%s: accelerator %s", c->name, accel_name(from));
    src_branch = runs_branch(from);
    dst_branch = runs_branch(to);
    if (c->thp && !smaps_sum(qtest_pid(to), dst_path, "THPeligible")) {
        qtest_quit(from);
        qtest_quit(to);
        unlink(src_path);
        unlink(dst_path);
        g_test_skip("QTEST_THP_DIR gives the RAM no transparent huge pages");
        return;
    }

    src = c->anon ? g_malloc0(RAM_SIZE) : map_ram(src_path, true);
    if (c->fs) {
        /*
         * Nothing left on the filesystem if the case fails: QEMU and
         * this test keep the files open.
         */
        src_fd = open(src_path, O_RDONLY);
        g_assert_cmpint(src_fd, >=, 0);
        dst = map_ram(dst_path, false);
        unlink(src_path);
        unlink(dst_path);
    }
    if (c->live) {
        /* Before the pattern, so that it is as fresh as in paused cases */
        live_start(from);
    }
    /*
     * Not over the running guest's code, stack and BIOS data in the
     * first MiB: under KVM it would run the pattern (TCG goes on with
     * the code it translated before).
     */
    for (page = c->live ? LIVE_KEEP / PAGE_SIZE : 0;
         page < RAM_SIZE / PAGE_SIZE; page++) {
        fill_page(src + page * PAGE_SIZE, page, &seed);
    }
    if (c->anon) {
        write_ram_qtest(from, src);
    } else if (!c->fs) {
        src_alloc = allocated(src_path);
        g_assert_cmpuint(src_alloc, <=, RAM_SIZE / 8 * 6);
    } else if (c->fs->trusted) {
        /*
         * What the branch trusts: the pages just written are data for
         * SEEK_DATA although not written back.  (ext4 and xfs put
         * pages in large folios: a page written makes its whole folio
         * data, the pattern's holes included.)
         */
        g_assert_cmpuint(written_holes(src_fd, src), ==, 0);
    }

    setup_channels(from, c);
    setup_channels(to, c);
    if (c->postcopy) {
        if (!try_capability(from, "postcopy-ram") ||
            !try_capability(to, "postcopy-ram")) {
            qtest_quit(from);
            qtest_quit(to);
            unlink(src_path);
            unlink(dst_path);
            if (c->anon) {
                g_free(src);
            } else {
                munmap(src, RAM_SIZE);
            }
            g_test_skip("postcopy is not available here");
            return;
        }
        migrate_set_parameter_int(from, "max-bandwidth", 32 << 20);
        migrate_set_parameter_int(from, "max-postcopy-bandwidth", 64 << 20);
    }
    if (c->rewrite) {
        migrate_set_parameter_int(from, "max-bandwidth", 64 << 20);
        migrate_set_parameter_int(from, "downtime-limit", 1);
        migrate_set_capability(from, "pause-before-switchover", true);
    }
    if (c->switchover != SWITCHOVER_ANY) {
        migrate_set_parameter_int(from, "max-bandwidth", 64 << 20);
        migrate_set_parameter_int(from, "downtime-limit", 60 * 1000);
        migrate_set_capability(from, "pause-before-switchover", true);
        if (c->switchover == SWITCHOVER_FIRST_PASS &&
            has_capability(from, "x-switchover-after-first-pass")) {
            migrate_set_capability(from, "x-switchover-after-first-pass",
                                   true);
        }
    }
    if (c->fs) {
        /*
         * That the pages are still dirty: not written back, so that
         * SEEK_DATA answers from the page cache, not from the disk.
         */
        long dirty = dirty_pages(src);

        g_test_message("%s: %ld of %zu pages dirty as the migration "
                       "starts%s", c->fs->name, dirty, RAM_SIZE / PAGE_SIZE,
                       dirty < 0 ? " (no /proc/kpageflags)" : "");
        g_assert_cmpint(dirty, !=, 0);
    }
    migrate_incoming_qmp(to, uri, NULL, "{}");
    migrate_qmp(from, to, uri, NULL, "{}");
    if (c->live) {
        live_converge(from);
    }
    if (c->rewrite) {
        rewrite_during_migration(from, c->probe ? to : NULL);
    }
    if (c->switchover != SWITCHOVER_ANY) {
        check_switchover(from, c);
    }
    if (c->postcopy) {
        check_postcopy(from, to, src);
    }
    wait_for_migration_complete(from);
    wait_for_migration_complete(to);

    if (c->anon) {
        /* The source's RAM as it ended, rewrites included */
        g_free(src);
        src = read_ram_qtest(from);
        dst = read_ram_qtest(to);
        g_assert_cmpuint(compare_ram(src, dst), ==, 0);
        qtest_qmp_assert_success(to, "{ 'execute': 'cont' }");
        g_free(src);
        g_free(dst);
        qtest_quit(from);
        qtest_quit(to);
        check_traces(c, src_branch ? src_trace : NULL,
                     dst_branch ? dst_trace : NULL);
        unlink(src_trace);
        unlink(dst_trace);
        return;
    }

    /* Before compare_ram(), whose reads fill the holes. */
    if (!c->fs) {
        g_test_message("allocated: source %" PRIu64 " -> %" PRIu64 " KiB, "
                       "destination %" PRIu64 " KiB, of %zu KiB",
                       src_alloc >> 10, allocated(src_path) >> 10,
                       allocated(dst_path) >> 10, RAM_SIZE >> 10);
    }
    if (c->thp) {
        /*
         * Every 2 MiB of the pattern holds data.  Half of the RAM leaves
         * room for huge pages the kernel could not allocate.
         */
        uint64_t pmd_kib = smaps_sum(qtest_pid(to), dst_path,
                                     "ShmemPmdMapped") +
                           smaps_sum(qtest_pid(to), dst_path,
                                     "FilePmdMapped");

        g_test_message("huge pages mapped: %" PRIu64 " KiB", pmd_kib);
        g_assert_cmpuint(pmd_kib, >=, RAM_SIZE / 2 / 1024);
    } else if (same_binaries() && !c->prealloc && !c->part_written &&
               !c->postcopy && !c->fs) {
        /* Rewritten holes are data now, on both sides. */
        if (!c->rewrite) {
            g_assert_cmpuint(allocated(src_path), ==, src_alloc);
        }
        g_assert_cmpuint(allocated(dst_path), <=, allocated(src_path));
    }

    if (!c->fs) {
        dst = map_ram(dst_path, false);
    }
    g_assert_cmpuint(compare_ram(src, dst), ==, 0);

    /* The destination must be able to run what it received. */
    qtest_qmp_assert_success(to, "{ 'execute': 'cont' }");

    munmap(src, RAM_SIZE);
    munmap(dst, RAM_SIZE);
    qtest_quit(from);
    qtest_quit(to);
    unlink(src_path);
    unlink(dst_path);

    if (src_fd >= 0) {
        close(src_fd);
    }

    check_traces(c, src_branch ? src_trace : NULL,
                 dst_branch ? dst_trace : NULL);
    unlink(src_trace);
    unlink(dst_trace);
}

static const IntegrityCase cases[] = {
    { "precopy", false, NULL },
    { "multifd/none", true, "none" },
    { "multifd/zstd", true, "zstd" },
    { "multifd/zlib", true, "zlib" },
    { "multifd/zstd/part-written", true, "zstd", true,
      .part_written = true },
    { "precopy/rewrite", false, NULL, true },
    { "multifd/none/rewrite", true, "none", true },
    { "multifd/none/probe", true, "none", true, false, true },
    { "multifd/none/prealloc", true, "none", true, false, false, true },
    { "precopy/prealloc", false, NULL, true, false, false, true },
    { "multifd/none/part-written", true, "none", true,
      .part_written = true },
    { "precopy/thp", false, NULL, .thp = true },
    { "postcopy", false, NULL, .postcopy = true },
    { "postcopy/anon", false, NULL, .anon = true, .postcopy = true },
    { "multifd/none/thp", true, "none", .thp = true },
    { "precopy/anon", false, NULL, false, true },
    { "precopy/anon/rewrite", false, NULL, true, true },
    { "multifd/none/anon", true, "none", false, true },
    { "precopy/switchover/first-pass", false, NULL,
      .switchover = SWITCHOVER_FIRST_PASS },
    { "precopy/switchover/mid-pass", false, NULL,
      .switchover = SWITCHOVER_MID_PASS },
    { "multifd/none/switchover/first-pass", true, "none",
      .switchover = SWITCHOVER_FIRST_PASS },
    { "fs/ext4/precopy-paused", false, NULL, .fs = &test_fs[0] },
    { "fs/ext4/multifd-paused", true, "none", .fs = &test_fs[0] },
    { "fs/ext4/multifd-zstd-paused", true, "zstd", .fs = &test_fs[0] },
    { "fs/ext4/precopy-live", false, NULL, .fs = &test_fs[0], .live = true },
    { "fs/ext4/multifd-live", true, "none", .fs = &test_fs[0], .live = true },
    { "fs/xfs/precopy-paused", false, NULL, .fs = &test_fs[1] },
    { "fs/xfs/multifd-paused", true, "none", .fs = &test_fs[1] },
    { "fs/xfs/precopy-live", false, NULL, .fs = &test_fs[1], .live = true },
    { "fs/xfs/multifd-live", true, "none", .fs = &test_fs[1], .live = true },
    { "fs/btrfs/precopy-paused", false, NULL, .fs = &test_fs[2] },
    { "fs/btrfs/multifd-paused", true, "none", .fs = &test_fs[2] },
    { "fs/btrfs/precopy-live", false, NULL, .fs = &test_fs[2], .live = true },
    { "fs/btrfs/multifd-live", true, "none", .fs = &test_fs[2], .live = true },
    { "fs/fuse/precopy-paused", false, NULL, .fs = &test_fs[3] },
    { "fs/fuse/multifd-paused", true, "none", .fs = &test_fs[3] },
    { "fs/fuse/precopy-live", false, NULL, .fs = &test_fs[3], .live = true },
    { "fs/fuse/multifd-live", true, "none", .fs = &test_fs[3], .live = true },
};

int main(int argc, char **argv)
{
    const char *arch = qtest_get_arch();
    g_autofree char *sock = NULL;
    size_t i;
    int ret;

    g_test_init(&argc, &argv, NULL);

    if (strcmp(arch, "x86_64") && strcmp(arch, "i386")) {
        g_test_skip("x86 only");
        return g_test_run();
    }

    /* tmpfs, so that the two RAM files never touch a disk */
    tmpdir = g_strdup("/dev/shm/ram-integrity-XXXXXX");
    if (!g_mkdtemp(tmpdir)) {
        g_free(tmpdir);
        tmpdir = g_dir_make_tmp("ram-integrity-XXXXXX", NULL);
    }
    g_assert(tmpdir);
    bootfile_create(arch, tmpdir, false);

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/migration/ram-integrity/%s",
                                                cases[i].name);
        qtest_add_data_func(path, &cases[i], test_ram_integrity);
    }

    ret = g_test_run();

    bootfile_delete();

    sock = g_strdup_printf("%s/migsocket", tmpdir);
    unlink(sock);
    rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
