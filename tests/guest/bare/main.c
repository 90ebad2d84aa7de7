/*
 * Bare-metal build of the test guest: the workload.
 *
 * The same self-verifying memory workload as the Linux /init program
 * (tests/guest/guest.c), with the same parameters, serial protocol and
 * line formats (tests/guest/README.md), for a guest without an operating
 * system: it fills a test area of guest.mib MiB of guest RAM with
 * self-describing pages (pagefmt.h), then loops forever printing a
 * heartbeat every guest.hb ms, rewriting pages of a hot set at
 * guest.dirty MB/s, verifying on demand and answering the commands it
 * reads from the serial port.  What differs is in README.md next to
 * this file: where the area is, the ALLOC line, rates in thousandths of
 * a MB/s.
 *
 * The test area is guest-physical RAM from 16 MiB up, in the order of
 * the memory map and skipping what is not RAM (the PCI hole).  The
 * expected generation of every page (4 bytes each) and the buffer of
 * the touch command (8 bytes per page) are at the top of the highest
 * RAM range.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "bare.h"
#include "pagefmt.h"

#define PAGES_PER_MIB       (MIB / PAGEFMT_PAGE_SIZE)

/* Longest stretch of work between two looks at the heartbeat clock. */
#define SLICE_NS            (1 * NS_PER_MS)
/* A dirtying backlog beyond this much time is dropped, not caught up. */
#define DIRTY_BACKLOG_NS    (50 * NS_PER_MS)
/* VERIFY-BAD lines printed per verification pass. */
#define VERIFY_BAD_SHOWN    8
/* Rates are kept in thousandths of a MiB/s. */
#define RATE_ONE            1000

struct params {
    uint64_t mib;           /* guest.mib: test area size */
    uint64_t seed;          /* guest.seed */
    bool fill;              /* guest.fill */
    uint64_t dirty;         /* guest.dirty: MiB/s * RATE_ONE, 0 = off */
    uint64_t hot_mib;       /* guest.hot: 0 = whole area */
    unsigned hb_ms;         /* guest.hb: 0 = off */
    bool verify;            /* guest.verify: continuous verification */
    uint64_t touch;         /* guest.touch: random accesses after fill */
};

static struct params params = {
    .mib = 64,
    .seed = 1,
    .fill = true,
    .hb_ms = 10,
};

static struct mem_range area[MEM_RANGES_MAX];  /* the test area */
static unsigned nr_area;
static uint32_t *gens;              /* expected generation of each page */
static uint64_t *lat_buf;           /* touch latencies, one per page */
static uint64_t meta_base;
static uint64_t npages;
static uint64_t hot_pages;
static uint64_t rng;                /* splitmix64 state */
static uint64_t start_ns;           /* now_ns() at the loop start */

/* Heartbeat. */
static struct {
    unsigned ms;
    uint64_t seq;
    uint64_t next;
} hb;

/* Dirtying, paced against now_ns(). */
static struct {
    uint64_t rate;          /* MiB/s * RATE_ONE */
    uint64_t t0;            /* pacing origin */
    uint64_t done;          /* pages rewritten since t0 */
    uint64_t rep_t0;        /* start of the current DIRTY report period */
    uint64_t rep_pages;
    uint64_t total;
} dirty;

/* Verification pass, on demand or continuous. */
static struct {
    bool active;
    bool continuous;
    uint64_t pos;
    uint64_t errors;
    uint64_t t0;
    unsigned shown;
    uint64_t passes;
    uint64_t last_errors;   /* errors of the last completed pass */
} ver;

/* A permutation of [0, n), to visit distinct pages in random order. */
struct perm {
    uint64_t n;
    uint64_t mask;
    unsigned shift;
    uint64_t mul[3];
    uint64_t add[3];
};

/* Timed random accesses. */
static struct {
    bool active;
    bool write;
    uint64_t n;
    uint64_t done;
    uint64_t bad;
    uint64_t t0;
    uint64_t *lat;          /* ns */
    struct perm perm;
} tch;

static uint64_t rnd(void)
{
    rng += 0x9e3779b97f4a7c15ull;
    return pagefmt_mix(rng);
}

static uint64_t rnd_below(uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rnd() * n) >> 64);
}

static inline uint8_t *page(uint64_t i)
{
    const struct mem_range *r = area;

    while (i * PAGEFMT_PAGE_SIZE >= r->size) {
        i -= r->size / PAGEFMT_PAGE_SIZE;
        r++;
    }
    return (uint8_t *)(uintptr_t)(r->base + i * PAGEFMT_PAGE_SIZE);
}

/* Format @ns as microseconds with one decimal, in a rotating buffer. */
static const char *us(uint64_t ns)
{
    static char bufs[8][32];
    static unsigned k;
    char *b = bufs[k++ % 8];
    uint64_t tenths = (ns + 50) / 100;

    snprintf(b, sizeof(bufs[0]), "%lu.%lu", tenths / 10, tenths % 10);
    return b;
}

/* Format a rate like %g would, for the values it can hold. */
static const char *rate_str(uint64_t rate)
{
    static char bufs[4][32];
    static unsigned k;
    char *b = bufs[k++ % 4];
    uint64_t frac = rate % RATE_ONE;
    int len;

    len = snprintf(b, sizeof(bufs[0]), "%lu", rate / RATE_ONE);
    if (frac) {
        len += snprintf(b + len, sizeof(bufs[0]) - (size_t)len, ".%03lu",
                        frac);
        while (b[len - 1] == '0') {
            b[--len] = 0;
        }
    }
    return b;
}

/* ---- parameters ---- */

/*
 * Parse the whole of @s as an unsigned number: decimal, or hexadecimal
 * with a 0x prefix when @base is 0.  False on junk or overflow.
 */
static bool parse_u64(const char *s, uint64_t *v, int base)
{
    unsigned radix = 10;
    uint64_t x = 0;

    if (base == 0 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        radix = 16;
        s += 2;
    }
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        unsigned d;

        if (*s >= '0' && *s <= '9') {
            d = (unsigned)(*s - '0');
        } else if (radix == 16 && *s >= 'a' && *s <= 'f') {
            d = (unsigned)(*s - 'a' + 10);
        } else if (radix == 16 && *s >= 'A' && *s <= 'F') {
            d = (unsigned)(*s - 'A' + 10);
        } else {
            return false;
        }
        if (x > (UINT64_MAX - d) / radix) {
            return false;
        }
        x = x * radix + d;
    }
    *v = x;
    return true;
}

/*
 * Parse a rate in MiB/s: decimal digits with an optional fraction, of
 * which three digits count.  Stored times RATE_ONE.
 */
static bool parse_rate(const char *s, uint64_t *rate)
{
    uint64_t whole = 0, frac = 0, scale = RATE_ONE;
    bool digits = false;

    for (; *s >= '0' && *s <= '9'; s++) {
        if (whole > (UINT64_MAX / RATE_ONE - 9) / 10) {
            return false;
        }
        whole = whole * 10 + (uint64_t)(*s - '0');
        digits = true;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            if (scale > 1) {
                scale /= 10;
                frac += (uint64_t)(*s - '0') * scale;
            }
            digits = true;
        }
    }
    if (!digits || *s) {
        return false;
    }
    *rate = whole * RATE_ONE + frac;
    return true;
}

static void parse_param(const char *key, const char *val)
{
    uint64_t v = 0;
    bool ok = true;

    if (!strcmp(key, "mib")) {
        ok = parse_u64(val, &v, 10) && v > 0;
        if (ok) {
            params.mib = v;
        }
    } else if (!strcmp(key, "seed")) {
        ok = parse_u64(val, &v, 0);
        if (ok) {
            params.seed = v;
        }
    } else if (!strcmp(key, "fill")) {
        ok = parse_u64(val, &v, 10) && v <= 1;
        if (ok) {
            params.fill = v;
        }
    } else if (!strcmp(key, "dirty")) {
        ok = parse_rate(val, &v);
        if (ok) {
            params.dirty = v;
        }
    } else if (!strcmp(key, "hot")) {
        ok = parse_u64(val, &v, 10);
        if (ok) {
            params.hot_mib = v;
        }
    } else if (!strcmp(key, "hb")) {
        ok = parse_u64(val, &v, 10) && v <= 3600000;
        if (ok) {
            params.hb_ms = (unsigned)v;
        }
    } else if (!strcmp(key, "verify")) {
        ok = parse_u64(val, &v, 10) && v <= 1;
        if (ok) {
            params.verify = v;
        }
    } else if (!strcmp(key, "thp")) {
        /* The Linux guest's; accepted so that command lines carry over. */
        ok = parse_u64(val, &v, 10) && v <= 1;
    } else if (!strcmp(key, "touch")) {
        ok = parse_u64(val, &v, 10);
        if (ok) {
            params.touch = v;
        }
    } else {
        out("WARN unknown parameter guest.%s", key);
        return;
    }
    if (!ok) {
        out("WARN bad value guest.%s=%s", key, val);
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void parse_cmdline(void)
{
    static char buf[4096];
    char *p = buf;

    snprintf(buf, sizeof(buf), "%s", plat.cmdline);
    for (;;) {
        char *tok, *eq;

        while (is_space(*p)) {
            p++;
        }
        if (!*p) {
            return;
        }
        tok = p;
        while (*p && !is_space(*p)) {
            p++;
        }
        if (*p) {
            *p++ = 0;
        }
        if (strncmp(tok, "guest.", 6)) {
            continue;
        }
        eq = strchr(tok, '=');
        if (!eq) {
            out("WARN parameter without value: %s", tok);
            continue;
        }
        *eq = 0;
        parse_param(tok + 6, eq + 1);
    }
}

/* ---- set-up ---- */

static void clock_info(void)
{
    uint64_t d[255];
    unsigned i, j;

    /* Median cost of one now_ns(), by insertion sort. */
    for (i = 0; i < 255; i++) {
        uint64_t a = now_ns();
        uint64_t b = now_ns();
        uint64_t x = b - a;

        for (j = i; j > 0 && d[j - 1] > x; j--) {
            d[j] = d[j - 1];
        }
        d[j] = x;
    }
    out("CLOCK source=tsc overhead_ns=%lu tsc_khz=%lu calib=pit "
        "apic_khz=%lu", d[127], plat.tsc_khz, plat.lapic_per_ms);
}

/*
 * Lay out the test area from the bottom of RAM and the per-page
 * bookkeeping from the top, or stop with ERROR if they do not fit.
 */
static void alloc_area(void)
{
    const struct mem_range *last;
    uint64_t meta_size, avail = 0, left, t0 = now_ns();
    char ranges[256];
    size_t len = 0;
    unsigned i;

    npages = params.mib * PAGES_PER_MIB;
    meta_size = (npages * (sizeof(*gens) + sizeof(*lat_buf)) + 4095) &
                ~UINT64_C(4095);
    if (!plat.nr_ram) {
        out("ERROR guest.mib=%lu does not fit: MemAvailable=0 MiB",
            params.mib);
        halt_forever();
    }
    last = &plat.ram[plat.nr_ram - 1];
    for (i = 0; i < plat.nr_ram; i++) {
        avail += plat.ram[i].size;
    }
    avail = meta_size <= last->size ? avail - meta_size : 0;
    if (params.mib > avail / MIB) {
        out("ERROR guest.mib=%lu does not fit: MemAvailable=%lu MiB",
            params.mib, avail / MIB);
        halt_forever();
    }
    meta_base = last->base + last->size - meta_size;

    left = npages * PAGEFMT_PAGE_SIZE;
    for (i = 0; i < plat.nr_ram && left; i++) {
        uint64_t size = plat.ram[i].size;

        if (&plat.ram[i] == last) {
            size -= meta_size;
        }
        area[nr_area].base = plat.ram[i].base;
        area[nr_area].size = MIN(size, left);
        left -= area[nr_area].size;
        len += (size_t)snprintf(ranges + len, sizeof(ranges) - len,
                                "%s0x%lx-0x%lx", nr_area ? "," : "",
                                area[nr_area].base,
                                area[nr_area].base + area[nr_area].size);
        len = MIN(len, sizeof(ranges) - 1);
        nr_area++;
    }

    gens = (uint32_t *)(uintptr_t)meta_base;
    lat_buf = (uint64_t *)(uintptr_t)(meta_base + npages * sizeof(*gens));
    memset(gens, 0, npages * sizeof(*gens));
    out("ALLOC mib=%lu pages=%lu ms=%lu locked=0 thp=none huge_mib=0 "
        "area=%s meta=0x%lx", params.mib, npages,
        (now_ns() - t0) / NS_PER_MS, ranges, meta_base);
}

static void set_hot(uint64_t mib)
{
    params.hot_mib = mib;
    hot_pages = mib ? MIN(mib * PAGES_PER_MIB, npages) : npages;
}

static void fill(void)
{
    uint64_t i, t0 = now_ns();

    for (i = 0; i < npages; i++) {
        pagefmt_write(page(i), params.seed, i, 1);
        gens[i] = 1;
    }
    out("FILL pages=%lu ms=%lu", npages, (now_ns() - t0) / NS_PER_MS);
}

/* ---- heartbeat ---- */

static void hb_set(unsigned ms)
{
    hb.ms = ms;
    hb.next = now_ns();
}

static void hb_run(uint64_t now)
{
    uint64_t iv = hb.ms * NS_PER_MS;

    if (!hb.ms || now < hb.next) {
        return;
    }
    out("HB seq=%lu", hb.seq++);
    /* Keep the cadence; after a stall, skip the missed beats. */
    hb.next += iv;
    if (hb.next <= now) {
        hb.next = now + iv;
    }
}

/*
 * End of a work slice that starts now: at most SLICE_NS, and no later
 * than the next heartbeat.  Prints a heartbeat that is due.
 */
static uint64_t slice_deadline(void)
{
    uint64_t now = now_ns();

    hb_run(now);
    now = now_ns();
    if (hb.ms) {
        return MIN(now + SLICE_NS, hb.next);
    }
    return now + SLICE_NS;
}

/* ---- dirtying ---- */

static void dirty_set(uint64_t rate)
{
    dirty.rate = rate;
    dirty.t0 = now_ns();
    dirty.done = 0;
    dirty.rep_t0 = dirty.t0;
    dirty.rep_pages = 0;
}

/* Pages due in @ns at the current rate (truncated). */
static uint64_t dirty_due(uint64_t ns)
{
    return muldiv(ns, dirty.rate * PAGES_PER_MIB, RATE_ONE * NS_PER_S);
}

static void dirty_one(void)
{
    uint64_t i = rnd_below(hot_pages);

    pagefmt_write(page(i), params.seed, i, ++gens[i]);
}

static void dirty_step(uint64_t deadline)
{
    uint64_t now = now_ns(), due;

    if (!dirty.rate) {
        return;
    }
    if (now - dirty.t0 > DIRTY_BACKLOG_NS) {
        /* Re-base now and then, dropping a backlog that is too old. */
        due = dirty_due(now - dirty.t0);
        if (due > dirty.done + dirty_due(DIRTY_BACKLOG_NS)) {
            dirty.t0 = now;
            dirty.done = 0;
            return;
        }
    }
    for (;;) {
        unsigned k;

        due = dirty_due(now - dirty.t0);
        if (dirty.done >= due) {
            return;
        }
        for (k = 0; k < 8 && dirty.done < due; k++) {
            dirty_one();
            dirty.done++;
            dirty.rep_pages++;
            dirty.total++;
        }
        now = now_ns();
        if (now >= deadline) {
            return;
        }
    }
}

static void dirty_report(void)
{
    uint64_t now = now_ns(), dt = now - dirty.rep_t0, tenths;

    if (!dirty.rate || dt < NS_PER_S) {
        return;
    }
    tenths = muldiv_round(dirty.rep_pages * 10, NS_PER_S, PAGES_PER_MIB * dt);
    out("DIRTY pages=%lu mbps=%lu.%lu", dirty.rep_pages, tenths / 10,
        tenths % 10);
    dirty.rep_t0 = now;
    dirty.rep_pages = 0;
}

/* When the next page rewrite is due. */
static uint64_t dirty_next(void)
{
    return dirty.t0 + muldiv(dirty.done + 1, RATE_ONE * NS_PER_S,
                             dirty.rate * PAGES_PER_MIB);
}

/* ---- verification ---- */

static bool all_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    unsigned i;

    for (i = 0; i < PAGEFMT_PAGE_SIZE / sizeof(*w); i++) {
        if (w[i]) {
            return false;
        }
    }
    return true;
}

static void verify_page(uint64_t i)
{
    const struct pagefmt_hdr *h = (const struct pagefmt_hdr *)page(i);
    const char *kind;

    if (pagefmt_check(h, i) || h->seed != params.seed) {
        kind = all_zero(page(i)) ? "zero" : "corrupt";
    } else if (h->gen != gens[i]) {
        kind = "stale";
    } else {
        return;
    }
    ver.errors++;
    if (ver.shown < VERIFY_BAD_SHOWN) {
        ver.shown++;
        out("VERIFY-BAD index=%lu kind=%s magic=0x%08x hdr_index=%lu "
            "gen=%u want=%u", i, kind, h->magic, h->index, h->gen, gens[i]);
    }
}

static void verify_start(bool continuous)
{
    ver.active = true;
    ver.continuous = continuous;
    ver.pos = 0;
    ver.errors = 0;
    ver.shown = 0;
    ver.t0 = now_ns();
}

static void verify_step(uint64_t deadline)
{
    for (;;) {
        uint64_t end = MIN(ver.pos + 16, npages);

        for (; ver.pos < end; ver.pos++) {
            verify_page(ver.pos);
        }
        if (ver.pos == npages) {
            out("VERIFY pages=%lu errors=%lu ms=%lu", npages, ver.errors,
                (now_ns() - ver.t0) / NS_PER_MS);
            ver.passes++;
            ver.last_errors = ver.errors;
            if (ver.continuous) {
                verify_start(true);
            } else {
                ver.active = false;
            }
            return;
        }
        if (now_ns() >= deadline) {
            return;
        }
    }
}

/* ---- touch ---- */

static void perm_init(struct perm *p, uint64_t n)
{
    unsigned bits = 1, r;

    while (bits < 64 && (1ull << bits) < n) {
        bits++;
    }
    p->n = n;
    p->mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
    p->shift = bits / 2 + 1;
    for (r = 0; r < 3; r++) {
        p->mul[r] = rnd() | 1;
        p->add[r] = rnd();
    }
}

/*
 * Each round is a bijection of [0, mask]; walk the cycle back into
 * [0, n).
 */
static uint64_t perm_get(const struct perm *p, uint64_t x)
{
    unsigned r;

    do {
        for (r = 0; r < 3; r++) {
            x = (x * p->mul[r] + p->add[r]) & p->mask;
            x ^= x >> p->shift;
        }
    } while (x >= p->n);
    return x;
}

static bool touch_start(uint64_t n, bool write)
{
    n = MIN(n, npages);
    tch.lat = lat_buf;
    tch.active = true;
    tch.write = write;
    tch.n = n;
    tch.done = 0;
    tch.bad = 0;
    tch.t0 = now_ns();
    perm_init(&tch.perm, npages);
    return true;
}

/* The n-th smallest latency for percentile @pct, nearest rank. */
static uint64_t touch_pct(unsigned pct)
{
    uint64_t rank = (tch.n * pct + 99) / 100;

    return tch.lat[rank ? rank - 1 : 0];
}

static void touch_finish(void)
{
    uint64_t hist[40] = { 0 };
    char line[512];
    unsigned top = 0, b;
    size_t len;
    uint64_t i;

    tch.active = false;
    sort_u64(tch.lat, tch.n);
    if (!tch.n) {
        tch.lat[0] = 0;
    }
    for (i = 0; i < tch.n; i++) {
        uint64_t u = tch.lat[i] / NS_PER_US;

        b = 0;
        while (u) {
            b++;
            u >>= 1;
        }
        b = MIN(b, 39u);
        hist[b]++;
        top = MAX(top, b);
    }
    out("TOUCH n=%lu p50=%s p90=%s p99=%s max=%s us mode=%s bad=%lu ms=%lu",
        tch.n, us(touch_pct(50)), us(touch_pct(90)), us(touch_pct(99)),
        us(tch.n ? tch.lat[tch.n - 1] : 0), tch.write ? "write" : "read",
        tch.bad, (now_ns() - tch.t0) / NS_PER_MS);

    /* Bucket b > 0 holds [2^(b-1), 2^b) us, labelled by its lower bound. */
    len = (size_t)snprintf(line, sizeof(line), "TOUCH-HIST");
    for (b = 0; b <= top && len < sizeof(line); b++) {
        len += (size_t)snprintf(line + len, sizeof(line) - len, " %lu=%lu",
                                b ? UINT64_C(1) << (b - 1) : 0, hist[b]);
    }
    out("%s", line);
}

static void touch_step(uint64_t deadline)
{
    while (tch.done < tch.n) {
        uint64_t i = perm_get(&tch.perm, tch.done);
        /* volatile: the timed access must happen between the clocks */
        volatile struct pagefmt_hdr *h = (void *)page(i);
        uint64_t t0, t1;

        if (tch.write) {
            t0 = rdtsc_ordered();
            h->gen = gens[i] + 1;
            t1 = rdtsc_ordered();
            pagefmt_write(page(i), params.seed, i, ++gens[i]);
        } else {
            uint64_t idx;

            t0 = rdtsc_ordered();
            idx = h->index;
            t1 = rdtsc_ordered();
            if (idx != i || h->magic != PAGEFMT_MAGIC) {
                tch.bad++;
            }
        }
        tch.lat[tch.done++] = tsc_to_ns(t1 - t0);
        if (now_ns() >= deadline) {
            break;
        }
    }
    if (tch.done == tch.n) {
        touch_finish();
    }
}

/* ---- commands ---- */

static void stats(void)
{
    out("STATS up_ms=%lu mib=%lu seed=%lu hot_mib=%lu hb_ms=%u hb_seq=%lu "
        "dirty=%s dirty_pages=%lu verify_passes=%lu verify_errors=%lu "
        "verify_active=%d verify_continuous=%d touch_active=%d pvm=%d "
        "pvm_reregistered=%lu",
        (now_ns() - start_ns) / NS_PER_MS, params.mib, params.seed,
        params.hot_mib, hb.ms, hb.seq, rate_str(dirty.rate), dirty.total,
        ver.passes, ver.last_errors, ver.active, ver.continuous, tch.active,
        plat.pvm, pvm_reregistered);
}

static void command(char *line)
{
    char *argv[4];
    char *p = line;
    int argc = 0;
    uint64_t v;

    while (argc < 4) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (!*p) {
            break;
        }
        argv[argc++] = p;
        while (*p && *p != ' ' && *p != '\t') {
            p++;
        }
        if (*p) {
            *p++ = 0;
        }
    }
    if (!argc) {
        return;
    }

    if (!strcmp(argv[0], "verify")) {
        if (argc == 1) {
            verify_start(ver.continuous);
        } else if (!strcmp(argv[1], "on") || !strcmp(argv[1], "off")) {
            bool on = !strcmp(argv[1], "on");

            if (on) {
                verify_start(true);
            } else {
                ver.continuous = false;
            }
            out("OK verify=%d", on);
        } else {
            out("ERR usage: verify [on|off]");
        }
    } else if (!strcmp(argv[0], "touch")) {
        bool write = argc > 2 && !strcmp(argv[2], "w");

        if (argc < 2 || !parse_u64(argv[1], &v, 10) || !v ||
            (argc > 2 && !write && strcmp(argv[2], "r"))) {
            out("ERR usage: touch N [r|w]");
        } else if (tch.active) {
            out("ERR touch busy");
        } else {
            touch_start(v, write);
        }
    } else if (!strcmp(argv[0], "dirty")) {
        if (argc != 2 || !parse_rate(argv[1], &v)) {
            out("ERR usage: dirty MBPS");
        } else {
            dirty_set(v);
            out("OK dirty=%s", rate_str(v));
        }
    } else if (!strcmp(argv[0], "hot")) {
        if (argc != 2 || !parse_u64(argv[1], &v, 10)) {
            out("ERR usage: hot MIB");
        } else {
            set_hot(v);
            out("OK hot=%lu", params.hot_mib);
        }
    } else if (!strcmp(argv[0], "hb")) {
        if (argc != 2 || !parse_u64(argv[1], &v, 10) || v > 3600000) {
            out("ERR usage: hb MS");
        } else {
            hb_set((unsigned)v);
            out("OK hb=%u", hb.ms);
        }
    } else if (!strcmp(argv[0], "quiet")) {
        hb_set(0);
        out("OK hb=0");
    } else if (!strcmp(argv[0], "stats")) {
        stats();
    } else if (!strcmp(argv[0], "ping")) {
        out("PONG%s%s", argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
    } else if (!strcmp(argv[0], "help")) {
        out("OK commands: verify [on|off], touch N [r|w], dirty MBPS, "
            "hot MIB, hb MS, quiet, stats, ping [TOKEN]");
    } else {
        out("ERR unknown command: %.64s", argv[0]);
    }
}

/* Read what has arrived on the console; run each complete line. */
static void console_poll(void)
{
    static char line[128];
    static size_t len;
    static bool overflow;
    int c;

    while ((c = con_getc()) >= 0) {
        if (c == '\r' || c == '\n') {
            if (overflow) {
                out("ERR line too long");
            } else if (len) {
                line[len] = 0;
                command(line);
            }
            len = 0;
            overflow = false;
        } else if (c >= 0x20 && c < 0x7f) {
            if (len < sizeof(line) - 1) {
                line[len++] = (char)c;
            } else {
                overflow = true;
            }
        }
    }
}

/* Sleep until the next timed event or console input. */
static void idle_wait(void)
{
    uint64_t now = now_ns(), wake = now + NS_PER_S;

    if (hb.ms) {
        wake = MIN(wake, hb.next);
    }
    if (dirty.rate) {
        uint64_t due = dirty_next();

        if (due <= now) {
            /* Behind: no sleep. */
            return;
        }
        wake = MIN(wake, MAX(due, now + NS_PER_MS));
        wake = MIN(wake, dirty.rep_t0 + NS_PER_S);
    }
    cpu_idle(wake);
}

void __attribute__((noreturn)) bare_main(void);

void bare_main(void)
{
    platform_init();

    out("BOOT ms=%lu guest=bare hv=%s pvm=%d", boot_ms(),
        plat.hv[0] ? plat.hv : "none", plat.pvm);
    parse_cmdline();
    out("PARAMS mib=%lu seed=%lu fill=%d dirty=%s hot=%lu hb=%u verify=%d "
        "touch=%lu thp=0", params.mib, params.seed, params.fill,
        rate_str(params.dirty), params.hot_mib, params.hb_ms, params.verify,
        params.touch);
    clock_info();

    rng = params.seed ^ 0x6d696772617465ull;
    alloc_area();
    set_hot(params.hot_mib);
    if (params.fill) {
        fill();
    } else {
        out("FILL pages=0 ms=0");
    }
    if (params.touch && touch_start(params.touch, false)) {
        while (tch.active) {
            touch_step(UINT64_MAX);
        }
    }

    start_ns = now_ns();
    hb_set(params.hb_ms);
    dirty_set(params.dirty);
    if (params.verify) {
        verify_start(true);
    }
    out("READY mib=%lu seed=%lu", params.mib, params.seed);

    for (;;) {
        console_poll();
        dirty_step(slice_deadline());
        dirty_report();
        if (tch.active) {
            touch_step(slice_deadline());
        }
        if (ver.active) {
            verify_step(slice_deadline());
        }
        hb_run(now_ns());
        pvm_keepalive(now_ns());
        if (!tch.active && !ver.active) {
            idle_wait();
        }
    }
}
