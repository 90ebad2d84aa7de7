/*
 * Byte-exact guest RAM through mapped-ram, XBZRLE and postcopy
 *
 * The branch rewrote the RAM paths of mapped-ram (save to a file and
 * restore from it, with and without multifd and direct-io), XBZRLE and
 * postcopy (with the preempt channel, and recovery after the connection
 * broke).  This test proves that each of those paths delivers guest RAM
 * byte for byte, and that the path it names really ran.
 *
 * Both QEMUs are started with -S and never run their guest.  Their RAM
 * is a shared file on tmpfs.  The test fills the source's file through
 * its own mapping with zero pages (holes of the file), pages with one
 * byte set, repeated-byte pages and pseudo-random pages that hold their
 * own index, and while the migration runs it changes pages again through
 * qtest writes, which the source's dirty log sees: one qword of a page
 * changes, pages become zero and zero pages get data.  The source's RAM
 * then no longer changes, and once both sides completed, the
 * destination's RAM file must equal the source's byte for byte; the
 * first bad pages are reported.
 *
 * What each case also checks, so that it cannot pass without its path:
 * - mapped-ram/: the capability is on on both sides, and the file has
 *   the mapped-ram layout: the header of RAMBlock "ram0", and every page
 *   its bitmap marks holds the source's page at its own offset, every
 *   page it leaves out is zero on the source.  multifd-dio puts the file
 *   on a filesystem with O_DIRECT (tmpfs may lack it; the root here is
 *   ext4), as upstream's migration-test probes for its dio case, and
 *   writes zero pages as data (zero-page-detection none).
 * - mapped-ram/lazy*: the restore is lazy (postcopy-ram on the incoming
 *   side, or x-lazy-restore, which reports completed once the device
 *   state is loaded): the test reads pages through the destination
 *   before the restore is resident, query-migrate shows the progress
 *   (at least every page of the source that is not zero in 'total'),
 *   X_RAM_RESIDENT comes, and then the file is truncated to 0 before the
 *   comparison, which proves the file is not needed any more.  The
 *   source refuses postcopy-ram with mapped-ram.  fd: the file is handed
 *   over in an fd set (add-fd), as libvirt does.  Faults, with a shim
 *   preloaded into the destination (preload/pread-eio.c): eio, one read
 *   fails: the restore pauses with the error in error-desc, and
 *   migrate-recover with the same file finishes it byte for byte;
 *   touched, truncated: reads are slowed down, the image is touched or
 *   truncated while it loads, the restore pauses ("the file changed"),
 *   savevm is refused before residency (a migration blocker), and
 *   migrate-recover with the changed file is refused, leaving it
 *   paused; cut: a file truncated before the restore fails it before
 *   the guest runs ("the file is truncated").  cmdline: the restore
 *   runs in a destination started with -incoming file: and the
 *   capabilities as -global (no QMP before it).  working-set: with
 *   x-working-set, a sidecar that is not a working set is ignored; the
 *   first restore records the pages the test read (slow reads keep
 *   them faulting) in <image>.wss, a second restore of the same image
 *   into a new destination loads them first (X_RAM_RESIDENT's
 *   prefetched), and the same reads fault less.  A destination that is
 *   upstream must refuse the capabilities, and restores the file
 *   eagerly (the fault cases stop there).
 * - xbzrle/: the source's xbzrle-cache statistics count encoded pages:
 *   the same pages are changed in several passes after the first, so
 *   that they are sent again when the cache holds them.
 * - postcopy/: the status of both sides went through postcopy-active,
 *   the switch came with more than half of RAM unsent, pages read
 *   through the destination during postcopy hold the source's data,
 *   and the source served page requests.  preempt: postcopy-preempt is
 *   on on both sides.  recovery: the connection is broken during
 *   postcopy (migrate-pause on the source, or on the destination with
 *   preempt), both sides reach postcopy-paused, and migrate-recover and
 *   a migrate with resume=true finish the migration.
 *
 * - postcopy/multifd*: postcopy with 2 multifd channels and, where both
 *   sides know it, x-postcopy-multifd: the source's multifd-bytes grow
 *   by 4 MiB after the switchover (across versions: upstream's
 *   multifd+postcopy).  multifd-one-side: the capability on one side
 *   only fails both, with the reason, and neither hangs.
 * - postcopy/vhost-user-blk: each QEMU has a vhost-user-blk device whose
 *   backend (contrib/vhost-user-blk) shares guest RAM; the destination's
 *   backend must hold a userfaultfd during postcopy (it got
 *   POSTCOPY_ADVISE, and the page server polls it).  The test drives the
 *   device as a guest would (libqos): on the source it sets it up and
 *   writes a block through it; during postcopy it lets the destination
 *   run and writes a block whose data is a page of guest RAM that has
 *   not arrived (mincore() on the destination's RAM file says so).  The
 *   backend faults on it, the destination must ask the source for it
 *   (postcopy-requests grows), and the block in the image must equal the
 *   source's page.  Its queue and requests sit in 1-2 MiB of guest RAM,
 *   which both sides then write, so those pages are not compared.
 *   These QEMUs use the qtest accelerator: no guest code runs.  Upstream
 *   10.2.2 as the destination cannot serve such a fault: its postcopy
 *   notes the backend's request by the backend's address, and never
 *   finishes waiting for it (the branch's patch "track a vhost-user
 *   backend's page request by QEMU's address"), so across versions the
 *   destination is not driven, and the test says so.  The backend is
 *   always the branch's build: libvhost-user's postcopy with
 *   VHOST_USER_ADD_MEM_REG needs two fixes of the series.
 * - precopy/, multifd/: plain precopy, and multifd with 2 channels, with
 *   rewrites in every pass (pause-before-switchover holds the source so
 *   that the last wave goes in the final pass).  Where the destination is
 *   the branch, the placement path is checked too, by whether the
 *   destination's guest RAM is registered with a userfaultfd while it
 *   loads (fill.c registers the RAM it places with UFFDIO_COPY; "um" in
 *   the VmFlags of its smaps): multifd into shmem and anonymous RAM
 *   without transparent huge pages are, and hugetlbfs (the loader or the
 *   multifd channels assemble and place whole huge pages), the others
 *   not.  On hugetlbfs a quarter of the huge pages are all zero, and
 *   must stay holes of the destination's file when the branch assembles
 *   them: a huge page that came only as zero pages is not placed.
 *   Anonymous RAM with THP (QEMU's advice, unless the host's THP is
 *   "never") must also be backed by huge pages after the load: the
 *   branch leaves it to the mapping, so as not to cost the guest its
 *   huge pages.  anon-nothp starts the destination with THP disabled
 *   for it (PR_SET_THP_DISABLE), as a host without THP would.
 *
 * Kinds of destination RAM: a shared file on tmpfs unless the case says
 * otherwise; anon: private anonymous memory (memory-backend-ram, as
 * libvirt gives by default), read back through qtest once the migration
 * completed, but for the 96 pages at 640 KiB-1 MiB that the PC machine
 * maps over RAM (they are counted as not compared); hugetlbfs: a shared
 * file on the hugetlbfs of QTEST_HUGETLB_DIR (2 MiB pages; the source's
 * RAM is on it too, since postcopy wants the same page size on both
 * sides), read back from the file.  Without QTEST_HUGETLB_DIR the
 * hugetlbfs cases are skipped, saying so; make check sets it up.
 *
 * QTEST_QEMU_BINARY_SRC and QTEST_QEMU_BINARY_DST select different
 * binaries for cross-version runs: the comparison holds for any pair.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "libqtest.h"
#include "libqos/libqos-malloc.h"
#include "libqos/pci-pc.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"

#define RAM_MIB     128
#define RAM_SIZE    ((size_t)RAM_MIB << 20)
#define PAGE_SIZE   4096
#define NPAGES      (RAM_SIZE / PAGE_SIZE)

/* The pages qtest changes: RUNS runs of RUN_PAGES, spread over RAM */
#define RUNS        32
#define RUN_PAGES   16

typedef enum {
    PATH_MAPPED_RAM,
    PATH_XBZRLE,
    PATH_POSTCOPY,
    PATH_PRECOPY,
    PATH_POSTCOPY_MISMATCH,
} MigPath;

/* The destination's RAM */
typedef enum {
    DST_SHMEM,          /* shared file on tmpfs */
    DST_ANON,           /* private anonymous memory */
    DST_HUGETLB,        /* shared file on hugetlbfs, and the source's too */
} DstKind;

/* Guest-physical addresses the PC machine maps over RAM */
#define PC_HOLE_START   0xa0000
#define PC_HOLE_END     0x100000

/*
 * postcopy/vhost-user-blk: the device's PCI slot; the guest RAM its
 * driver takes for its queue and requests; the page of random data the
 * destination's backend faults on (in RAM that precopy has not reached
 * at the switch, and that no rewrite touches), and the sector of the
 * image it goes to
 */
#define VUB_SLOT        4
#define VUB_RAM_START   0x100000
#define VUB_RAM_END     0x200000
#define VUB_FAULT_PAGE  (NPAGES / 2 + 1004)
#define VUB_SECTOR      64

/*
 * What goes wrong with the file of a lazy restore: its reads fail (EIO),
 * it is touched (its modification time) or truncated while it loads, or
 * it was cut short before
 */
typedef enum {
    LAZY_OK,
    LAZY_EIO,
    LAZY_TOUCHED,
    LAZY_TRUNCATED,
    LAZY_CUT,
} LazyFault;

typedef struct {
    const char *name;
    MigPath path;
    bool multifd;       /* 2 channels */
    bool dio;           /* mapped-ram: direct-io */
    bool preempt;       /* postcopy: postcopy-preempt */
    bool recover;       /* postcopy: break and recover the connection */
    DstKind dst;
    bool no_thp;        /* anon: the destination without THP */
    bool vhost_user;    /* a vhost-user-blk backend on each side */
    bool lazy;          /* mapped-ram: postcopy-ram on the restore side */
    bool lazy_x;        /* lazy: x-lazy-restore, not postcopy-ram */
    bool lazy_fd;       /* lazy: the file in an fd set, as libvirt does */
    bool lazy_cmdline;  /* lazy: -incoming file: and -global, no QMP */
    bool lazy_wss;      /* lazy: twice, the second with the working set */
    LazyFault lazy_fault;
} ExactCase;

static char *shm_dir;   /* RAM files and sockets */
static char *test_dir;  /* where this test and its shims are */
static GPid vhost_dst_pid;  /* the destination's vhost-user-blk, or 0 */
static char *hugetlb_dir;   /* a directory of our own on QTEST_HUGETLB_DIR */

/* splitmix64: the content of a random page is a function of its index */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static const char *page_kind(size_t page)
{
    static const char *const kinds[] = {
        "zero", "one-byte", "repeated", "random", "zero"
    };

    return kinds[page % 5];
}

static void fill_pattern(uint8_t *ram)
{
    for (size_t page = 0; page < NPAGES; page++) {
        uint8_t *p = ram + page * PAGE_SIZE;
        uint64_t v;

        switch (page % 5) {
        case 1:
            p[page * 61 % PAGE_SIZE] = 0x80 | (page & 0x7f);
            break;
        case 2:
            memset(p, 1 + page % 251, PAGE_SIZE);
            break;
        case 3:
            for (size_t i = 0; i < PAGE_SIZE; i += 8) {
                v = mix64(page * (PAGE_SIZE / 8) + i / 8);
                memcpy(p + i, &v, 8);
            }
            v = page;
            memcpy(p, &v, 8);
            memcpy(p + PAGE_SIZE - 8, &v, 8);
            break;
        default:
            break;      /* zero: left a hole of the file */
        }
    }
}

#define HUGE_SIZE   (2 << 20)

/*
 * Zero every fourth huge page of @src (rewrite_wave() writes into the
 * even ones only)
 */
static void zero_some_huge_pages(uint8_t *src)
{
    for (size_t off = 3 * HUGE_SIZE; off < RAM_SIZE; off += 4 * HUGE_SIZE) {
        memset(src + off, 0, HUGE_SIZE);
    }
}

/*
 * Where the branch assembled the huge pages of the destination (@fill
 * 1), those that came only as zero pages must not have been placed: the
 * destination's file @fd holds no more huge pages than the source has
 * huge pages that are not all zero.
 */
static void check_zero_huge_pages(const uint8_t *src, int fd, int fill)
{
    size_t nonzero = 0;
    struct stat st;

    for (size_t off = 0; off < RAM_SIZE; off += HUGE_SIZE) {
        nonzero += !buffer_is_zero(src + off, HUGE_SIZE);
    }
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_test_message("the destination's file holds %" PRIu64 " huge pages; "
                   "%zu of %zu huge pages of the source are not all zero",
                   (uint64_t)st.st_blocks * 512 / HUGE_SIZE, nonzero,
                   RAM_SIZE / HUGE_SIZE);
    g_assert_cmpuint(nonzero, <, RAM_SIZE / HUGE_SIZE);
    if (fill > 0) {
        g_assert_cmpuint((uint64_t)st.st_blocks * 512, <=,
                         nonzero * HUGE_SIZE);
    }
}

static uint8_t *map_file(const char *path, size_t len, bool writable)
{
    int fd = open(path, writable ? O_RDWR : O_RDONLY);
    void *p;

    g_assert_cmpint(fd, >=, 0);
    p = mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
             fd, 0);
    close(fd);
    g_assert(p != MAP_FAILED);
    return p;
}

/*
 * The destination's binary: for a lazy restore whose file fails, run
 * with the shim preload/pread-eio.c (built next to this test) in
 * LD_PRELOAD: libqtest runs "exec BINARY ARGS" in a shell
 */
static const char *dst_binary_var(const ExactCase *c)
{
    const char *bin = g_getenv("QTEST_QEMU_BINARY_DST") ?:
                      g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *cmd = NULL;
    const char *env;

    switch (c->lazy_fault) {
    case LAZY_EIO:
        /* Its fifth read of pages fails, once */
        env = "PREAD_EIO_COUNT=1";
        break;
    case LAZY_TOUCHED:
    case LAZY_TRUNCATED:
        /* No read fails, but each is slower: 2 ms */
        env = "PREAD_EIO_AFTER=1000000 PREAD_DELAY_US=2000";
        break;
    default:
        if (!c->lazy_cmdline && !c->lazy_wss) {
            return "QTEST_QEMU_BINARY_DST";
        }
        /*
         * The restore starts before QMP is up, and its events before
         * qmp_capabilities are lost: slower reads (1 ms) keep it going
         * until the test looks
         */
        env = "PREAD_EIO_AFTER=1000000 PREAD_DELAY_US=1000";
        break;
    }
    g_assert(bin);
    cmd = g_strdup_printf("env LD_PRELOAD=%s/pread-eio.so %s %s", test_dir,
                          env, bin);
    g_setenv("QTEST_QEMU_BINARY_DST_PRELOAD", cmd, true);
    return "QTEST_QEMU_BINARY_DST_PRELOAD";
}

/*
 * @mem_path: the RAM's shared file, or NULL for anonymous RAM;
 * @incoming: options for the incoming side ("-incoming defer"), or NULL;
 * @vhost_sock: a vhost-user-blk backend's socket, or NULL
 */
static QTestState *start_qemu(const char *var, const char *mem_path,
                              const char *incoming, bool oob,
                              const char *vhost_sock)
{
    QList *qmp_caps = NULL;
    /* With a device to drive, no guest code may run: qtest's accelerator */
    g_autofree char *vhost = vhost_sock ?
        g_strdup_printf(" -chardev socket,id=vub,path=%s "
                        "-device vhost-user-blk-pci,chardev=vub,num-queues=1,"
                        "addr=0x%x", vhost_sock, VUB_SLOT) : g_strdup("");
    g_autofree char *backend = mem_path ?
        g_strdup_printf("memory-backend-file,id=ram0,size=%dM,mem-path=%s,"
                        "share=on", RAM_MIB, mem_path) :
        g_strdup_printf("memory-backend-ram,id=ram0,size=%dM", RAM_MIB);
    g_autofree char *args = g_strdup_printf(
        "%s-nodefaults -display none -S -m %dM "
        "-object %s -machine pc,memory-backend=ram0 %s%s",
        vhost_sock ? "" : "-accel kvm -accel tcg ", RAM_MIB, backend,
        incoming ?: "", vhost);

    if (oob) {
        /* migrate-recover is sent out of band */
        qmp_caps = qlist_new();
        qlist_append_str(qmp_caps, "oob");
    }
    return qtest_init_ext(var, args, qmp_caps, true);
}

static void set_both(QTestState *from, QTestState *to, const char *cap)
{
    migrate_set_capability(from, cap, true);
    migrate_set_capability(to, cap, true);
}

/*
 * Whether @qts knows migration capability @cap (some are the branch's
 * only); its state in @on
 */
static bool capability_lookup(QTestState *qts, const char *cap, bool *on)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': "
                           "'query-migrate-capabilities' }");
    QList *list = qdict_get_qlist(rsp, "return");
    const QListEntry *e;
    bool known = false;

    *on = false;
    QLIST_FOREACH_ENTRY(list, e) {
        QDict *d = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(d, "capability"), cap)) {
            known = true;
            *on = qdict_get_bool(d, "state");
        }
    }
    qobject_unref(rsp);
    return known;
}

/* Whether migration capability @cap is on in @qts */
static bool capability_on(QTestState *qts, const char *cap)
{
    bool on;

    capability_lookup(qts, cap, &on);
    return on;
}

/* Whether @qts knows migration capability @cap */
static bool capability_known(QTestState *qts, const char *cap)
{
    bool on;

    return capability_lookup(qts, cap, &on);
}

/*
 * Change the same RUNS * RUN_PAGES pages of the source through QEMU in
 * every @wave: one qword of each page, chosen by the wave, so that an
 * XBZRLE delta is small.  Every fourth run becomes zero in odd waves and
 * gets data back in the next.
 */
static void rewrite_wave(QTestState *from, const uint8_t *src, unsigned wave)
{
    const size_t len = RUN_PAGES * PAGE_SIZE;
    g_autofree uint8_t *buf = g_malloc(len);

    for (size_t r = 0; r < RUNS; r++) {
        size_t first = r * (NPAGES / RUNS) + r % 5;
        uint64_t addr = (uint64_t)first * PAGE_SIZE;

        if (r % 4 == 3 && wave % 2) {
            qtest_memset(from, addr, 0, len);
            continue;
        }
        memcpy(buf, src + addr, len);
        for (size_t i = 0; i < RUN_PAGES; i++) {
            uint64_t *q = (uint64_t *)(buf + i * PAGE_SIZE) +
                          (wave * 37 + i * 5) % (PAGE_SIZE / 8);

            *q ^= mix64(wave * NPAGES + first + i) | 1;
        }
        qtest_bufwrite(from, addr, buf, len);
    }
}

/*
 * Wait until the source synced its dirty bitmap @pass times; false if it
 * stopped before the switchover first (pause-before-switchover).
 */
static bool wait_pass(QTestState *from, uint64_t pass)
{
    for (;;) {
        g_autofree char *status = migrate_query_status(from);

        if (!strcmp(status, "pre-switchover")) {
            return false;
        }
        g_assert_cmpstr(status, !=, "failed");
        g_assert_cmpstr(status, !=, "completed");
        if (!strcmp(status, "active") && get_migration_pass(from) >= pass) {
            return true;
        }
        g_usleep(5 * 1000);
    }
}

/*
 * Wait until the source left the setup: its dirty log runs from then on,
 * so that rewrites are sent again.  (A page written before is sent in
 * the first pass anyway, which starts after the setup.)
 */
static void wait_active(QTestState *from)
{
    for (;;) {
        g_autofree char *status = migrate_query_status(from);

        if (strcmp(status, "setup")) {
            g_assert_cmpstr(status, ==, "active");
            return;
        }
        g_usleep(2 * 1000);
    }
}

/*
 * Precopy (to a socket or a file) with rewrites: wave 0 in the first
 * pass, one more wave after each of the next @waves bitmap syncs, then
 * the switchover.  pause-before-switchover holds the source before its
 * final sync, so that every rewrite is sent: a wave written once the
 * source waits there goes in the final pass.
 */
/* Whether process @pid holds a userfaultfd */
static bool has_userfaultfd(GPid pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_strdup_printf("%s/%s", dir, name);
        g_autofree char *target = g_file_read_link(path, NULL);

        if (target && !strcmp(target, "anon_inode:[userfaultfd]")) {
            return true;
        }
    }
    return false;
}

/*
 * Whether the guest RAM of process @pid (its only mapping of RAM_SIZE)
 * is registered with a userfaultfd for missing pages: "um" in the
 * VmFlags of /proc/PID/smaps.
 */
static bool ram_registered(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/smaps", (int)pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    unsigned long size_kib = 0;
    int found = 0;
    bool registered = false;

    g_assert(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (sscanf(*l, "Size: %lu kB", &size_kib) == 1) {
            continue;
        }
        if (g_str_has_prefix(*l, "VmFlags:") && size_kib == RAM_SIZE >> 10) {
            g_auto(GStrv) flags = g_strsplit(*l + strlen("VmFlags:"), " ",
                                             -1);

            found++;
            registered = g_strv_contains((const char * const *)flags, "um");
        }
    }
    g_assert_cmpint(found, ==, 1);
    return registered;
}

/*
 * Whether the destination's guest RAM must be registered with a
 * userfaultfd while it loads, in precopy: yes (1), no (0), or either
 * (-1: it is not the branch).
 */
typedef int ExpectUffd;

static void precopy_with_rewrites(QTestState *from, QTestState *to,
                                  const uint8_t *src, unsigned waves,
                                  ExpectUffd uffd)
{
    unsigned wave, live = 1;

    wait_active(from);
    rewrite_wave(from, src, 0);
    g_test_message("wave 0 written in pass %" PRIu64,
                   get_migration_pass(from));
    for (wave = 1; wave <= waves; wave++) {
        if (live == wave && wait_pass(from, wave + 1)) {
            live++;
        }
        rewrite_wave(from, src, wave);
    }
    g_test_message("%u of %u waves written before the final pass, source "
                   "at pass %" PRIu64, live, waves + 1,
                   get_migration_pass(from));
    migrate_ensure_converge(from);
    wait_for_migration_status(from, "pre-switchover", NULL);
    /* The destination is still loading RAM: the source holds it */
    if (uffd >= 0) {
        bool reg = ram_registered(qtest_pid(to));

        g_test_message("the destination's RAM is %sregistered with a "
                       "userfaultfd while it loads", reg ? "" : "not ");
        g_assert_cmpint(reg, ==, uffd);
    }
    migrate_continue(from, "pre-switchover");
}

/*
 * Compare the destination's RAM file @fd with the source's RAM @src;
 * report the first bad pages, return how many there are.  The file is
 * read, not mapped: a read of a hole of tmpfs allocates nothing.
 */
static size_t count_bad_pages(const uint8_t *src, int fd, QTestState *to,
                              bool vub)
{
    const size_t chunk = 1 << 20;
    g_autofree uint8_t *buf = g_malloc(chunk);
    size_t bad = 0, skipped = 0;

    for (size_t off = 0; off < RAM_SIZE; off += chunk) {
        if (to) {
            qtest_bufread(to, off, buf, chunk);
        } else {
            g_assert_cmpint(pread(fd, buf, chunk, off), ==, chunk);
        }
        for (size_t i = 0; i < chunk; i += PAGE_SIZE) {
            const uint8_t *s = src + off + i, *d = buf + i;
            size_t page = (off + i) / PAGE_SIZE, at = 0;

            if (to && off + i >= PC_HOLE_START && off + i < PC_HOLE_END) {
                skipped++;
                continue;
            }
            if (vub && off + i >= VUB_RAM_START && off + i < VUB_RAM_END) {
                skipped++;
                continue;
            }
            if (!memcmp(s, d, PAGE_SIZE)) {
                continue;
            }
            while (s[at] == d[at]) {
                at++;
            }
            if (bad++ < 8) {
                g_test_message("bad page %zu (%s): first difference at "
                               "byte %zu, source %02x, destination %02x",
                               page, page_kind(page), at, s[at], d[at]);
            }
        }
    }
    if (bad) {
        g_test_message("%zu of %zu pages differ", bad, NPAGES);
    }
    if (skipped) {
        g_test_message("%zu pages not compared: %s", skipped,
                       vub ? "the vhost-user-blk driver's RAM" :
                       "under the PC machine's ROM and VGA windows");
    }
    return bad;
}

/*
 * The mapped-ram layout of the file @path: after the RAMBlock's name and
 * size in the setup section, a MappedRamHeader (version 1, big-endian)
 * points at the page bitmap right after it and at the pages, 1 MiB
 * aligned.  A page in the bitmap holds the source's page at its offset;
 * a page not in it must be zero on the source.
 */
static uint64_t check_mapped_ram_file(const char *path, const uint8_t *src)
{
    uint8_t key[5 + 8 + 4 + 8] = { 4, 'r', 'a', 'm', '0' };
    struct stat st;
    const uint8_t *file, *hdr, *bitmap;
    uint64_t bitmap_offset, pages_offset;
    size_t in_bitmap = 0, bad = 0, lost = 0;

    stq_be_p(key + 5, RAM_SIZE);
    stl_be_p(key + 13, 1);
    stq_be_p(key + 17, PAGE_SIZE);
    g_assert_cmpint(stat(path, &st), ==, 0);
    file = map_file(path, st.st_size, false);
    hdr = memmem(file, st.st_size, key, sizeof(key));
    g_assert(hdr);
    bitmap_offset = ldq_be_p(hdr + 25);
    pages_offset = ldq_be_p(hdr + 33);
    g_test_message("mapped-ram: header at %td, bitmap at %" PRIu64
                   ", pages at %" PRIu64 ", file %jd bytes", hdr - file,
                   bitmap_offset, pages_offset, (intmax_t)st.st_size);
    g_assert_cmpuint(bitmap_offset, ==, hdr - file + 5 + 8 + 28);
    g_assert_cmpuint(pages_offset % (1 << 20), ==, 0);
    g_assert_cmpuint(pages_offset, >=, bitmap_offset + NPAGES / 8);
    g_assert_cmpuint(st.st_size, >=, pages_offset + RAM_SIZE);

    /* A bitmap of unsigned longs: on x86, bit i is bit i % 8 of byte i / 8 */
    bitmap = file + bitmap_offset;
    for (size_t page = 0; page < NPAGES; page++) {
        const uint8_t *s = src + page * PAGE_SIZE;

        if (bitmap[page / 8] & (1 << page % 8)) {
            in_bitmap++;
            if (memcmp(file + pages_offset + page * PAGE_SIZE, s, PAGE_SIZE) &&
                bad++ < 8) {
                g_test_message("file page %zu (%s) is not the source's",
                               page, page_kind(page));
            }
        } else if (!buffer_is_zero(s, PAGE_SIZE) && lost++ < 8) {
            g_test_message("page %zu (%s) is not in the file", page,
                           page_kind(page));
        }
    }
    g_test_message("mapped-ram: %zu pages in the bitmap", in_bitmap);
    g_assert_cmpuint(bad, ==, 0);
    g_assert_cmpuint(lost, ==, 0);
    munmap((void *)file, st.st_size);
    return pages_offset;
}

static void read_through_destination(QTestState *to, const uint8_t *src,
                                     unsigned round);

static char *status_of(QTestState *qts, char **error_desc)
{
    QDict *rsp = migrate_query(qts);
    char *status = g_strdup(qdict_get_try_str(rsp, "status") ?: "");

    *error_desc = g_strdup(qdict_get_try_str(rsp, "error-desc") ?: "");
    qobject_unref(rsp);
    return status;
}

/* Wait until @qts's migration failed; return its error-desc */
static char *wait_failed(QTestState *qts)
{
    for (int i = 0; i < 600; i++) {
        g_autofree char *status = NULL;
        char *error_desc;

        status = status_of(qts, &error_desc);
        g_assert_cmpstr(status, !=, "completed");
        if (!strcmp(status, "failed")) {
            return error_desc;
        }
        g_free(error_desc);
        g_usleep(100 * 1000);
    }
    g_assert_not_reached();
}

/*
 * Restore @file (saved with mapped-ram) lazily, as @c says; returns
 * whether the destination's RAM must now be the source's
 */
static bool run_lazy_restore(QTestState *to, const ExactCase *c,
                             const char *file, const char *uri,
                             uint64_t pages_offset, const uint8_t *src,
                             unsigned pass, uint64_t *faults)
{
    g_autofree char *wss = g_strdup_printf("%s.wss", file);
    /* x-lazy-restore pauses after completed */
    const char *ungoals[] = { "failed", c->lazy_x ? NULL : "completed", NULL };
    const char *running = c->lazy_x ? "completed" : "postcopy-active";
    g_autofree char *status = NULL;
    g_autofree char *desc = NULL;
    g_autofree char *out = NULL;
    const char *in_uri = uri;
    QDict *rsp, *ev, *data, *ram;

    if (!capability_known(to, "x-lazy-restore")) {
        /* Upstream 10.2 has no lazy restore, and refuses the pair */
        rsp = qtest_qmp(to, "{ 'execute': 'migrate-set-capabilities',"
                        "  'arguments': { 'capabilities': ["
                        "    { 'capability': 'postcopy-ram', 'state': true },"
                        "    { 'capability': 'mapped-ram', 'state': true }"
                        "  ] } }");
        g_assert(qdict_haskey(rsp, "error"));
        g_test_message("the destination is upstream: it refuses "
                       "postcopy-ram with mapped-ram (%s); %s",
                       qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"),
                       c->lazy_fault ? "no lazy restore to break there" :
                       "it restores the file eagerly");
        qobject_unref(rsp);
        if (c->lazy_fault) {
            return false;
        }
        migrate_incoming_qmp(to, uri, NULL, "{}");
        wait_for_migration_complete(to);
        return true;
    }

    if (c->lazy_cmdline) {
        /* Started with the file: the restore runs already */
        g_assert(capability_on(to, c->lazy_x ? "x-lazy-restore" :
                               "postcopy-ram"));
        goto started;
    }
    if (pass) {
        /* A new destination: as run_mapped_ram() set the first one */
        migrate_set_capability(to, "mapped-ram", true);
        if (c->multifd) {
            migrate_set_capability(to, "multifd", true);
            migrate_set_parameter_int(to, "multifd-channels", 2);
        }
    }
    migrate_set_capability(to, c->lazy_x ? "x-lazy-restore" : "postcopy-ram",
                           true);
    migrate_set_capability(to, "events", true);
    if (c->lazy_wss) {
        migrate_set_capability(to, "x-working-set", true);
    }
    if (c->lazy_fd) {
        /*
         * libvirt hands QEMU the file it opened, in an fd set: mapped-ram
         * wants a file: URI (upstream refuses fd: as not seekable)
         */
        int fd = open(file, O_RDONLY);

        g_assert_cmpint(fd, >=, 0);
        qtest_qmp_fds_assert_success(to, &fd, 1, "{ 'execute': 'add-fd',"
                                     "  'arguments': { 'fdset-id': 7 } }");
        close(fd);
        in_uri = "file:/dev/fdset/7";
    }
    if (c->lazy_fault == LAZY_CUT) {
        /* The second half of RAM's pages is gone, and all that follows */
        g_assert_cmpint(truncate(file, pages_offset + RAM_SIZE / 2), ==, 0);
        migrate_incoming_qmp(to, in_uri, NULL, "{ 'exit-on-error': false }");
        desc = wait_failed(to);
        g_test_message("lazy restore of a truncated file: %s", desc);
        g_assert_nonnull(strstr(desc, "the file is truncated"));
        qtest_qmp_assert_success(to, "{ 'execute': 'query-status' }");
        return false;
    }
    migrate_incoming_qmp(to, in_uri, NULL, "{}");

started:
    switch (c->lazy_fault) {
    case LAZY_EIO:
        /* The shim fails one read: the restore pauses, alive */
        wait_for_migration_status(to, "postcopy-paused", ungoals);
        status = status_of(to, &desc);
        g_test_message("lazy restore: paused: %s", desc);
        g_assert_nonnull(strstr(desc, "Input/output error"));
        /* The file reads again: recover with it */
        migrate_recover(to, uri);
        g_test_message("lazy restore: recovered with the same file");
        break;
    case LAZY_TOUCHED:
    case LAZY_TRUNCATED:
        /* Reads are slow (the shim's delay): change the image meanwhile */
        migration_event_wait(to, running);
        /* No snapshot or migration out before residency: a blocker */
        out = qtest_hmp(to, "savevm during-restore");
        g_test_message("savevm during the restore: %s", out);
        g_assert_nonnull(strstr(out, "lazy restore is still loading"));
        if (c->lazy_fault == LAZY_TOUCHED) {
            g_assert_cmpint(utimes(file, NULL), ==, 0);
        } else {
            g_assert_cmpint(truncate(file, pages_offset + RAM_SIZE / 2), ==,
                            0);
        }
        wait_for_migration_status(to, "postcopy-paused", ungoals);
        status = status_of(to, &desc);
        g_test_message("lazy restore: paused: %s", desc);
        g_assert_nonnull(strstr(desc, "the file changed"));
        /* The changed image is refused: the restore stays paused */
        migrate_recover(to, uri);
        g_usleep(500 * 1000);
        g_free(status);
        status = migrate_query_status(to);
        g_assert_cmpstr(status, ==, "postcopy-paused");
        qtest_qmp_assert_success(to, "{ 'execute': 'query-status' }");
        g_test_message("lazy restore: the changed image was refused");
        return false;
    default:
        /* Running before all of RAM is in: read some of it meanwhile */
        if (c->lazy_cmdline) {
            wait_for_migration_status(to, running, ungoals);
        } else {
            migration_event_wait(to, running);
        }
        if (pass) {
            /* The working set loads first: 1 ms a read (the shim) */
            g_usleep(300 * 1000);
        }
        read_through_destination(to, src, 0);
        /* Status and progress from one answer: it may be resident now */
        rsp = migrate_query(to);
        status = g_strdup(qdict_get_try_str(rsp, "status"));
        ram = qdict_haskey(rsp, "ram") ? qdict_get_qdict(rsp, "ram") : NULL;
        if (ram) {
            int64_t total = qdict_get_int(ram, "total");
            int64_t done = qdict_get_int(ram, "transferred");
            size_t nonzero = 0;

            g_test_message("lazy restore: %s, %" PRId64 " of %" PRId64
                           " KiB resident", status, done >> 10, total >> 10);
            for (size_t page = 0; page < NPAGES; page++) {
                nonzero += !buffer_is_zero(src + page * PAGE_SIZE, PAGE_SIZE);
            }
            /* Every page of the source that is not zero, at least */
            g_assert_cmpint(total, >=, (int64_t)nonzero * PAGE_SIZE);
            g_assert_cmpint(done, <=, total);
        } else {
            /* Resident already: the restore and its progress are gone */
            g_assert_cmpstr(status, ==, "completed");
            g_test_message("lazy restore: resident before the test looked");
        }
        qobject_unref(rsp);
        break;
    }
    if (!c->lazy_x) {
        wait_for_migration_complete(to);
    }
    ev = qtest_qmp_eventwait_ref(to, "X_RAM_RESIDENT");
    data = qdict_get_qdict(ev, "data");
    g_test_message("lazy restore: resident: %" PRId64 " bytes after %"
                   PRId64 " ms, %" PRId64 " faults (%" PRId64 " in the "
                   "first second), %" PRId64 " pages of the working set "
                   "loaded first", qdict_get_int(data, "bytes"),
                   qdict_get_int(data, "ms"), qdict_get_int(data, "faults"),
                   qdict_get_int(data, "faults-first-second"),
                   qdict_get_int(data, "prefetched"));
    if (c->lazy_wss && !pass) {
        /* The first restore loads no working set, and records one */
        g_assert_cmpint(qdict_get_int(data, "prefetched"), ==, 0);
        g_assert(g_file_test(wss, G_FILE_TEST_IS_REGULAR));
        *faults = qdict_get_int(data, "faults");
        qobject_unref(ev);
        return true;
    }
    if (c->lazy_wss) {
        /* The second loads it first: the same reads fault less */
        g_assert_cmpint(qdict_get_int(data, "prefetched"), >, 0);
        g_assert_cmpint(qdict_get_int(data, "faults"), <, *faults);
        unlink(wss);
    }
    qobject_unref(ev);
    /* From now on the file is not needed: the comparison proves it */
    g_assert_cmpint(truncate(file, 0), ==, 0);
    return true;
}

/*
 * Quit the destination *@pto, and start another one on new RAM at
 * @dst_path (*@dst_fd: its file, or -1 for anonymous RAM) with the
 * incoming options @incoming
 */
static QTestState *restart_destination(QTestState **pto, const ExactCase *c,
                                       const char *dst_path, int *dst_fd,
                                       const char *incoming)
{
    qtest_quit(*pto);
    if (*dst_fd >= 0) {
        close(*dst_fd);
    }
    *pto = start_qemu(dst_binary_var(c), c->dst == DST_ANON ? NULL : dst_path,
                      incoming, c->lazy, NULL);
    *dst_fd = -1;
    if (c->dst != DST_ANON) {
        *dst_fd = open(dst_path, O_RDONLY);
        g_assert_cmpint(*dst_fd, >=, 0);
        unlink(dst_path);
    }
    return *pto;
}

/*
 * Save to a mapped-ram file, and restore it: returns whether the
 * destination's RAM must now be the source's
 */
static bool run_mapped_ram(QTestState *from, QTestState **pto,
                           const ExactCase *c, const uint8_t *src,
                           const char *dst_path, int *dst_fd)
{
    QTestState *to = *pto;
    /*
     * direct-io: a filesystem on a disk (the root's ext4 here), where
     * O_DIRECT bypasses the page cache; tmpfs may lack O_DIRECT or only
     * emulate it.  The other cases keep the file on tmpfs: a file on a
     * disk costs seconds to write back or to unlink.
     */
    g_autofree char *dir = g_strdup(c->dio ? "/var/tmp/ram-exact-XXXXXX" :
                                    NULL);
    g_autofree char *file = NULL;
    g_autofree char *uri = NULL;
    uint64_t pages_offset;
    bool ret = true;

    g_assert(!c->dio || g_mkdtemp(dir));
    file = g_strdup_printf("%s/state", c->dio ? dir : shm_dir);
    uri = g_strdup_printf("file:%s", file);
    if (c->dio && !probe_o_direct_support(dir)) {
        rmdir(dir);
        g_test_message("%s has no O_DIRECT", dir);
        g_test_fail();
        return false;
    }

    set_both(from, to, "mapped-ram");
    if (c->multifd) {
        set_both(from, to, "multifd");
        migrate_set_parameter_int(from, "multifd-channels", 2);
        migrate_set_parameter_int(to, "multifd-channels", 2);
    }
    if (c->dio) {
        migrate_set_parameter_bool(from, "direct-io", true);
        migrate_set_parameter_bool(to, "direct-io", true);
        /*
         * Zero pages written too, so that the file is one extent: with
         * a hole for each, unlinking it costs ext4 mounted with discard
         * (as here) 10-15 s.  The other cases check zero page detection.
         */
        migrate_set_parameter_str(from, "zero-page-detection", "none");
    }
    migrate_set_capability(from, "pause-before-switchover", true);
    migrate_set_parameter_int(from, "max-bandwidth", 64 << 20);
    migrate_set_parameter_int(from, "downtime-limit", 1);

    migrate_qmp(from, to, uri, NULL, "{}");
    precopy_with_rewrites(from, to, src, 2, -1);
    wait_for_migration_complete(from);
    g_assert(capability_on(from, "mapped-ram"));
    g_assert(capability_on(to, "mapped-ram"));
    pages_offset = check_mapped_ram_file(file, src);
    if (c->lazy && capability_known(from, "x-lazy-restore")) {
        /* Postcopy with mapped-ram is for the incoming side only */
        QDict *rsp;

        migrate_set_capability(from, "postcopy-ram", true);
        rsp = qtest_qmp(from, "{ 'execute': 'migrate', 'arguments': {"
                        "  'uri': %s } }", uri);
        g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                              "desc"),
                                "incompatible with postcopy"));
        qobject_unref(rsp);
        migrate_set_capability(from, "postcopy-ram", false);
    }

    /*
     * The restore reads the file once the save is complete.  It has
     * opened the file, on every channel, when migrate-incoming returns:
     * nothing is left behind if the case fails from here.
     */
    if (c->lazy_cmdline && capability_known(to, "x-lazy-restore")) {
        /*
         * As a script would: a new destination restores the file it is
         * started with, the capabilities given as -global
         */
        g_autofree char *incoming = g_strdup_printf(
            "-global migration.mapped-ram=on -global migration.x-events=on "
            "-global migration.%s=on -incoming %s",
            c->lazy_x ? "x-lazy-restore" : "x-postcopy-ram", uri);

        to = restart_destination(pto, c, dst_path, dst_fd, incoming);
    }
    if (c->lazy_wss && capability_known(to, "x-working-set")) {
        uint64_t faults = 0;
        g_autofree char *wss = g_strdup_printf("%s.wss", file);

        /* A sidecar that is not a working set is ignored, and replaced */
        g_assert(g_file_set_contents(wss, "not a working set", -1, NULL));
        ret = run_lazy_restore(to, c, file, uri, pages_offset, src, 0,
                               &faults);
        /* The same image again, with the working set of the first */
        to = restart_destination(pto, c, dst_path, dst_fd,
                                 "-incoming defer");
        ret = run_lazy_restore(to, c, file, uri, pages_offset, src, 1,
                               &faults);
    } else if (c->lazy) {
        ret = run_lazy_restore(to, c, file, uri, pages_offset, src, 0, NULL);
    } else {
        migrate_incoming_qmp(to, uri, NULL, "{}");
        wait_for_migration_complete(to);
    }
    unlink(file);
    if (dir) {
        rmdir(dir);
    }
    return ret;
}

/* Precopy over a unix socket with @waves rewrites, to its completion */
static void migrate_with_rewrites(QTestState *from, QTestState *to,
                                  const uint8_t *src, unsigned waves,
                                  ExpectUffd uffd)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/sock", shm_dir);

    migrate_set_capability(from, "pause-before-switchover", true);
    migrate_set_parameter_int(from, "max-bandwidth", 32 << 20);
    migrate_set_parameter_int(from, "downtime-limit", 1);
    migrate_incoming_qmp(to, uri, NULL, "{}");
    migrate_qmp(from, to, uri, NULL, "{}");
    precopy_with_rewrites(from, to, src, waves, uffd);
    wait_for_migration_complete(from);
    wait_for_migration_complete(to);
}

static void run_xbzrle(QTestState *from, QTestState *to, const uint8_t *src)
{
    QDict *rsp, *cache;
    int64_t pages, bytes, overflow, miss;

    set_both(from, to, "xbzrle");
    migrate_with_rewrites(from, to, src, 3, -1);

    rsp = migrate_query(from);
    cache = qdict_get_qdict(rsp, "xbzrle-cache");
    g_assert(cache);
    pages = qdict_get_int(cache, "pages");
    bytes = qdict_get_int(cache, "bytes");
    overflow = qdict_get_int(cache, "overflow");
    miss = qdict_get_int(cache, "cache-miss");
    g_test_message("xbzrle: %" PRId64 " pages encoded in %" PRId64
                   " bytes, %" PRId64 " overflows, %" PRId64 " misses",
                   pages, bytes, overflow, miss);
    qobject_unref(rsp);
    g_assert(capability_on(from, "xbzrle"));
    g_assert_cmpint(pages, >, 0);
    g_assert_cmpint(bytes, >, 0);
    g_assert_cmpint(overflow, <, pages);
}

/* Whether the host backs anonymous memory with THP where QEMU asks */
static bool host_has_thp(void)
{
    g_autofree char *mode = NULL;

    return g_file_get_contents("/sys/kernel/mm/transparent_hugepage/enabled",
                               &mode, NULL, NULL) &&
           !strstr(mode, "[never]");
}

/* AnonHugePages of process @pid, in KiB */
static uint64_t anon_huge_kib(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/smaps_rollup",
                                            (int)pid);
    g_autofree char *text = NULL;
    const char *at;

    g_assert(g_file_get_contents(path, &text, NULL, NULL));
    at = strstr(text, "AnonHugePages:");
    g_assert(at);
    return g_ascii_strtoull(at + strlen("AnonHugePages:"), NULL, 10);
}

/*
 * The branch places with UFFDIO_COPY (fill.c) with multifd into shmem
 * that is all holes, into anonymous RAM without THP, and whole huge
 * pages into hugetlbfs; a destination that is not the branch
 * (cross-version runs) is not asked.
 */
static ExpectUffd expect_fill(QTestState *to, const ExactCase *c)
{
    if (!capability_known(to, "x-postcopy-multifd")) {
        return -1;
    }
    switch (c->dst) {
    case DST_SHMEM:
        return c->multifd;
    case DST_ANON:
        return c->no_thp || !host_has_thp();
    case DST_HUGETLB:
        return 1;
    default:
        return 0;
    }
}

static void run_precopy(QTestState *from, QTestState *to, const ExactCase *c,
                        const uint8_t *src)
{
    if (c->multifd) {
        set_both(from, to, "multifd");
        migrate_set_parameter_int(from, "multifd-channels", 2);
        migrate_set_parameter_int(to, "multifd-channels", 2);
    }
    migrate_with_rewrites(from, to, src, 2, expect_fill(to, c));
    if (c->multifd) {
        g_assert(capability_on(from, "multifd"));
        g_assert(capability_on(to, "multifd"));
    }
    if (c->dst == DST_ANON) {
        uint64_t huge = anon_huge_kib(qtest_pid(to));

        g_test_message("the destination has %" PRIu64 " KiB of anonymous "
                       "huge pages after the load", huge);
        if (c->no_thp || !host_has_thp()) {
            g_assert_cmpuint(huge, ==, 0);
        } else {
            /* The pattern has data in every 2 MiB of RAM */
            g_assert_cmpuint(huge, >, 0);
        }
    }
}

/*
 * Read pages of the destination through QEMU while postcopy runs: pages
 * in the top quarter of RAM, which precopy had not reached.  Each read
 * waits for its page and must find the source's data.
 */
static void read_through_destination(QTestState *to, const uint8_t *src,
                                     unsigned round)
{
    g_autofree uint8_t *buf = g_malloc(PAGE_SIZE);

    for (size_t i = 0; i < 16; i++) {
        size_t page = NPAGES - 1 - (i * 5 + round) * (NPAGES / 4 / 100);

        qtest_bufread(to, (uint64_t)page * PAGE_SIZE, buf, PAGE_SIZE);
        if (memcmp(buf, src + page * PAGE_SIZE, PAGE_SIZE)) {
            g_test_message("page %zu (%s) read during postcopy is wrong",
                           page, page_kind(page));
            g_assert_not_reached();
        }
    }
}

/*
 * vhost-user-blk (contrib/, built with QEMU next to the binary of
 * QTEST_QEMU_BINARY) serving @img on @sock; returns its pid once the
 * socket is there.
 */
static GPid start_vhost_user_blk(const char *sock, const char *img)
{
    g_autofree char *dir = g_path_get_dirname(getenv("QTEST_QEMU_BINARY"));
    g_autofree char *bin = g_strdup_printf("%s/contrib/vhost-user-blk/"
                                           "vhost-user-blk", dir);
    char *argv[] = { bin, (char *)"-s", (char *)sock, (char *)"-b",
                     (char *)img, NULL };
    g_autoptr(GError) err = NULL;
    GPid pid;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_message("%s is not built", bin);
        g_assert_not_reached();
    }
    g_assert(g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                           NULL, NULL, &pid, &err));
    for (int i = 0; i < 1000 && !g_file_test(sock, G_FILE_TEST_EXISTS);
         i++) {
        g_usleep(10 * 1000);
    }
    g_assert(g_file_test(sock, G_FILE_TEST_EXISTS));
    return pid;
}

static void stop_vhost_user_blk(GPid pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
}


static void wait_paused(QTestState *qts)
{
    const char *ungoals[] = { "failed", "completed", "active", NULL };

    wait_for_migration_status(qts, "postcopy-paused", ungoals);
}

/*
 * A guest's driver of the vhost-user-blk device (libqos), on the source
 * first and then on the destination, whose device state it continues.
 */
typedef struct {
    QPCIBus *bus;
    QGuestAllocator alloc;
    QVirtioPCIDevice *dev;
    QVirtQueue *vq;
} VhostBlkDriver;

/*
 * Write @len bytes of guest RAM at @data to @sector of the image through
 * the device of @qts, and wait until the device is done.  Returns the
 * request's status.
 */
static uint8_t vub_write(VhostBlkDriver *d, QTestState *qts, uint64_t sector,
                         uint64_t data, uint32_t len)
{
    QVirtioDevice *vdev = &d->dev->vdev;
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(VIRTIO_BLK_T_OUT),
        .sector = cpu_to_le64(sector),
    };
    uint64_t req = guest_alloc(&d->alloc, sizeof(hdr) + 1);
    uint8_t status = 0xff;
    uint32_t head;

    qtest_memwrite(qts, req, &hdr, sizeof(hdr));
    qtest_memwrite(qts, req + sizeof(hdr), &status, 1);
    head = qvirtqueue_add(qts, d->vq, req, sizeof(hdr), false, true);
    qvirtqueue_add(qts, d->vq, data, len, false, true);
    qvirtqueue_add(qts, d->vq, req + sizeof(hdr), 1, true, false);
    qvirtqueue_kick(qts, vdev, d->vq, head);
    qvirtio_wait_used_elem(qts, vdev, d->vq, head, NULL,
                           60 * G_USEC_PER_SEC);
    status = qtest_readb(qts, req + sizeof(hdr));
    guest_free(&d->alloc, req);
    return status;
}

/* Set the source's device up and write a block through it */
static void vub_setup(VhostBlkDriver *d, QTestState *from)
{
    QPCIAddress addr = { .devfn = QPCI_DEVFN(VUB_SLOT, 0) };
    QVirtioDevice *vdev;
    uint64_t features, data;

    /* The device starts its backend only while the VM runs. */
    qtest_qmp_assert_success(from, "{ 'execute': 'cont' }");
    d->bus = qpci_new_pc(from, NULL);
    alloc_init(&d->alloc, ALLOC_NO_FLAGS, VUB_RAM_START, VUB_RAM_END,
               PAGE_SIZE);
    d->dev = virtio_pci_new(d->bus, &addr);
    g_assert(d->dev);
    vdev = &d->dev->vdev;
    qvirtio_pci_device_enable(d->dev);
    qvirtio_start_device(vdev);
    features = qvirtio_get_features(vdev) &
               ~(QVIRTIO_F_BAD_FEATURE |
                 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
                 (1ULL << VIRTIO_RING_F_EVENT_IDX) |
                 (1ULL << VIRTIO_BLK_F_SCSI));
    qvirtio_set_features(vdev, features);
    d->vq = qvirtqueue_setup(vdev, &d->alloc, 0);
    qvirtio_set_driver_ok(vdev);

    data = guest_alloc(&d->alloc, PAGE_SIZE);
    qtest_memset(from, data, 0x5a, PAGE_SIZE);
    g_assert_cmpuint(vub_write(d, from, 0, data, PAGE_SIZE), ==, 0);
    guest_free(&d->alloc, data);
    g_test_message("vhost-user-blk: a block written on the source");
}

static void wait_loaded(QTestState *qts)
{
    for (int i = 0; i < 600; i++) {
        QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                                  "{ 'execute': "
                                                  "'query-status' }");
        bool loading = !strcmp(qdict_get_str(rsp, "status"), "inmigrate");

        qobject_unref(rsp);
        if (!loading) {
            return;
        }
        g_usleep(10 * 1000);
    }
    g_assert_not_reached();
}

/*
 * During postcopy: let the destination run, and write a page of guest
 * RAM that has not arrived through its device.  Its backend faults on
 * the page, and only the page server can bring it.
 */
static void vub_fault_on_destination(VhostBlkDriver *d, QTestState *from,
                                     QTestState *to, const uint8_t *src,
                                     int dst_fd, const char *img)
{
    const size_t off = (size_t)VUB_FAULT_PAGE * PAGE_SIZE;
    g_autofree uint8_t *blk = g_malloc(PAGE_SIZE);
    int64_t requests;
    unsigned char vec;
    uint8_t *dst;
    int fd;

    dst = mmap(NULL, RAM_SIZE, PROT_READ, MAP_SHARED, dst_fd, 0);
    g_assert(dst != MAP_FAILED);
    g_assert_cmpint(mincore(dst + off, PAGE_SIZE, &vec), ==, 0);
    munmap(dst, RAM_SIZE);
    /* If the page were there, the test could not tell. */
    g_assert_false(vec & 1);

    wait_loaded(to);
    qtest_qmp_assert_success(to, "{ 'execute': 'cont' }");
    requests = read_ram_property_int(from, "postcopy-requests");
    d->bus->qts = to;
    g_assert_cmpuint(vub_write(d, to, VUB_SECTOR, off, PAGE_SIZE), ==, 0);
    g_assert_cmpint(read_ram_property_int(from, "postcopy-requests"), >,
                    requests);

    fd = open(img, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, blk, PAGE_SIZE, VUB_SECTOR * 512), ==,
                    PAGE_SIZE);
    close(fd);
    g_assert(!memcmp(blk, src + off, PAGE_SIZE));
    g_test_message("vhost-user-blk: the destination's backend faulted on "
                   "page %zu, which the source then sent; the block it "
                   "wrote is the source's page", (size_t)VUB_FAULT_PAGE);
}

static void run_postcopy(QTestState *from, QTestState *to,
                         const ExactCase *c, const uint8_t *src,
                         int dst_fd, const char *vub_img)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/sock", shm_dir);
    g_autofree char *uri2 = g_strdup_printf("unix:%s/sock-recover", shm_dir);
    int64_t remaining, multifd_at_switch, multifd_after = 0;
    VhostBlkDriver vub = { 0 };
    bool many = false;

    set_both(from, to, "postcopy-ram");
    if (c->preempt) {
        set_both(from, to, "postcopy-preempt");
    }
    if (c->multifd) {
        set_both(from, to, "multifd");
        migrate_set_parameter_int(from, "multifd-channels", 2);
        migrate_set_parameter_int(to, "multifd-channels", 2);
        /*
         * Many-channel postcopy takes both sides to know it; across
         * versions this is multifd+postcopy as upstream has it.
         */
        many = capability_known(from, "x-postcopy-multifd") &&
               capability_known(to, "x-postcopy-multifd");
        if (many) {
            set_both(from, to, "x-postcopy-multifd");
        } else {
            g_test_message("x-postcopy-multifd: not on both sides, "
                           "upstream's multifd+postcopy");
        }
    }
    migrate_set_capability(from, "events", true);
    migrate_set_parameter_int(from, "max-bandwidth", 32 << 20);
    /* Slow enough for the reads and the break to come while it runs */
    migrate_set_parameter_int(from, "max-postcopy-bandwidth",
                              c->recover || c->vhost_user ? 8 << 20 :
                              32 << 20);
    if (c->vhost_user) {
        vub_setup(&vub, from);
    }
    migrate_incoming_qmp(to, uri, NULL, "{}");
    migrate_qmp(from, to, uri, NULL, "{}");

    wait_active(from);
    rewrite_wave(from, src, 0);
    while (read_ram_property_int(from, "transferred") < (16 << 20)) {
        g_autofree char *status = migrate_query_status(from);

        /* Precopy alone must not finish first: that would hang here */
        g_assert_cmpstr(status, ==, "active");
        g_usleep(10 * 1000);
    }
    rewrite_wave(from, src, 1);
    remaining = read_ram_property_int(from, "remaining");
    qtest_qmp_assert_success(from, "{ 'execute': 'migrate-start-postcopy' }");
    migration_event_wait(from, "postcopy-active");
    migration_event_wait(to, "postcopy-active");
    g_test_message("postcopy: switched with %" PRId64 " KiB unsent",
                   remaining >> 10);
    g_assert_cmpint(remaining, >, RAM_SIZE / 2);
    multifd_at_switch = read_ram_property_int(from, "multifd-bytes");
    if (c->preempt) {
        g_assert(capability_on(from, "postcopy-preempt"));
        g_assert(capability_on(to, "postcopy-preempt"));
    }
    read_through_destination(to, src, 0);
    if (vhost_dst_pid) {
        /*
         * The destination's backend got POSTCOPY_ADVISE and opened a
         * userfaultfd of its own, which QEMU's page server polls.
         */
        g_assert(has_userfaultfd(vhost_dst_pid));
        g_test_message("postcopy: the destination's vhost-user-blk holds a "
                       "userfaultfd");
        if (capability_known(to, "x-postcopy-multifd")) {
            vub_fault_on_destination(&vub, from, to, src, dst_fd, vub_img);
        } else {
            g_test_message("vhost-user-blk: the destination is not the "
                           "branch, whose postcopy cannot serve a fault of "
                           "the backend: not driven there");
        }
        migrate_set_parameter_int(from, "max-postcopy-bandwidth", 0);
    }

    if (many) {
        /* Pages go on the multifd channels after the switchover */
        while (multifd_after < multifd_at_switch + (4 << 20)) {
            g_autofree char *status = migrate_query_status(from);

            g_assert_cmpstr(status, ==, "postcopy-active");
            multifd_after = read_ram_property_int(from, "multifd-bytes");
            g_usleep(10 * 1000);
        }
        g_test_message("postcopy: %" PRId64 " KiB on the multifd channels "
                       "after the switchover, and counting",
                       (multifd_after - multifd_at_switch) >> 10);
    }
    if (c->recover) {
        /* Break the connection from one end; both ends must pause */
        migrate_pause(c->preempt ? to : from);
        wait_paused(from);
        wait_paused(to);
        migration_event_wait(from, "postcopy-paused");
        migration_event_wait(to, "postcopy-paused");
        g_test_message("postcopy: both sides paused at %" PRId64
                       " KiB unsent",
                       read_ram_property_int(from, "remaining") >> 10);
        migrate_recover(to, uri2);
        migrate_qmp(from, to, uri2, NULL, "{ 'resume': true }");
        migration_event_wait(from, "postcopy-active");
        migration_event_wait(to, "postcopy-active");
        read_through_destination(to, src, 1);
        migrate_set_parameter_int(from, "max-postcopy-bandwidth", 0);
    }
    wait_for_migration_complete(from);
    wait_for_migration_complete(to);
    g_test_message("postcopy: %" PRId64 " page requests served",
                   read_ram_property_int(from, "postcopy-requests"));
    g_assert_cmpint(read_ram_property_int(from, "postcopy-requests"), >, 0);
    if (vub.bus) {
        qvirtqueue_cleanup(vub.dev->vdev.bus, vub.vq, &vub.alloc);
        qpci_free_pc(vub.bus);
        g_free(vub.dev);
        alloc_destroy(&vub.alloc);
    }
}

/*
 * x-postcopy-multifd on one side only: 10.2 has no capability exchange,
 * so the multifd channels' handshake carries it.  Both sides must fail,
 * with the reason on the side that knows it, and not hang.  The side
 * that has it sets it: the source in the branch, the destination when
 * the source is upstream.
 */
static void run_postcopy_mismatch(QTestState *from, QTestState *to)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/sock", shm_dir);
    bool src_has = capability_known(from, "x-postcopy-multifd");
    bool dst_has = capability_known(to, "x-postcopy-multifd");
    g_autofree char *src_err = NULL;
    g_autofree char *dst_err = NULL;

    g_assert(src_has || dst_has);
    set_both(from, to, "postcopy-ram");
    set_both(from, to, "postcopy-preempt");
    set_both(from, to, "multifd");
    migrate_set_parameter_int(from, "multifd-channels", 2);
    migrate_set_parameter_int(to, "multifd-channels", 2);
    migrate_set_capability(src_has ? from : to, "x-postcopy-multifd", true);
    migrate_incoming_qmp(to, uri, NULL, "{ 'exit-on-error': false }");
    migrate_qmp(from, to, uri, NULL, "{}");

    dst_err = wait_failed(to);
    src_err = wait_failed(from);
    g_test_message("x-postcopy-multifd on the %s only: destination: %s; "
                   "source: %s", src_has ? "source" : "destination",
                   dst_err, src_err);
    if (dst_has) {
        /* The branch says which capability */
        g_assert_nonnull(strstr(dst_err, "x-postcopy-multifd"));
    } else {
        g_assert_nonnull(strstr(dst_err, "version 2"));
    }
    /* Both still answer */
    qtest_qmp_assert_success(from, "{ 'execute': 'query-status' }");
    qtest_qmp_assert_success(to, "{ 'execute': 'query-status' }");
}

/*
 * Postcopy needs userfaultfd.  Missing, it fails the case, unless the
 * kernel has none or refuses it to this process: that is where the
 * test runs, not QEMU.
 */
static bool userfaultfd_usable(void)
{
#ifdef CONFIG_LINUX
    int fd = syscall(__NR_userfaultfd, O_CLOEXEC);

    if (fd >= 0) {
        close(fd);
        return true;
    }
    if (errno == ENOSYS || errno == EPERM) {
        g_test_skip("environment: no userfaultfd for this process");
        return false;
    }
    g_test_message("userfaultfd: %s", strerror(errno));
    g_test_fail();
    return false;
#else
    g_test_skip("environment: no userfaultfd on this host");
    return false;
#endif
}

static void test_exact(const void *opaque)
{
    const ExactCase *c = opaque;
    const char *ram_dir = c->dst == DST_HUGETLB ? hugetlb_dir : shm_dir;
    g_autofree char *src_path = NULL;
    g_autofree char *dst_path = NULL;
    g_autofree char *vub_img = NULL;
    g_autofree char *vub_src = NULL;
    g_autofree char *vub_dst = NULL;
    GPid src_pid = 0;
    g_autofree char *sock = g_strdup_printf("%s/sock", shm_dir);
    g_autofree char *sock2 = g_strdup_printf("%s/sock-recover", shm_dir);
    g_autofree char *state = g_strdup_printf("%s/state", shm_dir);
    QTestState *from, *to;
    bool compare = true;
    uint8_t *src;
    int dst_fd;

    if ((c->path == PATH_POSTCOPY || c->path == PATH_POSTCOPY_MISMATCH) &&
        !userfaultfd_usable()) {
        return;
    }
    if (c->dst == DST_HUGETLB && !hugetlb_dir) {
        g_test_skip("environment: QTEST_HUGETLB_DIR (a hugetlbfs with 128 "
                    "free 2 MiB pages) not set");
        return;
    }
    src_path = g_strdup_printf("%s/src-ram", ram_dir);
    dst_path = g_strdup_printf("%s/dst-ram", ram_dir);
    if (c->vhost_user) {
        int fd;

        vub_img = g_strdup_printf("%s/vub.img", shm_dir);
        vub_src = g_strdup_printf("%s/vub-src.sock", shm_dir);
        vub_dst = g_strdup_printf("%s/vub-dst.sock", shm_dir);
        fd = open(vub_img, O_RDWR | O_CREAT, 0600);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ftruncate(fd, 1 << 20), ==, 0);
        close(fd);
        src_pid = start_vhost_user_blk(vub_src, vub_img);
        vhost_dst_pid = start_vhost_user_blk(vub_dst, vub_img);
    }
    from = start_qemu("QTEST_QEMU_BINARY_SRC", src_path, NULL, false,
                      vub_src);
    if (c->no_thp) {
        /* Inherited by the destination QEMU, and only by it */
        g_assert_cmpint(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), ==, 0);
    }
    to = start_qemu(dst_binary_var(c), c->dst == DST_ANON ? NULL : dst_path,
                    "-incoming defer", c->recover || c->lazy, vub_dst);
    if (c->no_thp) {
        g_assert_cmpint(prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0), ==, 0);
    }
    src = map_file(src_path, RAM_SIZE, true);
    dst_fd = -1;
    if (c->dst != DST_ANON) {
        dst_fd = open(dst_path, O_RDONLY);
        g_assert_cmpint(dst_fd, >=, 0);
    }
    /* Open in QEMU and here: nothing is left behind if the case fails */
    unlink(src_path);
    unlink(dst_path);
    fill_pattern(src);
    if (c->dst == DST_HUGETLB) {
        zero_some_huge_pages(src);
    }

    switch (c->path) {
    case PATH_MAPPED_RAM:
        compare = run_mapped_ram(from, &to, c, src, dst_path, &dst_fd);
        break;
    case PATH_XBZRLE:
        run_xbzrle(from, to, src);
        break;
    case PATH_POSTCOPY:
        run_postcopy(from, to, c, src, dst_fd, vub_img);
        break;
    case PATH_PRECOPY:
        run_precopy(from, to, c, src);
        break;
    case PATH_POSTCOPY_MISMATCH:
        run_postcopy_mismatch(from, to);
        break;
    }

    if (!g_test_failed() && c->dst == DST_HUGETLB &&
        c->path == PATH_PRECOPY) {
        check_zero_huge_pages(src, dst_fd, expect_fill(to, c));
    }
    if (!g_test_failed() && c->path != PATH_POSTCOPY_MISMATCH && compare) {
        g_assert_cmpuint(count_bad_pages(src, dst_fd,
                                         c->dst == DST_ANON ? to : NULL,
                                         c->vhost_user),
                         ==, 0);
    }
    if (dst_fd >= 0) {
        close(dst_fd);
    }
    munmap(src, RAM_SIZE);
    qtest_quit(from);
    qtest_quit(to);
    if (c->vhost_user) {
        stop_vhost_user_blk(src_pid);
        stop_vhost_user_blk(vhost_dst_pid);
        vhost_dst_pid = 0;
        unlink(vub_img);
        unlink(vub_src);
        unlink(vub_dst);
    }
    unlink(sock);
    unlink(sock2);
    unlink(state);
}

static const ExactCase cases[] = {
    { "mapped-ram/plain", PATH_MAPPED_RAM },
    { "mapped-ram/multifd", PATH_MAPPED_RAM, .multifd = true },
    { "mapped-ram/lazy", PATH_MAPPED_RAM, .lazy = true },
    { "mapped-ram/lazy-multifd", PATH_MAPPED_RAM, .lazy = true,
      .multifd = true },
    { "mapped-ram/lazy-multifd-dio", PATH_MAPPED_RAM, .lazy = true,
      .multifd = true, .dio = true },
    { "mapped-ram/lazy-anon", PATH_MAPPED_RAM, .lazy = true,
      .dst = DST_ANON },
    { "mapped-ram/lazy-multifd-anon", PATH_MAPPED_RAM, .lazy = true,
      .multifd = true, .dst = DST_ANON },
    { "mapped-ram/lazy-hugetlbfs", PATH_MAPPED_RAM, .lazy = true,
      .dst = DST_HUGETLB },
    { "mapped-ram/lazy-multifd-hugetlbfs", PATH_MAPPED_RAM, .lazy = true,
      .multifd = true, .dst = DST_HUGETLB },
    { "mapped-ram/lazy-fd", PATH_MAPPED_RAM, .lazy = true, .lazy_fd = true },
    { "mapped-ram/lazy-x", PATH_MAPPED_RAM, .lazy = true, .lazy_x = true },
    { "mapped-ram/lazy-working-set", PATH_MAPPED_RAM, .lazy = true,
      .lazy_x = true, .lazy_wss = true },
    { "mapped-ram/lazy-cmdline", PATH_MAPPED_RAM, .lazy = true,
      .lazy_cmdline = true },
    { "mapped-ram/lazy-x-cmdline-anon", PATH_MAPPED_RAM, .lazy = true,
      .lazy_x = true, .lazy_cmdline = true, .dst = DST_ANON },
    { "mapped-ram/lazy-x-fd-multifd", PATH_MAPPED_RAM, .lazy = true,
      .lazy_x = true, .lazy_fd = true, .multifd = true },
    { "mapped-ram/lazy-eio", PATH_MAPPED_RAM, .lazy = true,
      .lazy_fault = LAZY_EIO },
    { "mapped-ram/lazy-eio-multifd", PATH_MAPPED_RAM, .lazy = true,
      .multifd = true, .lazy_fault = LAZY_EIO },
    { "mapped-ram/lazy-x-eio", PATH_MAPPED_RAM, .lazy = true, .lazy_x = true,
      .lazy_fault = LAZY_EIO },
    { "mapped-ram/lazy-touched", PATH_MAPPED_RAM, .lazy = true,
      .lazy_fault = LAZY_TOUCHED },
    { "mapped-ram/lazy-truncated", PATH_MAPPED_RAM, .lazy = true,
      .lazy_fault = LAZY_TRUNCATED },
    { "mapped-ram/lazy-cut", PATH_MAPPED_RAM, .lazy = true,
      .lazy_fault = LAZY_CUT },
    { "mapped-ram/multifd-dio", PATH_MAPPED_RAM, .multifd = true,
      .dio = true },
    { "xbzrle/rewrite", PATH_XBZRLE },
    { "postcopy/preempt", PATH_POSTCOPY, .preempt = true },
    { "postcopy/recovery-plain", PATH_POSTCOPY, .recover = true },
    { "postcopy/recovery-preempt", PATH_POSTCOPY, .preempt = true,
      .recover = true },
    { "postcopy/multifd", PATH_POSTCOPY, .preempt = true, .multifd = true },
    { "postcopy/multifd-recovery", PATH_POSTCOPY, .preempt = true,
      .multifd = true, .recover = true },
    { "postcopy/multifd-anon", PATH_POSTCOPY, .preempt = true,
      .multifd = true, .dst = DST_ANON },
    { "postcopy/multifd-one-side", PATH_POSTCOPY_MISMATCH },
    { "postcopy/vhost-user-blk", PATH_POSTCOPY, .preempt = true,
      .vhost_user = true },
    { "precopy/shmem", PATH_PRECOPY },
    { "multifd/shmem", PATH_PRECOPY, .multifd = true },
    { "precopy/anon", PATH_PRECOPY, .dst = DST_ANON },
    { "multifd/anon", PATH_PRECOPY, .multifd = true, .dst = DST_ANON },
    { "precopy/anon-nothp", PATH_PRECOPY, .dst = DST_ANON, .no_thp = true },
    { "multifd/anon-nothp", PATH_PRECOPY, .multifd = true, .dst = DST_ANON,
      .no_thp = true },
    { "postcopy/anon", PATH_POSTCOPY, .preempt = true, .dst = DST_ANON },
    { "precopy/hugetlbfs", PATH_PRECOPY, .dst = DST_HUGETLB },
    { "multifd/hugetlbfs", PATH_PRECOPY, .multifd = true,
      .dst = DST_HUGETLB },
    { "postcopy/hugetlbfs", PATH_POSTCOPY, .preempt = true,
      .dst = DST_HUGETLB },
};

int main(int argc, char **argv)
{
    const char *arch = qtest_get_arch();
    int ret;

    g_test_init(&argc, &argv, NULL);
    test_dir = g_path_get_dirname(argv[0]);
    if (strcmp(arch, "x86_64") && strcmp(arch, "i386")) {
        g_test_skip("x86 only");
        return g_test_run();
    }
    shm_dir = g_strdup("/dev/shm/ram-exact-XXXXXX");
    if (!g_mkdtemp(shm_dir)) {
        g_free(shm_dir);
        shm_dir = g_dir_make_tmp("ram-exact-XXXXXX", NULL);
    }
    g_assert(shm_dir);
    if (getenv("QTEST_HUGETLB_DIR")) {
        /* Runs in parallel (make check-compat) share the hugetlbfs */
        hugetlb_dir = g_strdup_printf("%s/ram-exact-XXXXXX",
                                      getenv("QTEST_HUGETLB_DIR"));
        g_assert(g_mkdtemp(hugetlb_dir));
    }

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/migration/ram-exact/%s",
                                                cases[i].name);

        qtest_add_data_func(path, &cases[i], test_exact);
    }
    ret = g_test_run();

    rmdir(shm_dir);
    g_free(shm_dir);
    if (hugetlb_dir) {
        rmdir(hugetlb_dir);
        g_free(hugetlb_dir);
    }
    return ret;
}
