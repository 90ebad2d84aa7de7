/*
 * Bare-metal test guest: what its files share besides workload.h, the
 * interface between the workload and the platform.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TEST_GUEST_BARE_H
#define TEST_GUEST_BARE_H

#include "workload.h"

#define GIB                 (UINT64_C(1024) * MIB)
#define ARRAY_SIZE(a)       (sizeof(a) / sizeof((a)[0]))

/* What the platform layer found at boot. */
struct platform {
    const char *cmdline;
    char hv[13];                /* hypervisor CPUID signature, or "" */
    bool pvm;                   /* running natively under KVM-PVM */
    uint64_t tsc_khz;
    uint64_t lapic_per_ms;      /* local APIC timer counts per ms */
    /* RAM at or above RAM_FLOOR, ascending, within the identity map */
    struct wl_range ram[WL_RANGES_MAX];
    unsigned nr_ram;
};

/* Lowest guest-physical address the workload may use. */
#define RAM_FLOOR           (16 * MIB)
/* The identity map covers this much (entry.S: PT_PD_PAGES GiB). */
#define MAP_LIMIT           (64 * GIB)

extern struct platform plat;
/* Times the KVM-PVM page had to be registered again (after migration). */
extern uint64_t pvm_reregistered;

/* hw.c, besides the plat_*() functions of workload.h */
void platform_init(void);

/* lib.c, besides the functions that workload.h lists */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif /* TEST_GUEST_BARE_H */
