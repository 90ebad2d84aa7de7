/*
 * Bare-metal build of the test guest: its main, where the test area is,
 * and its own fields of the protocol's lines.
 *
 * The workload is ../workload.c, the same as in the Linux /init program;
 * hw.c provides most of the platform it needs.  What differs from the
 * Linux guest is in README.md next to this file.
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

static const struct wl_area *area;  /* the test area */
static uint64_t *lat_buf;           /* touch latencies, one per page */
static uint64_t meta_base;

/*
 * Lay out the test area from the bottom of RAM and the per-page
 * bookkeeping from the top, or stop with ERROR if they do not fit.
 */
void plat_alloc(struct wl_area *a)
{
    const struct wl_range *last;
    uint64_t meta_size, avail = 0, left;
    unsigned i;

    meta_size = (a->npages * (sizeof(*a->gens) + sizeof(*lat_buf)) + 4095) &
                ~UINT64_C(4095);
    if (!plat.nr_ram) {
        wl_no_room(0);
    }
    last = &plat.ram[plat.nr_ram - 1];
    for (i = 0; i < plat.nr_ram; i++) {
        avail += plat.ram[i].size;
    }
    avail = meta_size <= last->size ? avail - meta_size : 0;
    if (wl_params.mib > avail / MIB) {
        wl_no_room(avail / MIB);
    }
    meta_base = last->base + last->size - meta_size;

    left = a->npages * PAGEFMT_PAGE_SIZE;
    for (i = 0; i < plat.nr_ram && left; i++) {
        struct wl_range *r = &a->range[a->nr_ranges++];
        uint64_t size = plat.ram[i].size;

        if (&plat.ram[i] == last) {
            size -= meta_size;
        }
        r->base = plat.ram[i].base;
        r->size = MIN(size, left);
        left -= r->size;
    }

    a->gens = (uint32_t *)(uintptr_t)meta_base;
    lat_buf = (uint64_t *)(uintptr_t)(meta_base +
                                      a->npages * sizeof(*a->gens));
    memset(a->gens, 0, a->npages * sizeof(*a->gens));
    area = a;
}

/* plat_alloc() set aside room for one latency per page. */
uint64_t *plat_lat_alloc(uint64_t n)
{
    return n <= area->npages ? lat_buf : NULL;
}

void plat_lat_free(uint64_t *lat)
{
    (void)lat;                      /* lat_buf stays */
}

void plat_fields(enum wl_line line, char *buf, size_t size)
{
    char ranges[256];
    size_t len = 0;
    unsigned i;

    switch (line) {
    case WL_BOOT:
        snprintf(buf, size, " guest=bare hv=%s pvm=%d",
                 plat.hv[0] ? plat.hv : "none", plat.pvm);
        break;
    case WL_PARAMS:
        /* guest.thp is the Linux guest's, accepted and ignored here. */
        snprintf(buf, size, " thp=0");
        break;
    case WL_CLOCK:
        snprintf(buf, size, " tsc_khz=%lu calib=pit apic_khz=%lu",
                 plat.tsc_khz, plat.lapic_per_ms);
        break;
    case WL_ALLOC:
        for (i = 0; i < area->nr_ranges; i++) {
            const struct wl_range *r = &area->range[i];

            len += (size_t)snprintf(ranges + len, sizeof(ranges) - len,
                                    "%s0x%lx-0x%lx", i ? "," : "",
                                    r->base, r->base + r->size);
            len = MIN(len, sizeof(ranges) - 1);
        }
        ranges[len] = 0;
        snprintf(buf, size, " locked=0 thp=none huge_mib=0 area=%s "
                 "meta=0x%lx", ranges, meta_base);
        break;
    case WL_STATS:
        snprintf(buf, size, " pvm=%d pvm_reregistered=%lu", plat.pvm,
                 pvm_reregistered);
        break;
    }
}

void __attribute__((noreturn)) bare_main(void);

void bare_main(void)
{
    platform_init();
    wl_boot();
    wl_main(plat.cmdline);
}
