#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "vmm/kvm/kvm.h"

#define KVM_CPUID_MAX_ENTRIES 256

struct kvm_cap_need {
	unsigned cap;
	const char *name;
};

/* What the monitor relies on, and where. */
static const struct kvm_cap_need kvm_caps_needed[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},	    /* guest RAM */
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},	    /* KVM_GET_SUPPORTED_CPUID */
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"}, /* race-free vCPU kicks */
};

int kvm__ioctl(int fd, unsigned long req, unsigned long arg, const char *name)
{
	int err = inject__check(name);

	if (err) {
		errno = err;
		return -1;
	}
	return ioctl(fd, req, arg);
}

static int kvm_check_caps(struct kvm *kvm, const char *path)
{
	size_t i;
	int n;

	for (i = 0; i < sizeof(kvm_caps_needed) / sizeof(kvm_caps_needed[0]); i++) {
		if (kvm__ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, kvm_caps_needed[i].cap,
			       "KVM_CHECK_EXTENSION") <= 0) {
			pr_err("KVM lacks a capability faultline needs: %s (device: %s)",
			       kvm_caps_needed[i].name, path);
			return -ENODEV;
		}
	}
	n = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	kvm->max_vcpus = n > 0 ? (unsigned)n : 1;
	n = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	kvm->nr_memslots = n > 0 ? (unsigned)n : 32; /* the API's documented minimum */
	return 0;
}

static int kvm_get_cpuid(struct kvm *kvm)
{
	kvm->cpuid = calloc(1, sizeof(*kvm->cpuid) +
				       KVM_CPUID_MAX_ENTRIES * sizeof(kvm->cpuid->entries[0]));
	if (!kvm->cpuid)
		return -ENOMEM;
	kvm->cpuid->nent = KVM_CPUID_MAX_ENTRIES;
	if (kvm__ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, (unsigned long)kvm->cpuid,
		       "KVM_GET_SUPPORTED_CPUID") < 0) {
		int err = errno;

		pr_err("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(err));
		return -err;
	}
	return 0;
}

/*
 * Machine-check injection is optional: without it a guest cannot be told
 * about a lost page (--on-oom mce). Record why it is missing.
 */
static void kvm_probe_mce(struct kvm *kvm)
{
	int banks = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MCE);

	if (banks <= 0) {
		snprintf(kvm->mce_why, sizeof(kvm->mce_why), "KVM_CAP_MCE is not supported");
		return;
	}
	if (kvm__ioctl(kvm->sys_fd, KVM_X86_GET_MCE_CAP_SUPPORTED, (unsigned long)&kvm->mce_cap,
		       "KVM_X86_GET_MCE_CAP_SUPPORTED") < 0) {
		snprintf(kvm->mce_why, sizeof(kvm->mce_why),
			 "KVM_X86_GET_MCE_CAP_SUPPORTED failed: %s", strerror(errno));
		kvm->mce_cap = 0;
	} else {
		/* The bank count is KVM_CAP_MCE's value, not part of the capabilities. */
		kvm->mce_cap = (kvm->mce_cap & ~0xffULL) | (uint64_t)(banks & 0xff);
	}
}

static int kvm_open(struct kvm *kvm, const char *path)
{
	int version, err;

	kvm->sys_fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0) {
		err = errno;
		pr_err("cannot open %s: %s; without KVM, run faultline inside the nested harness: "
		       "tests/nested/run -- build/faultline run ...",
		       path, strerror(err));
		return -ENODEV;
	}
	version = kvm__ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");
	if (version < 0) {
		pr_err("KVM_GET_API_VERSION failed: %s (device: %s)", strerror(errno), path);
		return -ENODEV;
	}
	if (version != KVM_API_VERSION) {
		pr_err("KVM_GET_API_VERSION returned %d, faultline needs %d (device: %s)", version,
		       KVM_API_VERSION, path);
		return -ENODEV;
	}
	return 0;
}

int kvm__init(struct kvm *kvm, const char *path)
{
	int ret, n;

	memset(kvm, 0, sizeof(*kvm));
	kvm->vm_fd = -1;
	ret = kvm_open(kvm, path);
	ret = ret ?: kvm_check_caps(kvm, path);
	ret = ret ?: kvm_get_cpuid(kvm);
	if (ret)
		goto err_close;
	n = kvm__ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
	if (n < (int)sizeof(struct kvm_run)) {
		ret = n < 0 ? -errno : -EINVAL;
		pr_err("KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(-ret));
		goto err_close;
	}
	kvm->run_size = (size_t)n;
	kvm_probe_mce(kvm);
	kvm->vm_fd = kvm__ioctl(kvm->sys_fd, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	if (kvm->vm_fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VM failed: %s", strerror(-ret));
		goto err_close;
	}
	if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    kvm__ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_GPA, "KVM_SET_TSS_ADDR") < 0) {
		ret = -errno;
		pr_err("KVM_SET_TSS_ADDR failed: %s (GPA: 0x%llx)", strerror(-ret),
		       (unsigned long long)KVM_TSS_GPA);
		goto err_close;
	}
	return 0;

err_close:
	kvm__exit(kvm);
	return ret;
}

void kvm__exit(struct kvm *kvm)
{
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	free(kvm->cpuid);
	free(kvm->msr_list);
	kvm->cpuid = NULL;
	kvm->msr_list = NULL;
	kvm->vm_fd = kvm->sys_fd = -1;
}

int kvm__set_memslot(struct kvm *kvm, unsigned slot, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	if (kvm__ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, (unsigned long)&region,
		       "KVM_SET_USER_MEMORY_REGION") < 0) {
		int err = errno;

		pr_err("KVM_SET_USER_MEMORY_REGION failed: %s (slot %u, GPA 0x%llx, %llu bytes)",
		       strerror(err), slot, (unsigned long long)gpa, (unsigned long long)size);
		return -err;
	}
	return 0;
}

int kvm__create_irqchip(struct kvm *kvm)
{
	struct kvm_pit_config pit = {.flags = 0};

	if (kvm__ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP") < 0) {
		int err = errno;

		pr_err("KVM_CREATE_IRQCHIP failed: %s", strerror(err));
		return -err;
	}
	if (kvm__ioctl(kvm->vm_fd, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2") < 0) {
		int err = errno;

		pr_err("KVM_CREATE_PIT2 failed: %s", strerror(err));
		return -err;
	}
	return 0;
}

int kvm__irq_line(struct kvm *kvm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = (uint32_t)level};

	if (kvm__ioctl(kvm->vm_fd, KVM_IRQ_LINE, (unsigned long)&irq, "KVM_IRQ_LINE") < 0)
		return -errno;
	return 0;
}

int kvm__get_clock(struct kvm *kvm, uint64_t *ns)
{
	struct kvm_clock_data data = {0};

	if (kvm__ioctl(kvm->vm_fd, KVM_GET_CLOCK, (unsigned long)&data, "KVM_GET_CLOCK") < 0)
		return -errno;
	*ns = data.clock;
	return 0;
}

int kvm__set_clock(struct kvm *kvm, uint64_t ns)
{
	struct kvm_clock_data data = {.clock = ns};

	if (kvm__ioctl(kvm->vm_fd, KVM_SET_CLOCK, (unsigned long)&data, "KVM_SET_CLOCK") < 0)
		return -errno;
	return 0;
}
