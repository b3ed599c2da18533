#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#include "vmm/boot/fdt.h"

/* Each helper returns a libfdt error (< 0) or 0; the caller maps it once. */

static int fdt_memory(void *fdt, const struct guest_ram *ram)
{
	fdt64_t reg[GUEST_RAM_MAX_BANKS * 2];
	unsigned i;
	int ret;

	for (i = 0; i < ram->nr_banks; i++) {
		reg[2 * i] = cpu_to_fdt64(ram->banks[i].gpa);
		reg[2 * i + 1] = cpu_to_fdt64(ram->banks[i].size);
	}
	ret = fdt_begin_node(fdt, "memory@0");
	ret = ret ?: fdt_property_string(fdt, "device_type", "memory");
	ret = ret ?: fdt_property(fdt, "reg", reg, (int)(ram->nr_banks * 2 * sizeof(reg[0])));
	return ret ?: fdt_end_node(fdt);
}

static int fdt_cpus(void *fdt, unsigned nr_vcpus)
{
	char name[24];
	unsigned i;
	int ret;

	ret = fdt_begin_node(fdt, "cpus");
	ret = ret ?: fdt_property_cell(fdt, "#address-cells", 1);
	ret = ret ?: fdt_property_cell(fdt, "#size-cells", 0);
	for (i = 0; i < nr_vcpus && !ret; i++) {
		snprintf(name, sizeof(name), "cpu@%u", i);
		ret = fdt_begin_node(fdt, name);
		ret = ret ?: fdt_property_string(fdt, "device_type", "cpu");
		ret = ret ?: fdt_property_cell(fdt, "reg", i);
		ret = ret ?: fdt_end_node(fdt);
	}
	return ret ?: fdt_end_node(fdt);
}

static int fdt_chosen(void *fdt, const struct fdt_params *p)
{
	char key[FDT_GUEST_KEY_MAX + 1];
	unsigned i;
	int ret;

	ret = fdt_begin_node(fdt, "chosen");
	ret = ret ?: fdt_property_string(fdt, "bootargs", p->cmdline ? p->cmdline : "");
	ret = ret ?: fdt_begin_node(fdt, "guest-args");
	for (i = 0; i < p->nr_guest_args && !ret; i++) {
		const struct guest_arg *ga = &p->guest_args[i];

		if (ga->key_len >= sizeof(key))
			return -FDT_ERR_BADVALUE;
		memcpy(key, ga->key, ga->key_len);
		key[ga->key_len] = '\0';
		ret = fdt_property_string(fdt, key, ga->value);
	}
	ret = ret ?: fdt_end_node(fdt);
	return ret ?: fdt_end_node(fdt);
}

static int fdt_devices(void *fdt, const struct fdt_params *p)
{
	char name[48];
	unsigned i;
	int ret = 0;

	for (i = 0; i < p->nr_devices && !ret; i++) {
		const struct fdt_pio_device *d = &p->devices[i];
		fdt32_t pio[2] = {cpu_to_fdt32(d->base), cpu_to_fdt32(d->len)};

		snprintf(name, sizeof(name), "%s@%x", d->node, d->base);
		ret = fdt_begin_node(fdt, name);
		ret = ret ?: fdt_property_string(fdt, "compatible", d->compatible);
		ret = ret ?: fdt_property(fdt, "faultline,pio", pio, sizeof(pio));
		ret = ret ?: fdt_end_node(fdt);
	}
	return ret;
}

static int fdt_mmio_devices(void *fdt, const struct fdt_params *p)
{
	char name[48];
	unsigned i, j;
	int ret = 0;

	for (i = 0; i < p->nr_mmio_devices && !ret; i++) {
		const struct fdt_mmio_device *d = &p->mmio_devices[i];
		fdt64_t reg[4];

		if (d->nr_regs < 1 || d->nr_regs > 2)
			return -FDT_ERR_BADVALUE;
		for (j = 0; j < d->nr_regs; j++) {
			reg[2 * j] = cpu_to_fdt64(d->reg[j][0]);
			reg[2 * j + 1] = cpu_to_fdt64(d->reg[j][1]);
		}
		snprintf(name, sizeof(name), "%s@%llx", d->node, (unsigned long long)d->reg[0][0]);
		ret = fdt_begin_node(fdt, name);
		ret = ret ?: fdt_property_string(fdt, "compatible", d->compatible);
		ret = ret ?: fdt_property(fdt, "reg", reg, (int)(d->nr_regs * 2 * sizeof(reg[0])));
		if (d->prop)
			ret = ret ?: fdt_property_u64(fdt, d->prop, d->prop_value);
		ret = ret ?: fdt_end_node(fdt);
	}
	return ret;
}

int fdt__build(void *buf, size_t size, const struct fdt_params *p)
{
	int ret;

	if (size > INT32_MAX || !p->ram || !p->nr_vcpus)
		return -EINVAL;
	ret = fdt_create(buf, (int)size);
	ret = ret ?: fdt_finish_reservemap(buf);
	ret = ret ?: fdt_begin_node(buf, "");
	ret = ret ?: fdt_property_string(buf, "compatible", "faultline,microvm");
	ret = ret ?: fdt_property_string(buf, "model", "faultline microVM");
	ret = ret ?: fdt_property_cell(buf, "#address-cells", 2);
	ret = ret ?: fdt_property_cell(buf, "#size-cells", 2);
	ret = ret ?: fdt_memory(buf, p->ram);
	ret = ret ?: fdt_cpus(buf, p->nr_vcpus);
	ret = ret ?: fdt_chosen(buf, p);
	ret = ret ?: fdt_devices(buf, p);
	ret = ret ?: fdt_mmio_devices(buf, p);
	ret = ret ?: fdt_end_node(buf);
	ret = ret ?: fdt_finish(buf);
	if (ret == -FDT_ERR_NOSPACE)
		return -ENOSPC;
	return ret ? -EINVAL : 0;
}
