/*
 * Entry of the bare-metal test guest.
 *
 * QEMU loads the ELF image with -kernel and starts it through the PVH
 * boot protocol: the ELF note XEN_ELFNOTE_PHYS32_ENTRY names pvh_start,
 * which is entered in 32-bit protected mode with paging off and %ebx
 * pointing at a struct hvm_start_info.  pvh_start builds an identity
 * map of the first 4 GiB with 2 MiB pages, enters 64-bit long mode and
 * calls bare_main(), which maps the rest of RAM.
 *
 * Every page table entry has the User bit set.  The guest always runs
 * at CPL 0, so this changes nothing under TCG or VMX/SVM, but KVM-PVM
 * (see README.md) does not run code from supervisor-only pages: it
 * takes the same instruction fetch fault again and again.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define PTE_P               0x001
#define PTE_W               0x002
#define PTE_U               0x004
#define PTE_PS              0x080
#define PTE_TABLE           (PTE_P | PTE_W | PTE_U)
#define PTE_LARGE           (PTE_P | PTE_W | PTE_U | PTE_PS)

#define CR0_PE              0x00000001
#define CR0_MP              0x00000002
#define CR0_NE              0x00000020
#define CR0_WP              0x00010000
#define CR0_PG              0x80000000
#define CR4_PAE             0x00000020
#define CR4_OSFXSR          0x00000200
#define CR4_OSXMMEXCPT      0x00000400
#define MSR_EFER            0xc0000080
#define EFER_LME            0x00000100

#define SEL_CODE64          0x08

/* Page directories for the identity map: 64 of them cover 64 GiB. */
#define PT_PD_PAGES         64

#define XEN_ELFNOTE_PHYS32_ENTRY 18

    .section .note.Xen, "a"
    .p2align 2
    .long 4                         /* name size */
    .long 4                         /* descriptor size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_start

    .section .text.entry, "ax"
    .code32
    .globl pvh_start
pvh_start:
    cli
    cld
    rdtsc
    mov %eax, boot_tsc
    mov %edx, boot_tsc + 4
    mov %ebx, start_info_pa
    mov $stack_top, %esp

    /* pt_pd[0..3]: 2048 large pages, 0 to 4 GiB. */
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $PTE_LARGE, %eax
    mov %eax, pt_pd(, %ecx, 8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, pt_pd + 4(, %ecx, 8)
    inc %ecx
    cmp $4 * 512, %ecx
    jne 1b

    /* pt_pdpt[0..3] -> pt_pd[0..3]; pt_pml4[0] -> pt_pdpt. */
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $12, %eax
    add $pt_pd + PTE_TABLE, %eax
    mov %eax, pt_pdpt(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jne 2b
    movl $pt_pdpt + PTE_TABLE, pt_pml4

    mov $CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT, %eax
    mov %eax, %cr4
    mov $pt_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov $CR0_PG | CR0_WP | CR0_NE | CR0_MP | CR0_PE, %eax
    mov %eax, %cr0
    lgdt gdt_desc
    ljmp $SEL_CODE64, $long_start

    .code64
long_start:
    /* Null data segments are fine in 64-bit mode, and what KVM-PVM likes. */
    xor %eax, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %fs
    mov %eax, %gs
    mov %eax, %ss
    mov $stack_top, %rsp
    call bare_main
3:  cli
    hlt
    jmp 3b

/*
 * Exception stubs: push a dummy error code where the CPU pushes none,
 * then the vector, then the caller-saved registers, and call
 * trap_handler(struct trap_frame *).
 */
.macro EXC vec, has_err
    .p2align 4
exc_\vec:
    .if \has_err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp exc_common
.endm

    EXC 0, 0
    EXC 1, 0
    EXC 2, 0
    EXC 3, 0
    EXC 4, 0
    EXC 5, 0
    EXC 6, 0
    EXC 7, 0
    EXC 8, 1
    EXC 9, 0
    EXC 10, 1
    EXC 11, 1
    EXC 12, 1
    EXC 13, 1
    EXC 14, 1
    EXC 15, 0
    EXC 16, 0
    EXC 17, 1
    EXC 18, 0
    EXC 19, 0
    EXC 20, 0
    EXC 21, 1
    EXC 22, 0
    EXC 23, 0
    EXC 24, 0
    EXC 25, 0
    EXC 26, 0
    EXC 27, 0
    EXC 28, 0
    EXC 29, 1
    EXC 30, 1
    EXC 31, 0

exc_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov %rsp, %rdi
    cld
    call trap_handler
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $16, %rsp
    iretq

/*
 * Wait for an interrupt: void idle_halt(volatile uint8_t *vif_if).
 *
 * Under KVM-PVM the guest's interrupt flag is the byte *vif_if (a dummy
 * elsewhere), interrupts can arrive between any two instructions once it
 * is set, and there is no STI interrupt shadow: an interrupt could come
 * between the STI and the HLT, and the HLT would then wait for the next
 * one, which may never come.  So an interrupt whose return address is
 * in [idle_begin, idle_end) returns to idle_end instead (irq_common).
 */
    .globl idle_halt
    .p2align 4
idle_halt:
    movb $1, (%rdi)
idle_begin:
    sti
    hlt
idle_end:
    cli
    movb $0, (%rdi)
    ret

/*
 * Device interrupts: count them, end of interrupt at the local APIC,
 * and leave an interrupted idle_halt() (above).
 */
.macro IRQ name, counter
    .globl \name
    .p2align 4
\name:
    push %rax
    incq \counter(%rip)
    jmp irq_common
.endm

    IRQ timer_isr, timer_ticks
    IRQ serial_isr, serial_irqs

irq_common:
    mov $0xfee000b0, %eax
    movl $0, (%rax)
    lea idle_begin(%rip), %rax
    cmp %rax, 8(%rsp)               /* return RIP */
    jb 1f
    lea idle_end(%rip), %rax
    cmp %rax, 8(%rsp)
    jae 1f
    mov %rax, 8(%rsp)
1:  pop %rax
    iretq

/* Spurious interrupt vector: no end of interrupt. */
    .globl spurious_isr
    .p2align 4
spurious_isr:
    iretq

    .section .rodata
    .p2align 3
    .globl exc_stubs
exc_stubs:
    .irp vec, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .quad exc_\vec
    .endr
    .irp vec, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    .quad exc_\vec
    .endr

gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10: data, DPL 0 */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt

    .data
    .p2align 3
    .globl boot_tsc, start_info_pa
boot_tsc:
    .quad 0
start_info_pa:
    .quad 0

    .bss
    .p2align 12
    .globl pt_pml4, pt_pdpt, pt_pd
pt_pml4:
    .space 4096
pt_pdpt:
    .space 4096
pt_pd:
    .space PT_PD_PAGES * 4096
    .p2align 4
    .space 65536
stack_top:

    .section .note.GNU-stack, "", @progbits
