#include <errno.h>

#include "mmu/guest_ram.h"
#include "tests/unit/unit.h"

START_TEST(one_bank)
{
	struct guest_ram ram;

	ck_assert_int_eq(guest_ram__init(&ram, 16ULL << 20), 0);
	ck_assert_uint_eq(ram.nr_banks, 1);
	ck_assert_ptr_eq(guest_ram__ptr(&ram, 0, 1), ram.host);
	ck_assert_ptr_eq(guest_ram__ptr(&ram, (16ULL << 20) - 8, 8), ram.host + (16ULL << 20) - 8);
	ck_assert_ptr_null(guest_ram__ptr(&ram, (16ULL << 20) - 8, 9));
	ck_assert_ptr_null(guest_ram__ptr(&ram, 16ULL << 20, 1));
	ck_assert_ptr_null(guest_ram__ptr(&ram, 0, 0));
	ck_assert_ptr_null(guest_ram__ptr(&ram, ~0ULL, 2)); /* wraps */
	ck_assert_ptr_null(guest_ram__ptr(&ram, 8, ~0ULL));
	ck_assert_uint_eq(guest_ram__top(&ram), 16ULL << 20);
	guest_ram__exit(&ram);
}
END_TEST

START_TEST(two_banks_and_hole)
{
	struct guest_ram ram;

	ck_assert_int_eq(guest_ram__init(&ram, 4ULL << 30), 0);
	ck_assert_uint_eq(ram.nr_banks, 2);
	ck_assert_uint_eq(ram.banks[0].size, 3ULL << 30);
	ck_assert_uint_eq(ram.banks[1].gpa, 4ULL << 30);
	ck_assert_uint_eq(ram.banks[1].size, 1ULL << 30);
	ck_assert_ptr_eq(guest_ram__ptr(&ram, 4ULL << 30, 8), ram.host + (3ULL << 30));
	ck_assert_ptr_null(guest_ram__ptr(&ram, 3ULL << 30, 1));       /* MMIO hole */
	ck_assert_ptr_null(guest_ram__ptr(&ram, (3ULL << 30) - 4, 8)); /* straddles */
	ck_assert_ptr_null(guest_ram__ptr(&ram, (4ULL << 30) - 4, 8));
	ck_assert_uint_eq(guest_ram__top(&ram), 5ULL << 30);
	guest_ram__exit(&ram);
}
END_TEST

START_TEST(bad_sizes)
{
	struct guest_ram ram;

	ck_assert_int_eq(guest_ram__layout(&ram, 0), -EINVAL);
	ck_assert_int_eq(guest_ram__layout(&ram, 4097), -EINVAL);
	ck_assert_int_eq(guest_ram__init(&ram, 1ULL << 50), -ENOMEM);
}
END_TEST

Suite *guest_ram_suite(void)
{
	Suite *s = suite_create("guest_ram");
	TCase *tc = tcase_create("layout");

	tcase_add_test(tc, one_bank);
	tcase_add_test(tc, two_banks_and_hole);
	tcase_add_test(tc, bad_sizes);
	suite_add_tcase(s, tc);
	return s;
}
