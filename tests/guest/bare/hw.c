/*
 * Platform layer of the bare-metal test guest: exceptions and
 * interrupts, the serial console (COM1: output polled, input polled and
 * waking the idle loop by interrupt), time (TSC calibrated against the
 * PIT), the local APIC timer that wakes the idle loop, guest RAM (PVH
 * memory map, identity map above 4 GiB) and KVM-PVM.
 *
 * KVM-PVM
 *
 * Under the KVM-PVM hypervisor of these machines a vCPU that is not a
 * paravirtualised PVM guest runs in an emulator, one instruction at a
 * time, about a thousand times slower than natively.  It runs natively
 * once it is in 64-bit mode and has registered the guest-physical
 * address of a page through MSR 0x4b564d10, found by experiment on this
 * host (kvm_pvm module of Linux 6.18.44-fc; README.md has the details).
 * From then on the guest's interrupt flag is the byte at offset 0 of
 * that page, not RFLAGS.IF, so idle_halt() sets it around HLT.  The MSR
 * is tried only when CPUID says KVM and MSR 0x4b564d11 reads as "PVM";
 * a #GP on the way is caught, so on any other host nothing changes.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "bare.h"
#include "entry.h"

/* Counted by the interrupt handlers in entry.S. */
volatile uint64_t timer_ticks;      /* volatile: written by timer_isr */
volatile uint64_t serial_irqs;      /* volatile: written by serial_isr */

struct platform plat;

#define PTE_TABLE           UINT64_C(0x007)     /* present, writable, user */
#define PTE_LARGE           UINT64_C(0x087)     /* same, 2 MiB page */

#define SEL_CODE64          0x08
#define VEC_GP              13
#define VEC_PF              14
#define VEC_TIMER           0x20
#define VEC_SERIAL          0x24
#define VEC_SPURIOUS        0xff

#define COM1                0x3f8
#define UART_RBR            0
#define UART_THR            0
#define UART_IER            1
#define UART_DLL            0
#define UART_DLM            1
#define UART_FCR            2
#define UART_LCR            3
#define UART_MCR            4
#define UART_LSR            5
#define UART_LSR_DR         0x01
#define UART_LSR_THRE       0x20
#define UART_FIFO           16

#define PIT_HZ              UINT64_C(1193182)
#define PIT_CH2             0x42
#define PIT_CMD             0x43
#define PORT_B              0x61

#define LAPIC_BASE          UINT64_C(0xfee00000)
#define LAPIC_ID            0x020
#define LAPIC_TPR           0x080
#define LAPIC_SVR           0x0f0
#define LAPIC_LVT_TIMER     0x320
#define LAPIC_TIMER_INIT    0x380
#define LAPIC_TIMER_CUR     0x390
#define LAPIC_TIMER_DIV     0x3e0
#define LAPIC_LVT_MASKED    (1u << 16)
/* Longest sleep in plat_idle_until(). */
#define IDLE_MAX_NS         NS_PER_S

#define IOAPIC_BASE         UINT64_C(0xfec00000)
#define IOAPIC_REDTBL       0x10
#define IRQ_COM1            4           /* ISA IRQ, IOAPIC pin on pc/q35 */

#define MSR_PVM_VIF         0x4b564d10
#define MSR_PVM_SIGNATURE   0x4b564d11
#define PVM_SIGNATURE       0x4d5650            /* "PVM" */
/* How often to check that the VIF page is still registered (an exit). */
#define PVM_CHECK_NS        (10 * NS_PER_MS)

#define XEN_HVM_START_MAGIC 0x336ec578
#define E820_RAM            1

/* include/hw/xen/start_info.h in QEMU, version 1 */
struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

struct idt_gate {
    uint16_t off0;
    uint16_t sel;
    uint8_t ist;
    uint8_t type;
    uint16_t off1;
    uint32_t off2;
    uint32_t zero;
};

/*
 * The page registered with KVM-PVM.  Byte 0 is the interrupt flag;
 * byte 1 ("pending" in the host's type information) is the hypervisor's.
 */
static struct {
    volatile uint8_t if_flag;       /* volatile: read by the hypervisor */
    volatile uint8_t pending;       /* volatile: written by the hypervisor */
    uint8_t pad[4094];
} pvm_vif __attribute__((aligned(4096)));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static volatile bool trap_probing;  /* volatile: read by trap_handler() */
static volatile bool trap_hit;      /* volatile: set by trap_handler() */
static uint64_t tsc0;               /* plat_now_ns() counts from here */
static uint64_t tsc_mult;           /* ns per cycle, 32.32 fixed point */
static uint64_t pvm_next_check;
uint64_t pvm_reregistered;

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* RDTSC that does not move across the loads and stores around it. */
static inline uint64_t rdtsc_ordered(void)
{
    uint32_t lo, hi;

    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)
                     : : "memory");
    return (uint64_t)hi << 32 | lo;
}

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c,
                  uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                     : "a"(leaf), "c"(0));
}

/* RDMSR that returns false instead of dying on #GP. */
static bool rdmsr_safe(uint32_t msr, uint64_t *val)
{
    uint32_t lo = 0, hi = 0;

    trap_hit = false;
    trap_probing = true;
    /* Exactly one two-byte instruction: trap_handler() skips it. */
    __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
    trap_probing = false;
    *val = (uint64_t)hi << 32 | lo;
    return !trap_hit;
}

static bool wrmsr_safe(uint32_t msr, uint64_t val)
{
    trap_hit = false;
    trap_probing = true;
    __asm__ volatile("wrmsr" : : "a"((uint32_t)val), "d"((uint32_t)(val >> 32)),
                     "c"(msr) : "memory");
    trap_probing = false;
    return !trap_hit;
}

/* Device registers: every access must happen, hence volatile. */
static inline uint32_t lapic_read(unsigned reg)
{
    return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg); /* MMIO */
}

static inline void lapic_write(unsigned reg, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = v; /* MMIO */
}

static void ioapic_write(unsigned reg, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)IOAPIC_BASE = reg; /* MMIO */
    *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + 0x10) = v; /* MMIO */
}

/* ---- console ---- */

static void con_init(void)
{
    outb(COM1 + UART_IER, 0);
    outb(COM1 + UART_LCR, 0x80);        /* divisor latch */
    outb(COM1 + UART_DLL, 1);           /* 115200 baud */
    outb(COM1 + UART_DLM, 0);
    outb(COM1 + UART_LCR, 0x03);        /* 8N1 */
    outb(COM1 + UART_FCR, 0xc7);        /* FIFOs on and cleared */
    outb(COM1 + UART_MCR, 0x0b);        /* DTR, RTS, OUT2 (IRQ on) */
}

/*
 * THRE means the 16-byte transmit FIFO is empty: fill it, then wait.
 * (Every port access is an exit; this halves them.)
 */
void plat_write(const char *buf, size_t len)
{
    size_t i = 0, n;

    while (i < len) {
        while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE)) {
            continue;
        }
        for (n = 0; n < UART_FIFO && i < len; n++) {
            outb(COM1 + UART_THR, (uint8_t)buf[i++]);
        }
    }
}

/* The next byte received, or -1 if there is none. */
int plat_getc(void)
{
    if (!(inb(COM1 + UART_LSR) & UART_LSR_DR)) {
        return -1;
    }
    return inb(COM1 + UART_RBR);
}

/* ---- exceptions and interrupts ---- */

void __attribute__((noreturn)) plat_halt(void)
{
    for (;;) {
        pvm_vif.if_flag = 0;
        __asm__ volatile("cli; hlt" : : : "memory");
    }
}

void trap_handler(struct trap_frame *f)
{
    uint64_t cr2 = 0;

    if (f->vector == VEC_GP && trap_probing) {
        /* A probed RDMSR or WRMSR: skip it. */
        trap_hit = true;
        f->rip += 2;
        return;
    }
    if (f->vector == VEC_PF) {
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    }
    out("PANIC exception=%lu error=0x%lx rip=0x%lx rsp=0x%lx cr2=0x%lx",
        f->vector, f->error, f->rip, f->rsp, cr2);
    plat_halt();
}

static void idt_set(unsigned vec, uint64_t handler)
{
    struct idt_gate *g = &idt[vec];

    g->off0 = (uint16_t)handler;
    g->sel = SEL_CODE64;
    g->ist = 0;
    g->type = 0x8e;                     /* present, DPL 0, interrupt gate */
    g->off1 = (uint16_t)(handler >> 16);
    g->off2 = (uint32_t)(handler >> 32);
    g->zero = 0;
}

static void idt_init(void)
{
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(exc_stubs); i++) {
        idt_set(i, exc_stubs[i]);
    }
    idt_set(VEC_TIMER, (uint64_t)timer_isr);
    idt_set(VEC_SERIAL, (uint64_t)serial_isr);
    idt_set(VEC_SPURIOUS, (uint64_t)spurious_isr);
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

/* ---- KVM-PVM ---- */

static void hv_detect(void)
{
    uint32_t a, b, c, d;

    cpuid(1, &a, &b, &c, &d);
    if (!(c & (1u << 31))) {
        return;
    }
    cpuid(0x40000000, &a, &b, &c, &d);
    memcpy(plat.hv, &b, 4);
    memcpy(plat.hv + 4, &c, 4);
    memcpy(plat.hv + 8, &d, 4);
    plat.hv[12] = 0;
}

static void pvm_init(void)
{
    uint64_t sig;

    if (memcmp(plat.hv, "KVMKVMKVM", 10)) {
        return;
    }
    if (!rdmsr_safe(MSR_PVM_SIGNATURE, &sig) || sig != PVM_SIGNATURE) {
        return;
    }
    /* From the next instruction on, the vCPU runs natively. */
    plat.pvm = wrmsr_safe(MSR_PVM_VIF, (uint64_t)&pvm_vif);
}

/*
 * Once a round of the main loop.  A vCPU re-created by a migration has
 * the VIF page unregistered (QEMU does not know the MSR), which would
 * leave it in the emulator: register it again.  One exit every
 * PVM_CHECK_NS is cheap enough.
 */
void plat_poll(uint64_t now)
{
    uint64_t v;

    if (!plat.pvm || now < pvm_next_check) {
        return;
    }
    pvm_next_check = now + PVM_CHECK_NS;
    if (rdmsr_safe(MSR_PVM_VIF, &v) && v != (uint64_t)&pvm_vif) {
        wrmsr_safe(MSR_PVM_VIF, (uint64_t)&pvm_vif);
        pvm_reregistered++;
    }
}

/*
 * Sleep until @wake (plat_now_ns() time) or the next byte on the console,
 * whichever comes first, or a little earlier.  The local APIC timer is
 * armed for @wake, at most IDLE_MAX_NS ahead.
 */
void plat_idle_until(uint64_t wake)
{
    uint64_t now = plat_now_ns(), counts;

    if (wake <= now) {
        return;
    }
    counts = muldiv(MIN(wake - now, IDLE_MAX_NS), plat.lapic_per_ms,
                    NS_PER_MS);
    lapic_write(LAPIC_TIMER_INIT, (uint32_t)MAX(MIN(counts, UINT32_MAX), 1));
    idle_halt(&pvm_vif.if_flag);
}

/* ---- time ---- */

/* One reading of PIT channel 2 with the TSC around it. */
static uint16_t pit_read(uint64_t *tsc, uint64_t *width)
{
    uint64_t a, b;
    uint8_t lo, hi;

    a = rdtsc_ordered();
    outb(PIT_CMD, 0x80);                /* latch channel 2 */
    lo = inb(PIT_CH2);
    hi = inb(PIT_CH2);
    b = rdtsc_ordered();
    *tsc = a + (b - a) / 2;
    *width = b - a;
    return (uint16_t)(hi << 8 | lo);
}

/* The tightest of 16 readings, the one least disturbed by exits. */
static uint16_t pit_read_best(uint64_t *tsc)
{
    uint64_t best = UINT64_MAX, t, w;
    uint16_t count = 0, c;
    unsigned i;

    for (i = 0; i < 16; i++) {
        c = pit_read(&t, &w);
        if (w < best) {
            best = w;
            count = c;
            *tsc = t;
        }
    }
    return count;
}

/*
 * TSC frequency in kHz from the PIT.  Channel 2 counts down from 65535
 * at 1.193182 MHz (mode 2, gate on, speaker off); the TSC is read
 * around latched readings of the counter at the start and after about
 * 30 ms, and the best-bracketed reading is kept at each end, so a vCPU
 * preempted between two readings does not matter.  0 on failure.
 */
static uint64_t tsc_calibrate_once(void)
{
    uint64_t t1 = 0, t2 = 0, t;
    uint16_t c1, c2;

    outb(PORT_B, (inb(PORT_B) & ~0x02) | 0x01);
    outb(PIT_CMD, 0xb4);                /* channel 2, lo/hi, mode 2 */
    outb(PIT_CH2, 0xff);
    outb(PIT_CH2, 0xff);
    c1 = pit_read_best(&t1);
    do {
        c2 = pit_read(&t, &t);
    } while (c2 <= c1 && (uint64_t)(c1 - c2) < PIT_HZ * 30 / 1000);
    c2 = pit_read_best(&t2);
    if (c2 >= c1 || t2 <= t1) {
        return 0;                       /* wrapped around */
    }
    return (t2 - t1) * PIT_HZ / ((uint64_t)(c1 - c2) * 1000);
}

/* The median of three calibrations. */
static void tsc_calibrate(void)
{
    uint64_t k[3], t;
    unsigned i, j;

    for (i = 0; i < 3; i++) {
        do {
            k[i] = tsc_calibrate_once();
        } while (!k[i]);
        for (j = i; j > 0 && k[j - 1] > k[j]; j--) {
            t = k[j];
            k[j] = k[j - 1];
            k[j - 1] = t;
        }
    }
    plat.tsc_khz = k[1];
    tsc_mult = (NS_PER_MS << 32) / plat.tsc_khz;
}

static uint64_t tsc_to_ns(uint64_t cycles)
{
    return (uint64_t)(((unsigned __int128)cycles * tsc_mult) >> 32);
}

uint64_t plat_now_ns(void)
{
    return tsc_to_ns(rdtsc() - tsc0);
}

/* touch times an access with the TSC, read in order with it. */
uint64_t plat_stamp(void)
{
    return rdtsc_ordered();
}

uint64_t plat_stamp_ns(uint64_t delta)
{
    return tsc_to_ns(delta);
}

const char *plat_clocksource(void)
{
    return "tsc";
}

/*
 * Interrupts that wake plat_idle_until(): the local APIC timer, one-shot, and
 * the console's "data received" through the I/O APIC.  All time is
 * measured with the TSC; the timer's rate is measured against it.
 */
static void irq_init(void)
{
    uint64_t t0, t1;
    uint32_t c0, c1;

    /* No legacy PIC interrupts (the BIOS left the PIT's IRQ 0 on). */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);

    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
    lapic_write(LAPIC_TIMER_DIV, 0xb);  /* divide by 1 */
    lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VEC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
    t0 = rdtsc_ordered();
    c0 = lapic_read(LAPIC_TIMER_CUR);
    do {
        t1 = rdtsc_ordered();
    } while (t1 - t0 < plat.tsc_khz * 5);
    c1 = lapic_read(LAPIC_TIMER_CUR);
    t1 = rdtsc_ordered();
    plat.lapic_per_ms = muldiv(c0 - c1, plat.tsc_khz, t1 - t0);
    if (plat.lapic_per_ms < 1000) {
        plat.lapic_per_ms = 1000;
    }
    lapic_write(LAPIC_TIMER_INIT, 0);
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER);    /* one-shot */

    /* COM1: edge, active high, fixed, to this CPU. */
    ioapic_write(IOAPIC_REDTBL + 2 * IRQ_COM1 + 1,
                 lapic_read(LAPIC_ID) & 0xff000000);
    ioapic_write(IOAPIC_REDTBL + 2 * IRQ_COM1, VEC_SERIAL);
    outb(COM1 + UART_IER, 0x01);        /* data received */
}

/* ---- memory ---- */

static void ram_add(uint64_t base, uint64_t size)
{
    uint64_t end = base + size;
    unsigned i;

    base = MAX(base, RAM_FLOOR);
    end = MIN(end, MAP_LIMIT);
    base = (base + 4095) & ~UINT64_C(4095);
    end &= ~UINT64_C(4095);
    if (end <= base) {
        return;
    }
    /* Insert in order; merge with a neighbour it touches. */
    for (i = 0; i < plat.nr_ram; i++) {
        struct wl_range *r = &plat.ram[i];

        if (r->base + r->size == base) {
            r->size += end - base;
            return;
        }
        if (end == r->base) {
            r->base = base;
            r->size += end - base;
            return;
        }
        if (base < r->base) {
            break;
        }
    }
    if (plat.nr_ram == WL_RANGES_MAX) {
        return;
    }
    memmove(&plat.ram[i + 1], &plat.ram[i],
            (plat.nr_ram - i) * sizeof(plat.ram[0]));
    plat.ram[i].base = base;
    plat.ram[i].size = end - base;
    plat.nr_ram++;
}

/* Extend the identity map of entry.S (4 GiB) to cover @end. */
static void map_upto(uint64_t end)
{
    uint64_t gb, i, cr3;

    for (gb = 4; gb < MAP_LIMIT / GIB && gb * GIB < end; gb++) {
        uint64_t *pd = &pt_pd[gb * 512];

        for (i = 0; i < 512; i++) {
            pd[i] = (gb * GIB + i * 2 * MIB) | PTE_LARGE;
        }
        pt_pdpt[gb] = (uint64_t)pd | PTE_TABLE;
    }
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

static void mem_init(const struct hvm_start_info *si)
{
    const struct hvm_memmap_table_entry *e;
    uint32_t i;

    if (si->version >= 1 && si->memmap_paddr) {
        e = (const void *)(uintptr_t)si->memmap_paddr;
        for (i = 0; i < si->memmap_entries; i++) {
            if (e[i].type == E820_RAM) {
                ram_add(e[i].addr, e[i].size);
            }
        }
    }
    if (plat.nr_ram) {
        const struct wl_range *last = &plat.ram[plat.nr_ram - 1];

        map_upto(last->base + last->size);
    }
}

void platform_init(void)
{
    const struct hvm_start_info *si =
        (const void *)(uintptr_t)start_info_pa;

    /* Under KVM-PVM, emulated until pvm_init(): keep this part short. */
    idt_init();
    con_init();
    hv_detect();
    pvm_init();

    if (si->magic != XEN_HVM_START_MAGIC) {
        out("PANIC not started through PVH: start_info magic 0x%x",
            si->magic);
        plat_halt();
    }
    plat.cmdline = si->cmdline_paddr ?
                   (const char *)(uintptr_t)si->cmdline_paddr : "";
    mem_init(si);
    tsc_calibrate();
    irq_init();
    tsc0 = rdtsc();
}

/* ms from the entry point to platform_init()'s end. */
uint64_t plat_boot_ms(void)
{
    return tsc0 > boot_tsc ? tsc_to_ns(tsc0 - boot_tsc) / NS_PER_MS : 0;
}
