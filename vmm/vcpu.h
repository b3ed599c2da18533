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

#define VCPU_KICK_SIGNAL SIGUSR1

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	int tid; /* the thread's id once it runs, atomic; 0 before */
};

/*
 * KVM_CREATE_VCPU, map kvm_run, set CPUID and the long-mode entry state.
 * Returns 0 or -errno (reported, naming the ioctl and vCPU).
 */
int vcpu__init(struct vcpu *vcpu, struct vm *vm, unsigned id, uint64_t entry)
	__attribute__((warn_unused_result));
void vcpu__exit(struct vcpu *vcpu);

/* Start the vCPU thread. Returns 0 or -errno (not reported). */
int vcpu__start(struct vcpu *vcpu) __attribute__((warn_unused_result));

/* Make the vCPU leave KVM_RUN soon; any thread. */
void vcpu__kick(struct vcpu *vcpu);

/* Install the kick signal's handler; once, before any vCPU starts. */
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

/* Name of a KVM exit reason ("KVM_EXIT_IO"), or "unknown". */
const char *vcpu__exit_name(uint32_t reason);

#endif
