/*
 * What entry.S defines for hw.c, and what it calls there.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TEST_GUEST_BARE_ENTRY_H
#define TEST_GUEST_BARE_ENTRY_H

#include <stdint.h>

extern uint64_t boot_tsc;           /* TSC at the entry point */
extern uint64_t start_info_pa;      /* struct hvm_start_info, from PVH */

/* Identity map: entry.S fills the first 4 GiB, hw.c the rest. */
extern uint64_t pt_pml4[512];
extern uint64_t pt_pdpt[512];
extern uint64_t pt_pd[];

/* Handlers for the IDT. */
extern const uint64_t exc_stubs[32];
extern char timer_isr[];
extern char serial_isr[];
extern char spurious_isr[];

/* Interrupt counts (hw.c), written by the handlers. */
extern volatile uint64_t timer_ticks;   /* volatile: written by timer_isr */
extern volatile uint64_t serial_irqs;   /* volatile: written by serial_isr */

/*
 * Set *if_flag, halt until an interrupt, clear it.  *if_flag is read by
 * the hypervisor (KVM-PVM's interrupt flag), hence volatile.
 */
void idle_halt(volatile uint8_t *if_flag);

/* What exc_common pushes, lowest address first. */
struct trap_frame {
    uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

/* Called by exc_common for exceptions 0-31; returns to the trap. */
void trap_handler(struct trap_frame *f);

#endif /* TEST_GUEST_BARE_ENTRY_H */
