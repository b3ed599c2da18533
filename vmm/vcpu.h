/*
 * vCPUs: one thread each, looping on KVM_RUN and dispatching every exit
 * reason (vcpu_exit.c). A vCPU is kicked out of KVM_RUN by setting
 * immediate_exit and sending VCPU_KICK_SIGNAL to its thread.
 */
#ifndef FAULTLINE_VCPU_H
#define FAULTLINE_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "mmu/fault.h"

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
	struct vm *vm;
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
};

/* The bank faultline's machine checks are reported in. */
#define VCPU_MCE_BANK  1
#define VCPU_MCE_BANKS 10

/*
 * KVM_CREATE_VCPU, map kvm_run, set CPUID and the long-mode entry state.
 * Returns 0 or -errno (reported, naming the ioctl and vCPU).
 */
int vcpu__init(struct vcpu *vcpu, struct vm *vm, unsigned id, uint64_t entry)
	__attribute__((warn_unused_result));
void vcpu__exit(struct vcpu *vcpu);

/* Start the vCPU thread. Returns 0 or -errno (not reported). */
int vcpu__start(struct vcpu *vcpu) __attribute__((warn_unused_result));

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

/* Install the kick and SIGBUS handlers; once, before any vCPU starts. */
int vcpu__setup_signals(void) __attribute__((warn_unused_result));

/* Guest RIP for messages, 0 when KVM_GET_REGS fails. vCPU thread only. */
uint64_t vcpu__rip(struct vcpu *vcpu);

/*
 * Handle the exit in vcpu->run. Returns true to enter the guest again,
 * false when the vCPU should stop (the VM is stopping). vcpu_exit.c.
 */
bool vcpu__handle_exit(struct vcpu *vcpu);

/*
 * KVM_RUN failed with EFAULT: when KVM described the access
 * (KVM_EXIT_MEMORY_FAULT) and it is guest RAM, serve it through the MMU.
 * Returns true to enter the guest again. vcpu_exit.c.
 */
bool vcpu__handle_memory_fault(struct vcpu *vcpu);

/* What became of a fault a vCPU thread served (vcpu__serve_fault). */
enum vcpu_fault {
	VCPU_FAULT_DONE,   /* the page is there */
	VCPU_FAULT_RESUME, /* no page, but the guest was told (machine check): go on */
	VCPU_FAULT_STOP,   /* the VM is stopping */
};

/* Serve a fault on RAM at @gpa from this vCPU's thread. vcpu_exit.c. */
enum vcpu_fault vcpu__serve_fault(struct vcpu *vcpu, uint64_t gpa, bool write,
				  enum fault_source source);

/* Name of a KVM exit reason ("KVM_EXIT_IO"), or "unknown". */
const char *vcpu__exit_name(uint32_t reason);

#endif
