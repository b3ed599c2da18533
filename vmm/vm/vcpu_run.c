/*
 * The VM's vCPU threads: each loops on KVM_RUN and hands every exit to
 * vcpu_exit.c. A memory error KVM reports by SIGBUS is served as a fault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "lib/status.h"
#include "vmm/vm/vm.h"

static __thread struct vcpu *vcpu_current;

/*
 * KVM reports a guest access to a poisoned page (UFFDIO_POISON, or a real
 * memory error) by SIGBUS with BUS_MCEERR_AR on the vCPU thread, and
 * KVM_RUN returns -EINTR. Note the address for the vCPU loop. Any other
 * SIGBUS is a bug of ours: die of it.
 */
static void vcpu_sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	struct vcpu *vcpu = vcpu_current;

	(void)uc;
	if (vcpu && (si->si_code == BUS_MCEERR_AO ||
		     (si->si_code == BUS_MCEERR_AR &&
		      __atomic_load_n(&vcpu->run_since_ns, __ATOMIC_RELAXED)))) {
		__atomic_store_n(&vcpu->sigbus_hva, (uintptr_t)si->si_addr, __ATOMIC_RELEASE);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * A memory error KVM reported by SIGBUS: serve it through the fault path,
 * whose policy injects a machine check or stops the VM. Returns true to
 * enter the guest again.
 */
static bool vcpu_handle_sigbus(struct vcpu *vcpu)
{
	uintptr_t hva = __atomic_exchange_n(&vcpu->sigbus_hva, 0, __ATOMIC_ACQ_REL);
	uint64_t gpa;

	if (!hva)
		return true;
	if (!mmu__gpa_of_hva(&vcpu->vm->mmu, (void *)hva, &gpa)) {
		vm__stop(vcpu->vm, FL_EXIT_INTERNAL,
			 "memory error (SIGBUS) at host address 0x%llx outside guest RAM (vCPU %u)",
			 (unsigned long long)hva, vcpu->id);
		return false;
	}
	return vcpu__serve_fault(vcpu, gpa, false, FAULT_SRC_SIGBUS) != VCPU_FAULT_STOP;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t kick;

	vcpu_current = vcpu;
	__atomic_store_n(&vcpu->tid, (int)gettid(), __ATOMIC_RELEASE);
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	/* Test-only: a call the seccomp filter does not allow, from a vCPU thread. */
	if (inject__check("seccomp.probe"))
		syscall(SYS_getppid);
	if (vcpu->halted) { /* restored so: it waits as it did */
		vm__vcpu_halted(vcpu->vm, vcpu->id);
		return NULL;
	}
	while (vm__vcpu_may_run(vcpu->vm, vcpu)) {
		int ret;

		__atomic_store_n(&vcpu->run_since_ns, mmu__now_ns() ?: 1, __ATOMIC_RELAXED);
		ret = kvm__ioctl(vcpu->fd, KVM_RUN, 0, "KVM_RUN");
		__atomic_store_n(&vcpu->run_since_ns, 0, __ATOMIC_RELAXED);
		if (ret == 0) {
			__atomic_store_n(&vcpu->last_exit, vcpu->run->exit_reason,
					 __ATOMIC_RELAXED);
			__atomic_add_fetch(&vcpu->exits, 1, __ATOMIC_RELEASE);
		}
		if (__atomic_load_n(&vcpu->sigbus_hva, __ATOMIC_ACQUIRE) &&
		    !vcpu_handle_sigbus(vcpu))
			break;
		if (ret < 0) {
			int err = errno;

			vcpu->run->immediate_exit = 0;
			if (err == EINTR || err == EAGAIN)
				continue;
			if (err == EFAULT && vcpu__handle_memory_fault(vcpu))
				continue;
			vm__stop(vcpu->vm, FL_EXIT_INTERNAL,
				 "KVM_RUN failed: %s (vCPU %u, RIP 0x%llx)", strerror(err),
				 vcpu->id, (unsigned long long)vcpu__rip(vcpu));
			break;
		}
		if (!vcpu__handle_exit(vcpu))
			break;
	}
	/* Stopped from outside: where the guest was (vm__print_where()). */
	if (__atomic_load_n(&vcpu->vm->where_taken, __ATOMIC_ACQUIRE))
		vcpu->stop_rip = vcpu__rip(vcpu);
	return NULL;
}

int vcpu__start(struct vcpu *vcpu)
{
	int ret = inject__check("pthread_create.vcpu");

	ret = ret ?: pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (ret)
		return -ret;
	vcpu->thread_started = true;
	return 0;
}

int vcpu__setup_signals(void)
{
	struct sigaction sa;
	int err = vcpu__setup_kick();

	if (err)
		return err;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = vcpu_sigbus_handler;
	sa.sa_flags = SA_SIGINFO;
	if ((inject__fail("sigaction.vcpu") ?: sigaction(SIGBUS, &sa, NULL)) < 0) {
		err = errno;
		pr_err("sigaction for SIGBUS failed: %s", strerror(err));
		return -err;
	}
	return 0;
}
