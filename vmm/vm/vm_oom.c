/*
 * The VM's --on-oom policies for a fault that ended without its page:
 * kill, a machine check in the guest, or pause (vm_state.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "lib/status.h"
#include "vmm/boot/fdt.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/sys/seccomp.h"
#include "vmm/vm/vm.h"

#define VM_MCE_REPORTS 8 /* machine checks reported on stderr; --stats counts all */

/*
 * Tell vCPU ctx->vcpu, whose thread this is, that guest page ctx->gpa is
 * lost: inject a machine check. Sets ctx->resume when done; otherwise the
 * VM stops with @status and says why.
 */
void vm__inject_mce(struct vm *vm, struct fault_ctx *ctx, int status, const char *why)
{
	struct vcpu *vcpu = &vm->vcpus[ctx->vcpu];
	uint64_t n;
	int ret = vcpu__inject_mce(vcpu, ctx->gpa);

	if (ret == 0) {
		n = MMU_STAT_INC(&vm->mmu.stats, machine_checks);
		if (n <= VM_MCE_REPORTS)
			pr_err("injected a machine check into vCPU %u for GPA 0x%llx%s", vcpu->id,
			       (unsigned long long)ctx->gpa,
			       n == VM_MCE_REPORTS ? " (further ones are only counted: --stats)"
						   : "");
		ctx->resume = true;
		return;
	}
	vm__stop(vm, status, "%s: %s (GPA 0x%llx, vCPU %u)", why,
		 ret == 1 ? "the guest has not enabled machine checks (CR4.MCE clear), so it "
			    "cannot be told"
			  : "the machine check could not be injected",
		 (unsigned long long)ctx->gpa, vcpu->id);
}

/*
 * --on-oom mce: poison the page, so that the vCPU touching it takes a
 * machine check. A vCPU thread injects it now (an MMIO exit is completed
 * with the check pending); a userfaultfd fault wakes the vCPU, whose
 * access fails with SIGBUS, which comes back here as HWPOISON.
 */
static void vm_oom_mce(struct vm *vm, struct fault_ctx *ctx, const char *oom)
{
	int ret;

	if (__atomic_load_n(&vm->mmu.stats.pages_poisoned, __ATOMIC_RELAXED) < VM_MCE_REPORTS)
		pr_err("%s; poisoning the page so that the guest takes a machine check "
		       "(--on-oom mce)",
		       oom);
	ret = mmu__poison(&vm->mmu, ctx->gpa);
	if (ret) {
		vm__stop(vm, FL_EXIT_OOM, "%s; cannot poison the page for --on-oom mce: %s", oom,
			 strerror(-ret));
		return;
	}
	if (ctx->source == FAULT_SRC_MMIO_EXIT)
		vm__inject_mce(vm, ctx, FL_EXIT_OOM, oom);
	else if (ctx->source == FAULT_SRC_EFAULT)
		ctx->resume = true; /* KVM_RUN meets the poison and raises SIGBUS */
}

/*
 * A guest fault failed for good (mmu_ops.fault_failed): apply the policy.
 * Called on a fault handler or vCPU thread.
 */
void vm__fault_failed(void *owner, struct fault_ctx *ctx, fault_t result, const char *why)
{
	struct vm *vm = owner;
	struct mmu_pages pages;
	char oom[VM_STOP_MSG_LEN];

	mmu__pages(&vm->mmu, &pages);
	if (result & FAULT_OOM) {
		bool device = ctx->source == FAULT_SRC_MONITOR;
		char who[32];

		snprintf(who, sizeof(who), device ? "a device's access" : "vCPU %d", ctx->vcpu);
		snprintf(oom, sizeof(oom),
			 "guest out of memory: %s (GPA 0x%llx, %s, budget %llu pages, "
			 "resident %llu pages)",
			 why, (unsigned long long)ctx->gpa, who, (unsigned long long)pages.budget,
			 (unsigned long long)pages.resident);
		if (vm->on_oom == VM_OOM_PAUSE)
			vm__oom_pause(vm, ctx, oom);
		else if (vm->on_oom == VM_OOM_MCE && !device)
			vm_oom_mce(vm, ctx, oom);
		else
			vm__stop(vm, FL_EXIT_OOM, "%s%s", oom,
				 vm->on_oom == VM_OOM_MCE
					 ? "; a device's access cannot take a machine check"
					 : "");
		return;
	}
	if ((result & FAULT_HWPOISON) && ctx->source == FAULT_SRC_UFFD)
		return; /* woken, the vCPU meets the poison: SIGBUS, handled below */
	if ((result & FAULT_HWPOISON) && ctx->vcpu >= 0) {
		bool oom_poison = ctx->err != EHWPOISON;

		snprintf(oom, sizeof(oom), "%s%s",
			 oom_poison ? "guest out of memory: " : "guest page fault failed: ", why);
		vm__inject_mce(vm, ctx, oom_poison ? FL_EXIT_OOM : FL_EXIT_FAULT, oom);
		return;
	}
	vm__stop(vm, FL_EXIT_FAULT,
		 "guest page fault failed: %s (GPA 0x%llx, vCPU %d, source: %s%s%s)", why,
		 (unsigned long long)ctx->gpa, ctx->vcpu, fault__source_name(ctx->source),
		 vm->backing_file ? ", file: " : "", vm->backing_file ? vm->backing_file : "");
}

/*
 * Whether the guest can be told about a lost page by a machine check:
 * KVM can inject one into every vCPU and the kernel can poison pages.
 * With --on-oom mce and no way to inject, say so and use kill.
 */
void vm__check_mce(struct vm *vm)
{
	const char *why = vm->kvm.mce_why;
	unsigned i;

	for (i = 0; i < vm->nr_vcpus && !why[0]; i++)
		if (!vm->vcpus[i].mce)
			why = "KVM_X86_SETUP_MCE did not succeed";
	if (!why[0] && !mmu__can_poison(&vm->mmu))
		why = "the kernel's userfaultfd cannot poison pages (UFFDIO_POISON, Linux 6.6)";
	if (!why[0] || vm->on_oom != VM_OOM_MCE)
		return;
	pr_err("--on-oom mce: this host cannot inject machine checks into the guest (%s); a "
	       "guest out of memory stops the VM as with --on-oom kill",
	       why);
	vm->on_oom = VM_OOM_KILL;
}
