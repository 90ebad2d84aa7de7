/*
 * Bad input on the destination, and dropped connections
 *
 * A migration stream that is truncated, corrupted, or meant for another
 * guest must make the incoming migration fail with an error that says so,
 * and never complete.  A connection dropped at either end must fail the
 * other end, and the source must keep its guest running with its memory
 * intact.
 *
 * The stream cases take a clean precopy stream saved to a file (the same
 * records as on a socket), damage one copy of it per case and load that
 * with migrate-incoming (exit-on-error off, so that query-migrate can be
 * read).  The branch's RAM loader puts the precise reason (an unknown
 * RAMBlock, a size mismatch, unknown record flags, where the stream
 * ended), the block, the offset and the stream offset into
 * query-migrate's error-desc, and the test checks that it does: it maps
 * the clean stream, so it knows the record that each case damages or
 * cuts, and checks its stream offset, block and offset, and for a cut the
 * length at which the stream ended.  Upstream QEMU reports those reasons
 * only on stderr; when the destination is not the branch (its
 * query-version package does not name it), the test checks stderr
 * instead.
 *
 * QTEST_QEMU_BINARY_SRC and QTEST_QEMU_BINARY_DST select different
 * binaries for cross-version runs.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"

#define RAM_MIB         64
#define PAGE_SIZE       4096
#define FILL_START      (16 << 20)
#define FILL_SIZE       (32 << 20)
#define BLOCK_RECORD    "\x06pc.ram"    /* length byte, then the idstr */
#define RAM_FLAG_ZERO   0x002
#define RAM_FLAG_MEM_SIZE 0x004
#define RAM_FLAG_PAGE   0x008
#define RAM_FLAG_CONT   0x020
/* A page in the middle of the filled RAM: the stream is cut in its data. */
#define MID_PAGE        (FILL_START + FILL_SIZE / 2)
/*
 * A page the guest never wrote, well inside RAM that is all zero: a
 * source of the branch sends it within a run of zero page records
 * (ram_save_hole_run()), which a destination of the branch takes at once
 * (ram_load_zero_run()).
 */
#define RUN_PAGE        (8 << 20)
#define RAM_FLAG_UNUSED 0x100           /* once COMPRESS_PAGE, now invalid */
#define QEMU_VM_EOF     0x00
#define QEMU_VM_VMDESC  0x06

/* Where the interesting records of the clean stream are. */
typedef struct {
    size_t mem_size;    /* header of the setup section's block list record */
    size_t block_list;  /* "pc.ram" in that block list, its first entry */
    size_t first_page;  /* header (addr | flags) of its first page record */
    size_t mid_page;    /* header of the PAGE record of MID_PAGE */
    size_t mid_data;    /* the page data of that record */
    size_t run_page;    /* header of the zero page record of RUN_PAGE */
    size_t eof;         /* QEMU_VM_EOF, before the JSON VM description */
} StreamMap;

/* The record that the branch's error-desc must name, if the test knows */
typedef enum {
    AT_UNKNOWN,
    AT_BLOCK_LIST,      /* map.mem_size */
    AT_FIRST_PAGE,      /* map.first_page */
    AT_MID_PAGE,        /* map.mid_page */
    AT_RUN_PAGE,        /* map.run_page */
} RecordAt;

typedef enum {
    CUT_IN_SETUP,
    CUT_IN_PAGES,
    CUT_BEFORE_EOF,
    EMPTY,
    BAD_MAGIC,
    BAD_FLAGS,
    BAD_ZERO_FILL,
    BAD_OFFSET,
    CUT_IN_RUN,
    BAD_ZERO_FILL_IN_RUN,
    BAD_OFFSET_IN_RUN,
    BAD_BLOCK_NAME,
    NONE,
} Damage;

typedef struct {
    const char *name;
    Damage damage;
    int dst_ram_mib;
    const char *error_desc;     /* must be in query-migrate's error-desc */
    const char *stderr_msg;     /* upstream: must be in its stderr */
    const char *branch_desc;    /* the branch: must be in error-desc */
    /*
     * The branch: error-desc must name the stream offset of this record
     * and, if block is set, the block and the offset in it.
     */
    RecordAt at;
    const char *block;
    uint64_t addr;
} BadStreamCase;

static char *tmpdir;
static char *clean_stream;
static StreamMap map;

static QTestState *start_vm(const char *binary_var, int ram_mib,
                            const char *extra, const char *stderr_path)
{
    g_autofree char *args = g_strdup_printf(
        "-accel kvm -accel tcg -nodefaults -display none -m %dM %s 2>%s",
        ram_mib, extra, stderr_path ? stderr_path : "/dev/null");

    return qtest_init_ext(binary_var, args, NULL, true);
}

/* Byte @i of the page at FILL_START + @off, as fill_ram() writes it */
static uint8_t fill_byte(size_t off, size_t i)
{
    return (uint8_t)(off / PAGE_SIZE * 31 + i * 7);
}

/* Pages that are neither zero nor alike, so that PAGE records are sent. */
static void fill_ram(QTestState *qts)
{
    g_autofree uint8_t *buf = g_malloc(PAGE_SIZE);
    size_t off, i;

    for (off = 0; off < FILL_SIZE; off += PAGE_SIZE) {
        for (i = 0; i < PAGE_SIZE; i++) {
            buf[i] = fill_byte(off, i);
        }
        qtest_memwrite(qts, FILL_START + off, buf, PAGE_SIZE);
    }
}

static bool ram_intact(QTestState *qts)
{
    g_autofree uint8_t *buf = g_malloc(PAGE_SIZE);
    size_t off, i;

    for (off = 0; off < FILL_SIZE; off += PAGE_SIZE) {
        qtest_memread(qts, FILL_START + off, buf, PAGE_SIZE);
        for (i = 0; i < PAGE_SIZE; i++) {
            if (buf[i] != fill_byte(off, i)) {
                g_test_message("source RAM changed at 0x%zx",
                               FILL_START + off + i);
                return false;
            }
        }
    }
    return true;
}

static size_t find(const GByteArray *s, size_t from, const char *what,
                   size_t len)
{
    const uint8_t *p = memmem(s->data + from, s->len - from, what, len);

    g_assert(p);
    return p - s->data;
}

/*
 * The stream ends with QEMU_VM_EOF, then QEMU_VM_VMDESCRIPTION, a be32
 * length and that much JSON up to the end of the file.
 */
static size_t find_eof(const GByteArray *s)
{
    size_t p;

    for (p = s->len - 5; p > 0; p--) {
        if (s->data[p] == QEMU_VM_VMDESC && s->data[p - 1] == QEMU_VM_EOF &&
            ldl_be_p(s->data + p + 1) == s->len - p - 5) {
            return p - 1;
        }
    }
    g_assert_not_reached();
}

/*
 * The PAGE record of the filled page at @addr: its header, perhaps the
 * block's name, then the page's data, which starts at *@data.
 */
static size_t find_page_record(const GByteArray *s, size_t from,
                               uint64_t addr, size_t *data)
{
    size_t name = strlen(BLOCK_RECORD);
    uint8_t rec[8 + sizeof(BLOCK_RECORD) + 16];
    const uint8_t *p;
    size_t len, i;
    int cont;

    for (cont = 1; cont >= 0; cont--) {
        stq_be_p(rec, addr | RAM_FLAG_PAGE | (cont ? RAM_FLAG_CONT : 0));
        len = 8;
        if (!cont) {
            memcpy(rec + len, BLOCK_RECORD, name);
            len += name;
        }
        for (i = 0; i < 16; i++) {
            rec[len++] = fill_byte(addr - FILL_START, i);
        }
        p = memmem(s->data + from, s->len - from, rec, len);
        if (p) {
            *data = p - s->data + len - 16;
            return p - s->data;
        }
    }
    g_assert_not_reached();
}

static void map_stream(const GByteArray *s)
{
    size_t len = strlen(BLOCK_RECORD);
    uint8_t run_record[9] = { 0 };

    stq_be_p(run_record, RUN_PAGE | RAM_FLAG_ZERO | RAM_FLAG_CONT);

    map.block_list = find(s, 0, BLOCK_RECORD, len);
    /* pc.ram, the largest RAMBlock, is first in the list: no name before */
    map.mem_size = map.block_list - 8;
    g_assert_cmphex(ldq_be_p(s->data + map.mem_size) & 0xfff, ==,
                    RAM_FLAG_MEM_SIZE);
    /* The first page record of the block names it after its header. */
    map.first_page = find(s, map.block_list + len, BLOCK_RECORD, len) - 8;
    map.eof = find_eof(s);
    g_assert_cmpuint(map.first_page, <, map.eof);
    map.mid_page = find_page_record(s, map.first_page, MID_PAGE,
                                    &map.mid_data);
    g_assert_cmpuint(map.mid_data + PAGE_SIZE, <, map.eof);
    map.run_page = find(s, map.first_page, (char *)run_record,
                        sizeof(run_record));
    g_assert_cmpuint(map.run_page, <, map.eof);
}

static GByteArray *read_stream(const char *path)
{
    gchar *data;
    gsize len;

    g_assert(g_file_get_contents(path, &data, &len, NULL));
    return g_byte_array_new_take((guint8 *)data, len);
}

/*
 * Save a paused guest with known RAM contents to clean_stream, once per
 * process (each case may run in a process of its own).
 */
static void save_clean_stream(void)
{
    g_autofree char *uri = NULL;
    g_autoptr(GByteArray) s = NULL;
    QTestState *from;

    if (clean_stream) {
        return;
    }
    clean_stream = g_strdup_printf("%s/clean", tmpdir);
    uri = g_strdup_printf("file:%s", clean_stream);
    from = start_vm("QTEST_QEMU_BINARY_SRC", RAM_MIB, "-S", NULL);
    fill_ram(from);
    migrate_qmp(from, NULL, uri, NULL, "{}");
    wait_for_migration_complete(from);
    qtest_quit(from);

    s = read_stream(clean_stream);
    map_stream(s);
}

static void damage(GByteArray *s, Damage d)
{
    uint64_t header;

    switch (d) {
    case CUT_IN_SETUP:
        g_byte_array_set_size(s, map.block_list + 4);
        break;
    case CUT_IN_PAGES:
        /* In the middle of the data of the page in the middle */
        g_byte_array_set_size(s, map.mid_data + PAGE_SIZE / 2);
        break;
    case CUT_BEFORE_EOF:
        g_byte_array_set_size(s, map.eof);
        break;
    case EMPTY:
        g_byte_array_set_size(s, 0);
        break;
    case BAD_MAGIC:
        s->data[0] ^= 0xff;
        break;
    case BAD_FLAGS:
        header = ldq_be_p(s->data + map.first_page);
        stq_be_p(s->data + map.first_page, header | RAM_FLAG_UNUSED);
        break;
    case BAD_ZERO_FILL:
        /* The first page is zero: its record ends with the fill byte. */
        header = ldq_be_p(s->data + map.first_page);
        g_assert_cmphex(header & 0xfff, ==, RAM_FLAG_ZERO);
        s->data[map.first_page + 8 + strlen(BLOCK_RECORD)] = 0x5a;
        break;
    case BAD_OFFSET:
        header = ldq_be_p(s->data + map.first_page);
        stq_be_p(s->data + map.first_page,
                 header | ((uint64_t)RAM_MIB << 20));
        break;
    case CUT_IN_RUN:
        /* In the middle of a record of the run */
        g_byte_array_set_size(s, map.run_page + 4);
        break;
    case BAD_ZERO_FILL_IN_RUN:
        s->data[map.run_page + 8] = 0x5a;
        break;
    case BAD_OFFSET_IN_RUN:
        header = ldq_be_p(s->data + map.run_page);
        stq_be_p(s->data + map.run_page, header | ((uint64_t)RAM_MIB << 20));
        break;
    case BAD_BLOCK_NAME:
        s->data[map.block_list + strlen(BLOCK_RECORD) - 1] = 'x';
        break;
    case NONE:
        break;
    }
}

static char *query_error(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-migrate' }");
    char *desc = g_strdup(qdict_get_try_str(rsp, "error-desc"));

    qobject_unref(rsp);
    return desc;
}

static bool vm_running(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-status' }");
    bool running = qdict_get_bool(rsp, "running");

    if (!running) {
        /* Say which state, to tell a guest's error from a migration's. */
        g_test_message("runstate: %s", qdict_get_str(rsp, "status"));
    }
    qobject_unref(rsp);
    return running;
}

/* Whether @qts runs the migration branch's RAM engine. */
static bool is_branch(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-version' }");
    bool branch = strstr(qdict_get_str(rsp, "package"), "migration-branch");

    qobject_unref(rsp);
    return branch;
}

static void assert_in_desc(const char *desc, const char *want)
{
    if (!strstr(desc, want)) {
        g_test_message("error-desc lacks: %s", want);
    }
    g_assert(strstr(desc, want));
}

static size_t record_offset(RecordAt at)
{
    switch (at) {
    case AT_BLOCK_LIST:
        return map.mem_size;
    case AT_FIRST_PAGE:
        return map.first_page;
    case AT_MID_PAGE:
        return map.mid_page;
    case AT_RUN_PAGE:
        return map.run_page;
    default:
        g_assert_not_reached();
    }
}

/*
 * The branch says where the stream went wrong: how long it was if it was
 * cut (@cut bytes, else 0), and which record was cut or bad: its stream
 * offset and, for a page record, its block and offset there.
 */
static void check_branch_where(const char *desc, const BadStreamCase *c,
                               size_t cut)
{
    g_autofree char *end = NULL;
    g_autofree char *where = NULL;

    if (cut) {
        end = g_strdup_printf("end of stream after %zu bytes", cut);
        assert_in_desc(desc, end);
    }
    if (c->at == AT_UNKNOWN) {
        return;
    }
    if (c->block) {
        where = g_strdup_printf("(block '%s' offset 0x%" PRIx64 ", record "
                                "at stream offset %zu)", c->block, c->addr,
                                record_offset(c->at));
    } else {
        where = g_strdup_printf("(record at stream offset %zu)",
                                record_offset(c->at));
    }
    assert_in_desc(desc, where);
}

/*
 * The destination failed, said why, and did not start the guest.  @cut:
 * the length of a stream that was cut short where the test knows, or 0.
 */
static void check_failed(QTestState *to, const char *stderr_path,
                         const BadStreamCase *c, size_t cut)
{
    g_autofree char *desc = NULL;
    g_autofree char *err = NULL;
    bool branch = is_branch(to);

    wait_for_migration_status(to, "failed", (const char * []) {
                                  "completed", NULL });
    desc = query_error(to);
    g_test_message("error-desc (%s): %s", branch ? "branch" : "upstream",
                   desc);
    g_assert(desc && *desc);
    if (c && c->error_desc) {
        g_assert(strstr(desc, c->error_desc));
    }
    if (c && c->branch_desc && branch) {
        g_assert(strstr(desc, c->branch_desc));
    }
    if (c && branch) {
        check_branch_where(desc, c, cut);
    }
    g_assert_false(vm_running(to));

    g_assert(g_file_get_contents(stderr_path, &err, NULL, NULL));
    if (c && c->stderr_msg && !branch) {
        g_test_message("stderr: %s", err);
        g_assert(strstr(err, c->stderr_msg));
    }
}

static void test_bad_stream(const void *opaque)
{
    const BadStreamCase *c = opaque;
    g_autofree char *path = g_strdup_printf("%s/damaged", tmpdir);
    g_autofree char *log = g_strdup_printf("%s/dst.stderr", tmpdir);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autoptr(GByteArray) s = NULL;
    QTestState *to;
    size_t cut = 0;

    save_clean_stream();
    s = read_stream(clean_stream);
    damage(s, c->damage);
    switch (c->damage) {
    case CUT_IN_SETUP:
    case CUT_IN_PAGES:
    case CUT_BEFORE_EOF:
    case CUT_IN_RUN:
        cut = s->len;
        break;
    default:
        break;
    }
    g_assert(g_file_set_contents(path, (char *)s->data, s->len, NULL));

    to = start_vm("QTEST_QEMU_BINARY_DST", c->dst_ram_mib,
                  "-S -incoming defer", log);
    migrate_incoming_qmp(to, uri, NULL, "{ 'exit-on-error': false }");
    if (c->damage == NONE && c->dst_ram_mib == RAM_MIB) {
        /* The control case: the clean stream loads. */
        wait_for_migration_complete(to);
        g_assert(ram_intact(to));
    } else {
        check_failed(to, log, c, cut);
    }
    qtest_quit(to);
    unlink(path);
    unlink(log);
}

/*
 * Wait until the firmware of a running guest has finished its POST.
 * SeaBIOS runs its init code from the top of the RAM below its high
 * zone (just under 48 MiB with 64 MiB of RAM), which fill_ram()
 * overwrites; a guest whose firmware is still at work there jumps into
 * the pattern and stops with a KVM internal error, on vanilla QEMU as
 * much as on the branch.  With no boot device and no reboot timeout,
 * SeaBIOS says so on its debug port and then idles for good.
 */
static void wait_for_firmware(const char *fw_log)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;

    for (;;) {
        g_autofree char *out = NULL;

        if (g_file_get_contents(fw_log, &out, NULL, NULL) &&
            strstr(out, "No bootable device")) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
    }
}

/*
 * A live migration over a socket, slowed down so that it is still
 * running when one end goes away.
 */
static void start_slow_migration(QTestState **from, QTestState **to,
                                 const char *dst_log)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/migsocket", tmpdir);
    g_autofree char *fw_log = g_strdup_printf("%s/firmware.log", tmpdir);
    g_autofree char *src_args = g_strdup_printf(
        "-boot reboot-timeout=-1 -chardev file,id=fw,path=%s "
        "-device isa-debugcon,chardev=fw,iobase=0x402", fw_log);

    *from = start_vm("QTEST_QEMU_BINARY_SRC", RAM_MIB, src_args, NULL);
    *to = start_vm("QTEST_QEMU_BINARY_DST", RAM_MIB, "-incoming defer",
                   dst_log);
    wait_for_firmware(fw_log);
    unlink(fw_log);
    fill_ram(*from);
    migrate_set_parameter_int(*from, "max-bandwidth", 8 << 20);
    migrate_incoming_qmp(*to, uri, NULL, "{ 'exit-on-error': false }");
    migrate_qmp(*from, *to, uri, NULL, "{}");
    while (read_ram_property_int(*from, "transferred") < (4 << 20)) {
        g_usleep(20 * 1000);
    }
}

static void test_destination_lost(void)
{
    g_autofree char *desc = NULL;
    QTestState *from, *to;

    start_slow_migration(&from, &to, NULL);
    qtest_kill_qemu(to);

    wait_for_migration_status(from, "failed", (const char * []) {
                                  "completed", NULL });
    desc = query_error(from);
    g_test_message("source error-desc: %s", desc);
    g_assert(desc && *desc);
    /* A unix socket whose other end is gone fails the next write. */
    assert_in_desc(desc, "Unable to write to socket: Broken pipe");
    /* The source keeps its guest, running, with its memory. */
    g_assert(vm_running(from));
    g_assert(ram_intact(from));

    qtest_quit(to);
    qtest_quit(from);
}

static void test_source_lost(void)
{
    g_autofree char *log = g_strdup_printf("%s/dst.stderr", tmpdir);
    g_autofree char *desc = NULL;
    g_autofree char *err = NULL;
    QTestState *from, *to;

    start_slow_migration(&from, &to, log);
    qtest_kill_qemu(from);

    check_failed(to, log, NULL, 0);
    /*
     * On the branch, error-desc says that the stream ended, wherever the
     * source was cut off.  Where that is depends on when it was killed: in
     * a record or a section header the reason names the end of the
     * stream; between the last record of a section and its footer (where
     * a source that sleeps for its rate limit usually is), upstream's
     * loader reports a footer error and only stderr has the reason.
     */
    desc = query_error(to);
    if (is_branch(to) && !strstr(desc, "end of stream after ")) {
        assert_in_desc(desc, "Section footer error");
        g_assert(g_file_get_contents(log, &err, NULL, NULL));
        g_test_message("stderr: %s", err);
        g_assert(strstr(err, "Read section footer failed: -5"));
    }
    qtest_quit(from);
    qtest_quit(to);
    unlink(log);
}

static const BadStreamCase stream_cases[] = {
    { "control", NONE, RAM_MIB },
    { "truncated/setup", CUT_IN_SETUP, RAM_MIB, NULL, NULL,
      "RAM: stream ended or failed in the block list: end of stream "
      "after ", AT_BLOCK_LIST },
    { "truncated/pages", CUT_IN_PAGES, RAM_MIB, NULL, NULL,
      "RAM: stream ended or failed in page data: end of stream after ",
      AT_MID_PAGE, "pc.ram", MID_PAGE },
    /* Where the next section would start: the loader of sections says */
    { "truncated/before-eof", CUT_BEFORE_EOF, RAM_MIB, NULL, NULL,
      "Failed to load section ID: stream error: -5: end of stream after " },
    { "empty", EMPTY, RAM_MIB, "Not a migration stream" },
    { "bad-magic", BAD_MAGIC, RAM_MIB, "Not a migration stream" },
    { "unknown-flags", BAD_FLAGS, RAM_MIB, NULL,
      "Unknown combination of migration flags",
      "RAM: unknown combination of record flags 0x102 "
      "(block 'pc.ram' offset 0x0, record at stream offset ",
      AT_FIRST_PAGE, "pc.ram", 0 },
    { "zero-page-fill", BAD_ZERO_FILL, RAM_MIB, NULL,
      "Found a zero page with value 90",
      "RAM: zero page record with fill byte 0x5a "
      "(block 'pc.ram' offset 0x0, record at stream offset ",
      AT_FIRST_PAGE, "pc.ram", 0 },
    { "page-offset", BAD_OFFSET, RAM_MIB, NULL,
      "Illegal RAM offset 4000000",
      "RAM: page offset beyond the RAMBlock's 0x4000000 bytes "
      "(block 'pc.ram' offset 0x4000000, record at stream offset ",
      AT_FIRST_PAGE, "pc.ram", (uint64_t)RAM_MIB << 20 },
    { "zero-run/truncated", CUT_IN_RUN, RAM_MIB, NULL, NULL,
      "RAM: stream ended or failed in a record header: end of stream "
      "after ", AT_RUN_PAGE },
    { "zero-run/fill", BAD_ZERO_FILL_IN_RUN, RAM_MIB, NULL,
      "Found a zero page with value 90",
      "RAM: zero page record with fill byte 0x5a "
      "(block 'pc.ram' offset 0x800000, record at stream offset ",
      AT_RUN_PAGE, "pc.ram", RUN_PAGE },
    { "zero-run/offset", BAD_OFFSET_IN_RUN, RAM_MIB, NULL,
      "Illegal RAM offset 4800000",
      "RAM: page offset beyond the RAMBlock's 0x4000000 bytes "
      "(block 'pc.ram' offset 0x4800000, record at stream offset ",
      AT_RUN_PAGE, "pc.ram", RUN_PAGE | (uint64_t)RAM_MIB << 20 },
    { "ramblock/unknown", BAD_BLOCK_NAME, RAM_MIB, NULL,
      "Unknown ramblock \"pc.rax\"",
      "RAM: the source has RAMBlock 'pc.rax' and this QEMU does not "
      "(record at stream offset ", AT_BLOCK_LIST },
    { "ramblock/size", NONE, RAM_MIB * 2, NULL, "Size mismatch: pc.ram",
      "RAM: block list: Size mismatch: pc.ram: 0x4000000 != 0x8000000: "
      "Invalid argument (record at stream offset ", AT_BLOCK_LIST },
};

/*
 * Inputs that the loader fuzzer (make fuzz, scripts/fuzz.sh) found
 * crashing a build; the inputs are in tests/fuzz-regressions/.  They sit
 * in upstream's savevm.c, and a destination reaches them without a
 * fuzzer.
 */

#define QEMU_VM_FILE_MAGIC      0x5145564d
#define QEMU_VM_FILE_VERSION    3
#define QEMU_VM_CONFIGURATION   0x07
#define QEMU_VM_SUBSECTION      0x05

/* The stream header and the configuration section's machine name */
static GByteArray *stream_head(const char *machine)
{
    GByteArray *s = g_byte_array_new();
    uint8_t be[4];

    stl_be_p(be, QEMU_VM_FILE_MAGIC);
    g_byte_array_append(s, be, 4);
    stl_be_p(be, QEMU_VM_FILE_VERSION);
    g_byte_array_append(s, be, 4);
    g_byte_array_append(s, (uint8_t []) { QEMU_VM_CONFIGURATION }, 1);
    stl_be_p(be, strlen(machine));
    g_byte_array_append(s, be, 4);
    g_byte_array_append(s, (const uint8_t *)machine, strlen(machine));
    return s;
}

static void wait_for_job(QTestState *qts, const char *id)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (;;) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-jobs' }");
        QList *jobs = qdict_get_qlist(rsp, "return");
        const QListEntry *e;
        bool done = false;

        QLIST_FOREACH_ENTRY(jobs, e) {
            QDict *job = qobject_to(QDict, qlist_entry_obj(e));

            if (!strcmp(qdict_get_str(job, "id"), id)) {
                g_assert_false(qdict_haskey(job, "error"));
                done = !strcmp(qdict_get_str(job, "status"), "concluded");
            }
        }
        qobject_unref(rsp);
        if (done) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
    }
    qtest_qmp_assert_success(qts, "{ 'execute': 'job-dismiss', "
                             "'arguments': { 'id': %s } }", id);
}

/*
 * Overwrite the start of snapshot @name's VM state in the qcow2 @image
 * with @data.  The VM state of a qcow2 snapshot is data in the clusters
 * that its L1 table maps past the guest disk, from the first L1 entry
 * beyond it (qcow2_vm_state_offset()).
 */
static void qcow2_put_vmstate(const char *image, const char *name,
                              const GByteArray *data)
{
    const uint64_t offset_mask = 0x00fffffffffffe00ULL;
    g_autofree uint8_t *buf = NULL;
    uint64_t sn_off, l1_off, l2_off, cluster, disk_size;
    uint32_t cluster_bits, nb_sn, extra, l1_size;
    uint16_t id_len, name_len;
    unsigned l1_index;
    gsize len;
    int fd;

    g_assert(g_file_get_contents(image, (char **)&buf, &len, NULL));
    g_assert_cmpuint(ldl_be_p(buf), ==, 0x514649fb);    /* "QFI\xfb" */
    cluster_bits = ldl_be_p(buf + 20);
    disk_size = ldq_be_p(buf + 24);
    nb_sn = ldl_be_p(buf + 60);
    sn_off = ldq_be_p(buf + 64);
    /* Guest bytes that one L2 table maps, as in size_to_l1() */
    l1_index = DIV_ROUND_UP(disk_size, 1ULL << (2 * cluster_bits - 3));

    for (; nb_sn; nb_sn--) {
        const uint8_t *sn = buf + sn_off;

        l1_off = ldq_be_p(sn);
        l1_size = ldl_be_p(sn + 8);
        id_len = lduw_be_p(sn + 12);
        name_len = lduw_be_p(sn + 14);
        extra = ldl_be_p(sn + 36);
        if (name_len == strlen(name) &&
            !memcmp(sn + 40 + extra + id_len, name, name_len)) {
            break;
        }
        sn_off = ROUND_UP(sn_off + 40 + extra + id_len + name_len, 8);
    }
    g_assert(nb_sn);
    g_assert_cmpuint(l1_index, <, l1_size);
    l2_off = ldq_be_p(buf + l1_off + 8 * l1_index) & offset_mask;
    g_assert(l2_off);
    cluster = ldq_be_p(buf + l2_off);
    /* Neither compressed nor a zero cluster: plain data */
    g_assert_false(cluster & (1ULL << 62));
    g_assert_false(cluster & 1);
    cluster &= offset_mask;
    g_assert(cluster);
    g_assert_cmpuint(data->len, <=, 1ULL << cluster_bits);

    fd = open(image, O_WRONLY);
    g_assert(fd >= 0);
    g_assert_cmpint(pwrite(fd, data->data, data->len, cluster), ==,
                    data->len);
    close(fd);
}

/*
 * A qcow2 image with two internal snapshots of a paused guest whose RAM
 * fill_ram() wrote, saved by the source binary: "good", and "bad" whose
 * VM state then starts with @bad.  The image is made by QEMU itself
 * (blockdev-create), as the build has no qemu-img.
 */
static char *save_snapshot_image(const GByteArray *bad)
{
    g_autofree char *args = NULL;
    char *image = g_strdup_printf("%s/snap.qcow2", tmpdir);
    QTestState *from;
    int i;

    g_assert(g_file_set_contents(image, "", 0, NULL));
    args = g_strdup_printf("-S -blockdev driver=file,filename=%s,"
                           "node-name=file0", image);
    from = start_vm("QTEST_QEMU_BINARY_SRC", RAM_MIB, args, NULL);
    qtest_qmp_assert_success(from, "{ 'execute': 'blockdev-create', "
                             "'arguments': { 'job-id': 'create', "
                             "'options': { 'driver': 'qcow2', "
                             "'file': 'file0', 'size': 1048576 } } }");
    wait_for_job(from, "create");
    qtest_qmp_assert_success(from, "{ 'execute': 'blockdev-add', "
                             "'arguments': { 'driver': 'qcow2', "
                             "'node-name': 'disk0', 'file': 'file0' } }");
    fill_ram(from);
    for (i = 0; i < 2; i++) {
        g_autofree char *out = qtest_hmp(from, "savevm %s",
                                         i ? "bad" : "good");

        g_assert_cmpstr(out, ==, "");
    }
    qtest_quit(from);
    qcow2_put_vmstate(image, "bad", bad);
    return image;
}

/*
 * tests/fuzz-regressions/savevm-stale-caps-*: a load that fails inside
 * the configuration's capabilities subsection must not leave its
 * capabilities behind for the next load in the same process.  Upstream
 * left caps_count and a half-filled array in savevm_state; the next load
 * validated them, and set_bit() wrote wherever a garbage capability number
 * pointed (SEGV under ASan; vanilla 10.2.2 dies here).  The first load is
 * loadvm of a snapshot whose VM state's capabilities subsection counts 16
 * capabilities and names an unknown one; the second, in the same process,
 * is loadvm of a good snapshot, which must restore the guest's RAM
 * exactly.  (Not migrate-incoming for the first: after a failed incoming
 * migration, upstream's loadvm refuses to load anything, as the
 * migration's error stays set.)
 */
static void test_fuzz_stale_capabilities(void)
{
    g_autofree char *log = g_strdup_printf("%s/dst.stderr", tmpdir);
    g_autofree char *image = NULL;
    g_autofree char *args = NULL;
    g_autofree char *err = NULL;
    g_autofree char *out = NULL;
    g_autoptr(GByteArray) s = stream_head("pc-i440fx-10.2");
    const char *sub = "configuration/capabilities";
    uint8_t be[4];
    QTestState *to;

    g_byte_array_append(s, (uint8_t []) { QEMU_VM_SUBSECTION, strlen(sub) },
                        2);
    g_byte_array_append(s, (const uint8_t *)sub, strlen(sub));
    stl_be_p(be, 1);                        /* subsection version */
    g_byte_array_append(s, be, 4);
    stl_be_p(be, 16);                       /* caps_count */
    g_byte_array_append(s, be, 4);
    g_byte_array_append(s, (const uint8_t *)"\x03xyz", 4);
    image = save_snapshot_image(s);

    args = g_strdup_printf("-S -drive if=none,id=disk0,format=qcow2,file=%s",
                           image);
    to = start_vm("QTEST_QEMU_BINARY_DST", RAM_MIB, args, log);
    out = qtest_hmp(to, "loadvm bad");
    g_test_message("loadvm bad: '%s'", out);
    g_assert(strstr(out, "Error"));
    /* error_report() within a monitor command goes to that monitor */
    g_assert(g_file_get_contents(log, &err, NULL, NULL));
    g_assert(strstr(out, "Received unknown capability xyz") ||
             strstr(err, "Received unknown capability xyz"));

    if (is_branch(to)) {
        /* Upstream 10.2.2 has the bug; the branch fixes it (0042). */
        g_free(out);
        out = qtest_hmp(to, "loadvm good");
        g_test_message("loadvm good: '%s'", out);
        g_assert_cmpstr(out, ==, "");
        g_assert(ram_intact(to));
    } else {
        g_test_message("the destination is not the branch: upstream's "
                       "second load would validate stale capabilities");
    }
    qtest_quit(to);
    unlink(log);
    unlink(image);
}

/*
 * tests/fuzz-regressions/savevm-empty-machine-name: a configuration
 * section whose machine name is empty.  Upstream accepts any name of
 * length 0 (strncmp() over 0 bytes) and passed the NULL name it left to
 * strncmp(), undefined behaviour that only a UBSan build sees (make fuzz
 * replays the input there).  The branch keeps upstream's answer: the
 * name check passes, and a stream that ends right after the section
 * loads nothing else.
 */
static void test_fuzz_empty_machine_name(void)
{
    g_autofree char *path = g_strdup_printf("%s/empty-name", tmpdir);
    g_autofree char *log = g_strdup_printf("%s/dst.stderr", tmpdir);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *err = NULL;
    g_autoptr(GByteArray) s = stream_head("");
    QTestState *to;

    /* No subsection, then QEMU_VM_EOF */
    g_byte_array_append(s, (uint8_t []) { 0, QEMU_VM_EOF }, 2);
    g_assert(g_file_set_contents(path, (char *)s->data, s->len, NULL));

    to = start_vm("QTEST_QEMU_BINARY_DST", RAM_MIB, "-S -incoming defer",
                  log);
    migrate_incoming_qmp(to, uri, NULL, "{ 'exit-on-error': false }");
    wait_for_migration_complete(to);
    qtest_quit(to);
    g_assert(g_file_get_contents(log, &err, NULL, NULL));
    g_test_message("stderr: %s", err);
    g_assert_null(strstr(err, "Machine type received"));
    unlink(path);
    unlink(log);
}

typedef struct {
    const char *name;
    uint32_t len;               /* the machine name's length, or */
    uint32_t caps;              /* the capabilities' count */
    const char *branch_desc;    /* the branch: in error-desc */
} HugeAllocCase;

/*
 * tests/fuzz-regressions/vmstate-huge-alloc*: a length or a count from
 * the stream that sizes a VMS_ALLOC buffer.  Upstream's
 * vmstate_handle_alloc() turned a length of 2 GiB or more (negative as
 * an int) into an enormous g_malloc() and aborted: the destination died
 * of a damaged stream.  The branch must fail the load with the field's
 * name and stay alive; a destination that is not the branch may die.
 */
static void test_fuzz_huge_alloc(const void *opaque)
{
    const HugeAllocCase *c = opaque;
    g_autofree char *path = g_strdup_printf("%s/huge-alloc", tmpdir);
    g_autofree char *log = g_strdup_printf("%s/dst.stderr", tmpdir);
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *desc = NULL;
    g_autoptr(GByteArray) s = NULL;
    const char *sub = "configuration/capabilities";
    uint8_t be[4], junk[64];
    QTestState *to;
    bool branch;

    if (c->len) {
        s = stream_head("");
        /* Overwrite the empty name's length */
        stl_be_p(s->data + s->len - 4, c->len);
    } else {
        s = stream_head("pc-i440fx-10.2");
        g_byte_array_append(s, (uint8_t []) { QEMU_VM_SUBSECTION,
                                              strlen(sub) }, 2);
        g_byte_array_append(s, (const uint8_t *)sub, strlen(sub));
        stl_be_p(be, 1);
        g_byte_array_append(s, be, 4);
        stl_be_p(be, c->caps);
        g_byte_array_append(s, be, 4);
    }
    memset(junk, 0xff, sizeof(junk));
    g_byte_array_append(s, junk, sizeof(junk));
    g_assert(g_file_set_contents(path, (char *)s->data, s->len, NULL));

    to = start_vm("QTEST_QEMU_BINARY_DST", RAM_MIB, "-S -incoming defer",
                  log);
    branch = is_branch(to);
    migrate_incoming_qmp(to, uri, NULL, "{ 'exit-on-error': false }");
    if (!branch) {
        /*
         * Upstream's g_malloc() aborts at once: give it the time, and
         * talk to the destination only if it is still there.  A dead
         * destination's QTestState stays: libqtest aborts on it.
         */
        for (int i = 0; i < 100 && qtest_probe_child(to); i++) {
            g_usleep(50 * 1000);
        }
        if (qtest_probe_child(to)) {
            g_test_message("%s: upstream's destination is alive",
                           c->name);
            wait_for_migration_status(to, "failed", (const char * []) {
                                          "completed", NULL });
            qtest_quit(to);
        } else {
            g_test_message("%s: upstream's destination died", c->name);
        }
        unlink(path);
        unlink(log);
        return;
    }
    wait_for_migration_status(to, "failed", (const char * []) {
                                  "completed", NULL });
    desc = query_error(to);
    g_test_message("error-desc: %s", desc);
    assert_in_desc(desc, c->branch_desc);
    g_assert_false(vm_running(to));
    qtest_quit(to);
    unlink(path);
    unlink(log);
}

static const HugeAllocCase huge_alloc_cases[] = {
    { "huge-alloc/machine-name", 0xfff76f00, 0,
      "Field 'name': invalid size -561408 x 1 from the stream" },
    { "huge-alloc/capabilities", 0, 0x80000000,
      "Field 'capabilities': invalid size 4 x -2147483648 from the stream" },
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

    tmpdir = g_dir_make_tmp("ram-bad-input-XXXXXX", NULL);
    g_assert(tmpdir);

    for (i = 0; i < G_N_ELEMENTS(stream_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/migration/ram-bad-input/stream/%s", stream_cases[i].name);
        qtest_add_data_func(path, &stream_cases[i], test_bad_stream);
    }
    qtest_add_func("/migration/ram-bad-input/dropped/destination",
                   test_destination_lost);
    qtest_add_func("/migration/ram-bad-input/dropped/source",
                   test_source_lost);
    qtest_add_func("/migration/ram-bad-input/fuzz/stale-capabilities",
                   test_fuzz_stale_capabilities);
    qtest_add_func("/migration/ram-bad-input/fuzz/empty-machine-name",
                   test_fuzz_empty_machine_name);
    for (i = 0; i < G_N_ELEMENTS(huge_alloc_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/migration/ram-bad-input/fuzz/%s", huge_alloc_cases[i].name);
        qtest_add_data_func(path, &huge_alloc_cases[i], test_fuzz_huge_alloc);
    }

    ret = g_test_run();

    if (clean_stream) {
        unlink(clean_stream);
        g_free(clean_stream);
    }
    sock = g_strdup_printf("%s/migsocket", tmpdir);
    unlink(sock);
    rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
