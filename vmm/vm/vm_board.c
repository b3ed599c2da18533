/*
 * The boards: which devices a VM has, in which order. Creating,
 * describing, saving, stopping and freeing the devices walks the table;
 * adding a device is its entry (vm_legacy.c, vm_virtio.c, vm_bars.c) and
 * one line here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/vm/vm.h"

#define VM_DEVICES_MAGIC   0x56444c46U /* "FLDV" */
#define VM_DEVICES_VERSION 1

static const struct vm_device_ops *const vm_test_devices[] = {
	&vm_serial_dev, &vm_exit_dev, &vm_shm_dev, &vm_vram_dev, &vm_dedup_dev, &vm_clone_id_dev,
};

const struct vm_board vm_board_test = {
	.name = "test",
	.devices = vm_test_devices,
	.nr_devices = sizeof(vm_test_devices) / sizeof(vm_test_devices[0]),
};

/* The virtio devices take the virtio-mmio windows in this order. */
static const struct vm_device_ops *const vm_linux_devices[] = {
	&vm_serial_dev,	    &vm_exit_dev,    &vm_i8042_dev, &vm_cmos_dev,     &vm_acpi_pm_dev,
	&vm_boot_timer_dev, &vm_pvpanic_dev, &vm_disks_dev, &vm_channel_dev,  &vm_balloon_dev,
	&vm_shm_dev,	    &vm_vram_dev,    &vm_dedup_dev, &vm_clone_id_dev,
};

const struct vm_board vm_board_linux = {
	.name = "linux",
	.init = vm__init_linux_board,
	.devices = vm_linux_devices,
	.nr_devices = sizeof(vm_linux_devices) / sizeof(vm_linux_devices[0]),
};

int vm__create_devices(struct vm *vm, const struct run_config *cfg)
{
	const struct vm_board *board = vm->board;
	int ret = board->init ? board->init(vm, cfg) : 0;

	if (ret)
		return ret;
	vm__init_bar_slots(vm);
	while (vm->nr_created < board->nr_devices) {
		const struct vm_device_ops *dev = board->devices[vm->nr_created++];

		ret = dev->create ? dev->create(vm, cfg) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

void vm__describe_devices(const struct vm *vm, struct vm_guest_desc *d)
{
	unsigned i;

	for (i = 0; i < vm->nr_created; i++)
		if (vm->board->devices[i]->describe)
			vm->board->devices[i]->describe(vm, d);
}

size_t vm__save_present(struct blob *b, const char *section, bool present)
{
	size_t at = blob__section(b, section, 1);

	blob__bool(b, present);
	return at;
}

void vm__save_empty(struct blob *b, const char *section)
{
	blob__section_end(b, blob__section(b, section, 1));
}

int vm__restore_empty(struct blob_reader *r, const char *section)
{
	struct blob_reader sub;
	uint16_t version;

	if (blob__enter(r, section, 1, &version, &sub))
		return -EINVAL;
	return blob_reader__done(&sub) ? blob__fail(r, "%s: %s", section, sub.why) : 0;
}

int vm__restore_present(struct blob_reader *r, const char *section, const char *name,
			const char *has, const char *has_not, bool present, struct blob_reader *sub,
			bool *had)
{
	uint16_t version;

	if (blob__enter(r, section, 1, &version, sub))
		return -EINVAL;
	*had = blob__get_bool(sub);
	if (!sub->err && *had != present)
		return blob__fail(r, "%s: the snapshot %s, this VM %s", name, *had ? has : has_not,
				  *had ? "has none" : "has one");
	return sub->err ? blob__fail(r, "%s: %s", name, sub->why) : 0;
}

int vm__restore_present_end(struct blob_reader *r, const char *name, struct blob_reader *sub)
{
	return blob_reader__done(sub) ? blob__fail(r, "%s: %s", name, sub->why) : 0;
}

int vm__save_devices(struct vm *vm, struct blob *b)
{
	unsigned i;
	int ret;

	for (i = 0; i < vm->nr_created; i++)
		if (!vm->board->devices[i]->save) {
			pr_err("cannot save the state of device %s: it has no save yet",
			       vm->board->devices[i]->name);
			return -EOPNOTSUPP;
		}
	blob__u32(b, VM_DEVICES_MAGIC);
	blob__u16(b, VM_DEVICES_VERSION);
	blob__u16(b, (uint16_t)vm->nr_created);
	for (i = 0; i < vm->nr_created; i++) {
		ret = vm->board->devices[i]->save(vm, b);
		if (ret)
			return ret;
	}
	ret = blob__end(b);
	if (ret)
		pr_err("cannot save the devices' state: %s", strerror(-ret));
	return ret;
}

int vm__restore_devices(struct vm *vm, struct blob_reader *r)
{
	uint32_t magic = blob__get_u32(r);
	uint16_t version = blob__get_u16(r), n = blob__get_u16(r);
	unsigned i;

	if (!r->err && magic != VM_DEVICES_MAGIC)
		blob__fail(r, "not a device state (magic 0x%08x)", magic);
	else if (!r->err && version != VM_DEVICES_VERSION)
		blob__fail(r, "device state of version %u, this faultline reads %d", version,
			   VM_DEVICES_VERSION);
	else if (!r->err && n != vm->nr_created)
		blob__fail(r, "%u devices, this VM has %u", n, vm->nr_created);
	for (i = 0; !r->err && i < vm->nr_created; i++)
		if (vm->board->devices[i]->restore(vm, r) && !r->err)
			blob__fail(r, "device %s refused its state", vm->board->devices[i]->name);
	if (blob_reader__done(r)) {
		pr_err("cannot restore the devices' state: %s", r->why);
		return -EINVAL;
	}
	return 0;
}

int vm__start_devices(struct vm *vm)
{
	unsigned i;
	int ret;

	for (i = 0; i < vm->nr_created; i++)
		if (vm->board->devices[i]->start) {
			ret = vm->board->devices[i]->start(vm);
			if (ret)
				return ret;
		}
	return 0;
}

void vm__stop_devices(struct vm *vm)
{
	unsigned i;

	for (i = 0; i < vm->nr_created; i++)
		if (vm->board->devices[i]->stop)
			vm->board->devices[i]->stop(vm);
}

void vm__exit_devices(struct vm *vm)
{
	while (vm->nr_created) {
		const struct vm_device_ops *dev = vm->board->devices[--vm->nr_created];

		if (dev->exit)
			dev->exit(vm);
	}
}
