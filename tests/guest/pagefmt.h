/*
 * Self-describing guest pages, shared by every build of the test guest
 * (the Linux /init program and the bare-metal image) and by host tools.
 *
 * Every 4 KiB page carries a header with its index in the test area, a
 * generation number and a checksum of its payload.  The payload of a
 * random page (PAGEFMT_MAGIC) is a pseudo-random stream derived from
 * (seed, index, generation), so it is incompressible and differs from
 * page to page.  The payload of a plain page (PAGEFMT_MAGIC_PLAIN) is
 * one 64-bit word derived from the same, repeated: compressible, but
 * never zero as a whole page.  Either can be checked without any other
 * state: a page is good when its magic is that of its kind, its index is
 * the one expected at its place and the checksum matches the payload;
 * a plain page's payload must also be its one word, repeated.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TEST_GUEST_PAGEFMT_H
#define TEST_GUEST_PAGEFMT_H

#include <stdint.h>

#define PAGEFMT_PAGE_SIZE       4096u
#define PAGEFMT_MAGIC           0x4d424731u     /* "MBG1": random */
#define PAGEFMT_MAGIC_PLAIN     0x4d425031u     /* "MBP1": plain */

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

/* The state both payloads start from, for page @index, generation @gen. */
static inline uint64_t pagefmt_start(uint64_t seed, uint64_t index,
                                     uint32_t gen)
{
    return pagefmt_mix(seed ^ pagefmt_mix(index) ^
                       ((uint64_t)gen << 32 | gen));
}

/* The word that a plain page's payload repeats: never 0. */
static inline uint64_t pagefmt_plain_word(uint64_t seed, uint64_t index,
                                          uint32_t gen)
{
    return pagefmt_start(seed, index, gen) | 1;
}

static inline void pagefmt_set_hdr(struct pagefmt_hdr *h, uint64_t seed,
                                   uint64_t index, uint32_t gen,
                                   uint32_t magic)
{
    h->csum = pagefmt_csum((const uint64_t *)(h + 1));
    h->seed = seed;
    h->gen = gen;
    h->magic = magic;
    h->index = index;
}

/* Write random page @index, generation @gen, at @page. */
static inline void pagefmt_write(void *page, uint64_t seed, uint64_t index,
                                 uint32_t gen)
{
    struct pagefmt_hdr *h = page;
    uint64_t *payload = (uint64_t *)(h + 1);
    uint64_t s = pagefmt_start(seed, index, gen);
    unsigned i;

    for (i = 0; i < PAGEFMT_PAYLOAD_WORDS; i++) {
        /* xorshift64* */
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        payload[i] = s * 2685821657736338717ull;
    }
    pagefmt_set_hdr(h, seed, index, gen, PAGEFMT_MAGIC);
}

/* Write plain page @index, generation @gen, at @page. */
static inline void pagefmt_write_plain(void *page, uint64_t seed,
                                       uint64_t index, uint32_t gen)
{
    struct pagefmt_hdr *h = page;
    uint64_t *payload = (uint64_t *)(h + 1);
    uint64_t w = pagefmt_plain_word(seed, index, gen);
    unsigned i;

    for (i = 0; i < PAGEFMT_PAYLOAD_WORDS; i++) {
        payload[i] = w;
    }
    pagefmt_set_hdr(h, seed, index, gen, PAGEFMT_MAGIC_PLAIN);
}

/* 0 if the page at @page is a good random page number @index. */
static inline int pagefmt_check(const void *page, uint64_t index)
{
    const struct pagefmt_hdr *h = page;

    return h->magic != PAGEFMT_MAGIC || h->index != index ||
           h->csum != pagefmt_csum((const uint64_t *)(h + 1));
}

/*
 * 0 if the page at @page is a good plain page number @index: its payload
 * is the word of (its seed, @index, its generation), every time.
 */
static inline int pagefmt_check_plain(const void *page, uint64_t index)
{
    const struct pagefmt_hdr *h = page;
    const uint64_t *payload = (const uint64_t *)(h + 1);
    uint64_t w = pagefmt_plain_word(h->seed, index, h->gen);
    unsigned i;

    if (h->magic != PAGEFMT_MAGIC_PLAIN || h->index != index) {
        return 1;
    }
    for (i = 0; i < PAGEFMT_PAYLOAD_WORDS; i++) {
        if (payload[i] != w) {
            return 1;
        }
    }
    return h->csum != pagefmt_csum(payload);
}

#endif /* TEST_GUEST_PAGEFMT_H */
