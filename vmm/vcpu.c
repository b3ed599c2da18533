#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mmu/inject.h"
#include "vmm/log.h"
#include "vmm/status.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86_boot.h"

static int vcpu__ioctl(struct vcpu *vcpu, unsigned long req, void *arg, const char *name)
{
	if (kvm__ioctl(vcpu->fd, req, (unsigned long)arg, name) < 0) {
		int err = errno;

		pr_err("%s failed: %s (vCPU %u)", name, strerror(err), vcpu->id);
		return -err;
	}
	return 0;
}

/* KVM's supported CPUID, with this vCPU's APIC ID in the leaves that carry it. */
static int vcpu__set_cpuid(struct vcpu *vcpu)
{
	const struct kvm_cpuid2 *supported = vcpu->vm->kvm.cpuid;
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *cpuid = malloc(size);
	uint32_t i;
	int ret;

	if (!cpuid)
		return -ENOMEM;
	memcpy(cpuid, supported, size);
	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | vcpu->id << 24;
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = vcpu->id;
	}
	ret = vcpu__ioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
	free(cpuid);
	return ret;
}

static int vcpu__set_entry_state(struct vcpu *vcpu, uint64_t entry)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	ret = vcpu__ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (ret)
		return ret;
	x86_boot__sregs(&sregs);
	ret = vcpu__ioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	if (ret)
		return ret;
	x86_boot__regs(&regs, entry, vcpu->id, vcpu->vm->nr_vcpus);
	return vcpu__ioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

int vcpu__init(struct vcpu *vcpu, struct vm *vm, unsigned id, uint64_t entry)
{
	void *run;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = kvm__ioctl(vm->kvm.vm_fd, KVM_CREATE_VCPU, id, "KVM_CREATE_VCPU");
	if (vcpu->fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VCPU failed: %s (vCPU %u)", strerror(-ret), id);
		return ret;
	}
	run = mmap(NULL, vm->kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		ret = -errno;
		pr_err("mmap of kvm_run failed: %s (vCPU %u)", strerror(-ret), id);
		goto err_close;
	}
	vcpu->run = run;
	ret = vcpu__set_cpuid(vcpu);
	ret = ret ?: vcpu__set_entry_state(vcpu, entry);
	if (ret)
		goto err_unmap;
	return 0;

err_unmap:
	munmap(vcpu->run, vm->kvm.run_size);
	vcpu->run = NULL;
err_close:
	close(vcpu->fd);
	vcpu->fd = -1;
	return ret;
}

void vcpu__exit(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->kvm.run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

uint64_t vcpu__rip(struct vcpu *vcpu)
{
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

static bool vcpu__should_stop(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool stop;

	pthread_mutex_lock(&vm->lock);
	stop = vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return stop;
}

static void *vcpu__thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t kick;

	__atomic_store_n(&vcpu->tid, (int)gettid(), __ATOMIC_RELEASE);
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	while (!vcpu__should_stop(vcpu)) {
		if (kvm__ioctl(vcpu->fd, KVM_RUN, 0, "KVM_RUN") < 0) {
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
	return NULL;
}

int vcpu__start(struct vcpu *vcpu)
{
	int ret = inject__check("pthread_create.vcpu");

	ret = ret ?: pthread_create(&vcpu->thread, NULL, vcpu__thread, vcpu);

	if (ret)
		return -ret;
	vcpu->thread_started = true;
	return 0;
}

void vcpu__kick(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

static void vcpu__kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return -EINTR */
}

int vcpu__setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu__kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0) {
		pr_err("sigaction for the vCPU kick signal failed: %s", strerror(errno));
		return -errno;
	}
	return 0;
}
