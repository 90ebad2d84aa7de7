/*
 * The test guest's workload (workload.c) and what it needs of the
 * platform it runs on.
 *
 * The workload is the same in every build of the test guest: the Linux
 * /init program (guest.c) and the bare-metal image (bare/).  It parses
 * the guest.* parameters, fills the test area with self-describing
 * pages (pagefmt.h), and then loops forever: heartbeats, page rewrites
 * at a set rate, verification, timed random accesses and the serial
 * commands (README.md).  It prints every line of the serial protocol.
 *
 * A platform provides the functions declared under "platform" below and
 * calls wl_boot() then wl_main().  workload.c is freestanding C: built
 * without a C library (!WL_HOSTED), it needs only the few functions
 * declared at the end of this file, and no floating point.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TEST_GUEST_WORKLOAD_H
#define TEST_GUEST_WORKLOAD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Built with a C library (the Linux guest), or without one (the bare
 * guest: -ffreestanding, and no floating-point registers either).
 */
#define WL_HOSTED           __STDC_HOSTED__

#if WL_HOSTED
#include <inttypes.h>
#else
/* x86-64: uint64_t is unsigned long. */
#define PRIu64              "lu"
#endif

#define MIB                 (UINT64_C(1024) * 1024)
#define NS_PER_US           UINT64_C(1000)
#define NS_PER_MS           UINT64_C(1000000)
#define NS_PER_S            UINT64_C(1000000000)

#define MIN(a, b)           ((a) < (b) ? (a) : (b))
#define MAX(a, b)           ((a) > (b) ? (a) : (b))

/*
 * A rate of dirtying, MiB/s: a double with a C library; without one
 * (and without floating point), thousandths of a MiB/s.
 */
#if WL_HOSTED
typedef double wl_rate;
#else
typedef uint64_t wl_rate;
#endif

/* The guest.* parameters; wl_main() sets them from the command line. */
struct wl_params {
    uint64_t mib;           /* guest.mib: test area size */
    uint64_t seed;          /* guest.seed */
    bool fill;              /* guest.fill */
    wl_rate dirty;          /* guest.dirty: MiB/s, 0 = off */
    uint64_t hot_mib;       /* guest.hot: 0 = whole area */
    uint64_t hb_ms;         /* guest.hb: 0 = off */
    bool verify;            /* guest.verify: continuous verification */
    uint64_t touch;         /* guest.touch: random accesses after fill */
    uint64_t plain;         /* guest.plain: percent of plain pages */
    bool thp;               /* guest.thp: for the platform to use or not */
};

extern struct wl_params wl_params;

/* A stretch of the test area: @size bytes at address @base. */
struct wl_range {
    uint64_t base;
    uint64_t size;
};

#define WL_RANGES_MAX       16

/*
 * The test area, which plat_alloc() lays out: page i is the i-th 4 KiB
 * page of the ranges, in order.
 */
struct wl_area {
    uint64_t npages;                    /* set by the workload */
    struct wl_range range[WL_RANGES_MAX];
    unsigned nr_ranges;
    uint32_t *gens;                     /* expected generation, per page */
};

/* Lines to which the platform may add fields of its own. */
enum wl_line {
    WL_BOOT,
    WL_PARAMS,
    WL_CLOCK,
    WL_ALLOC,
    WL_STATS,
};

/* ---- workload.c ---- */

/* Print the BOOT line: the platform's first words, when it is set up. */
void wl_boot(void);
/* Run the workload with the guest.* parameters found in @cmdline. */
void __attribute__((noreturn)) wl_main(const char *cmdline);
/* Print one line on the console, terminated by CR LF. */
void __attribute__((format(printf, 1, 2))) out(const char *fmt, ...);
/* From plat_alloc(): print that the test area does not fit, and stop. */
void __attribute__((noreturn)) wl_no_room(uint64_t avail_mib);

/* ---- platform ---- */

/* Nanoseconds on a monotonic clock. */
uint64_t plat_now_ns(void);
/*
 * Timestamps around one memory access that touch times, and the
 * nanoseconds that a difference of two of them stands for.
 */
uint64_t plat_stamp(void);
uint64_t plat_stamp_ns(uint64_t delta);
/* Milliseconds from the guest's start to wl_boot(), for BOOT. */
uint64_t plat_boot_ms(void);
/* Name of the clock of plat_now_ns(), for CLOCK. */
const char *plat_clocksource(void);

/* Write to the console, all of it. */
void plat_write(const char *buf, size_t len);
/* The next byte received on the console, or -1 if there is none. */
int plat_getc(void);
/* Sleep until plat_now_ns() reaches @wake, or console input comes. */
void plat_idle_until(uint64_t wake);
/* Called once a round of the main loop, at @now. */
void plat_poll(uint64_t now);
/* Stop for good (after an ERROR line). */
void __attribute__((noreturn)) plat_halt(void);

/*
 * Lay out @a->npages pages of test area and the generation table, with
 * every entry 0; or print ERROR (wl_no_room()) and stop.
 */
void plat_alloc(struct wl_area *a);
/* Room for @n touch latencies (@n is at most the area's pages), or NULL. */
uint64_t *plat_lat_alloc(uint64_t n);
void plat_lat_free(uint64_t *lat);

/* Write to @buf this platform's own fields of @line, each after a space. */
void plat_fields(enum wl_line line, char *buf, size_t size);

#if !WL_HOSTED
/*
 * (a * b + add) / c with a 128-bit intermediate; the quotient must fit
 * in 64 bits.  (Dividing an unsigned __int128 in C would need libgcc.)
 */
static inline uint64_t muldiv_add(uint64_t a, uint64_t b, uint64_t add,
                                  uint64_t c)
{
    uint64_t lo, hi, q, r;

    __asm__("mulq %3" : "=a"(lo), "=d"(hi) : "a"(a), "rm"(b));
    lo += add;
    hi += lo < add;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(c));
    (void)r;
    return q;
}

/* a * b / c, truncated. */
static inline uint64_t muldiv(uint64_t a, uint64_t b, uint64_t c)
{
    return muldiv_add(a, b, 0, c);
}

/* a * b / c, rounded to nearest. */
static inline uint64_t muldiv_round(uint64_t a, uint64_t b, uint64_t c)
{
    return muldiv_add(a, b, c / 2, c);
}

/* What a build without a C library must provide (bare/lib.c does). */
void *memset(void *s, int c, size_t n);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int __attribute__((format(printf, 3, 4)))
snprintf(char *buf, size_t size, const char *fmt, ...);
#endif

#endif /* TEST_GUEST_WORKLOAD_H */
