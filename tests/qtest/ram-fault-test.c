/*
 * Faults while the destination places guest RAM
 *
 * The destination's RAM is a shared file on a tmpfs too small for it,
 * so placing the pages runs out of space half way.  The branch writes
 * such pages into the file (precopy: pwritev()) or fills them with
 * UFFDIO_COPY (multifd), and a failure of either must fail the incoming
 * migration with the reason in error-desc: the destination must not die
 * of SIGBUS, as a store through the mapping would make it, nor hang.
 * The source must see the migration fail, keep its guest, and keep its
 * RAM byte for byte.
 *
 * Upstream's destination stores through the mapping: for precopy it
 * dies of SIGBUS.  When the destination is not the branch (a
 * cross-version run), the test accepts that, and still checks the
 * source.
 *
 * The test mounts the small tmpfs in a mount namespace of its own, which
 * the QEMUs it starts share: that takes root.
 *
 * fill/read-error: the branch's fault thread for multifd into shared
 * RAM (migration/ram/fill.c) gets EIO from read() on its userfaultfd,
 * from a shim preloaded into the destination (preload/uffd-read-eio.c),
 * as soon as the test touches a page the load has not placed yet.  The
 * thread must unregister the RAM, so that nothing waits for it, and the
 * migration must fail with the reason in error-desc.  Upstream has no
 * such thread: its destination completes.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"

#define RAM_MIB         64
#define RAM_SIZE        ((size_t)RAM_MIB << 20)
#define SMALL_MIB       16
#define PAGE_SIZE       4096

typedef struct {
    const char *name;
    bool multifd;
    bool small;                 /* the destination's RAM on the small tmpfs */
    const char *preload;        /* a shim of preload/ for the destination */
    const char *reason;         /* the branch: in error-desc */
    bool names_block;           /* the branch: error-desc names ram0 */
} FaultCase;

static char *tmpdir;            /* the source's RAM, on /dev/shm */
static char *small_dir;         /* the destination's, on a small tmpfs */
static char *test_dir;          /* where this test and its shims are */
static const char *no_mount;    /* why small_dir could not be mounted */

static QTestState *start_vm(const char *binary_var, const char *ram_path,
                            bool incoming)
{
    g_autofree char *args = g_strdup_printf(
        "-accel kvm -accel tcg -nodefaults -display none "
        "-machine pc,memory-backend=ram0 -m %dM "
        "-object memory-backend-file,id=ram0,size=%dM,mem-path=%s,share=on "
        "-S %s", RAM_MIB, RAM_MIB, ram_path,
        incoming ? "-incoming defer" : "");

    return qtest_init_ext(binary_var, args, NULL, true);
}

/*
 * The destination's binary, run with @preload (a shim built next to this
 * test) in LD_PRELOAD: libqtest runs "exec BINARY ARGS" in a shell.
 */
static const char *dst_binary_var(const char *preload)
{
    const char *bin = g_getenv("QTEST_QEMU_BINARY_DST") ?:
                      g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *lib = NULL;
    g_autofree char *cmd = NULL;

    if (!preload) {
        return "QTEST_QEMU_BINARY_DST";
    }
    g_assert(bin);
    lib = g_strdup_printf("%s/%s.so", test_dir, preload);
    g_assert(g_file_test(lib, G_FILE_TEST_EXISTS));
    cmd = g_strdup_printf("env LD_PRELOAD=%s %s", lib, bin);
    g_setenv("QTEST_QEMU_BINARY_DST_PRELOAD", cmd, true);
    return "QTEST_QEMU_BINARY_DST_PRELOAD";
}

static bool is_branch(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-version' }");
    bool branch = strstr(qdict_get_str(rsp, "package"),
                         "migration-branch") != NULL;

    qobject_unref(rsp);
    return branch;
}

/* Every page distinct and incompressible enough: none of it is zero. */
static void fill_page(uint8_t *page, size_t index)
{
    uint64_t s = index * 0x9e3779b97f4a7c15ULL + 1;

    for (size_t i = 0; i < PAGE_SIZE; i += sizeof(uint64_t)) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(page + i, &s, sizeof(s));
    }
}

static uint8_t *map_ram(const char *path)
{
    int fd = open(path, O_RDWR);
    void *p;

    g_assert_cmpint(fd, >=, 0);
    p = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    g_assert(p != MAP_FAILED);
    return p;
}

static char *dst_status(QTestState *to, char **error_desc)
{
    QDict *rsp = qtest_qmp_assert_success_ref(to,
                                              "{ 'execute': 'query-migrate' }");
    char *status = g_strdup(qdict_get_try_str(rsp, "status") ?: "");

    *error_desc = g_strdup(qdict_get_try_str(rsp, "error-desc") ?: "");
    qobject_unref(rsp);
    return status;
}

/*
 * Read pages near the end of the destination's RAM, which the source
 * sends last, until the incoming migration is over: the first read of a
 * page not placed yet faults, and the fault thread serves it (or fails).
 */
static void touch_while_loading(QTestState *to)
{
    g_autofree char *status = NULL;
    g_autofree char *error_desc = NULL;
    uint64_t addr = RAM_SIZE - 64 * PAGE_SIZE;

    for (int i = 0; i < 3000; i++) {
        g_free(status);
        g_free(error_desc);
        status = dst_status(to, &error_desc);
        if (!strcmp(status, "failed") || !strcmp(status, "completed")) {
            return;
        }
        if (!strcmp(status, "active")) {
            qtest_readb(to, addr);
            addr += PAGE_SIZE;
            if (addr == RAM_SIZE) {
                addr = RAM_SIZE - 64 * PAGE_SIZE;
            }
        }
        g_usleep(10 * 1000);
    }
    g_assert_not_reached();
}

/* The destination's RAM is the source's, byte for byte */
static void check_dst_ram(const char *dst_path)
{
    g_autofree uint8_t *expect = g_malloc(PAGE_SIZE);
    uint8_t *dst = map_ram(dst_path);

    for (size_t page = 0; page < RAM_SIZE / PAGE_SIZE; page++) {
        fill_page(expect, page);
        g_assert(!memcmp(dst + page * PAGE_SIZE, expect, PAGE_SIZE));
    }
    munmap(dst, RAM_SIZE);
}

static void test_fault(const void *opaque)
{
    const FaultCase *c = opaque;
    g_autofree char *src_path = g_strdup_printf("%s/src-ram", tmpdir);
    g_autofree char *dst_path = g_strdup_printf("%s/dst-ram",
                                                c->small ? small_dir : tmpdir);
    g_autofree char *uri = g_strdup_printf("unix:%s/migsocket", tmpdir);
    g_autofree char *status = NULL;
    g_autofree char *error_desc = NULL;
    g_autofree char *src_status = NULL;
    QTestState *from, *to;
    QDict *rsp;
    bool branch, died = false;
    uint8_t *src;
    g_autofree uint8_t *expect = g_malloc(PAGE_SIZE);
    size_t page;

    if (c->small && no_mount) {
        g_test_skip(no_mount);
        return;
    }
    from = start_vm("QTEST_QEMU_BINARY_SRC", src_path, false);
    to = start_vm(dst_binary_var(c->preload), dst_path, true);
    branch = is_branch(to);
    src = map_ram(src_path);
    for (page = 0; page < RAM_SIZE / PAGE_SIZE; page++) {
        fill_page(src + page * PAGE_SIZE, page);
    }
    if (c->multifd) {
        migrate_set_capability(from, "multifd", true);
        migrate_set_capability(to, "multifd", true);
        migrate_set_parameter_int(from, "multifd-channels", 2);
        migrate_set_parameter_int(to, "multifd-channels", 2);
    }
    if (c->preload) {
        /* 64 MiB in about 4 s: time to touch pages before they arrive */
        migrate_set_parameter_int(from, "max-bandwidth", 16 << 20);
    }
    migrate_incoming_qmp(to, uri, NULL, "{ 'exit-on-error': false }");
    migrate_qmp(from, to, uri, NULL, "{}");
    if (c->preload) {
        touch_while_loading(to);
    }

    /*
     * The source fails once the destination failed or died: asking the
     * destination before could race with its death (upstream's SIGBUS),
     * which libqtest takes for a failure of the test.
     */
    for (int i = 0; i < 600; i++) {
        g_free(src_status);
        src_status = migrate_query_status(from);
        if (!strcmp(src_status, "failed") ||
            !strcmp(src_status, "completed")) {
            break;
        }
        g_usleep(100 * 1000);
    }
    if (c->preload && !branch) {
        /* Upstream has no fault thread to break: the migration succeeds. */
        g_assert_cmpstr(src_status, ==, "completed");
        wait_for_migration_complete(to);
        check_dst_ram(dst_path);
        munmap(src, RAM_SIZE);
        qtest_quit(from);
        qtest_quit(to);
        unlink(src_path);
        unlink(dst_path);
        return;
    }
    g_assert_cmpstr(src_status, ==, "failed");

    /* The destination has failed, or (upstream) died. */
    for (int i = 0; i < 100; i++) {
        if (!qtest_probe_child(to)) {
            died = true;
            break;
        }
        g_free(status);
        g_free(error_desc);
        status = dst_status(to, &error_desc);
        if (!strcmp(status, "failed") || !strcmp(status, "completed")) {
            break;
        }
        g_usleep(100 * 1000);
    }
    g_test_message("%s: destination %s%s%s", c->name,
                   died ? "died" : status, died ? "" : ": ",
                   died ? "" : error_desc);
    if (branch) {
        g_assert_false(died);
        g_assert_cmpstr(status, ==, "failed");
        g_assert_nonnull(strstr(error_desc, c->reason));
        if (c->names_block) {
            g_assert_nonnull(strstr(error_desc, "RAMBlock 'ram0'"));
        }
        /* Still answers, and can run what it has if asked. */
        qtest_qmp_assert_success(to, "{ 'execute': 'query-status' }");
    } else {
        g_assert_true(died || !strcmp(status, "failed"));
    }

    /* The source's guest is still there, its RAM unchanged. */
    for (page = 0; page < RAM_SIZE / PAGE_SIZE; page++) {
        fill_page(expect, page);
        g_assert(!memcmp(src + page * PAGE_SIZE, expect, PAGE_SIZE));
    }
    qtest_qmp_assert_success(from, "{ 'execute': 'cont' }");
    rsp = qtest_qmp_assert_success_ref(from, "{ 'execute': 'query-status' }");
    g_assert_true(qdict_get_bool(rsp, "running"));
    qobject_unref(rsp);

    munmap(src, RAM_SIZE);
    qtest_quit(from);
    if (!died) {
        qtest_quit(to);
    }
    /* A dead destination's QTestState stays: libqtest aborts on it. */
    unlink(src_path);
    unlink(dst_path);
}

static const FaultCase cases[] = {
    { "enospc/precopy", false, true, NULL, "No space left on device", true },
    /* UFFDIO_COPY into a full tmpfs fails with ENOMEM */
    { "enospc/multifd", true, true, NULL, "Cannot allocate memory", true },
    { "fill/read-error", true, false, "uffd-read-eio",
      "RAM: reading the userfaultfd of guest RAM failed: Input/output error",
      false },
};

/*
 * A tmpfs of SMALL_MIB in a mount namespace of this process, which the
 * QEMUs it starts inherit; nothing outside sees it.
 */
static void mount_small_tmpfs(void)
{
    g_autofree char *opts = g_strdup_printf("size=%dm,mode=0700", SMALL_MIB);

    small_dir = g_strdup_printf("%s/small", tmpdir);
    g_assert_cmpint(g_mkdir_with_parents(small_dir, 0700), ==, 0);
    if (geteuid() != 0) {
        no_mount = "mounting a small tmpfs takes root";
        return;
    }
    if (unshare(CLONE_NEWNS) ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("ram-fault", small_dir, "tmpfs", 0, opts)) {
        no_mount = "cannot mount a small tmpfs in a mount namespace";
    }
}

int main(int argc, char **argv)
{
    const char *arch = qtest_get_arch();
    g_autofree char *sock = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);

    if (strcmp(arch, "x86_64") && strcmp(arch, "i386")) {
        g_test_skip("x86 only");
        return g_test_run();
    }

    test_dir = g_path_get_dirname(argv[0]);
    tmpdir = g_strdup("/dev/shm/ram-fault-XXXXXX");
    g_assert(g_mkdtemp(tmpdir));
    mount_small_tmpfs();

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/migration/ram-fault/%s",
                                                cases[i].name);
        qtest_add_data_func(path, &cases[i], test_fault);
    }

    ret = g_test_run();

    if (!no_mount) {
        umount(small_dir);
    }
    rmdir(small_dir);
    sock = g_strdup_printf("%s/migsocket", tmpdir);
    unlink(sock);
    rmdir(tmpdir);
    g_free(small_dir);
    g_free(tmpdir);
    return ret;
}
