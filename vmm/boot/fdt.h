/*
 * The flattened device tree faultline hands its guest (%rdi at entry):
 *
 *   / { compatible = "faultline,microvm"; #address-cells = 2; #size-cells = 2;
 *       memory@0 { device_type = "memory"; reg = <bank>...; };
 *       cpus { cpu@N { device_type = "cpu"; reg = <N>; }; ... };
 *       chosen { bootargs = "..."; guest-args { KEY = "VALUE"; ... }; };
 *       <device>@<port> { compatible = "..."; faultline,pio = <base len>; }; ...
 *       <device>@<gpa> { compatible = "..."; reg = <gpa size>...; [PROP = <u64>;] }; ... };
 *
 * Built with libfdt's sequential-write API.
 */
#ifndef FAULTLINE_FDT_H
#define FAULTLINE_FDT_H

#include <stddef.h>
#include <stdint.h>

#include "mmu/guest_ram.h"

#define FDT_GUEST_KEY_MAX 31 /* bytes of a guest argument's KEY */

struct guest_arg {
	const char *key; /* points into argv */
	size_t key_len;
	const char *value;
};

struct fdt_pio_device {
	const char *node; /* "serial", "exit" */
	const char *compatible;
	uint32_t base, len;
};

/* A device with MMIO windows (BARs): up to two reg entries and one u64 property. */
struct fdt_mmio_device {
	const char *node; /* "shm", "vram" */
	const char *compatible;
	unsigned nr_regs;
	uint64_t reg[2][2]; /* GPA, size */
	const char *prop;   /* NULL: none */
	uint64_t prop_value;
};

struct fdt_params {
	const struct guest_ram *ram;
	unsigned nr_vcpus;
	const char *cmdline;
	const struct guest_arg *guest_args;
	unsigned nr_guest_args;
	const struct fdt_pio_device *devices;
	unsigned nr_devices;
	const struct fdt_mmio_device *mmio_devices;
	unsigned nr_mmio_devices;
};

/*
 * Build the tree into @buf (@size bytes). Returns 0, -ENOSPC when it does
 * not fit (a long command line or many guest arguments), or -EINVAL.
 */
int fdt__build(void *buf, size_t size, const struct fdt_params *p)
	__attribute__((warn_unused_result));

#endif
