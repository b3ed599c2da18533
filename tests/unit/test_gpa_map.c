#include <errno.h>

#include "mmu/gpa_map.h"
#include "tests/unit/unit.h"

static uint8_t backing_a[0x3000], backing_b[0x1000];

START_TEST(add_and_find)
{
	struct gpa_map map = {0};
	const struct gpa_region ram = {
		.kind = GPA_RAM, .name = "ram", .gpa = 0, .size = 0x3000, .host = backing_a};
	const struct gpa_region bar = {
		.kind = GPA_BAR, .name = "bar", .gpa = 0xc0000000, .size = 0x1000};
	const struct gpa_region rom = {.kind = GPA_ROM,
				       .name = "rom",
				       .gpa = 0xfffff000,
				       .size = 0x1000,
				       .host = backing_b};
	uint64_t gpa = 0;

	/* Out of order: the map keeps them sorted. */
	ck_assert_int_eq(gpa_map__add(&map, &rom), 0);
	ck_assert_int_eq(gpa_map__add(&map, &ram), 0);
	ck_assert_int_eq(gpa_map__add(&map, &bar), 0);
	ck_assert_uint_eq(map.nr, 3);
	ck_assert_str_eq(map.regions[0].name, "ram");
	ck_assert_str_eq(map.regions[1].name, "bar");
	ck_assert_str_eq(map.regions[2].name, "rom");

	ck_assert_str_eq(gpa_map__find(&map, 0)->name, "ram");
	ck_assert_str_eq(gpa_map__find(&map, 0x2fff)->name, "ram");
	ck_assert_ptr_null(gpa_map__find(&map, 0x3000));
	ck_assert_str_eq(gpa_map__find(&map, 0xc0000fff)->name, "bar");
	ck_assert_ptr_null(gpa_map__find(&map, 0xc0001000));
	ck_assert_str_eq(gpa_map__find(&map, 0xffffffff)->name, "rom");
	ck_assert_ptr_null(gpa_map__find(&map, 0x100000000ULL));

	ck_assert_str_eq(gpa_map__find_host(&map, backing_a + 0x1234, &gpa)->name, "ram");
	ck_assert_uint_eq(gpa, 0x1234);
	ck_assert_str_eq(gpa_map__find_host(&map, backing_b + 8, &gpa)->name, "rom");
	ck_assert_uint_eq(gpa, 0xfffff008);
	ck_assert_ptr_null(gpa_map__find_host(&map, backing_a + sizeof(backing_a), &gpa));
	ck_assert_str_eq(gpa_map__kind_name(GPA_BAR), "BAR");
}
END_TEST

START_TEST(rejects)
{
	struct gpa_map map = {0};
	struct gpa_region r = {.kind = GPA_RAM, .gpa = 0x1000, .size = 0x2000, .host = backing_a};
	unsigned i;

	ck_assert_int_eq(gpa_map__add(&map, &r), 0);
	r.gpa = 0x2000; /* overlaps in GPA */
	r.host = NULL;
	ck_assert_int_eq(gpa_map__add(&map, &r), -EEXIST);
	r.gpa = 0x10000; /* overlaps in host address */
	r.host = backing_a + 0x1000;
	ck_assert_int_eq(gpa_map__add(&map, &r), -EEXIST);
	r.host = NULL;
	r.size = 0;
	ck_assert_int_eq(gpa_map__add(&map, &r), -EINVAL);
	r.gpa = ~0ULL - 0xfff;
	r.size = 0x2000; /* wraps */
	ck_assert_int_eq(gpa_map__add(&map, &r), -EINVAL);
	for (i = 1; i < GPA_MAP_MAX; i++) {
		r.gpa = 0x100000ULL * i;
		r.size = 0x1000;
		ck_assert_int_eq(gpa_map__add(&map, &r), 0);
	}
	r.gpa = 0x100000ULL * GPA_MAP_MAX;
	ck_assert_int_eq(gpa_map__add(&map, &r), -ENOSPC);
	ck_assert_uint_eq(map.nr, GPA_MAP_MAX);
	/* Still sorted and searchable when full. */
	for (i = 1; i < GPA_MAP_MAX; i++)
		ck_assert_uint_eq(gpa_map__find(&map, 0x100000ULL * i + 0xfff)->gpa,
				  0x100000ULL * i);
}
END_TEST

Suite *gpa_map_suite(void)
{
	Suite *s = suite_create("gpa_map");
	TCase *tc = tcase_create("regions");

	tcase_add_test(tc, add_and_find);
	tcase_add_test(tc, rejects);
	suite_add_tcase(s, tc);
	return s;
}
