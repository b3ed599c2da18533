/*
 * A KVM vCPU: its fd and kvm_run, the CPUID, registers, LAPIC, XCR0 and
 * machine-check banks it starts with, and the calls on it that need no VM
 * (kick, RIP, machine-check injection). The VM's thread for it, which
 * loops on KVM_RUN and dispatches the exits, is vmm/vm/vcpu_run.c. A vCPU
 * is kicked out of KVM_RUN by setting immediate_exit and sending
 * VCPU_KICK_SIGNAL to its thread.
 */
#ifndef FAULTLINE_VCPU_H
#define FAULTLINE_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/kvm/kvm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

struct vm;

/* A vCPU's whereabouts at one moment (vcpu__where()). */
struct vcpu_where {
	bool in_run;	    /* inside KVM_RUN: guest code, HLT, or a fault the kernel holds */
	uint64_t for_ns;    /* in_run: since it entered */
	uint64_t exits;	    /* exits to faultline so far */
	uint32_t last_exit; /* KVM_EXIT_*, when exits > 0 */
};

struct vcpu {
	struct kvm *kvm;
	struct vm *vm; /* the VM that runs it, opaque here; set by the VM */
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	int tid;	      /* the thread's id once it runs, atomic; 0 before */
	bool mce;	      /* KVM_X86_SETUP_MCE succeeded: machine checks can be injected */
	uintptr_t sigbus_hva; /* a memory error KVM reported by SIGBUS, 0: none */
	/*
	 * Where the vCPU is, for a report on a VM that hangs (vcpu__where()),
	 * atomics the vCPU thread writes: when it entered KVM_RUN, 0 while
	 * outside (the SIGBUS handler reads it too); how many KVM_RUN returns
	 * were exits (not -EINTR), and the last one's reason.
	 */
	uint64_t run_since_ns;
	uint64_t exits;
	uint32_t last_exit;
	struct vcpu_where at_stop; /* where it was when the VM was stopped from outside */
	uint64_t stop_rip;	   /* then: its RIP once out of KVM_RUN; 0: unknown */
	/*
	 * It executed HLT in a VM without the in-kernel irqchip, and waits
	 * for the VM's end (vm__vcpu_halted(), under vm->lock); or, restored
	 * from a snapshot, it was so and waits from its start.
	 */
	bool halted;
};

/* The bank faultline's machine checks are reported in. */
#define VCPU_MCE_BANK  1
#define VCPU_MCE_BANKS 10

/* How a vCPU starts. */
struct vcpu_boot {
	uint64_t entry;	   /* RIP in long mode (vCPU 0 only for Linux) */
	unsigned nr_vcpus; /* of the VM */
	bool is_linux;	   /* the 64-bit Linux boot protocol; APs wait for INIT/SIPI */
};

/*
 * KVM_CREATE_VCPU, map kvm_run, set CPUID and the long-mode entry state.
 * Returns 0 or -errno (reported, naming the ioctl and vCPU).
 */
int vcpu__init(struct vcpu *vcpu, struct kvm *kvm, unsigned id, const struct vcpu_boot *boot)
	__attribute__((warn_unused_result));
void vcpu__exit(struct vcpu *vcpu);

/* Where @vcpu is at @now (mmu__now_ns()); any thread. */
void vcpu__where(const struct vcpu *vcpu, uint64_t now, struct vcpu_where *w);

/* Make the vCPU leave KVM_RUN soon; any thread. */
void vcpu__kick(struct vcpu *vcpu);

/*
 * Inject a machine check for guest page @gpa: an uncorrected,
 * action-required data error in bank VCPU_MCE_BANK, MCi_ADDR = @gpa.
 * Returns 0, 1 when the guest has not enabled machine checks (CR4.MCE
 * clear: KVM would turn the #MC into a triple fault), -EOPNOTSUPP when
 * this vCPU cannot take one, or -errno (reported). vCPU thread only.
 */
int vcpu__inject_mce(struct vcpu *vcpu, uint64_t gpa) __attribute__((warn_unused_result));

/* The guest's TSC frequency in kHz (KVM_GET_TSC_KHZ), 0 when unknown. */
unsigned vcpu__tsc_khz(struct vcpu *vcpu);

/* Install the kick signal's handler; once, before any vCPU runs. */
int vcpu__setup_kick(void) __attribute__((warn_unused_result));

/* Guest RIP for messages, 0 when KVM_GET_REGS fails. vCPU thread only. */
uint64_t vcpu__rip(struct vcpu *vcpu);

#endif
