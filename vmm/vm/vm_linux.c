/*
 * A Linux boot: the in-kernel irqchip and PIT, the legacy devices a PC
 * kernel expects (the serial port's interrupt, the keyboard controller
 * that resets, the CMOS clock, the boot timer), and loading a bzImage or a
 * vmlinux with its initrd, command line, zero page and MP table into guest RAM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/mptable.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/vm/vm.h"

static void vm__serial_irq(void *ctx, int level)
{
	struct vm *vm = ctx;
	int ret = kvm__irq_line(&vm->kvm, SERIAL_COM1_IRQ, level);

	if (ret)
		vm__stop(vm, FL_EXIT_INTERNAL, "KVM_IRQ_LINE failed: %s (GSI %d, device serial)",
			 strerror(-ret), SERIAL_COM1_IRQ);
}

static void vm__i8042_reset(void *ctx)
{
	struct vm *vm = ctx;

	vm__stop(vm, 0, "the guest reset the machine (keyboard controller): the VM ends");
}

static int vm__virtio_irq(void *ctx, unsigned irq, int level)
{
	struct vm *vm = ctx;

	return kvm__irq_line(&vm->kvm, irq, level);
}

static const unsigned vm_virtio_irqs[VM_VIRTIO_MAX] = VM_VIRTIO_IRQS;

static int vm__init_balloon(struct vm *vm, const struct run_config *cfg);

/*
 * Put device @dev (@ops) on the next virtio-mmio window: its transport set
 * up (*@ready, when given, says so for the undo) and registered on the
 * bus. Returns 0, or FL_EXIT_INTERNAL after reporting.
 */
static int vm__add_virtio(struct vm *vm, struct virtio_mmio *mmio, const struct virtio_dev_ops *ops,
			  void *dev, bool *ready)
{
	unsigned slot = vm->nr_virtio;
	uint64_t gpa = VM_VIRTIO_GPA + slot * VIRTIO_MMIO_SIZE;
	int ret;

	if (slot == VM_VIRTIO_MAX) {
		pr_err("cannot add %s: all %d virtio-mmio windows are taken", ops->name,
		       VM_VIRTIO_MAX);
		return FL_EXIT_INTERNAL;
	}
	ret = virtio_mmio__init(mmio, ops, dev, mmu__guest_access(&vm->mmu), gpa,
				vm_virtio_irqs[slot], vm__virtio_irq, vm);
	if (ret) {
		pr_err("cannot set up the transport of %s: %s", ops->name, strerror(-ret));
		return FL_EXIT_INTERNAL;
	}
	if (ready)
		*ready = true;
	vm->nr_virtio++;
	ret = bus__register(&vm->mmio_bus, gpa, VIRTIO_MMIO_SIZE, ops->name, &virtio_mmio_ops,
			    mmio);
	if (ret) {
		pr_err("cannot register %s at GPA 0x%llx: %s", ops->name, (unsigned long long)gpa,
		       strerror(-ret));
		return FL_EXIT_INTERNAL;
	}
	return 0;
}

/* The virtio-blk disks of --disk, in order: /dev/vda, vdb, ... */
static int vm__init_disks(struct vm *vm, const struct run_config *cfg)
{
	unsigned i;
	int ret;

	if (!cfg->nr_disks)
		return 0;
	vm->disks = calloc(cfg->nr_disks, sizeof(*vm->disks));
	if (!vm->disks)
		return FL_EXIT_INTERNAL;
	for (i = 0; i < cfg->nr_disks; i++) {
		struct virtio_blk *b = &vm->disks[i];

		b->fd = -1;
		ret = virtio_blk__open(b, cfg->disks[i].path, cfg->disks[i].read_only, i);
		if (ret)
			return FL_EXIT_NOINPUT;
		vm->nr_disks++;
		ret = vm__add_virtio(vm, &b->mmio, &virtio_blk_ops, b, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

/* The channel (--channel): the virtio-mmio window after the disks'. */
static int vm__init_channel(struct vm *vm, const struct run_config *cfg)
{
	struct virtio_console *c;
	int ret;

	if (!cfg->channel)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return FL_EXIT_INTERNAL;
	ret = virtio_console__open(c, cfg->channel);
	if (ret) {
		free(c);
		return ret == -ENAMETOOLONG ? FL_EXIT_USAGE : FL_EXIT_INTERNAL;
	}
	vm->channel = c;
	ret = vm__add_virtio(vm, &c->mmio, &virtio_console_ops, c, &c->mmio_ready);
	if (ret)
		return ret;
	c->gate = vm__device_may_run;
	c->gate_ctx = vm;
	return virtio_console__start(c) ? FL_EXIT_INTERNAL : 0;
}

static void vm__acpi_poweroff(void *ctx)
{
	struct vm *vm = ctx;

	vm__stop(vm, 0, "the guest powered off (ACPI S5): the VM ends");
}

static void vm__pvpanic(void *ctx)
{
	struct vm *vm = ctx;

	vm__stop(vm, FL_EXIT_CRASH,
		 "guest crashed: kernel panic, reported through pvpanic (port: 0x%x)",
		 PVPANIC_PORT);
}

_Static_assert(ACPI_PVPANIC_PORT == PVPANIC_PORT, "the DSDT names the pvpanic port");

int vm__init_linux(struct vm *vm, const struct run_config *cfg)
{
	int ret;

	ret = kvm__create_irqchip(&vm->kvm);
	if (ret)
		return FL_EXIT_INTERNAL;
	serial__set_irq(&vm->serial, vm__serial_irq, vm);
	ret = i8042__init(&vm->i8042, vm__i8042_reset, vm);
	ret = ret ?: cmos__init(&vm->cmos);
	ret = ret ?: acpi_pm__init(&vm->acpi_pm, vm__acpi_poweroff, vm);
	pvpanic__init(&vm->pvpanic, vm__pvpanic, vm);
	ret = ret
		      ?: bus__register(&vm->pio_bus, ACPI_PM1_EVT_PORT, ACPI_PM_NR_PORTS, "acpi-pm",
				       &acpi_pm_ops, &vm->acpi_pm);
	ret = ret
		      ?: bus__register(&vm->pio_bus, I8042_DATA_PORT, 1, "i8042", &i8042_data_ops,
				       &vm->i8042);
	ret = ret
		      ?: bus__register(&vm->pio_bus, I8042_COMMAND_PORT, 1, "i8042",
				       &i8042_command_ops, &vm->i8042);
	ret = ret
		      ?: bus__register(&vm->pio_bus, CMOS_PORT, CMOS_NR_PORTS, "cmos", &cmos_ops,
				       &vm->cmos);
	ret = ret
		      ?: bus__register(&vm->pio_bus, BOOT_TIMER_PORT, 1, "boot-timer",
				       &boot_timer_ops, &vm->boot_timer);
	ret = ret
		      ?: bus__register(&vm->pio_bus, PVPANIC_PORT, 1, "pvpanic", &pvpanic_ops,
				       &vm->pvpanic);
	if (ret) {
		pr_err("cannot register the legacy devices: %s", strerror(-ret));
		return FL_EXIT_INTERNAL;
	}
	return vm__init_disks(vm, cfg) ?: vm__init_channel(vm, cfg) ?: vm__init_balloon(vm, cfg);
}

static int vm__balloon_discard(void *ctx, uint64_t gpa, uint64_t len, uint64_t *dropped,
			       uint64_t *kept)
{
	struct vm *vm = ctx;

	return mmu__discard(&vm->mmu, gpa, len, dropped, kept);
}

/*
 * The balloon's target or size changed: the `balloon` event. Under the
 * device's lock, which is taken before vm->lock (a vCPU that waits in the
 * device for memory pauses the VM), never after it.
 */
static void vm__balloon_changed(void *ctx, uint32_t target, uint32_t actual)
{
	vm__event(ctx, "balloon",
		  json_pack("{s:i,s:i}", "target_pages", (int)target, "actual_pages", (int)actual));
}

/* The balloon (--balloon): the virtio-mmio window after the channel's. */
static int vm__init_balloon(struct vm *vm, const struct run_config *cfg)
{
	struct virtio_balloon *b;

	if (!cfg->balloon)
		return 0;
	b = calloc(1, sizeof(*b));
	if (!b || mmu__allow_discard(&vm->mmu)) {
		free(b);
		pr_err("cannot set up the balloon: out of memory");
		return FL_EXIT_INTERNAL;
	}
	b->discard = vm__balloon_discard;
	b->discard_ctx = vm;
	b->changed = vm__balloon_changed;
	b->changed_ctx = vm;
	vm->balloon = b;
	return vm__add_virtio(vm, &b->mmio, &virtio_balloon_ops, b, &b->mmio_ready);
}

void vm__stop_linux(struct vm *vm)
{
	if (vm->channel)
		virtio_console__stop(vm->channel, VM_CHANNEL_FLUSH_MS);
}

void vm__exit_linux(struct vm *vm)
{
	unsigned i;

	for (i = 0; i < vm->nr_disks; i++) {
		virtio_blk__close(&vm->disks[i]);
		virtio_mmio__exit(&vm->disks[i].mmio);
	}
	free(vm->disks);
	vm->disks = NULL;
	vm->nr_disks = 0;
	vm->nr_virtio = 0;
	if (vm->channel) {
		virtio_console__stop(vm->channel, 0);
		virtio_console__close(vm->channel);
		if (vm->channel->mmio_ready)
			virtio_mmio__exit(&vm->channel->mmio);
		free(vm->channel);
		vm->channel = NULL;
	}
	if (vm->balloon) {
		if (vm->balloon->mmio_ready)
			virtio_mmio__exit(&vm->balloon->mmio);
		free(vm->balloon);
		vm->balloon = NULL;
	}
	i8042__exit(&vm->i8042);
	cmos__exit(&vm->cmos);
	acpi_pm__exit(&vm->acpi_pm);
}

/* CPUID leaf 1 (signature in EAX, features in EDX) for the MP table's CPU entries. */
static void vm__cpuid1(const struct vm *vm, uint32_t *eax, uint32_t *edx)
{
	uint32_t i;

	*eax = *edx = 0;
	for (i = 0; i < vm->kvm.cpuid->nent; i++)
		if (vm->kvm.cpuid->entries[i].function == 1) {
			*eax = vm->kvm.cpuid->entries[i].eax;
			*edx = vm->kvm.cpuid->entries[i].edx;
		}
}

static int vm__write(struct vm *vm, uint64_t gpa, const void *src, size_t len, const char *what)
{
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	int err = 0;
	void *dst;

	if (!len)
		return 0;
	dst = ga.ptr(ga.ctx, gpa, len, &err);
	if (!dst)
		return vm__load_error(vm, err, what);
	memcpy(dst, src, len);
	return 0;
}

/* A bzImage's protected-mode part at 1 MiB, or a vmlinux's segments where they say. */
static int vm__load_kernel(struct vm *vm, const struct linux_image *li)
{
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	int ret;

	if (li->format == LINUX_BZIMAGE)
		return vm__write(vm, li->load_gpa, li->kernel, li->kernel_len, "the kernel image");
	ret = elf__load(li->kernel, &li->elf, &ga);
	return ret ? vm__load_error(vm, ret, "the kernel image") : 0;
}

int vm__load_linux(struct vm *vm, const struct run_config *cfg, const struct linux_image *li,
		   const struct linux_layout *lay, const char *cmdline, const void *initrd)
{
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	struct acpi_mmio_device acpi_devs[ACPI_MAX_DEVICES];
	uint8_t mp[4096], acpi[4096];
	struct boot_params *bp;
	uint32_t sig, features;
	size_t mp_len, acpi_len;
	int ret, err = 0;
	unsigned i;

	for (i = 0; i < vm->nr_disks; i++) {
		acpi_devs[i].gpa = vm->disks[i].mmio.gpa;
		acpi_devs[i].size = VIRTIO_MMIO_SIZE;
		acpi_devs[i].irq = vm->disks[i].mmio.irq;
	}
	if (vm->channel) {
		acpi_devs[i].gpa = vm->channel->mmio.gpa;
		acpi_devs[i].size = VIRTIO_MMIO_SIZE;
		acpi_devs[i++].irq = vm->channel->mmio.irq;
	}
	if (vm->balloon) {
		acpi_devs[i].gpa = vm->balloon->mmio.gpa;
		acpi_devs[i].size = VIRTIO_MMIO_SIZE;
		acpi_devs[i++].irq = vm->balloon->mmio.irq;
	}
	ret = x86_boot__setup_memory(&vm->mmu.ram, &ga);
	if (ret)
		return vm__load_error(vm, ret, "the boot page tables");
	vm__cpuid1(vm, &sig, &features);
	mp_len = mptable__build(mp, sizeof(mp), LINUX_EBDA_GPA, vm->nr_vcpus, sig, features);
	if (!mp_len) {
		pr_err("cannot build the MP table for %u vCPUs", vm->nr_vcpus);
		return FL_EXIT_INTERNAL;
	}
	acpi_len = acpi__build(acpi, sizeof(acpi), ACPI_RSDP_GPA, acpi_devs, i, vm->nr_vcpus);
	if (!acpi_len) {
		pr_err("cannot build the ACPI tables for %u devices", i);
		return FL_EXIT_INTERNAL;
	}
	ret = vm__write(vm, LINUX_EBDA_GPA, mp, mp_len, "the MP table");
	ret = ret ?: vm__write(vm, ACPI_RSDP_GPA, acpi, acpi_len, "the ACPI tables");
	ret = ret
		      ?: vm__write(vm, LINUX_CMDLINE_GPA, cmdline, lay->cmdline_len + 1,
				   "the kernel command line");
	ret = ret ?: vm__load_kernel(vm, li);
	ret = ret ?: vm__write(vm, lay->initrd_gpa, initrd, lay->initrd_size, "the initrd");
	if (ret)
		return ret;
	bp = ga.ptr(ga.ctx, LINUX_BOOT_PARAMS_GPA, sizeof(*bp), &err);
	if (!bp)
		return vm__load_error(vm, err, "the zero page");
	linux__boot_params(bp, li, lay, &vm->mmu.ram);
	if (cfg->prefault) {
		ret = mmu__prefault(&vm->mmu);
		if (ret)
			return vm__load_error(vm, ret, "all of guest RAM (--prefault)");
	}
	return vm__create_vcpus(vm, li->entry_gpa);
}
