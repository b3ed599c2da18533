/*
 * The KVM ioctl layer: /dev/kvm, the API version, the capabilities the
 * monitor needs, the VM file descriptor and memory slots. Every failure is
 * reported naming the ioctl (or capability) and returned as -errno.
 */
#ifndef FAULTLINE_KVM_H
#define FAULTLINE_KVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#define KVM_TSS_GPA 0xfffbd000ULL /* 3 pages in the MMIO hole, Intel only */

struct kvm {
	int sys_fd;
	int vm_fd;
	size_t run_size;	  /* KVM_GET_VCPU_MMAP_SIZE */
	unsigned max_vcpus;	  /* KVM_CAP_MAX_VCPUS */
	unsigned nr_memslots;	  /* KVM_CAP_NR_MEMSLOTS */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */
	uint64_t mce_cap;	  /* MCG_CAP KVM supports, banks in 7:0; 0: cannot inject */
	char mce_why[96];	  /* why mce_cap is 0 */
	/* For snapshots, read once before the seccomp filter (kvm_state.c). */
	struct kvm_msr_list *msr_list; /* KVM_GET_MSR_INDEX_LIST; NULL: it failed */
	size_t xsave_size;	       /* bytes of a vCPU's XSAVE area (KVM_CAP_XSAVE2) */
};

/*
 * ioctl(2) on a KVM fd, through the fault-injection site @name (the ioctl's
 * name, "KVM_RUN"). Returns what ioctl returns; -1 with errno on failure.
 */
int kvm__ioctl(int fd, unsigned long req, unsigned long arg, const char *name);

/*
 * Open @path, check the API version and capabilities, create the VM.
 * Returns 0, -ENODEV (no usable KVM: missing device, wrong API version or
 * a missing capability; reported) or another -errno from an ioctl.
 */
int kvm__init(struct kvm *kvm, const char *path) __attribute__((warn_unused_result));
void kvm__exit(struct kvm *kvm);

/* KVM_SET_USER_MEMORY_REGION for one slot. Returns 0 or -errno (reported). */
int kvm__set_memslot(struct kvm *kvm, unsigned slot, uint64_t gpa, uint64_t size, void *host)
	__attribute__((warn_unused_result));

/*
 * The in-kernel interrupt controllers a Linux guest needs: KVM_CREATE_IRQCHIP
 * (PIC, I/O APIC, local APICs) and KVM_CREATE_PIT2. Before any vCPU exists.
 * Returns 0 or -errno (reported, naming the ioctl).
 */
int kvm__create_irqchip(struct kvm *kvm) __attribute__((warn_unused_result));

/* KVM_IRQ_LINE: set GSI @gsi to @level. Returns 0 or -errno (not reported). */
int kvm__irq_line(struct kvm *kvm, unsigned gsi, int level);

/*
 * The VM's kvmclock (KVM_GET_CLOCK, KVM_SET_CLOCK), in ns: what a guest's
 * kvm-clock clocksource reads. Setting it back to a value read earlier
 * makes the time between not have passed for the guest. Return 0 or
 * -errno (not reported).
 */
int kvm__get_clock(struct kvm *kvm, uint64_t *ns);
int kvm__set_clock(struct kvm *kvm, uint64_t ns);

#endif
