#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/blob.h"
#include "lib/inject.h"
#include "tests/unit/unit.h"

/* Every kind of value, in a section, read back exactly. */
START_TEST(round_trip)
{
	struct blob_reader r, sub;
	uint8_t bytes[5] = {1, 2, 3, 4, 5}, got[5];
	struct blob b;
	uint16_t version;
	size_t at;

	blob__init(&b);
	blob__u8(&b, 0xab);
	at = blob__section(&b, "serial", 3);
	blob__u16(&b, 0xbeef);
	blob__u32(&b, 0xdeadbeef);
	blob__u64(&b, 0x0123456789abcdefULL);
	blob__bool(&b, true);
	blob__bytes(&b, bytes, sizeof(bytes));
	blob__section_end(&b, at);
	ck_assert_int_eq(blob__end(&b), 0);
	ck_assert_uint_eq(b.len, 1 + 1 + 6 + 2 + 4 + 2 + 4 + 8 + 1 + 5);
	ck_assert_uint_eq(b.buf[0], 0xab);
	ck_assert_uint_eq(b.buf[10], 20); /* the section's length, little-endian */

	blob_reader__init(&r, b.buf, b.len);
	ck_assert_uint_eq(blob__get_u8(&r), 0xab);
	ck_assert_int_eq(blob__enter(&r, "serial", 3, &version, &sub), 0);
	ck_assert_uint_eq(version, 3);
	ck_assert_uint_eq(blob__get_u16(&sub), 0xbeef);
	ck_assert_uint_eq(blob__get_u32(&sub), 0xdeadbeef);
	ck_assert_uint_eq(blob__get_u64(&sub), 0x0123456789abcdefULL);
	ck_assert(blob__get_bool(&sub));
	blob__get_bytes(&sub, got, sizeof(got));
	ck_assert_mem_eq(got, bytes, sizeof(bytes));
	ck_assert_int_eq(blob_reader__done(&sub), 0);
	ck_assert_int_eq(blob_reader__done(&r), 0);
	blob__free(&b);
}
END_TEST

/* A blob of @n bytes holding one section "dev" of @version, @len bytes said, @have given. */
static size_t section(uint8_t *buf, const char *name, uint16_t version, uint32_t len, size_t have)
{
	size_t n = strlen(name), i;

	buf[0] = (uint8_t)n;
	memcpy(buf + 1, name, n);
	buf[1 + n] = (uint8_t)version;
	buf[2 + n] = (uint8_t)(version >> 8);
	for (i = 0; i < 4; i++)
		buf[3 + n + i] = (uint8_t)(len >> (8 * i));
	memset(buf + 7 + n, 0, have);
	return 7 + n + have;
}

START_TEST(bad_sections)
{
	struct blob_reader r, sub;
	uint8_t buf[64];
	uint16_t v;
	size_t n;

	n = section(buf, "cmos", 1, 1, 1);
	blob_reader__init(&r, buf, n);
	ck_assert_int_eq(blob__enter(&r, "i8042", 1, &v, &sub), -EINVAL);
	ck_assert_str_eq(r.why, "a section is named \"cmos\", expected \"i8042\"");

	n = section(buf, "cmos", 2, 1, 1);
	blob_reader__init(&r, buf, n);
	ck_assert_int_eq(blob__enter(&r, "cmos", 1, &v, &sub), -EINVAL);
	ck_assert_str_eq(r.why, "section cmos is of version 2, this faultline reads 1..1");

	n = section(buf, "cmos", 0, 1, 1);
	blob_reader__init(&r, buf, n);
	ck_assert_int_eq(blob__enter(&r, "cmos", 1, &v, &sub), -EINVAL);
	ck_assert_str_eq(r.why, "section cmos is of version 0, this faultline reads 1..1");

	n = section(buf, "cmos", 1, 9, 1);
	blob_reader__init(&r, buf, n);
	ck_assert_int_eq(blob__enter(&r, "cmos", 1, &v, &sub), -EINVAL);
	ck_assert_str_eq(r.why, "section cmos says 9 bytes, 1 are left");

	buf[0] = 0;
	blob_reader__init(&r, buf, 8);
	ck_assert_int_eq(blob__enter(&r, "cmos", 1, &v, &sub), -EINVAL);
	ck_assert_str_eq(r.why, "a section's name is 0 bytes long, expected 1..32");

	n = section(buf, "cmos", 1, 1, 1);
	blob_reader__init(&r, buf, 4); /* cut inside the header */
	ck_assert_int_eq(blob__enter(&r, "cmos", 1, &v, &sub), -EINVAL);
	ck_assert_str_eq(r.why, "it ends 1 bytes early (at byte 1)"); /* in the name */
	(void)n;
}
END_TEST

/* A section read short or long, a bad bool: named, sticky, and 0 after. */
START_TEST(bad_contents)
{
	struct blob_reader r, sub;
	uint8_t buf[64];
	uint16_t v;
	size_t n;

	n = section(buf, "pm", 1, 3, 3);
	blob_reader__init(&r, buf, n);
	ck_assert_int_eq(blob__enter(&r, "pm", 1, &v, &sub), 0);
	ck_assert_uint_eq(blob__get_u16(&sub), 0);
	ck_assert_int_eq(blob_reader__done(&sub), -EINVAL);
	ck_assert_str_eq(sub.why, "1 bytes are left over");

	blob_reader__init(&sub, buf + 9, 3);
	ck_assert_uint_eq(blob__get_u64(&sub), 0);
	ck_assert_str_eq(sub.why, "it ends 5 bytes early (at byte 0)");
	ck_assert_uint_eq(blob__get_u8(&sub), 0); /* sticky: nothing more is read */
	ck_assert_uint_eq(sub.off, 0);
	ck_assert_int_eq(blob_reader__done(&sub), -EINVAL);

	buf[0] = 2;
	blob_reader__init(&sub, buf, 1);
	ck_assert(!blob__get_bool(&sub));
	ck_assert_str_eq(sub.why, "byte 0 is 2, expected 0 or 1");
}
END_TEST

/* The writer's errors: a name it cannot hold, no memory; sticky. */
START_TEST(writer_errors)
{
	char name[BLOB_NAME_MAX + 2];
	struct blob b;

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	blob__init(&b);
	blob__section(&b, name, 1);
	ck_assert_int_eq(blob__end(&b), -EINVAL);
	blob__free(&b);

	ck_assert_int_eq(inject__init("blob.alloc:ENOMEM"), 0);
	blob__init(&b);
	blob__u64(&b, 1);
	ck_assert_int_eq(blob__end(&b), -ENOMEM);
	ck_assert_uint_eq(b.len, 0);
	blob__u8(&b, 1); /* the allocation would work now: the error stays */
	ck_assert_int_eq(blob__end(&b), -ENOMEM);
	ck_assert_uint_eq(b.len, 0);
	blob__free(&b);
	ck_assert_int_eq(inject__init(NULL), 0);
}
END_TEST

Suite *blob_suite(void)
{
	Suite *s = suite_create("blob");
	TCase *tc = tcase_create("blob");

	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, bad_sections);
	tcase_add_test(tc, bad_contents);
	tcase_add_test(tc, writer_errors);
	suite_add_tcase(s, tc);
	return s;
}
