#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <asm/kvm_para.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "vmm/boot/linux.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/kvm/vcpu.h"

static int vcpu_ioctl(struct vcpu *vcpu, unsigned long req, void *arg, const char *name)
{
	if (kvm__ioctl(vcpu->fd, req, (unsigned long)arg, name) < 0) {
		int err = errno;

		pr_err("%s failed: %s (vCPU %u)", name, strerror(err), vcpu->id);
		return -err;
	}
	return 0;
}

#define CPUID_1_ECX_HYPERVISOR (1U << 31)
/*
 * The paravirtual features offered: kvmclock and no I/O delays. The rest
 * (PV EOI, IPIs, spinlocks, TLB flush, async page faults, steal time) stay
 * off: an SMP Linux guest with them hung after bringing up its APs in the
 * nested harness.
 */
#define VCPU_KVM_FEATURES                                                                          \
	(1U << KVM_FEATURE_CLOCKSOURCE | 1U << KVM_FEATURE_NOP_IO_DELAY |                          \
	 1U << KVM_FEATURE_CLOCKSOURCE2 | 1U << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT)

/* KVM's supported CPUID, with this vCPU's APIC ID in the leaves that carry it. */
static int vcpu_set_cpuid(struct vcpu *vcpu)
{
	const struct kvm_cpuid2 *supported = vcpu->kvm->cpuid;
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);
	uint32_t i;
	int ret;

	if (!cpuid)
		return -ENOMEM;
	memcpy(cpuid, supported, size);
	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffff) | vcpu->id << 24;
			e->ecx |= CPUID_1_ECX_HYPERVISOR; /* KVM leaves it to us; Linux then finds
							     kvmclock */
		} else if (e->function == 0xb || e->function == 0x1f)
			e->edx = vcpu->id;
		else if (e->function == KVM_CPUID_FEATURES)
			e->eax &= VCPU_KVM_FEATURES;
	}
	ret = vcpu_ioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
	free(cpuid);
	return ret;
}

static int vcpu_set_entry_state(struct vcpu *vcpu, const struct vcpu_boot *boot)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	ret = vcpu_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (ret)
		return ret;
	x86_boot__sregs(&sregs);
	ret = vcpu_ioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	if (ret)
		return ret;
	x86_boot__regs(&regs, boot->entry, vcpu->id, boot->nr_vcpus);
	if (boot->is_linux) {
		regs.rdi = regs.rdx = 0;
		regs.rsi = LINUX_BOOT_PARAMS_GPA; /* the 64-bit boot protocol */
	}
	return vcpu_ioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

#define APIC_LVT_LINT0	 0x350
#define APIC_LVT_LINT1	 0x360
#define APIC_MODE_NMI	 0x400
#define APIC_MODE_EXTINT 0x700
#define MSR_MISC_ENABLE	 0x1a0
#define MISC_FAST_STRING 0x1

#define CPUID_1_ECX_XSAVE (1U << 26)

/*
 * XCR0 as Linux sets it: every state component the CPUID we give offers
 * (leaf 0xd, sub-leaf 0), or 0 when it offers no XSAVE.
 */
static uint64_t vcpu_guest_xcr0(const struct kvm_cpuid2 *cpuid)
{
	bool xsave = false;
	uint64_t xcr0 = 0;
	uint32_t i;

	for (i = 0; i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1)
			xsave = e->ecx & CPUID_1_ECX_XSAVE;
		else if (e->function == 0xd && e->index == 0)
			xcr0 = e->eax | (uint64_t)e->edx << 32;
	}
	return xsave ? xcr0 : 0;
}

/*
 * Set XCR0 before Linux does. KVM recomputes the XSAVE area size it reports
 * (CPUID 0xd EBX) when it sees the guest's XSETBV; where a nested KVM does
 * not see it (QEMU's TCG lets the L2 guest's XSETBV through), the size stays
 * the one for x87 alone, Linux's XSAVE consistency check warns and turns
 * XSAVE off, and the nested KVM reloads the XCR0 it knows, x87 only, on
 * every entry. With XCR0 set here both agree from the start.
 */
static int vcpu_set_xcr0(struct vcpu *vcpu)
{
	uint64_t xcr0 = vcpu_guest_xcr0(vcpu->kvm->cpuid);
	struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = xcr0}}};

	if (!xcr0)
		return 0;
	return vcpu_ioctl(vcpu, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS");
}

/*
 * What a PC's firmware leaves for Linux and KVM does not: LINT0 delivers
 * the PIC's interrupts (ExtINT), LINT1 NMIs; the x87 and SSE control words
 * at their reset values; fast string operations on; XCR0 (above).
 */
static int vcpu_setup_linux(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} msrs = {.hdr.nmsrs = 1, .e = {{.index = MSR_MISC_ENABLE, .data = MISC_FAST_STRING}}};
	uint32_t lint0 = APIC_MODE_EXTINT, lint1 = APIC_MODE_NMI;
	int ret;

	ret = vcpu_ioctl(vcpu, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	if (ret)
		return ret;
	memcpy(&lapic.regs[APIC_LVT_LINT0], &lint0, sizeof(lint0));
	memcpy(&lapic.regs[APIC_LVT_LINT1], &lint1, sizeof(lint1));
	ret = vcpu_ioctl(vcpu, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
	ret = ret ?: vcpu_ioctl(vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
	ret = ret ?: vcpu_set_xcr0(vcpu);
	if (ret)
		return ret;
	errno = 0;
	if (kvm__ioctl(vcpu->fd, KVM_SET_MSRS, (unsigned long)&msrs, "KVM_SET_MSRS") != 1) {
		pr_err("KVM_SET_MSRS failed: %s (vCPU %u, MSR 0x%x)",
		       errno ? strerror(errno) : "not set", vcpu->id, MSR_MISC_ENABLE);
		return -EIO;
	}
	return 0;
}

#define MCG_CTL_P	 (1ULL << 8)
#define MCG_SER_P	 (1ULL << 24)
#define MCG_STATUS_EIPV	 (1ULL << 1)
#define MCG_STATUS_MCIP	 (1ULL << 2)
#define MCI_STATUS_VAL	 (1ULL << 63)
#define MCI_STATUS_UC	 (1ULL << 61)
#define MCI_STATUS_EN	 (1ULL << 60)
#define MCI_STATUS_MISCV (1ULL << 59)
#define MCI_STATUS_ADDRV (1ULL << 58)
#define MCI_STATUS_S	 (1ULL << 56)
#define MCI_STATUS_AR	 (1ULL << 55)
#define MCACOD_DATA_READ 0x134 /* memory hierarchy error, data read (SRAR) */
#define MCM_ADDR_PHYS	 2
#define CR4_MCE		 (1ULL << 6)

/*
 * Machine-check banks, when KVM offers them. A failure is not fatal: the
 * VM runs without machine checks and says so where it matters
 * (--on-oom mce).
 */
static void vcpu_setup_mce(struct vcpu *vcpu)
{
	struct kvm *kvm = vcpu->kvm;
	uint64_t cap = kvm->mce_cap, banks = cap & 0xff;
	uint64_t mcg_cap =
		(cap & (MCG_CTL_P | MCG_SER_P)) | (banks < VCPU_MCE_BANKS ? banks : VCPU_MCE_BANKS);

	if (!cap || (mcg_cap & 0xff) <= VCPU_MCE_BANK)
		return;
	if (kvm__ioctl(vcpu->fd, KVM_X86_SETUP_MCE, (unsigned long)&mcg_cap, "KVM_X86_SETUP_MCE") <
	    0) {
		snprintf(kvm->mce_why, sizeof(kvm->mce_why),
			 "KVM_X86_SETUP_MCE failed: %s (vCPU %u)", strerror(errno), vcpu->id);
		return;
	}
	vcpu->mce = true;
}

int vcpu__inject_mce(struct vcpu *vcpu, uint64_t gpa)
{
	struct kvm_x86_mce mce = {
		.status = MCI_STATUS_VAL | MCI_STATUS_UC | MCI_STATUS_EN | MCI_STATUS_MISCV |
			  MCI_STATUS_ADDRV | MCI_STATUS_S | MCI_STATUS_AR | MCACOD_DATA_READ,
		.addr = gpa,
		.misc = MCM_ADDR_PHYS << 6 | 12, /* a physical address, 4 KiB granule */
		.mcg_status = MCG_STATUS_MCIP | MCG_STATUS_EIPV,
		.bank = VCPU_MCE_BANK,
	};
	struct kvm_sregs sregs;
	int ret;

	if (!vcpu->mce)
		return -EOPNOTSUPP;
	ret = vcpu_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (ret)
		return ret;
	if (!(sregs.cr4 & CR4_MCE))
		return 1;
	return vcpu_ioctl(vcpu, KVM_X86_SET_MCE, &mce, "KVM_X86_SET_MCE");
}

int vcpu__init(struct vcpu *vcpu, struct kvm *kvm, unsigned id, const struct vcpu_boot *boot)
{
	void *run;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->kvm = kvm;
	vcpu->id = id;
	vcpu->fd = kvm__ioctl(kvm->vm_fd, KVM_CREATE_VCPU, id, "KVM_CREATE_VCPU");
	if (vcpu->fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VCPU failed: %s (vCPU %u)", strerror(-ret), id);
		return ret;
	}
	ret = -inject__check("mmap.kvm_run");
	run = ret ? MAP_FAILED
		  : mmap(NULL, kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		ret = ret ?: -errno;
		pr_err("mmap of kvm_run failed: %s (vCPU %u)", strerror(-ret), id);
		goto err_close;
	}
	vcpu->run = run;
	ret = vcpu_set_cpuid(vcpu);
	if (!ret && boot->is_linux)
		ret = vcpu_setup_linux(vcpu);
	/* A Linux AP waits, as KVM created it, for the INIT and SIPI its BSP sends. */
	if (!ret && (!boot->is_linux || id == 0))
		ret = vcpu_set_entry_state(vcpu, boot);
	if (ret)
		goto err_unmap;
	vcpu_setup_mce(vcpu);
	return 0;

err_unmap:
	munmap(vcpu->run, kvm->run_size);
	vcpu->run = NULL;
err_close:
	close(vcpu->fd);
	vcpu->fd = -1;
	return ret;
}

void vcpu__exit(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->kvm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

unsigned vcpu__tsc_khz(struct vcpu *vcpu)
{
	int khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);

	return khz > 0 ? (unsigned)khz : 0;
}

uint64_t vcpu__rip(struct vcpu *vcpu)
{
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

void vcpu__where(const struct vcpu *vcpu, uint64_t now, struct vcpu_where *w)
{
	uint64_t since = __atomic_load_n(&vcpu->run_since_ns, __ATOMIC_RELAXED);

	w->in_run = since != 0;
	w->for_ns = since && now > since ? now - since : 0;
	w->exits = __atomic_load_n(&vcpu->exits, __ATOMIC_ACQUIRE);
	w->last_exit = __atomic_load_n(&vcpu->last_exit, __ATOMIC_RELAXED);
}

void vcpu__kick(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return -EINTR */
}

int vcpu__setup_kick(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler;
	sigemptyset(&sa.sa_mask);
	if ((inject__fail("sigaction.vcpu") ?: sigaction(VCPU_KICK_SIGNAL, &sa, NULL)) < 0) {
		int err = errno;

		pr_err("sigaction for the vCPU kick signal failed: %s", strerror(err));
		return -err;
	}
	return 0;
}
