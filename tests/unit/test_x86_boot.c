#include <errno.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "vmm/boot/x86_boot.h"

/* Walk the 4-level tables the way the CPU does; ~0 when not mapped. */
static uint64_t translate(const struct guest_ram *ram, uint64_t va)
{
	const uint64_t *pml4 = guest_ram__ptr(ram, BOOT_PML4_GPA, 4096);
	const uint64_t *pdpt, *pd;
	uint64_t e;

	e = pml4[(va >> 39) & 511];
	if (!(e & 1))
		return ~0ULL;
	pdpt = guest_ram__ptr(ram, e & ~0xfffULL, 4096);
	e = pdpt[(va >> 30) & 511];
	if (!(e & 1) || !pdpt)
		return ~0ULL;
	pd = guest_ram__ptr(ram, e & ~0xfffULL, 4096);
	e = pd[(va >> 21) & 511];
	if (!(e & 1) || !(e & (1 << 7)) || !(e & 2))
		return ~0ULL;
	return (e & ~0x1fffffULL) | (va & 0x1fffff);
}

static int setup(struct guest_ram *ram)
{
	struct guest_access ga = guest_ram__direct(ram);

	return x86_boot__setup_memory(ram, &ga);
}

START_TEST(identity_map)
{
	static const uint64_t probes[] = {
		0, 0x1000, 0x100000, 0x1234567, (3ULL << 30) - 1, 0xd0000000, (4ULL << 30) - 8,
	};
	struct guest_ram ram;
	size_t i;

	ck_assert_int_eq(guest_ram__init(&ram, 64ULL << 20), 0);
	ck_assert_uint_eq(x86_boot__map_size(&ram), 4ULL << 30);
	ck_assert_int_eq(setup(&ram), 0);
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		ck_assert_uint_eq(translate(&ram, probes[i]), probes[i]);
	ck_assert_uint_eq(translate(&ram, 4ULL << 30), ~0ULL);
	guest_ram__exit(&ram);
}
END_TEST

START_TEST(high_bank_mapped)
{
	struct guest_ram ram;
	uint64_t top;

	ck_assert_int_eq(guest_ram__init(&ram, (5ULL << 30) + (2ULL << 20)), 0);
	top = guest_ram__top(&ram);
	ck_assert_uint_eq(top, (6ULL << 30) + (2ULL << 20));
	ck_assert_uint_eq(x86_boot__map_size(&ram), 7ULL << 30);
	ck_assert_int_eq(setup(&ram), 0);
	ck_assert_uint_eq(translate(&ram, top - 8), top - 8);
	ck_assert_uint_eq(translate(&ram, (7ULL << 30) - 8), (7ULL << 30) - 8);
	ck_assert_uint_eq(translate(&ram, 7ULL << 30), ~0ULL);
	guest_ram__exit(&ram);
}
END_TEST

START_TEST(limits)
{
	struct guest_ram ram;

	/* 63 GiB of RAM ends at 64 GiB: exactly 64 page directories. */
	ck_assert_int_eq(guest_ram__init(&ram, 63ULL << 30), 0);
	ck_assert_int_eq(setup(&ram), 0);
	guest_ram__exit(&ram);
	ck_assert_int_eq(guest_ram__init(&ram, 64ULL << 30), 0);
	ck_assert_int_eq(setup(&ram), -E2BIG);
	guest_ram__exit(&ram);
	/* RAM too small for the boot area. */
	ck_assert_int_eq(guest_ram__init(&ram, 16384), 0);
	ck_assert_int_eq(setup(&ram), -EFAULT);
	guest_ram__exit(&ram);
}
END_TEST

START_TEST(gdt_and_registers)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct guest_ram ram;
	const uint64_t *gdt;

	ck_assert_int_eq(guest_ram__init(&ram, 8ULL << 20), 0);
	ck_assert_int_eq(setup(&ram), 0);
	gdt = guest_ram__ptr(&ram, BOOT_GDT_GPA, 40);
	ck_assert_uint_eq(gdt[0], 0);
	ck_assert_uint_eq(gdt[BOOT_SEL_CODE / 8] >> 53 & 1, 1);	     /* L bit */
	ck_assert_uint_eq(gdt[BOOT_SEL_TSS / 8] >> 40 & 0xff, 0x89); /* present, 64-bit TSS */
	ck_assert_uint_eq((gdt[BOOT_SEL_TSS / 8] >> 16 & 0xffffff), BOOT_TSS_GPA);
	guest_ram__exit(&ram);

	memset(&sregs, 0xff, sizeof(sregs));
	x86_boot__sregs(&sregs);
	ck_assert_uint_eq(sregs.cr0 & 0x80000001ULL, 0x80000001ULL);
	ck_assert_uint_eq(sregs.cr3, BOOT_PML4_GPA);
	ck_assert_uint_eq(sregs.cr4 & (1 << 5), 1 << 5);
	ck_assert_uint_eq(sregs.efer & 0x500, 0x500);
	ck_assert_uint_eq(sregs.cs.l, 1);
	ck_assert_uint_eq(sregs.cs.selector, BOOT_SEL_CODE);
	ck_assert_uint_eq(sregs.ss.selector, BOOT_SEL_DATA);
	ck_assert_uint_eq(sregs.tr.type, 0xb);
	ck_assert_uint_eq(sregs.idt.limit, 0);

	x86_boot__regs(&regs, 0x100000, 3, 4);
	ck_assert_uint_eq(regs.rip, 0x100000);
	ck_assert_uint_eq(regs.rdi, BOOT_FDT_GPA);
	ck_assert_uint_eq(regs.rsi, 3);
	ck_assert_uint_eq(regs.rdx, 4);
	ck_assert_uint_eq(regs.rflags, 2);
}
END_TEST

Suite *x86_boot_suite(void)
{
	Suite *s = suite_create("x86_boot");
	TCase *tc = tcase_create("tables");

	tcase_add_test(tc, identity_map);
	tcase_add_test(tc, high_bank_mapped);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, gdt_and_registers);
	suite_add_tcase(s, tc);
	return s;
}
