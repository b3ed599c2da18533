#include <errno.h>
#include <libfdt.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "vmm/boot/fdt.h"

static uint8_t fdt_buf[16384];

static const struct fdt_pio_device devices[] = {
	{"serial", "ns16550a", 0x3f8, 8},
	{"exit", "faultline,exit", 0x501, 4},
};

static struct guest_arg args[] = {
	{"workload=touch", 8, "touch"},
	{"pages=16", 5, "16"},
};

static void build(uint64_t mem, unsigned vcpus, int want)
{
	struct guest_ram ram;
	struct fdt_params p = {
		.ram = &ram,
		.nr_vcpus = vcpus,
		.cmdline = "console=ttyS0 quiet",
		.guest_args = args,
		.nr_guest_args = 2,
		.devices = devices,
		.nr_devices = 2,
	};

	ck_assert_int_eq(guest_ram__layout(&ram, mem), 0);
	ck_assert_int_eq(fdt__build(fdt_buf, sizeof(fdt_buf), &p), want);
}

static const void *prop(const char *path, const char *name, int *len)
{
	int node = fdt_path_offset(fdt_buf, path);

	ck_assert_msg(node >= 0, "no node %s", path);
	return fdt_getprop(fdt_buf, node, name, len);
}

START_TEST(reads_back)
{
	const fdt32_t *cells;
	const char *s;
	int len;

	build(256ULL << 20, 3, 0);
	ck_assert_int_eq(fdt_check_header(fdt_buf), 0);
	s = prop("/", "compatible", &len);
	ck_assert_str_eq(s, "faultline,microvm");
	s = prop("/chosen", "bootargs", &len);
	ck_assert_str_eq(s, "console=ttyS0 quiet");
	s = prop("/chosen/guest-args", "workload", &len);
	ck_assert_str_eq(s, "touch");
	s = prop("/chosen/guest-args", "pages", &len);
	ck_assert_str_eq(s, "16");
	cells = prop("/cpus/cpu@2", "reg", &len);
	ck_assert_int_eq(len, 4);
	ck_assert_uint_eq(fdt32_to_cpu(cells[0]), 2);
	ck_assert_int_lt(fdt_path_offset(fdt_buf, "/cpus/cpu@3"), 0);
	cells = prop("/exit@501", "faultline,pio", &len);
	ck_assert_int_eq(len, 8);
	ck_assert_uint_eq(fdt32_to_cpu(cells[0]), 0x501);
	ck_assert_uint_eq(fdt32_to_cpu(cells[1]), 4);
	ck_assert_int_eq(fdt_node_offset_by_compatible(fdt_buf, -1, "ns16550a"),
			 fdt_path_offset(fdt_buf, "/serial@3f8"));
}
END_TEST

START_TEST(memory_banks)
{
	const fdt64_t *reg;
	int len;

	build(256ULL << 20, 1, 0);
	reg = prop("/memory@0", "reg", &len);
	ck_assert_int_eq(len, 16);
	ck_assert_uint_eq(fdt64_to_cpu(reg[0]), 0);
	ck_assert_uint_eq(fdt64_to_cpu(reg[1]), 256ULL << 20);

	build(5ULL << 30, 1, 0);
	reg = prop("/memory@0", "reg", &len);
	ck_assert_int_eq(len, 32);
	ck_assert_uint_eq(fdt64_to_cpu(reg[1]), 3ULL << 30);
	ck_assert_uint_eq(fdt64_to_cpu(reg[2]), 4ULL << 30);
	ck_assert_uint_eq(fdt64_to_cpu(reg[3]), 2ULL << 30);
}
END_TEST

/* BAR devices: reg pairs of 64-bit GPA and size, and the optional property. */
START_TEST(bar_devices)
{
	static const struct fdt_mmio_device bars[] = {
		{"shm", "faultline,shm", 2, {{0xd0000000, 0x1000}, {0xd0001000, 0x10000}}, NULL, 0},
		{"vram",
		 "faultline,vram",
		 1,
		 {{0xe0000000, 0x40000}},
		 "faultline,pool-size",
		 0x4000},
	};
	struct guest_ram ram;
	struct fdt_params p = {
		.ram = &ram, .nr_vcpus = 1, .mmio_devices = bars, .nr_mmio_devices = 2};
	const fdt64_t *reg; /* FDT properties are 4-byte aligned: fdt64_ld() */
	int len;

	ck_assert_int_eq(guest_ram__layout(&ram, 64ULL << 20), 0);
	ck_assert_int_eq(fdt__build(fdt_buf, sizeof(fdt_buf), &p), 0);
	reg = prop("/shm@d0000000", "reg", &len);
	ck_assert_int_eq(len, 32);
	ck_assert_uint_eq(fdt64_ld(&reg[0]), 0xd0000000);
	ck_assert_uint_eq(fdt64_ld(&reg[1]), 0x1000);
	ck_assert_uint_eq(fdt64_ld(&reg[2]), 0xd0001000);
	ck_assert_uint_eq(fdt64_ld(&reg[3]), 0x10000);
	ck_assert_str_eq(prop("/shm@d0000000", "compatible", &len), "faultline,shm");
	reg = prop("/vram@e0000000", "reg", &len);
	ck_assert_int_eq(len, 16);
	ck_assert_uint_eq(fdt64_ld(&reg[1]), 0x40000);
	reg = prop("/vram@e0000000", "faultline,pool-size", &len);
	ck_assert_int_eq(len, 8);
	ck_assert_uint_eq(fdt64_ld(&reg[0]), 0x4000);
	ck_assert_ptr_null(prop("/shm@d0000000", "faultline,pool-size", &len));
}
END_TEST

START_TEST(too_small)
{
	struct guest_ram ram;
	struct fdt_params p = {.ram = &ram, .nr_vcpus = 64, .cmdline = "x"};

	ck_assert_int_eq(guest_ram__layout(&ram, 1ULL << 30), 0);
	ck_assert_int_eq(fdt__build(fdt_buf, 512, &p), -ENOSPC);
	p.nr_vcpus = 0;
	ck_assert_int_eq(fdt__build(fdt_buf, sizeof(fdt_buf), &p), -EINVAL);
}
END_TEST

Suite *fdt_suite(void)
{
	Suite *s = suite_create("fdt");
	TCase *tc = tcase_create("build");

	tcase_add_test(tc, reads_back);
	tcase_add_test(tc, memory_banks);
	tcase_add_test(tc, bar_devices);
	tcase_add_test(tc, too_small);
	suite_add_tcase(s, tc);
	return s;
}
