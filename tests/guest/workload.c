/*
 * The test guest's workload: a self-verifying memory workload, the same
 * in the Linux /init program (guest.c) and in the bare-metal image
 * (bare/main.c), which provide the platform (workload.h).
 *
 * It fills a test area of guest.mib MiB with self-describing pages
 * (pagefmt.h), guest.plain percent of them plain (a compressible
 * payload), the others random, then loops forever: a heartbeat line
 * every guest.hb ms, page rewrites at guest.dirty MB/s inside a hot set,
 * optional continuous verification, and commands read from the serial
 * console.
 * Every line it prints is plain ASCII; see README.md for the parameters
 * and the serial protocol.
 *
 * Besides the per-page checks of pagefmt.h, the guest keeps the expected
 * generation of every page in a table of its own, so that a page which
 * migration failed to resend after a rewrite (an older, still
 * self-consistent page) is found too ("stale").
 *
 * All work runs on one thread in short slices between heartbeats, so a
 * page is never seen half-written by the guest itself.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "workload.h"
#include "pagefmt.h"

#if WL_HOSTED
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif

#define PAGES_PER_MIB       (MIB / PAGEFMT_PAGE_SIZE)

/* Longest stretch of work between two looks at the heartbeat clock. */
#define SLICE_NS            (1 * NS_PER_MS)
/* A dirtying backlog beyond this much time is dropped, not caught up. */
#define DIRTY_BACKLOG_NS    (50 * NS_PER_MS)
/* VERIFY-BAD lines printed per verification pass. */
#define VERIFY_BAD_SHOWN    8
/* Longest heartbeat interval, ms. */
#define HB_MAX_MS           3600000

struct wl_params wl_params = {
    .mib = 64,
    .seed = 1,
    .fill = true,
    .hb_ms = 10,
    .thp = true,
};

static struct wl_area area;         /* the test area */
static uint32_t *gens;              /* expected generation of each page */
static uint64_t npages;
static uint64_t hot_pages;
static uint64_t rng;                /* splitmix64 state */
static uint64_t start_ns;           /* plat_now_ns() at the loop start */

/* Heartbeat. */
static struct {
    unsigned ms;
    uint64_t seq;
    uint64_t next;
} hb;

/* Dirtying, paced against plat_now_ns(). */
static struct {
    wl_rate rate;           /* MiB/s */
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

/*
 * Is page @i plain?  guest.plain percent of the pages are, spread evenly:
 * page i is plain when floor((i + 1) * plain / 100) steps up at i, so
 * every run of 100 pages holds exactly that many (plain=50: every other
 * page, the odd ones).
 */
static inline bool plain_page(uint64_t i)
{
    uint64_t pct = wl_params.plain;

    return (i + 1) * pct / 100 != i * pct / 100;
}

/* The magic of page @i's kind. */
static inline uint32_t page_magic(uint64_t i)
{
    return plain_page(i) ? PAGEFMT_MAGIC_PLAIN : PAGEFMT_MAGIC;
}

static inline uint8_t *page(uint64_t i)
{
    const struct wl_range *r = area.range;

    while (i * PAGEFMT_PAGE_SIZE >= r->size) {
        i -= r->size / PAGEFMT_PAGE_SIZE;
        r++;
    }
    return (uint8_t *)(uintptr_t)(r->base + i * PAGEFMT_PAGE_SIZE);
}

/* ---- output ---- */

void out(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if (n > (int)sizeof(buf) - 3) {
        n = (int)sizeof(buf) - 3;
    }
    buf[n++] = '\r';
    buf[n++] = '\n';
    plat_write(buf, (size_t)n);
}

/* The platform's fields for @line, in a buffer of its own. */
static const char *fields(enum wl_line line)
{
    static char buf[384];

    buf[0] = 0;
    plat_fields(line, buf, sizeof(buf));
    return buf;
}

#define STR_BUFS            8
#define STR_BUF_SIZE        32

/* One of STR_BUFS buffers in turn, for the values of one line. */
static char *str_buf(void)
{
    static char bufs[STR_BUFS][STR_BUF_SIZE];
    static unsigned k;

    return bufs[k++ % STR_BUFS];
}

/* @tenths as a number with one decimal. */
static const char *tenths_str(uint64_t tenths)
{
    char *b = str_buf();

    snprintf(b, STR_BUF_SIZE, "%" PRIu64 ".%" PRIu64, tenths / 10,
             tenths % 10);
    return b;
}

/* @ns as microseconds with one decimal. */
static const char *us(uint64_t ns)
{
    return tenths_str((ns + 50) / 100);
}

/*
 * ---- rates ----
 *
 * Rates of dirtying: with a C library, doubles in MiB/s that strtod()
 * reads and %g prints (the Linux guest); without one, integers in
 * thousandths of a MiB/s, read and printed alike for the values they can
 * hold (the bare guest, README.md there).
 */

#if WL_HOSTED

#define RATE_ONE            1

/* a * b / c, truncated. */
static uint64_t rate_muldiv(double a, double b, double c)
{
    return (uint64_t)(a * b / c);
}

/* A rate as strtod() reads it. */
static bool parse_rate(const char *s, wl_rate *rate)
{
    char *end;
    double d = strtod(s, &end);

    if (end == s || *end || !(d >= 0)) {
        return false;
    }
    *rate = d;
    return true;
}

static const char *rate_str(wl_rate rate)
{
    char *b = str_buf();

    snprintf(b, STR_BUF_SIZE, "%g", rate);
    return b;
}

/* MiB/s of @pages in @ns, with one decimal. */
static const char *mbps_str(uint64_t pages, uint64_t ns)
{
    char *b = str_buf();

    snprintf(b, STR_BUF_SIZE, "%.1f",
             (double)pages / PAGES_PER_MIB * NS_PER_S / (double)ns);
    return b;
}

#else /* !WL_HOSTED */

#define RATE_ONE            1000
#define rate_muldiv         muldiv

/*
 * Parse a rate in MiB/s: decimal digits with an optional fraction, of
 * which three digits count.  Stored times RATE_ONE.
 */
static bool parse_rate(const char *s, wl_rate *rate)
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

/* Format a rate like %g would, for the values it can hold. */
static const char *rate_str(wl_rate rate)
{
    char *b = str_buf();
    uint64_t frac = rate % RATE_ONE;
    int len;

    len = snprintf(b, STR_BUF_SIZE, "%" PRIu64, rate / RATE_ONE);
    if (frac) {
        len += snprintf(b + len, STR_BUF_SIZE - (size_t)len,
                        ".%03" PRIu64, frac);
        while (b[len - 1] == '0') {
            b[--len] = 0;
        }
    }
    return b;
}

static const char *mbps_str(uint64_t pages, uint64_t ns)
{
    return tenths_str(muldiv_round(pages * 10, NS_PER_S, PAGES_PER_MIB * ns));
}

#endif /* !WL_HOSTED */

/* Pages due in @ns at @rate (truncated). */
static uint64_t rate_pages(wl_rate rate, uint64_t ns)
{
    return rate_muldiv(ns, rate * PAGES_PER_MIB, RATE_ONE * NS_PER_S);
}

/* Nanoseconds that @pages take at @rate. */
static uint64_t rate_ns(wl_rate rate, uint64_t pages)
{
    return rate_muldiv(pages, RATE_ONE * NS_PER_S, rate * PAGES_PER_MIB);
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

/* parse_u64() of a value in [@min, @max]; *@v is set only then. */
static bool parse_num(const char *s, uint64_t *v, int base, uint64_t min,
                      uint64_t max)
{
    uint64_t x;

    if (!parse_u64(s, &x, base) || x < min || x > max) {
        return false;
    }
    *v = x;
    return true;
}

/* 0 or 1. */
static bool parse_flag(const char *s, bool *flag)
{
    uint64_t x;

    if (!parse_num(s, &x, 10, 0, 1)) {
        return false;
    }
    *flag = x;
    return true;
}

static void parse_param(const char *key, const char *val)
{
    struct wl_params *p = &wl_params;
    bool ok;

    if (!strcmp(key, "mib")) {
        ok = parse_num(val, &p->mib, 10, 1, UINT64_MAX);
    } else if (!strcmp(key, "seed")) {
        ok = parse_num(val, &p->seed, 0, 0, UINT64_MAX);
    } else if (!strcmp(key, "fill")) {
        ok = parse_flag(val, &p->fill);
    } else if (!strcmp(key, "dirty")) {
        ok = parse_rate(val, &p->dirty);
    } else if (!strcmp(key, "hot")) {
        ok = parse_num(val, &p->hot_mib, 10, 0, UINT64_MAX);
    } else if (!strcmp(key, "hb")) {
        ok = parse_num(val, &p->hb_ms, 10, 0, HB_MAX_MS);
    } else if (!strcmp(key, "verify")) {
        ok = parse_flag(val, &p->verify);
    } else if (!strcmp(key, "thp")) {
        ok = parse_flag(val, &p->thp);
    } else if (!strcmp(key, "touch")) {
        ok = parse_num(val, &p->touch, 10, 0, UINT64_MAX);
    } else if (!strcmp(key, "plain")) {
        ok = parse_num(val, &p->plain, 10, 0, 100);
    } else {
        out("WARN unknown parameter guest.%s", key);
        return;
    }
    if (!ok) {
        out("WARN bad value guest.%s=%s", key, val);
    }
}

/*
 * Cut the next word of @*p out of its string, at the first of @seps
 * after it; NULL at the end.
 */
static char *next_word(char **p, const char *seps)
{
    char *s = *p, *word;

    while (*s && strchr(seps, *s)) {
        s++;
    }
    if (!*s) {
        *p = s;
        return NULL;
    }
    word = s;
    while (*s && !strchr(seps, *s)) {
        s++;
    }
    if (*s) {
        *s++ = 0;
    }
    *p = s;
    return word;
}

static void parse_cmdline(const char *cmdline)
{
    static char buf[4096];
    char *p = buf, *tok;

    snprintf(buf, sizeof(buf), "%s", cmdline);
    while ((tok = next_word(&p, " \t\n\r"))) {
        char *eq;

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

    /* Median cost of one plat_now_ns(), by insertion sort. */
    for (i = 0; i < 255; i++) {
        uint64_t a = plat_now_ns();
        uint64_t b = plat_now_ns();
        uint64_t x = b - a;

        for (j = i; j > 0 && d[j - 1] > x; j--) {
            d[j] = d[j - 1];
        }
        d[j] = x;
    }
    out("CLOCK source=%s overhead_ns=%" PRIu64 "%s", plat_clocksource(),
        d[127], fields(WL_CLOCK));
}

void wl_no_room(uint64_t avail_mib)
{
    out("ERROR guest.mib=%" PRIu64 " does not fit: MemAvailable=%" PRIu64
        " MiB", wl_params.mib, avail_mib);
    plat_halt();
}

static void alloc_area(void)
{
    uint64_t t0 = plat_now_ns(), ms;

    npages = wl_params.mib * PAGES_PER_MIB;
    area.npages = npages;
    plat_alloc(&area);
    gens = area.gens;
    ms = (plat_now_ns() - t0) / NS_PER_MS;
    out("ALLOC mib=%" PRIu64 " pages=%" PRIu64 " ms=%" PRIu64 "%s",
        wl_params.mib, npages, ms, fields(WL_ALLOC));
}

static void set_hot(uint64_t mib)
{
    wl_params.hot_mib = mib;
    hot_pages = mib ? MIN(mib * PAGES_PER_MIB, npages) : npages;
}

/* Write page @i, generation @gen, of the kind that page @i is. */
static void write_page(uint64_t i, uint32_t gen)
{
    if (plain_page(i)) {
        pagefmt_write_plain(page(i), wl_params.seed, i, gen);
    } else {
        pagefmt_write(page(i), wl_params.seed, i, gen);
    }
}

/* Plain pages among the first @n. */
static uint64_t plain_pages(uint64_t n)
{
    return n * wl_params.plain / 100;
}

static void fill(void)
{
    uint64_t i, t0 = plat_now_ns();

    for (i = 0; i < npages; i++) {
        write_page(i, 1);
        gens[i] = 1;
    }
    out("FILL pages=%" PRIu64 " ms=%" PRIu64 " plain=%" PRIu64, npages,
        (plat_now_ns() - t0) / NS_PER_MS, plain_pages(npages));
}

/* ---- heartbeat ---- */

static void hb_set(unsigned ms)
{
    hb.ms = ms;
    hb.next = plat_now_ns();
}

static void hb_run(uint64_t now)
{
    uint64_t iv = hb.ms * NS_PER_MS;

    if (!hb.ms || now < hb.next) {
        return;
    }
    if (tch.active) {
        /*
         * The pages done so far, so that the host can tell how many were
         * written before a migration's switchover (check-guest.py).
         */
        out("HB seq=%" PRIu64 " touched=%" PRIu64, hb.seq++, tch.done);
    } else {
        out("HB seq=%" PRIu64, hb.seq++);
    }
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
    uint64_t now = plat_now_ns();

    hb_run(now);
    now = plat_now_ns();
    if (hb.ms) {
        return MIN(now + SLICE_NS, hb.next);
    }
    return now + SLICE_NS;
}

/* ---- dirtying ---- */

static void dirty_set(wl_rate rate)
{
    dirty.rate = rate;
    dirty.t0 = plat_now_ns();
    dirty.done = 0;
    dirty.rep_t0 = dirty.t0;
    dirty.rep_pages = 0;
}

static void dirty_one(void)
{
    uint64_t i = rnd_below(hot_pages);

    write_page(i, ++gens[i]);
}

static void dirty_step(uint64_t deadline)
{
    uint64_t now = plat_now_ns(), due;

    if (dirty.rate <= 0) {
        return;
    }
    if (now - dirty.t0 > DIRTY_BACKLOG_NS) {
        /* Re-base now and then, dropping a backlog that is too old. */
        due = rate_pages(dirty.rate, now - dirty.t0);
        if (due > dirty.done + rate_pages(dirty.rate, DIRTY_BACKLOG_NS)) {
            dirty.t0 = now;
            dirty.done = 0;
            return;
        }
    }
    for (;;) {
        unsigned k;

        due = rate_pages(dirty.rate, now - dirty.t0);
        if (dirty.done >= due) {
            return;
        }
        for (k = 0; k < 8 && dirty.done < due; k++) {
            dirty_one();
            dirty.done++;
            dirty.rep_pages++;
            dirty.total++;
        }
        now = plat_now_ns();
        if (now >= deadline) {
            return;
        }
    }
}

static void dirty_report(void)
{
    uint64_t now = plat_now_ns(), dt = now - dirty.rep_t0;

    if (dirty.rate <= 0 || dt < NS_PER_S) {
        return;
    }
    out("DIRTY pages=%" PRIu64 " mbps=%s", dirty.rep_pages,
        mbps_str(dirty.rep_pages, dt));
    dirty.rep_t0 = now;
    dirty.rep_pages = 0;
}

/* When the next page rewrite is due. */
static uint64_t dirty_next(void)
{
    return dirty.t0 + rate_ns(dirty.rate, dirty.done + 1);
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

    if (!gens[i] && all_zero(page(i))) {
        /* never written (guest.fill=0): zero, as the machine gave it */
        return;
    }
    if ((plain_page(i) ? pagefmt_check_plain(h, i) : pagefmt_check(h, i)) ||
        h->seed != wl_params.seed) {
        kind = all_zero(page(i)) ? "zero" : "corrupt";
    } else if (h->gen != gens[i]) {
        kind = "stale";
    } else {
        return;
    }
    ver.errors++;
    if (ver.shown < VERIFY_BAD_SHOWN) {
        ver.shown++;
        out("VERIFY-BAD index=%" PRIu64 " kind=%s magic=0x%08x hdr_index=%"
            PRIu64 " gen=%u want=%u", i, kind, h->magic, h->index, h->gen,
            gens[i]);
    }
}

static void verify_start(bool continuous)
{
    ver.active = true;
    ver.continuous = continuous;
    ver.pos = 0;
    ver.errors = 0;
    ver.shown = 0;
    ver.t0 = plat_now_ns();
}

static void verify_step(uint64_t deadline)
{
    for (;;) {
        uint64_t end = MIN(ver.pos + 16, npages);

        for (; ver.pos < end; ver.pos++) {
            verify_page(ver.pos);
        }
        if (ver.pos == npages) {
            out("VERIFY pages=%" PRIu64 " errors=%" PRIu64 " ms=%" PRIu64,
                npages, ver.errors, (plat_now_ns() - ver.t0) / NS_PER_MS);
            ver.passes++;
            ver.last_errors = ver.errors;
            if (ver.continuous) {
                verify_start(true);
            } else {
                ver.active = false;
            }
            return;
        }
        if (plat_now_ns() >= deadline) {
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

static void sift_down(uint64_t *a, uint64_t root, uint64_t n)
{
    for (;;) {
        uint64_t child = 2 * root + 1, t;

        if (child >= n) {
            return;
        }
        if (child + 1 < n && a[child + 1] > a[child]) {
            child++;
        }
        if (a[root] >= a[child]) {
            return;
        }
        t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

/* Sort @a ascending: heapsort, no memory besides the array. */
static void sort_u64(uint64_t *a, uint64_t n)
{
    uint64_t i, t;

    for (i = n / 2; i-- > 0;) {
        sift_down(a, i, n);
    }
    for (i = n; i-- > 1;) {
        t = a[0];
        a[0] = a[i];
        a[i] = t;
        sift_down(a, 0, i);
    }
}

static bool touch_start(uint64_t n, bool write)
{
    n = MIN(n, npages);
    tch.lat = plat_lat_alloc(n);
    if (!tch.lat) {
        out("ERR touch: out of memory");
        return false;
    }
    tch.active = true;
    tch.write = write;
    tch.n = n;
    tch.done = 0;
    tch.bad = 0;
    tch.t0 = plat_now_ns();
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
    out("TOUCH n=%" PRIu64 " p50=%s p90=%s p99=%s max=%s us mode=%s bad=%"
        PRIu64 " ms=%" PRIu64, tch.n, us(touch_pct(50)), us(touch_pct(90)),
        us(touch_pct(99)), us(tch.n ? tch.lat[tch.n - 1] : 0),
        tch.write ? "write" : "read", tch.bad,
        (plat_now_ns() - tch.t0) / NS_PER_MS);

    /* Bucket b > 0 holds [2^(b-1), 2^b) us, labelled by its lower bound. */
    len = (size_t)snprintf(line, sizeof(line), "TOUCH-HIST");
    for (b = 0; b <= top && len < sizeof(line); b++) {
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                " %" PRIu64 "=%" PRIu64,
                                b ? UINT64_C(1) << (b - 1) : 0, hist[b]);
    }
    out("%s", line);
    plat_lat_free(tch.lat);
    tch.lat = NULL;
}

static void touch_step(uint64_t deadline)
{
    while (tch.done < tch.n) {
        uint64_t i = perm_get(&tch.perm, tch.done);
        /* volatile: the timed access must happen between the stamps */
        volatile struct pagefmt_hdr *h = (void *)page(i);
        uint64_t t0, t1;

        if (tch.write) {
            t0 = plat_stamp();
            h->gen = gens[i] + 1;
            t1 = plat_stamp();
            write_page(i, ++gens[i]);
        } else {
            uint64_t idx;

            t0 = plat_stamp();
            idx = h->index;
            t1 = plat_stamp();
            if (idx != i || h->magic != page_magic(i)) {
                tch.bad++;
            }
        }
        tch.lat[tch.done++] = plat_stamp_ns(t1 - t0);
        if (plat_now_ns() >= deadline) {
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
    out("STATS up_ms=%" PRIu64 " mib=%" PRIu64 " seed=%" PRIu64
        " hot_mib=%" PRIu64 " hb_ms=%u hb_seq=%" PRIu64 " dirty=%s"
        " dirty_pages=%" PRIu64 " verify_passes=%" PRIu64
        " verify_errors=%" PRIu64 " verify_active=%d verify_continuous=%d"
        " touch_active=%d%s",
        (plat_now_ns() - start_ns) / NS_PER_MS, wl_params.mib,
        wl_params.seed, wl_params.hot_mib, hb.ms, hb.seq,
        rate_str(dirty.rate), dirty.total, ver.passes, ver.last_errors,
        ver.active, ver.continuous, tch.active, fields(WL_STATS));
}

static void command(char *line)
{
    char *argv[4];
    int argc = 0;
    wl_rate rate;
    uint64_t v;

    while (argc < 4 && (argv[argc] = next_word(&line, " \t"))) {
        argc++;
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

        if (argc < 2 || !parse_num(argv[1], &v, 10, 1, UINT64_MAX) ||
            (argc > 2 && !write && strcmp(argv[2], "r"))) {
            out("ERR usage: touch N [r|w]");
        } else if (tch.active) {
            out("ERR touch busy");
        } else {
            touch_start(v, write);
        }
    } else if (!strcmp(argv[0], "dirty")) {
        if (argc != 2 || !parse_rate(argv[1], &rate)) {
            out("ERR usage: dirty MBPS");
        } else {
            dirty_set(rate);
            out("OK dirty=%s", rate_str(rate));
        }
    } else if (!strcmp(argv[0], "hot")) {
        if (argc != 2 || !parse_u64(argv[1], &v, 10)) {
            out("ERR usage: hot MIB");
        } else {
            set_hot(v);
            out("OK hot=%" PRIu64, wl_params.hot_mib);
        }
    } else if (!strcmp(argv[0], "hb")) {
        if (argc != 2 || !parse_num(argv[1], &v, 10, 0, HB_MAX_MS)) {
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

    while ((c = plat_getc()) >= 0) {
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
    uint64_t now = plat_now_ns(), wake = now + NS_PER_S;

    if (hb.ms) {
        wake = MIN(wake, hb.next);
    }
    if (dirty.rate > 0) {
        uint64_t due = dirty_next();

        if (due <= now) {
            /* Behind: no sleep. */
            return;
        }
        /* Batch rewrites: sleep at least 1 ms. */
        wake = MIN(wake, MAX(due, now + NS_PER_MS));
        wake = MIN(wake, dirty.rep_t0 + NS_PER_S);
    }
    if (wake > now) {
        plat_idle_until(wake);
    }
}

/* ---- main ---- */

void wl_boot(void)
{
    out("BOOT ms=%" PRIu64 "%s", plat_boot_ms(), fields(WL_BOOT));
}

void wl_main(const char *cmdline)
{
    struct wl_params *p = &wl_params;

    parse_cmdline(cmdline);
    out("PARAMS mib=%" PRIu64 " seed=%" PRIu64 " fill=%d dirty=%s hot=%"
        PRIu64 " hb=%" PRIu64 " verify=%d touch=%" PRIu64 " plain=%" PRIu64
        "%s", p->mib, p->seed, p->fill, rate_str(p->dirty), p->hot_mib,
        p->hb_ms, p->verify, p->touch, p->plain, fields(WL_PARAMS));
    clock_info();

    rng = p->seed ^ 0x6d696772617465ull;
    alloc_area();
    set_hot(p->hot_mib);
    if (p->fill) {
        fill();
    } else {
        out("FILL pages=0 ms=0");
    }
    if (p->touch && touch_start(p->touch, false)) {
        while (tch.active) {
            touch_step(UINT64_MAX);
        }
    }

    start_ns = plat_now_ns();
    hb_set((unsigned)p->hb_ms);
    dirty_set(p->dirty);
    if (p->verify) {
        verify_start(true);
    }
    out("READY mib=%" PRIu64 " seed=%" PRIu64, p->mib, p->seed);

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
        hb_run(plat_now_ns());
        plat_poll(plat_now_ns());
        if (!tch.active && !ver.active) {
            idle_wait();
        }
    }
}
