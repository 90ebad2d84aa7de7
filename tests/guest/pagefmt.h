/*
 * Self-describing guest pages, shared by every build of the test guest
 * (the Linux /init program and the bare-metal image) and by host tools.
 *
 * Every 4 KiB page carries a header with its index in the test area, a
 * generation number and a checksum of its payload.  The payload is a
 * pseudo-random stream derived from (seed, index, generation), so it is
 * incompressible, differs from page to page, and can be checked without
 * any other state: a page is good when its index is the one expected at
 * its place and the checksum matches the payload.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TEST_GUEST_PAGEFMT_H
#define TEST_GUEST_PAGEFMT_H

#include <stdint.h>

#define PAGEFMT_PAGE_SIZE       4096u
#define PAGEFMT_MAGIC           0x4d424731u     /* "MBG1" */

struct pagefmt_hdr {
    uint64_t index;         /* page number within the test area */
    uint32_t magic;
    uint32_t gen;           /* bumped by every rewrite */
    uint64_t seed;
    uint64_t csum;          /* pagefmt_csum() of the payload */
};

#define PAGEFMT_PAYLOAD_WORDS \
    ((PAGEFMT_PAGE_SIZE - sizeof(struct pagefmt_hdr)) / sizeof(uint64_t))

static inline uint64_t pagefmt_mix(uint64_t x)
{
    /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static inline uint64_t pagefmt_csum(const uint64_t *payload)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    unsigned i;

    for (i = 0; i < PAGEFMT_PAYLOAD_WORDS; i++) {
        h = (h ^ payload[i]) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* Write page @index, generation @gen, at @page. */
static inline void pagefmt_write(void *page, uint64_t seed, uint64_t index,
                                 uint32_t gen)
{
    struct pagefmt_hdr *h = page;
    uint64_t *payload = (uint64_t *)(h + 1);
    uint64_t s = pagefmt_mix(seed ^ pagefmt_mix(index) ^
                             ((uint64_t)gen << 32 | gen));
    unsigned i;

    for (i = 0; i < PAGEFMT_PAYLOAD_WORDS; i++) {
        /* xorshift64* */
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        payload[i] = s * 2685821657736338717ull;
    }
    h->csum = pagefmt_csum(payload);
    h->seed = seed;
    h->gen = gen;
    h->magic = PAGEFMT_MAGIC;
    h->index = index;
}

/* 0 if the page at @page is a good page number @index, else non-zero. */
static inline int pagefmt_check(const void *page, uint64_t index)
{
    const struct pagefmt_hdr *h = page;

    return h->magic != PAGEFMT_MAGIC || h->index != index ||
           h->csum != pagefmt_csum((const uint64_t *)(h + 1));
}

#endif /* TEST_GUEST_PAGEFMT_H */
