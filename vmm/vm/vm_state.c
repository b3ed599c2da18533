/*
 * The VM's state machine: running, paused, paused for memory, stopping;
 * vCPUs parking and halting; events to the front end; where each vCPU
 * was when the VM stopped.
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
#include "vmm/kvm/kvm_state.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/sys/seccomp.h"
#include "vmm/vm/vm.h"

static void vm_kick_all(struct vm *vm)
{
	unsigned i;

	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].run)
			vcpu__kick(&vm->vcpus[i]);
}

/*
 * Publish the event @name on the control socket's streams, @fields taken
 * over. Caller holds vm->lock, so that events go out in the order of the
 * changes they report.
 */
static void vm_event_locked(struct vm *vm, const char *name, json_t *fields)
{
	if (vm->frontend)
		vm->frontend->publish(vm->frontend_ctx, name, fields);
	else
		json_decref(fields);
}

void vm__set_frontend(struct vm *vm, const struct vm_frontend_ops *ops, void *ctx)
{
	pthread_mutex_lock(&vm->lock);
	vm->frontend = ops;
	vm->frontend_ctx = ctx;
	pthread_mutex_unlock(&vm->lock);
}

/* Under the lock: an event is published under it (vm_event_locked()). */
void vm__close_frontend(struct vm *vm)
{
	const struct vm_frontend_ops *ops;
	void *ctx;

	pthread_mutex_lock(&vm->lock);
	ops = vm->frontend;
	ctx = vm->frontend_ctx;
	vm->frontend = NULL;
	vm->frontend_ctx = NULL;
	pthread_mutex_unlock(&vm->lock);
	if (ops)
		ops->close(ctx);
}

void vm__event(struct vm *vm, const char *name, json_t *fields)
{
	pthread_mutex_lock(&vm->lock);
	vm_event_locked(vm, name, fields);
	pthread_mutex_unlock(&vm->lock);
}

/* Note where every vCPU and the fault handlers are (vm__print_where()). Caller holds vm->lock. */
static void vm_take_where_locked(struct vm *vm)
{
	uint64_t now = mmu__now_ns();
	unsigned i;

	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu__where(&vm->vcpus[i], now, &vm->vcpus[i].at_stop);
	mmu__waiting(&vm->mmu, &vm->where_queued, &vm->where_in_service);
	__atomic_store_n(&vm->where_taken, true, __ATOMIC_RELEASE);
}

static __attribute__((format(printf, 4, 0))) void vm__vstop(struct vm *vm, int status, bool where,
							    const char *fmt, va_list ap)
{
	char reason[VM_STOP_MSG_LEN];
	uint64_t one = 1;

	pthread_mutex_lock(&vm->lock);
	if (vm->stopping) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	if (where && vm->vcpus)
		vm_take_where_locked(vm); /* before the kick below moves them */
	vm->stopping = true;
	vm->status = status;
	if (fmt)
		vsnprintf(vm->stop_msg, sizeof(vm->stop_msg), fmt, ap);
	if (vm->stop_msg[0])
		snprintf(reason, sizeof(reason), "%s", vm->stop_msg);
	else
		snprintf(reason, sizeof(reason), "the guest exited with status %d", status);
	vm_event_locked(vm, "stopping",
			json_pack("{s:s,s:i,s:s}", "state", "stopping", "status", status, "reason",
				  reason));
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->lock);
	vm_kick_all(vm);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* the eventfd counter cannot overflow from one write */
	}
}

void vm__stop(struct vm *vm, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vm__vstop(vm, status, false, fmt, ap);
	va_end(ap);
}

void vm__stop_from_outside(struct vm *vm, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vm__vstop(vm, status, true, fmt, ap);
	va_end(ap);
}

void vm__print_where(struct vm *vm)
{
	unsigned i;

	if (!vm->where_taken)
		return;
	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct vcpu_where *w = &vm->vcpus[i].at_stop;
		char exits[128];
		int n;

		if (w->exits)
			n = snprintf(exits, sizeof(exits), "%llu exit%s; the last: %s",
				     (unsigned long long)w->exits, w->exits == 1 ? "" : "s",
				     vcpu__exit_name(w->last_exit));
		else
			n = snprintf(exits, sizeof(exits), "no exit yet");
		if (vm->vcpus[i].stop_rip && n > 0 && (size_t)n < sizeof(exits))
			snprintf(exits + n, sizeof(exits) - (size_t)n, "; stopped at RIP 0x%llx",
				 (unsigned long long)vm->vcpus[i].stop_rip);
		if (w->in_run)
			pr_err("where the VM was: vCPU %u inside KVM_RUN for the last %.1f s (%s)",
			       i, (double)w->for_ns / 1e9, exits);
		else
			pr_err("where the VM was: vCPU %u in faultline, out of KVM_RUN (%s)", i,
			       exits);
	}
	if (vm->where_queued || vm->where_in_service)
		pr_err("where the VM was: guest faults waiting for the fault handlers: %s queued, "
		       "%u handler%s at work",
		       vm->where_queued ? "some" : "none", vm->where_in_service,
		       vm->where_in_service == 1 ? "" : "s");
	else
		pr_err("where the VM was: no guest fault waiting for the fault handlers");
}

const char *vm__pause_name(enum vm_pause pause)
{
	switch (pause) {
	case VM_RUNNING: return "running";
	case VM_PAUSED: return "paused";
	case VM_PAUSED_OOM: return "paused-oom";
	}
	return "?";
}

enum vm_pause vm__pause(struct vm *vm)
{
	enum vm_pause was;

	pthread_mutex_lock(&vm->lock);
	was = vm->pause;
	if (was == VM_RUNNING && !vm->stopping) {
		vm->pause = VM_PAUSED;
		vm->pauses++;
		vm_event_locked(vm, "paused", json_pack("{s:s}", "state", "paused"));
		pthread_cond_broadcast(&vm->state_cond);
	}
	pthread_mutex_unlock(&vm->lock);
	if (was == VM_RUNNING)
		vm_kick_all(vm);
	return was;
}

static void vm_clock_failed_locked(struct vm *vm, const char *ioctl, int err)
{
	if (!vm->clock_warned)
		pr_err("warning: %s failed: %s; the guest clock ran on while the VM was paused",
		       ioctl, strerror(-err));
	vm->clock_warned = true;
}

enum vm_pause vm__resume(struct vm *vm)
{
	enum vm_pause was;

	pthread_mutex_lock(&vm->lock);
	was = vm->pause;
	if (vm->clock_stopped && !vm->stopping) {
		/* Before any vCPU runs: the guest's time goes on from where it stopped. */
		int err = kvm__set_clock(&vm->kvm, vm->clock_ns);

		if (err)
			vm_clock_failed_locked(vm, "KVM_SET_CLOCK", err);
	}
	vm->clock_stopped = false;
	vm->pause = VM_RUNNING;
	vm->pause_msg[0] = '\0';
	vm->oom_deadline_ns = 0;
	if (was != VM_RUNNING && !vm->stopping)
		vm_event_locked(
			vm, "resumed",
			json_pack("{s:s,s:s}", "state", "running", "was", vm__pause_name(was)));
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->lock);
	return was;
}

/*
 * Wait for a change of state until @deadline (mmu__now_ns(): state_cond
 * runs on CLOCK_MONOTONIC). Returns ETIMEDOUT past it. Caller holds vm->lock.
 */
static int vm_wait_until_locked(struct vm *vm, uint64_t deadline)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000ULL),
			      .tv_nsec = (long)(deadline % 1000000000ULL)};

	return pthread_cond_timedwait(&vm->state_cond, &vm->lock, &ts);
}

unsigned vm__wait_parked(struct vm *vm, unsigned ms)
{
	uint64_t deadline = mmu__now_ns() + (uint64_t)ms * 1000000ULL;
	unsigned parked;

	pthread_mutex_lock(&vm->lock);
	while (vm->pause != VM_RUNNING && !vm->stopping &&
	       vm->nr_parked + vm->nr_halted < vm->nr_vcpus)
		if (vm_wait_until_locked(vm, deadline) == ETIMEDOUT)
			break;
	parked = vm->nr_parked;
	pthread_mutex_unlock(&vm->lock);
	return parked;
}

/*
 * Wait while the VM is paused. An out-of-memory pause with a timeout
 * (--on-oom pause,timeout=SECS) that nobody ends in time stops the VM as
 * --on-oom kill would; whichever waiter sees the deadline first does it.
 * Caller holds vm->lock.
 */
static void vm_wait_running_locked(struct vm *vm)
{
	char oom[VM_STOP_MSG_LEN];
	uint64_t deadline;

	while (vm->pause != VM_RUNNING && !vm->stopping) {
		deadline = vm->pause == VM_PAUSED_OOM ? vm->oom_deadline_ns : 0;
		if (!deadline) {
			pthread_cond_wait(&vm->state_cond, &vm->lock);
			continue;
		}
		if (vm_wait_until_locked(vm, deadline) != ETIMEDOUT || vm->pause != VM_PAUSED_OOM ||
		    vm->stopping || vm->oom_deadline_ns != deadline)
			continue;
		snprintf(oom, sizeof(oom), "%s", vm->pause_msg);
		pthread_mutex_unlock(&vm->lock);
		vm__stop(vm, FL_EXIT_OOM,
			 "%s; nobody resumed the VM within %u s (--on-oom pause,timeout=%u)", oom,
			 vm->oom_pause_timeout_s, vm->oom_pause_timeout_s);
		pthread_mutex_lock(&vm->lock);
	}
}

/*
 * A vCPU thread parked: once every vCPU is out of the guest, stop the
 * guest's clock where it is, as the guest last saw it run, so that a pause
 * does not pass for the guest (no watchdog wakes up to a CPU stuck for the
 * length of the pause). Caller holds vm->lock.
 */
static void vm_parked_locked(struct vm *vm)
{
	int err;

	vm->nr_parked++;
	pthread_cond_broadcast(&vm->state_cond);
	if (vm->clock_stopped || vm->pause == VM_RUNNING || vm->stopping ||
	    vm->nr_parked + vm->nr_halted < vm->nr_vcpus)
		return;
	err = kvm__get_clock(&vm->kvm, &vm->clock_ns);
	if (err)
		vm_clock_failed_locked(vm, "KVM_GET_CLOCK", err);
	else
		vm->clock_stopped = true;
}

/* Wait, counted as parked, while the VM is paused. Caller holds vm->lock. */
static void vm_park_locked(struct vm *vm)
{
	vm_parked_locked(vm);
	vm_wait_running_locked(vm);
	vm->nr_parked--;
}

bool vm__vcpu_may_run(struct vm *vm, struct vcpu *vcpu)
{
	bool run;

	pthread_mutex_lock(&vm->lock);
	if (vm->pause != VM_RUNNING && !vm->stopping) {
		/* Its last exit completes first: a snapshot reads consistent registers. */
		pthread_mutex_unlock(&vm->lock);
		vcpu__settle(vcpu);
		pthread_mutex_lock(&vm->lock);
	}
	if (vm->pause != VM_RUNNING && !vm->stopping)
		vm_park_locked(vm);
	run = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return run;
}

bool vm__device_may_run(void *arg)
{
	struct vm *vm = arg;
	bool run;

	pthread_mutex_lock(&vm->lock);
	vm_wait_running_locked(vm);
	run = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return run;
}

bool vm__device_running(void *arg)
{
	struct vm *vm = arg;
	bool run;

	pthread_mutex_lock(&vm->lock);
	run = vm->pause == VM_RUNNING && !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return run;
}

void vm__oom_pause(struct vm *vm, struct fault_ctx *ctx, const char *oom)
{
	bool first, on_vcpu;

	/*
	 * A vCPU waiting here is parked: the faults a vCPU reports itself, and
	 * a device's access made on the vCPU that notified it. It counts as
	 * parked in the same hold of the lock that shows the pause, so that
	 * nobody sees "paused-oom" with this vCPU still counted as running.
	 */
	on_vcpu = ctx->source != FAULT_SRC_UFFD &&
		  (ctx->source != FAULT_SRC_MONITOR || vm__vcpu_of_tid(vm, (int)gettid()) >= 0);
	pthread_mutex_lock(&vm->lock);
	if (vm->stopping) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	first = vm->pause != VM_PAUSED_OOM;
	if (first) {
		if (vm->pause == VM_RUNNING)
			vm->pauses++;
		vm->oom_pauses++;
		vm->pause = VM_PAUSED_OOM;
		vm->oom_deadline_ns =
			vm->oom_pause_timeout_s
				? mmu__now_ns() + vm->oom_pause_timeout_s * 1000000000ULL
				: 0;
		snprintf(vm->pause_msg, sizeof(vm->pause_msg), "%s", oom);
		pr_err("%s; the VM is paused (--on-oom pause): raise the budget with 'faultline "
		       "ctl %s mem-limit SIZE', then 'faultline ctl %s resume'",
		       oom, vm->api_path, vm->api_path);
		vm_event_locked(vm, "paused-oom",
				json_pack("{s:s,s:s,s:i}", "state", "paused-oom", "oom", oom,
					  "timeout_s", (int)vm->oom_pause_timeout_s));
	}
	if (on_vcpu)
		vm_parked_locked(vm);
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->lock);
	if (first)
		vm_kick_all(vm);
	pthread_mutex_lock(&vm->lock);
	vm_wait_running_locked(vm);
	if (on_vcpu)
		vm->nr_parked--;
	ctx->refault = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
}

void vm__vcpu_halted(struct vm *vm, unsigned vcpu_id)
{
	bool all;

	pthread_mutex_lock(&vm->lock);
	vm->vcpus[vcpu_id].halted = true;
	all = ++vm->nr_halted == vm->nr_vcpus;
	pthread_mutex_unlock(&vm->lock);
	if (all)
		vm__stop(vm, FL_EXIT_GUEST,
			 "all vCPUs halted and the guest did not exit (last: vCPU %u)", vcpu_id);
	pthread_mutex_lock(&vm->lock);
	while (!vm->stopping)
		pthread_cond_wait(&vm->state_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}
