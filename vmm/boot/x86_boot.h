/*
 * Direct 64-bit entry: what the monitor writes into low guest memory and
 * the vCPU state it sets so the guest starts in long mode at its entry.
 *
 * Low memory map (guest-physical):
 *   0x01000  GDT (null, code64 0x08, data 0x10, TSS 0x18)
 *   0x01800  TSS (zeroed)
 *   0x02000  PML4
 *   0x03000  PDPT
 *   0x04000  page directories, one per GiB mapped (at most 64)
 *   0x50000  flattened device tree (at most 192 KiB)
 *   0x100000 lowest address a guest image may load at
 * The page tables identity-map [0, max(4 GiB, top of RAM)) with 2 MiB
 * pages, so the MMIO hole below 4 GiB is reachable by the guest.
 */
#ifndef FAULTLINE_X86_BOOT_H
#define FAULTLINE_X86_BOOT_H

#include <linux/kvm.h>
#include <stdint.h>

#include "mmu/guest_ram.h"

#define BOOT_GDT_GPA	   0x1000ULL
#define BOOT_TSS_GPA	   0x1800ULL
#define BOOT_PML4_GPA	   0x2000ULL
#define BOOT_PDPT_GPA	   0x3000ULL
#define BOOT_PD_GPA	   0x4000ULL
#define BOOT_MAX_PDS	   64
#define BOOT_FDT_GPA	   0x50000ULL
#define BOOT_FDT_MAX	   0x30000ULL
#define BOOT_IMAGE_MIN_GPA 0x100000ULL

#define BOOT_SEL_CODE 0x08
#define BOOT_SEL_DATA 0x10
#define BOOT_SEL_TSS  0x18

/* Bytes mapped by the identity page tables for @ram. */
uint64_t x86_boot__map_size(const struct guest_ram *ram);

/*
 * Write the GDT, TSS and page tables for the RAM laid out in @ram, through
 * @ga. Returns 0, -E2BIG when the map would need more than BOOT_MAX_PDS page
 * directories, or @ga's error (-EFAULT when RAM does not cover the boot
 * area, -ENOMEM when the pages cannot be made resident).
 */
int x86_boot__setup_memory(const struct guest_ram *ram, const struct guest_access *ga)
	__attribute__((warn_unused_result));

/* Long-mode system registers for every vCPU, on top of KVM's defaults. */
void x86_boot__sregs(struct kvm_sregs *sregs);

/* Entry registers: rip = @entry, rdi = FDT GPA, rsi = vCPU index, rdx = count. */
void x86_boot__regs(struct kvm_regs *regs, uint64_t entry, unsigned vcpu, unsigned nr_vcpus);

#endif
