/*
 * The little of a C library that the bare-metal test guest needs:
 * memory and string functions (GCC may call memset and memcpy even in
 * freestanding code) and a vsnprintf for the console lines.
 *
 * vsnprintf understands %d %i %u %x %X %s %c %p and %%, with the flags
 * '-' and '0', a field width, a precision for %s, and the length
 * modifiers l, ll and z.  That is all the guest uses.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "bare.h"

void *memset(void *s, int c, size_t n)
{
    void *p = s;

    __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
    return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
    void *dp = d;

    __asm__ volatile("rep movsb" : "+D"(dp), "+S"(s), "+c"(n) : : "memory");
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;

    if (dp <= sp) {
        return memcpy(d, s, n);
    }
    while (n--) {
        dp[n] = sp[n];
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *ap = a, *bp = b;

    for (; n; n--, ap++, bp++) {
        if (*ap != *bp) {
            return *ap - *bp;
        }
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n]) {
        n++;
    }
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (uint8_t)*a - (uint8_t)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b || !*a) {
            return (uint8_t)*a - (uint8_t)*b;
        }
    }
    return 0;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c) {
            return (char *)s;
        }
        if (!*s) {
            return NULL;
        }
    }
}

/* Output cursor of vsnprintf: writes what fits, counts everything. */
struct sink {
    char *buf;
    size_t size;
    size_t len;
};

static void sink_put(struct sink *s, char c)
{
    if (s->len + 1 < s->size) {
        s->buf[s->len] = c;
    }
    s->len++;
}

static void sink_field(struct sink *s, const char *str, size_t n,
                       unsigned width, bool left, char pad)
{
    size_t i;

    for (i = n; !left && i < width; i++) {
        sink_put(s, pad);
    }
    for (i = 0; i < n; i++) {
        sink_put(s, str[i]);
    }
    for (i = n; left && i < width; i++) {
        sink_put(s, ' ');
    }
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = { .buf = buf, .size = size };

    for (; *fmt; fmt++) {
        bool left = false, zero = false, neg = false;
        unsigned width = 0, lng = 0;
        int prec = -1;
        char num[24];
        size_t n = 0;
        uint64_t v;
        unsigned base;
        const char *str;

        if (*fmt != '%') {
            sink_put(&s, *fmt);
            continue;
        }
        fmt++;
        for (;; fmt++) {
            if (*fmt == '-') {
                left = true;
            } else if (*fmt == '0') {
                zero = true;
            } else {
                break;
            }
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (unsigned)(*fmt++ - '0');
        }
        if (*fmt == '.') {
            prec = 0;
            for (fmt++; *fmt >= '0' && *fmt <= '9'; fmt++) {
                prec = prec * 10 + (*fmt - '0');
            }
        }
        while (*fmt == 'l' || *fmt == 'z') {
            lng++;
            fmt++;
        }

        switch (*fmt) {
        case 'd':
        case 'i':
            if (lng) {
                int64_t x = va_arg(ap, int64_t);

                neg = x < 0;
                v = neg ? -(uint64_t)x : (uint64_t)x;
            } else {
                int x = va_arg(ap, int);

                neg = x < 0;
                v = neg ? -(uint64_t)(int64_t)x : (uint64_t)x;
            }
            base = 10;
            goto number;
        case 'u':
        case 'x':
        case 'X':
        case 'p':
            if (*fmt == 'p') {
                v = (uint64_t)(uintptr_t)va_arg(ap, void *);
            } else if (lng) {
                v = va_arg(ap, uint64_t);
            } else {
                v = va_arg(ap, unsigned int);
            }
            base = *fmt == 'u' ? 10 : 16;
        number:
            do {
                unsigned d = (unsigned)(v % base);

                char a = *fmt == 'X' ? 'A' : 'a';

                num[sizeof(num) - 1 - n++] = (char)(d < 10 ? '0' + d :
                                                    a + d - 10);
                v /= base;
            } while (v);
            if (neg) {
                if (zero && !left) {
                    sink_put(&s, '-');
                    width = width ? width - 1 : 0;
                } else {
                    num[sizeof(num) - 1 - n++] = '-';
                }
            }
            sink_field(&s, num + sizeof(num) - n, n, width, left,
                       zero && !left ? '0' : ' ');
            break;
        case 's':
            str = va_arg(ap, const char *);
            if (!str) {
                str = "(null)";
            }
            while (str[n] && (prec < 0 || n < (size_t)prec)) {
                n++;
            }
            sink_field(&s, str, n, width, left, ' ');
            break;
        case 'c':
            num[0] = (char)va_arg(ap, int);
            sink_field(&s, num, 1, width, left, ' ');
            break;
        case '%':
            sink_put(&s, '%');
            break;
        default:
            /* Unknown conversion: print it as it is. */
            sink_put(&s, '%');
            if (*fmt) {
                sink_put(&s, *fmt);
            } else {
                fmt--;
            }
            break;
        }
    }
    if (size) {
        buf[MIN(s.len, size - 1)] = 0;
    }
    return (int)MIN(s.len, (size_t)INT32_MAX);
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
