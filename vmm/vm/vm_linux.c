/*
 * A Linux boot: the board's in-kernel irqchip and PIT (its devices are
 * vm_board.c's table), and loading a bzImage or a vmlinux with its initrd,
 * command line, zero page, MP table and ACPI tables into guest RAM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/mptable.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/vm/vm.h"

int vm__init_linux_board(struct vm *vm, const struct run_config *cfg)
{
	(void)cfg;
	return kvm__create_irqchip(&vm->kvm);
}

/* CPUID leaf 1 (signature in EAX, features in EDX) for the MP table's CPU entries. */
static void vm_cpuid1(const struct vm *vm, uint32_t *eax, uint32_t *edx)
{
	uint32_t i;

	*eax = *edx = 0;
	for (i = 0; i < vm->kvm.cpuid->nent; i++)
		if (vm->kvm.cpuid->entries[i].function == 1) {
			*eax = vm->kvm.cpuid->entries[i].eax;
			*edx = vm->kvm.cpuid->entries[i].edx;
		}
}

static int vm_write(struct vm *vm, uint64_t gpa, const void *src, size_t len, const char *what)
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

int vm__new_generation(struct vm *vm, bool announce)
{
	uint8_t id[ACPI_VMGENID_LEN];
	int ret;

	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		ret = errno ? -errno : -EIO;
		pr_err("cannot make a VM generation ID: getrandom failed: %s", strerror(-ret));
		return ret;
	}
	ret = vm_write(vm, ACPI_VMGENID_GPA, id, sizeof(id), "the VM generation ID");
	if (ret || !announce)
		return ret;
	/* An edge on the event device's line: the guest's GED runs _EVT. */
	ret = kvm__irq_line(&vm->kvm, ACPI_GED_IRQ, 1) ?: kvm__irq_line(&vm->kvm, ACPI_GED_IRQ, 0);
	if (ret)
		pr_err("KVM_IRQ_LINE failed: %s (GSI %d: the VM generation ID's event)",
		       strerror(-ret), ACPI_GED_IRQ);
	return ret;
}

/* A bzImage's protected-mode part at 1 MiB, or a vmlinux's segments where they say. */
static int vm_load_kernel(struct vm *vm, const struct linux_image *li)
{
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	int ret;

	if (li->format == LINUX_BZIMAGE)
		return vm_write(vm, li->load_gpa, li->kernel, li->kernel_len, "the kernel image");
	ret = elf__load(li->kernel, &li->elf, &ga);
	return ret ? vm__load_error(vm, ret, "the kernel image") : 0;
}

int vm__load_linux(struct vm *vm, const struct run_config *cfg, const struct linux_image *li,
		   const struct linux_layout *lay, const char *cmdline, const void *initrd)
{
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	struct vm_guest_desc desc = {0};
	uint8_t mp[4096], acpi[4096];
	struct boot_params *bp;
	uint32_t sig, features;
	size_t mp_len, acpi_len;
	int ret, err = 0;

	vm__describe_devices(vm, &desc);
	ret = x86_boot__setup_memory(&vm->mmu.ram, &ga);
	if (ret)
		return vm__load_error(vm, ret, "the boot page tables");
	vm_cpuid1(vm, &sig, &features);
	mp_len = mptable__build(mp, sizeof(mp), LINUX_EBDA_GPA, vm->nr_vcpus, sig, features);
	if (!mp_len) {
		pr_err("cannot build the MP table for %u vCPUs", vm->nr_vcpus);
		return -ENOBUFS;
	}
	acpi_len = acpi__build(acpi, sizeof(acpi), ACPI_RSDP_GPA, desc.acpi, desc.nr_acpi,
			       vm->nr_vcpus);
	if (!acpi_len) {
		pr_err("cannot build the ACPI tables for %u devices", desc.nr_acpi);
		return -ENOBUFS;
	}
	ret = vm_write(vm, LINUX_EBDA_GPA, mp, mp_len, "the MP table");
	ret = ret ?: vm_write(vm, ACPI_RSDP_GPA, acpi, acpi_len, "the ACPI tables");
	ret = ret ?: vm__new_generation(vm, false);
	ret = ret
		      ?: vm_write(vm, LINUX_CMDLINE_GPA, cmdline, lay->cmdline_len + 1,
				  "the kernel command line");
	ret = ret ?: vm_load_kernel(vm, li);
	ret = ret ?: vm_write(vm, lay->initrd_gpa, initrd, lay->initrd_size, "the initrd");
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
