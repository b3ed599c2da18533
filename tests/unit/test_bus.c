#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "devices/bus.h"
#include "tests/unit/unit.h"

struct fake_dev {
	uint64_t last_offset;
	unsigned last_len;
	uint32_t value;
	int writes;
	volatile int inside; /* for the removal test */
	volatile int release;
};

static int fake_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct fake_dev *d = opaque;

	d->last_offset = offset;
	d->last_len = len;
	memcpy(data, &d->value, len);
	return 0;
}

static int fake_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct fake_dev *d = opaque;

	d->last_offset = offset;
	d->last_len = len;
	d->value = 0;
	memcpy(&d->value, data, len);
	d->writes++;
	return offset == 7 ? -EINVAL : 0;
}

static const struct bus_device_ops fake_ops = {.read = fake_read, .write = fake_write};
static const struct bus_device_ops read_only_ops = {.read = fake_read};

START_TEST(register_and_dispatch)
{
	struct fake_dev a = {.value = 0x11223344}, b = {0};
	const char *name;
	struct bus bus;
	uint32_t v = 0;

	ck_assert_int_eq(bus__init(&bus, "pio"), 0);
	ck_assert_int_eq(bus__register(&bus, 0x3f8, 8, "a", &fake_ops, &a), 0);
	ck_assert_int_eq(bus__register(&bus, 0x100, 4, "b", &fake_ops, &b), 0);
	ck_assert_int_eq(bus__access(&bus, 0x3fa, &v, 2, false, &name), 0);
	ck_assert_str_eq(name, "a");
	ck_assert_uint_eq(a.last_offset, 2);
	ck_assert_uint_eq(a.last_len, 2);
	ck_assert_uint_eq(v, 0x3344);
	v = 0xabcd;
	ck_assert_int_eq(bus__access(&bus, 0x100, &v, 4, true, &name), 0);
	ck_assert_str_eq(name, "b");
	ck_assert_uint_eq(b.value, 0xabcd);
	/* A device error comes back as is. */
	ck_assert_int_eq(bus__access(&bus, 0x3ff, &v, 1, true, NULL), -EINVAL);
	bus__exit(&bus);
}
END_TEST

START_TEST(unclaimed)
{
	struct fake_dev a = {0};
	const char *name = "x";
	struct bus bus;
	uint64_t v = 0;

	ck_assert_int_eq(bus__init(&bus, "mmio"), 0);
	ck_assert_int_eq(bus__access(&bus, 0x1000, &v, 8, false, &name), -ENOENT);
	ck_assert_uint_eq(v, ~0ULL);
	ck_assert_ptr_null(name);
	ck_assert_int_eq(bus__register(&bus, 0x1000, 4, "a", &fake_ops, &a), 0);
	v = 0;
	/* Straddling the end of a range is not claimed either. */
	ck_assert_int_eq(bus__access(&bus, 0x1002, &v, 4, false, NULL), -ENOENT);
	ck_assert_uint_eq(v & 0xffffffff, 0xffffffff);
	ck_assert_int_eq(bus__access(&bus, 0xfff, &v, 1, true, NULL), -ENOENT);
	ck_assert_int_eq(bus__access(&bus, ~0ULL, &v, 2, false, NULL), -ENOENT);
	ck_assert_int_eq(a.writes, 0);
	ck_assert_uint_eq(bus.unclaimed, 4);
	bus__exit(&bus);
}
END_TEST

START_TEST(overlaps_rejected)
{
	struct fake_dev a = {0};
	struct bus bus;

	ck_assert_int_eq(bus__init(&bus, "pio"), 0);
	ck_assert_int_eq(bus__register(&bus, 0x100, 0x10, "a", &fake_ops, &a), 0);
	ck_assert_int_eq(bus__register(&bus, 0x10f, 1, "b", &fake_ops, &a), -EEXIST);
	ck_assert_int_eq(bus__register(&bus, 0xf0, 0x11, "b", &fake_ops, &a), -EEXIST);
	ck_assert_int_eq(bus__register(&bus, 0xf0, 0x100, "b", &fake_ops, &a), -EEXIST);
	ck_assert_int_eq(bus__register(&bus, 0xf0, 0x10, "b", &fake_ops, &a), 0);
	ck_assert_int_eq(bus__register(&bus, 0x110, 0x10, "c", &fake_ops, &a), 0);
	ck_assert_int_eq(bus__register(&bus, 0x200, 0, "d", &fake_ops, &a), -EINVAL);
	ck_assert_int_eq(bus__register(&bus, ~0ULL, 2, "d", &fake_ops, &a), -EINVAL);
	ck_assert_int_eq(bus__register(&bus, ~0ULL, 1, "d", &fake_ops, &a), 0);
	ck_assert_uint_eq(bus.nr, 4);
	ck_assert_int_eq(bus__unregister(&bus, 0x101), -ENOENT);
	ck_assert_int_eq(bus__unregister(&bus, 0x100), 0);
	ck_assert_int_eq(bus__unregister(&bus, 0x100), -ENOENT);
	ck_assert_int_eq(bus__register(&bus, 0x100, 0x10, "a2", &fake_ops, &a), 0);
	bus__exit(&bus);
}
END_TEST

START_TEST(many_ranges)
{
	struct fake_dev devs[200];
	struct bus bus;
	uint32_t v;
	int i;

	memset(devs, 0, sizeof(devs));
	ck_assert_int_eq(bus__init(&bus, "mmio"), 0);
	/* Registered out of order; lookups must still find each. */
	for (i = 199; i >= 0; i -= 2)
		ck_assert_int_eq(
			bus__register(&bus, 0x10000 + i * 0x100, 0x10, "d", &fake_ops, &devs[i]),
			0);
	for (i = 0; i < 200; i += 2)
		ck_assert_int_eq(
			bus__register(&bus, 0x10000 + i * 0x100, 0x10, "d", &fake_ops, &devs[i]),
			0);
	for (i = 0; i < 200; i++) {
		devs[i].value = (uint32_t)i;
		ck_assert_int_eq(bus__access(&bus, 0x10000 + i * 0x100 + 4, &v, 4, false, NULL), 0);
		ck_assert_uint_eq(v, (uint32_t)i);
		ck_assert_int_eq(bus__access(&bus, 0x10000 + i * 0x100 + 0x10, &v, 1, false, NULL),
				 -ENOENT);
	}
	bus__exit(&bus);
}
END_TEST

START_TEST(missing_handler)
{
	struct fake_dev a = {0};
	struct bus bus;
	uint8_t v = 1;

	ck_assert_int_eq(bus__init(&bus, "pio"), 0);
	ck_assert_int_eq(bus__register(&bus, 0x10, 1, "ro", &read_only_ops, &a), 0);
	ck_assert_int_eq(bus__access(&bus, 0x10, &v, 1, true, NULL), -EOPNOTSUPP);
	ck_assert_int_eq(bus__access(&bus, 0x10, &v, 1, false, NULL), 0);
	bus__exit(&bus);
}
END_TEST

/* A device whose read blocks until released, to hold a vCPU "inside" it. */
static int blocking_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct fake_dev *d = opaque;

	(void)offset;
	__atomic_store_n(&d->inside, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&d->release, __ATOMIC_ACQUIRE))
		usleep(1000);
	memset(data, 0x5a, len);
	return 0;
}

static int released;

static void count_release(void *opaque)
{
	(void)opaque;
	__atomic_add_fetch(&released, 1, __ATOMIC_ACQ_REL);
}

static const struct bus_device_ops blocking_ops = {.read = blocking_read, .release = count_release};

static void *access_thread(void *arg)
{
	struct bus *bus = arg;
	uint8_t v = 0;
	int ret = bus__access(bus, 0x40, &v, 1, false, NULL);

	return (void *)(intptr_t)(ret ?: v);
}

/*
 * Removal while a vCPU is inside the range: unregister returns at once and
 * later lookups miss the range; the access in flight finishes on it, and
 * the device's release runs once, after that access.
 */
START_TEST(remove_while_inside)
{
	struct fake_dev d = {0};
	pthread_t reader;
	struct bus bus;
	uint8_t v = 0;
	void *ret;

	released = 0;
	ck_assert_int_eq(bus__init(&bus, "pio"), 0);
	ck_assert_int_eq(bus__register(&bus, 0x40, 1, "blocking", &blocking_ops, &d), 0);
	pthread_create(&reader, NULL, access_thread, &bus);
	while (!__atomic_load_n(&d.inside, __ATOMIC_ACQUIRE))
		usleep(1000);
	ck_assert_int_eq(bus__unregister(&bus, 0x40), 0);
	ck_assert_uint_eq(bus.nr, 0);
	ck_assert_int_eq(bus__access(&bus, 0x40, &v, 1, false, NULL), -ENOENT);
	ck_assert_uint_eq(v, 0xff);
	ck_assert_int_eq(bus__unregister(&bus, 0x40), -ENOENT);
	usleep(10000);
	ck_assert_int_eq(__atomic_load_n(&released, __ATOMIC_ACQUIRE), 0);
	__atomic_store_n(&d.release, 1, __ATOMIC_RELEASE);
	pthread_join(reader, &ret);
	ck_assert_int_eq((int)(intptr_t)ret, 0x5a);
	ck_assert_int_eq(__atomic_load_n(&released, __ATOMIC_ACQUIRE), 1);
	/* The base is free again. */
	ck_assert_int_eq(bus__register(&bus, 0x40, 1, "again", &fake_ops, &d), 0);
	bus__exit(&bus);
}
END_TEST

/* A get holds the range across unregister; the put frees it. */
START_TEST(get_put_references)
{
	struct fake_dev d = {0};
	struct bus_range *r;
	struct bus bus;

	released = 0;
	ck_assert_int_eq(bus__init(&bus, "mmio"), 0);
	ck_assert_int_eq(bus__register(&bus, 0x1000, 0x100, "dev", &blocking_ops, &d), 0);
	ck_assert_ptr_null(bus__get(&bus, 0x10f0, 0x20));
	ck_assert_ptr_null(bus__get(&bus, 0xfff, 2));
	ck_assert_ptr_null(bus__get(&bus, 0x1000, 0));
	r = bus__get(&bus, 0x10f8, 8);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->name, "dev");
	ck_assert_int_eq(bus__unregister(&bus, 0x1000), 0);
	ck_assert_int_eq(__atomic_load_n(&released, __ATOMIC_ACQUIRE), 0);
	bus__put(r);
	ck_assert_int_eq(__atomic_load_n(&released, __ATOMIC_ACQUIRE), 1);
	/* bus__exit releases what is still registered. */
	ck_assert_int_eq(bus__register(&bus, 0x1000, 0x100, "dev", &blocking_ops, &d), 0);
	bus__exit(&bus);
	ck_assert_int_eq(__atomic_load_n(&released, __ATOMIC_ACQUIRE), 2);
}
END_TEST

/* A callback may unregister its own range: no deadlock, release after it returns. */
static struct bus *self_bus;

static int unregister_self(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	(void)opaque, (void)offset, (void)data, (void)len;
	ck_assert_int_eq(bus__unregister(self_bus, 0x80), 0);
	ck_assert_int_eq(__atomic_load_n(&released, __ATOMIC_ACQUIRE), 0);
	return 0;
}

static const struct bus_device_ops self_ops = {.write = unregister_self, .release = count_release};

START_TEST(callback_unregisters_itself)
{
	struct bus bus;
	uint8_t v = 1;

	released = 0;
	self_bus = &bus;
	ck_assert_int_eq(bus__init(&bus, "pio"), 0);
	ck_assert_int_eq(bus__register(&bus, 0x80, 4, "self", &self_ops, NULL), 0);
	ck_assert_int_eq(bus__access(&bus, 0x81, &v, 1, true, NULL), 0);
	ck_assert_int_eq(__atomic_load_n(&released, __ATOMIC_ACQUIRE), 1);
	ck_assert_int_eq(bus__access(&bus, 0x81, &v, 1, true, NULL), -ENOENT);
	ck_assert_uint_eq(bus.unclaimed, 1);
	bus__exit(&bus);
}
END_TEST

Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc = tcase_create("dispatch");

	tcase_add_test(tc, register_and_dispatch);
	tcase_add_test(tc, unclaimed);
	tcase_add_test(tc, overlaps_rejected);
	tcase_add_test(tc, many_ranges);
	tcase_add_test(tc, missing_handler);
	tcase_add_test(tc, remove_while_inside);
	tcase_add_test(tc, get_put_references);
	tcase_add_test(tc, callback_unregisters_itself);
	suite_add_tcase(s, tc);
	return s;
}
