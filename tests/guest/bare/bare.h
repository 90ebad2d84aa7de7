/*
 * Bare-metal test guest: what the workload (main.c) uses of the
 * platform layer (hw.c) and of the small C library (lib.c).
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TEST_GUEST_BARE_H
#define TEST_GUEST_BARE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIB                 (UINT64_C(1024) * 1024)
#define GIB                 (UINT64_C(1024) * MIB)
#define NS_PER_US           UINT64_C(1000)
#define NS_PER_MS           UINT64_C(1000000)
#define NS_PER_S            UINT64_C(1000000000)

#define MIN(a, b)           ((a) < (b) ? (a) : (b))
#define MAX(a, b)           ((a) > (b) ? (a) : (b))
#define ARRAY_SIZE(a)       (sizeof(a) / sizeof((a)[0]))

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

/* A stretch of guest-physical RAM, identity-mapped. */
struct mem_range {
    uint64_t base;
    uint64_t size;
};

#define MEM_RANGES_MAX      16

/* What the platform layer found at boot. */
struct platform {
    const char *cmdline;
    char hv[13];                /* hypervisor CPUID signature, or "" */
    bool pvm;                   /* running natively under KVM-PVM */
    uint64_t tsc_khz;
    uint64_t lapic_per_ms;      /* local APIC timer counts per ms */
    /* RAM at or above RAM_FLOOR, ascending, within the identity map */
    struct mem_range ram[MEM_RANGES_MAX];
    unsigned nr_ram;
};

/* Lowest guest-physical address the workload may use. */
#define RAM_FLOOR           (16 * MIB)
/* The identity map covers this much (entry.S: PT_PD_PAGES GiB). */
#define MAP_LIMIT           (64 * GIB)

extern struct platform plat;
/* Times the KVM-PVM page had to be registered again (after migration). */
extern uint64_t pvm_reregistered;

/* hw.c */
void platform_init(void);
uint64_t boot_ms(void);
uint64_t now_ns(void);
uint64_t tsc_to_ns(uint64_t cycles);
uint64_t rdtsc_ordered(void);
void cpu_idle(uint64_t wake);
void pvm_keepalive(uint64_t now);
void con_write(const char *buf, size_t len);
int con_getc(void);
void __attribute__((noreturn)) halt_forever(void);

/* lib.c */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int __attribute__((format(printf, 3, 4)))
snprintf(char *buf, size_t size, const char *fmt, ...);
void __attribute__((format(printf, 1, 2))) out(const char *fmt, ...);
void sort_u64(uint64_t *a, uint64_t n);

#endif /* TEST_GUEST_BARE_H */
