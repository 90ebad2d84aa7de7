/*
 * Byte-exact guest RAM after a paused precopy migration
 *
 * The source QEMU never runs its guest (-S).  Its RAM is a shared file
 * on tmpfs, which this test fills with a pattern that exercises every
 * page kind the RAM engine distinguishes: zero pages, pages that are
 * zero but for one byte at either end, repeated-byte pages and
 * incompressible pseudo-random pages.  After the migration the
 * destination's RAM file must equal the source's byte for byte.
 *
 * Each case runs precopy on one channel, multifd with two channels, and
 * multifd with zstd.  QTEST_QEMU_BINARY_SRC and QTEST_QEMU_BINARY_DST
 * select different binaries for cross-version runs.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"

#define RAM_MIB         128
#define RAM_SIZE        ((size_t)RAM_MIB << 20)
#define PAGE_SIZE       4096

typedef struct {
    const char *name;
    bool multifd;
    const char *compression;
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

static QTestState *start_vm(const char *binary_var, const char *ram_path,
                            bool incoming)
{
    g_autofree char *args = g_strdup_printf(
        "-accel kvm -accel tcg -nodefaults -display none "
        "-machine pc,memory-backend=ram0 -m %dM "
        "-object memory-backend-file,id=ram0,size=%dM,mem-path=%s,share=on "
        "-S %s",
        RAM_MIB, RAM_MIB, ram_path, incoming ? "-incoming defer" : "");

    return qtest_init_ext(binary_var, args, NULL, true);
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

static void test_ram_integrity(const void *opaque)
{
    const IntegrityCase *c = opaque;
    g_autofree char *src_path = g_strdup_printf("%s/src-ram", tmpdir);
    g_autofree char *dst_path = g_strdup_printf("%s/dst-ram", tmpdir);
    g_autofree char *uri = g_strdup_printf("unix:%s/migsocket", tmpdir);
    QTestState *from, *to;
    uint8_t *src, *dst;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t page;

    from = start_vm("QTEST_QEMU_BINARY_SRC", src_path, false);
    to = start_vm("QTEST_QEMU_BINARY_DST", dst_path, true);
    g_test_message("%s: accelerator %s", c->name, accel_name(from));

    src = map_ram(src_path, true);
    for (page = 0; page < RAM_SIZE / PAGE_SIZE; page++) {
        fill_page(src + page * PAGE_SIZE, page, &seed);
    }

    setup_channels(from, c);
    setup_channels(to, c);
    migrate_incoming_qmp(to, uri, NULL, "{}");
    migrate_qmp(from, to, uri, NULL, "{}");
    wait_for_migration_complete(from);
    wait_for_migration_complete(to);

    dst = map_ram(dst_path, false);
    g_assert_cmpuint(compare_ram(src, dst), ==, 0);

    /* The destination must be able to run what it received. */
    qtest_qmp_assert_success(to, "{ 'execute': 'cont' }");

    munmap(src, RAM_SIZE);
    munmap(dst, RAM_SIZE);
    qtest_quit(from);
    qtest_quit(to);
    unlink(src_path);
    unlink(dst_path);
}

static const IntegrityCase cases[] = {
    { "precopy", false, NULL },
    { "multifd/none", true, "none" },
    { "multifd/zstd", true, "zstd" },
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

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/migration/ram-integrity/%s",
                                                cases[i].name);
        qtest_add_data_func(path, &cases[i], test_ram_integrity);
    }

    ret = g_test_run();

    sock = g_strdup_printf("%s/migsocket", tmpdir);
    unlink(sock);
    rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
