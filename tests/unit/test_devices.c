#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "devices/legacy/clone_id.h"
#include "devices/legacy/exit_dev.h"
#include "devices/legacy/serial.h"
#include "tests/unit/unit.h"

static int serial_out(struct serial *s, const char *text)
{
	for (; *text; text++)
		if (serial_ops.write(s, 0, text, 1))
			return -1;
	return 0;
}

static uint8_t serial_in(struct serial *s, unsigned reg)
{
	uint8_t v = 0xee;

	ck_assert_int_eq(serial_ops.read(s, reg, &v, 1), 0);
	return v;
}

START_TEST(serial_lines)
{
	struct serial s;
	char buf[600];
	int fds[2];
	ssize_t n;

	ck_assert_int_eq(pipe2(fds, O_NONBLOCK), 0);
	ck_assert_int_eq(serial__init(&s, fds[1]), 0);
	ck_assert_int_eq(serial_out(&s, "partial"), 0);
	ck_assert_int_eq(read(fds[0], buf, sizeof(buf)), -1); /* held until newline */
	ck_assert_int_eq(serial_out(&s, " line\nnext"), 0);
	n = read(fds[0], buf, sizeof(buf));
	ck_assert_int_eq(n, 13);
	ck_assert_int_eq(memcmp(buf, "partial line\n", 13), 0);
	serial__flush(&s);
	n = read(fds[0], buf, sizeof(buf));
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(memcmp(buf, "next", 4), 0);
	/* A line longer than the buffer is written in pieces, nothing lost. */
	memset(buf, 'x', 300);
	buf[300] = '\0';
	ck_assert_int_eq(serial_out(&s, buf), 0);
	serial__exit(&s);
	n = read(fds[0], buf, sizeof(buf));
	ck_assert_int_eq(n, 300);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(serial_registers)
{
	struct serial s;
	uint8_t v;
	uint16_t wide = 0;

	ck_assert_int_eq(serial__init(&s, -1), 0);
	ck_assert_uint_eq(serial_in(&s, 5), 0x60); /* LSR: transmitter empty */
	ck_assert_uint_eq(serial_in(&s, 2), 0x01); /* IIR: no interrupt */
	v = 0x80;
	serial_ops.write(&s, 3, &v, 1); /* DLAB */
	v = 0x0c;
	serial_ops.write(&s, 0, &v, 1);
	ck_assert_uint_eq(serial_in(&s, 0), 0x0c); /* divisor, not data */
	v = 0x03;
	serial_ops.write(&s, 3, &v, 1);
	ck_assert_uint_eq(serial_in(&s, 3), 0x03);
	ck_assert_uint_eq(s.len, 0); /* the divisor write was no output */
	v = 0x42;
	serial_ops.write(&s, 7, &v, 1);
	ck_assert_uint_eq(serial_in(&s, 7), 0x42);
	ck_assert_int_eq(serial_ops.read(&s, 0, &wide, 2), -EINVAL);
	ck_assert_int_eq(serial_ops.write(&s, 0, &wide, 2), -EINVAL);
	serial__exit(&s);
}
END_TEST

struct exit_seen {
	int calls;
	uint32_t status;
};

static void on_exit_cb(void *ctx, uint32_t status)
{
	struct exit_seen *seen = ctx;

	seen->calls++;
	seen->status = status;
}

START_TEST(exit_device)
{
	struct exit_seen seen = {0};
	struct exit_dev dev = {on_exit_cb, &seen};
	uint32_t v = 0x12345678;
	uint8_t b = 7;

	ck_assert_int_eq(exit_dev_ops.write(&dev, 0, &b, 1), 0);
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_uint_eq(seen.status, 7);
	ck_assert_int_eq(exit_dev_ops.write(&dev, 0, &v, 4), 0);
	ck_assert_uint_eq(seen.status, 0x12345678);
	ck_assert_int_eq(exit_dev_ops.write(&dev, 1, &b, 1), -EINVAL);
	ck_assert_int_eq(exit_dev_ops.write(&dev, 0, &v, 3), -EINVAL);
	ck_assert_int_eq(seen.calls, 2);
	v = 0;
	ck_assert_int_eq(exit_dev_ops.read(&dev, 0, &v, 4), 0);
	ck_assert_uint_eq(v, EXIT_DEV_MAGIC);
}
END_TEST

START_TEST(clone_device)
{
	struct clone_id c = {0xa1b2c3d4};
	uint32_t v = 0;
	uint16_t w = 0;
	uint8_t b = 0;

	ck_assert_int_eq(clone_id_ops.read(&c, 0, &v, 4), 0);
	ck_assert_uint_eq(v, 0xa1b2c3d4);
	ck_assert_int_eq(clone_id_ops.read(&c, 0, &w, 2), 0);
	ck_assert_uint_eq(w, 0xc3d4);
	ck_assert_int_eq(clone_id_ops.read(&c, 0, &b, 1), 0);
	ck_assert_uint_eq(b, 0xd4);
	ck_assert_int_eq(clone_id_ops.read(&c, 2, &v, 4), 0);
	ck_assert_uint_eq(v, 0xa1b2);
	ck_assert_int_eq(clone_id_ops.read(&c, 3, &b, 1), 0);
	ck_assert_uint_eq(b, 0xa1);
	ck_assert_int_eq(clone_id_ops.read(&c, 1, &w, 2), 0);
	ck_assert_uint_eq(w, 0xb2c3);
	ck_assert_int_eq(clone_id_ops.read(&c, 4, &v, 4), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(clone_id_ops.read(&c, 0, &v, 3), -EINVAL);
	ck_assert_int_eq(clone_id_ops.write(&c, 0, &v, 4), -EINVAL);
	ck_assert_uint_eq(c.number, 0xa1b2c3d4);
}
END_TEST

Suite *devices_suite(void)
{
	Suite *s = suite_create("devices");
	TCase *tc = tcase_create("serial_exit");

	tcase_add_test(tc, serial_lines);
	tcase_add_test(tc, serial_registers);
	tcase_add_test(tc, exit_device);
	tcase_add_test(tc, clone_device);
	suite_add_tcase(s, tc);
	return s;
}
