#include <errno.h>
#include <string.h>

#include "vmm/boot/x86_boot.h"

#define PTE_P  (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)
#define SZ_2M  (2ULL << 20)
#define SZ_1G  (1ULL << 30)

#define CR0_PE	       (1ULL << 0)
#define CR0_MP	       (1ULL << 1)
#define CR0_ET	       (1ULL << 4)
#define CR0_NE	       (1ULL << 5)
#define CR0_WP	       (1ULL << 16)
#define CR0_PG	       (1ULL << 31)
#define CR4_PAE	       (1ULL << 5)
#define CR4_OSFXSR     (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define EFER_LME       (1ULL << 8)
#define EFER_LMA       (1ULL << 10)

#define GDT_ENTRIES 5 /* null, code, data, TSS (two slots) */
#define TSS_LIMIT   0x67

uint64_t x86_boot__map_size(const struct guest_ram *ram)
{
	uint64_t top = guest_ram__top(ram);

	top = (top + SZ_1G - 1) & ~(SZ_1G - 1);
	return top > GUEST_RAM_HIGH_BASE ? top : GUEST_RAM_HIGH_BASE;
}

static void x86_boot_gdt(uint64_t *gdt)
{
	/* Flat code (L=1) and data segments; base 0, limit 4 GiB. */
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;
	gdt[2] = 0x00cf93000000ffffULL;
	/* Available 64-bit TSS at BOOT_TSS_GPA: a 16-byte system descriptor. */
	gdt[3] = TSS_LIMIT | (BOOT_TSS_GPA & 0xffffff) << 16 | 0x89ULL << 40 |
		 (BOOT_TSS_GPA >> 24 & 0xff) << 56;
	gdt[4] = BOOT_TSS_GPA >> 32;
}

int x86_boot__setup_memory(const struct guest_ram *ram, const struct guest_access *ga)
{
	uint64_t map = x86_boot__map_size(ram);
	uint64_t nr_pds = map / SZ_1G, i;
	uint64_t *gdt, *pml4, *pdpt, *pd;
	int err = 0;

	if (nr_pds > BOOT_MAX_PDS)
		return -E2BIG;
	gdt = ga->ptr(ga->ctx, BOOT_GDT_GPA, GDT_ENTRIES * 8, &err);
	if (!gdt || !ga->ptr(ga->ctx, BOOT_TSS_GPA, TSS_LIMIT + 1, &err))
		return err;
	pml4 = ga->ptr(ga->ctx, BOOT_PML4_GPA, 4096, &err);
	pdpt = pml4 ? ga->ptr(ga->ctx, BOOT_PDPT_GPA, 4096, &err) : NULL;
	pd = pdpt ? ga->ptr(ga->ctx, BOOT_PD_GPA, nr_pds * 4096, &err) : NULL;
	if (!pd)
		return err;
	x86_boot_gdt(gdt);
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = BOOT_PDPT_GPA | PTE_P | PTE_RW;
	for (i = 0; i < nr_pds; i++)
		pdpt[i] = (BOOT_PD_GPA + i * 4096) | PTE_P | PTE_RW;
	for (i = 0; i < nr_pds * 512; i++)
		pd[i] = (i * SZ_2M) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

static void x86_boot_segment(struct kvm_segment *seg, uint16_t selector, uint8_t type)
{
	memset(seg, 0, sizeof(*seg));
	seg->selector = selector;
	seg->limit = 0xffffffff;
	seg->type = type;
	seg->present = 1;
	seg->s = 1;
	seg->g = 1;
}

void x86_boot__sregs(struct kvm_sregs *sregs)
{
	x86_boot_segment(&sregs->cs, BOOT_SEL_CODE, 0xb); /* execute/read, accessed */
	sregs->cs.l = 1;
	x86_boot_segment(&sregs->ds, BOOT_SEL_DATA, 0x3); /* read/write, accessed */
	sregs->ds.db = 1;
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;

	memset(&sregs->tr, 0, sizeof(sregs->tr));
	sregs->tr.selector = BOOT_SEL_TSS;
	sregs->tr.base = BOOT_TSS_GPA;
	sregs->tr.limit = TSS_LIMIT;
	sregs->tr.type = 0xb; /* busy 64-bit TSS */
	sregs->tr.present = 1;

	memset(&sregs->ldt, 0, sizeof(sregs->ldt));
	sregs->ldt.type = 0x2;
	sregs->ldt.unusable = 1;

	sregs->gdt.base = BOOT_GDT_GPA;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0; /* no IDT: an exception ends in a triple fault */

	sregs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs->cr3 = BOOT_PML4_GPA;
	sregs->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs->efer = EFER_LME | EFER_LMA;
}

void x86_boot__regs(struct kvm_regs *regs, uint64_t entry, unsigned vcpu, unsigned nr_vcpus)
{
	memset(regs, 0, sizeof(*regs));
	regs->rflags = 0x2;
	regs->rip = entry;
	regs->rdi = BOOT_FDT_GPA;
	regs->rsi = vcpu;
	regs->rdx = nr_vcpus;
}
