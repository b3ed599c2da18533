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

static void vm__guest_exit(void *ctx, uint32_t status)
{
	struct vm *vm = ctx;

	if (status > FL_GUEST_STATUS_MAX)
		vm__stop(vm, FL_EXIT_GUEST,
			 "guest exit status out of range: %u, the guest may use 0-%d (port: 0x%x)",
			 status, FL_GUEST_STATUS_MAX, EXIT_DEV_PORT);
	else
		vm__stop(vm, (int)status, NULL);
}

static int vm__init_devices(struct vm *vm)
{
	int ret;

	ret = serial__init(&vm->serial, STDOUT_FILENO);
	if (ret)
		return ret;
	vm->exit_dev.on_exit = vm__guest_exit;
	vm->exit_dev.ctx = vm;
	ret = bus__register(&vm->pio_bus, SERIAL_COM1_PORT, SERIAL_NR_PORTS, "serial", &serial_ops,
			    &vm->serial);
	return ret
		       ?: bus__register(&vm->pio_bus, EXIT_DEV_PORT, EXIT_DEV_NR_PORTS, "exit",
					&exit_dev_ops, &vm->exit_dev);
}

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
static void vm__oom_mce(struct vm *vm, struct fault_ctx *ctx, const char *oom)
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
static void vm__fault_failed(void *owner, struct fault_ctx *ctx, fault_t result, const char *why)
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
			vm__oom_mce(vm, ctx, oom);
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
static void vm__check_mce(struct vm *vm)
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

static int vm__vcpu_of_tid(void *owner, int tid)
{
	struct vm *vm = owner;
	unsigned i;

	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		if (__atomic_load_n(&vm->vcpus[i].tid, __ATOMIC_ACQUIRE) == tid)
			return (int)i;
	return -1;
}

/* A file of /proc for the statistics (inject site open.proc). */
static void vm__open_proc(int *fd, int *err, const char *path)
{
	*err = inject__check("open.proc");
	if (!*err) {
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		*err = *fd < 0 ? errno : 0;
	}
}

static int vm__init_ram(struct vm *vm, const struct run_config *cfg)
{
	const struct mmu_config mc = {
		.ram_size = cfg->mem,
		.mem_limit = cfg->mem_limit,
		.backing_file = cfg->backing_file,
		.fault_around = cfg->fault_around,
		.max_retries = cfg->fault_retries,
		.retry_ms = cfg->fault_timeout_ms,
		.nr_handlers = cfg->fault_threads,
		.spin_us = cfg->fault_spin_us,
		.fault_ahead = cfg->fault_ahead,
		.dedup = cfg->dedup != DEDUP_OFF,
		.huge = cfg->hugepages,
		.handler = cfg->fault_handler,
	};
	const struct mmu_ops ops = {
		.fault_failed = vm__fault_failed,
		.vcpu_of_tid = vm__vcpu_of_tid,
		.owner = vm,
	};
	unsigned i;
	int ret;

	ret = mmu__init(&vm->mmu, &mc, &ops);
	if (ret)
		return ret;
	if (cfg->dedup != DEDUP_OFF) {
		vm->dedup = calloc(1, sizeof(*vm->dedup));
		if (!vm->dedup)
			return -ENOMEM;
		ret = dedup__init(vm->dedup, &vm->mmu, cfg->dedup, &cfg->dedup_knobs);
		if (ret)
			return ret;
	}
	for (i = 0; i < vm->mmu.ram.nr_banks; i++) {
		const struct guest_ram_bank *b = &vm->mmu.ram.banks[i];

		ret = kvm__set_memslot(&vm->kvm, i, b->gpa, b->size,
				       vm->mmu.ram.host + b->host_offset);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Block the stop signals and the kick signal in this thread; threads
 * created later inherit the mask (vCPU threads unblock the kick). Done
 * first in vm__init(): a SIGTERM while the VM is set up stays pending until
 * vm__run() reads it, instead of killing faultline without its stop
 * message, its stats or its cleanup.
 */
static void vm__block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

int vm__init(struct vm *vm, const struct run_config *cfg)
{
	pthread_condattr_t attr;
	sigset_t blocked;
	int ret;

	vm__block_signals(&blocked);
	memset(vm, 0, sizeof(*vm));
	vm->stop_fd = vm->status_fd = vm->smaps_fd = -1;
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	vm->kvm_stats.vm_fd = -1;
	vm->mmu.memfd = vm->mmu.uffd = vm->mmu.backing_fd = vm->mmu.stop_fd = -1;
	vm->nr_vcpus = cfg->vcpus;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->state_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (bus__init(&vm->pio_bus, "pio") || bus__init(&vm->mmio_bus, "mmio"))
		return FL_EXIT_INTERNAL;
	vm->stop_fd = inject__fail("eventfd.vm") ?: eventfd(0, EFD_CLOEXEC);
	if (vm->stop_fd < 0) {
		pr_err("cannot create the VM: eventfd failed: %s", strerror(errno));
		return FL_EXIT_INTERNAL;
	}
	/*
	 * Opened now: the seccomp filter allows no open() once the VM is
	 * loaded. Anonymous RAM (the kernel baseline) is found in smaps.
	 */
	vm__open_proc(&vm->status_fd, &vm->status_err, "/proc/self/status");
	if (cfg->fault_handler == MMU_HANDLER_KERNEL)
		vm__open_proc(&vm->smaps_fd, &vm->smaps_err, "/proc/self/smaps");
	ret = kvm__init(&vm->kvm, cfg->kvm_device);
	if (ret)
		return ret == -ENODEV ? FL_EXIT_NOKVM : FL_EXIT_INTERNAL;
	if (cfg->vcpus > vm->kvm.max_vcpus) {
		pr_err("invalid option value: this KVM allows at most %u vCPUs (--vcpus: %u)",
		       vm->kvm.max_vcpus, cfg->vcpus);
		return FL_EXIT_USAGE;
	}
	vm->on_oom = cfg->on_oom;
	vm->seccomp = cfg->seccomp;
	vm->oom_pause_timeout_s = cfg->oom_pause_timeout_s;
	vm->backing_file = cfg->backing_file;
	vm->boot_linux = cfg->boot_linux;
	vm->boot_timer.start_ns = cfg->start_ns;
	vm->boot_timeout_s = cfg->boot_timeout_s;
	vm->start_ns = cfg->start_ns;
	ret = vm__init_ram(vm, cfg);
	if (ret)
		return cfg->backing_file && vm->mmu.backing_fd < 0 ? FL_EXIT_NOINPUT
								   : FL_EXIT_INTERNAL;
	ret = vm__init_devices(vm);
	if (ret) {
		pr_err("cannot register devices: %s", strerror(-ret));
		return FL_EXIT_INTERNAL;
	}
	if (vm->boot_linux) {
		ret = vm__init_linux(vm, cfg);
		if (ret)
			return ret;
	}
	vm->api_path = cfg->api;
	return vm__init_bars(vm, cfg);
}

static int vm__write_fdt(struct vm *vm, const struct run_config *cfg)
{
	static const struct fdt_pio_device devices[] = {
		{"serial", "ns16550a", SERIAL_COM1_PORT, SERIAL_NR_PORTS},
		{"exit", "faultline,exit", EXIT_DEV_PORT, EXIT_DEV_NR_PORTS},
	};
	struct fdt_mmio_device bars[3];
	struct fdt_params p = {
		.ram = &vm->mmu.ram,
		.nr_vcpus = vm->nr_vcpus,
		.cmdline = cfg->cmdline,
		.guest_args = cfg->guest_args,
		.nr_guest_args = cfg->nr_guest_args,
		.devices = devices,
		.nr_devices = sizeof(devices) / sizeof(devices[0]),
		.mmio_devices = bars,
		.nr_mmio_devices = vm__fdt_bar_devices(vm, bars),
	};
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	int ret = 0;
	void *buf = ga.ptr(ga.ctx, BOOT_FDT_GPA, BOOT_FDT_MAX, &ret);

	if (!buf)
		return ret;
	ret = fdt__build(buf, BOOT_FDT_MAX, &p);
	if (ret == -ENOSPC)
		pr_err("the device tree does not fit in %llu KiB: shorten --cmdline or the guest "
		       "arguments",
		       BOOT_FDT_MAX >> 10);
	else if (ret)
		pr_err("cannot build the device tree: %s", strerror(-ret));
	return ret;
}

/* Report a failed write of boot state; -ENOMEM is the budget's doing. */
int vm__load_error(struct vm *vm, int err, const char *what)
{
	struct mmu_pages pages;

	if (err == -ENOMEM) {
		mmu__pages(&vm->mmu, &pages);
		pr_err("guest out of memory: %s does not fit in the budget (budget %llu pages, "
		       "resident %llu pages)",
		       what, (unsigned long long)pages.budget, (unsigned long long)pages.resident);
		return FL_EXIT_OOM;
	}
	pr_err("cannot write %s into guest RAM: %s", what, strerror(-err));
	return err == -ENOSPC ? FL_EXIT_USAGE : FL_EXIT_INTERNAL;
}

int vm__load(struct vm *vm, const struct run_config *cfg, const void *image,
	     const struct elf_image *img)
{
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	int ret;

	ret = x86_boot__setup_memory(&vm->mmu.ram, &ga);
	if (ret)
		return vm__load_error(vm, ret, "the boot page tables");
	ret = elf__load(image, img, &ga);
	if (ret)
		return vm__load_error(vm, ret, "the kernel image");
	ret = vm__write_fdt(vm, cfg);
	if (ret)
		return ret == -ENOSPC ? FL_EXIT_USAGE : vm__load_error(vm, ret, "the device tree");
	if (cfg->prefault) {
		ret = mmu__prefault(&vm->mmu);
		if (ret)
			return vm__load_error(vm, ret, "all of guest RAM (--prefault)");
	}
	return vm__create_vcpus(vm, img->entry);
}

/*
 * KVM's own counters, for --stats and the control socket's stats: opened
 * now, as the seccomp filter allows no new file once the VM is loaded. A
 * KVM without them (before Linux 5.14) runs the same; the statistics say
 * why they have none.
 */
static void vm__open_kvm_stats(struct vm *vm)
{
	int *fds = malloc(vm->nr_vcpus * sizeof(*fds));
	unsigned i;

	if (!fds) {
		snprintf(vm->kvm_stats.why, sizeof(vm->kvm_stats.why),
			 "KVM's statistics cannot be read: %s", strerror(ENOMEM));
		return;
	}
	for (i = 0; i < vm->nr_vcpus; i++)
		fds[i] = vm->vcpus[i].fd;
	kvm_stats__open(&vm->kvm_stats, vm->kvm.vm_fd, fds, vm->nr_vcpus);
	free(fds);
}

int vm__create_vcpus(struct vm *vm, uint64_t entry)
{
	const struct vcpu_boot boot = {
		.entry = entry, .nr_vcpus = vm->nr_vcpus, .is_linux = vm->boot_linux};
	unsigned i;

	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return FL_EXIT_INTERNAL;
	for (i = 0; i < vm->nr_vcpus; i++) {
		vm->vcpus[i].fd = -1;
		if (vcpu__init(&vm->vcpus[i], &vm->kvm, i, &boot))
			return FL_EXIT_INTERNAL;
		vm->vcpus[i].vm = vm;
	}
	vm->tsc_khz = vcpu__tsc_khz(&vm->vcpus[0]);
	vm__check_mce(vm);
	vm__open_kvm_stats(vm);
	return 0;
}

static void vm__kick_all(struct vm *vm)
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
static void vm__event_locked(struct vm *vm, const char *name, json_t *fields)
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

/* Under the lock: an event is published under it (vm__event_locked()). */
static void vm__close_frontend(struct vm *vm)
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
	vm__event_locked(vm, name, fields);
	pthread_mutex_unlock(&vm->lock);
}

/* Note where every vCPU and the fault handlers are (vm__print_where()). Caller holds vm->lock. */
static void vm__take_where_locked(struct vm *vm)
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
		vm__take_where_locked(vm); /* before the kick below moves them */
	vm->stopping = true;
	vm->status = status;
	if (fmt)
		vsnprintf(vm->stop_msg, sizeof(vm->stop_msg), fmt, ap);
	if (vm->stop_msg[0])
		snprintf(reason, sizeof(reason), "%s", vm->stop_msg);
	else
		snprintf(reason, sizeof(reason), "the guest exited with status %d", status);
	vm__event_locked(vm, "stopping",
			 json_pack("{s:s,s:i,s:s}", "state", "stopping", "status", status, "reason",
				   reason));
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->lock);
	vm__kick_all(vm);
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
		vm__event_locked(vm, "paused", json_pack("{s:s}", "state", "paused"));
		pthread_cond_broadcast(&vm->state_cond);
	}
	pthread_mutex_unlock(&vm->lock);
	if (was == VM_RUNNING)
		vm__kick_all(vm);
	return was;
}

static void vm__clock_failed_locked(struct vm *vm, const char *ioctl, int err)
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
			vm__clock_failed_locked(vm, "KVM_SET_CLOCK", err);
	}
	vm->clock_stopped = false;
	vm->pause = VM_RUNNING;
	vm->pause_msg[0] = '\0';
	vm->oom_deadline_ns = 0;
	if (was != VM_RUNNING && !vm->stopping)
		vm__event_locked(
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
static int vm__wait_until_locked(struct vm *vm, uint64_t deadline)
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
		if (vm__wait_until_locked(vm, deadline) == ETIMEDOUT)
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
static void vm__wait_running_locked(struct vm *vm)
{
	char oom[VM_STOP_MSG_LEN];
	uint64_t deadline;

	while (vm->pause != VM_RUNNING && !vm->stopping) {
		deadline = vm->pause == VM_PAUSED_OOM ? vm->oom_deadline_ns : 0;
		if (!deadline) {
			pthread_cond_wait(&vm->state_cond, &vm->lock);
			continue;
		}
		if (vm__wait_until_locked(vm, deadline) != ETIMEDOUT ||
		    vm->pause != VM_PAUSED_OOM || vm->stopping || vm->oom_deadline_ns != deadline)
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
static void vm__parked_locked(struct vm *vm)
{
	int err;

	vm->nr_parked++;
	pthread_cond_broadcast(&vm->state_cond);
	if (vm->clock_stopped || vm->pause == VM_RUNNING || vm->stopping ||
	    vm->nr_parked + vm->nr_halted < vm->nr_vcpus)
		return;
	err = kvm__get_clock(&vm->kvm, &vm->clock_ns);
	if (err)
		vm__clock_failed_locked(vm, "KVM_GET_CLOCK", err);
	else
		vm->clock_stopped = true;
}

/* Wait, counted as parked, while the VM is paused. Caller holds vm->lock. */
static void vm__park_locked(struct vm *vm)
{
	vm__parked_locked(vm);
	vm__wait_running_locked(vm);
	vm->nr_parked--;
}

bool vm__vcpu_may_run(struct vm *vm)
{
	bool run;

	pthread_mutex_lock(&vm->lock);
	if (vm->pause != VM_RUNNING && !vm->stopping)
		vm__park_locked(vm);
	run = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return run;
}

bool vm__device_may_run(void *arg)
{
	struct vm *vm = arg;
	bool run;

	pthread_mutex_lock(&vm->lock);
	vm__wait_running_locked(vm);
	run = !vm->stopping;
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
		vm__event_locked(vm, "paused-oom",
				 json_pack("{s:s,s:s,s:i}", "state", "paused-oom", "oom", oom,
					   "timeout_s", (int)vm->oom_pause_timeout_s));
	}
	if (on_vcpu)
		vm__parked_locked(vm);
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->lock);
	if (first)
		vm__kick_all(vm);
	pthread_mutex_lock(&vm->lock);
	vm__wait_running_locked(vm);
	if (on_vcpu)
		vm->nr_parked--;
	ctx->refault = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
}

void vm__vcpu_halted(struct vm *vm, unsigned vcpu_id)
{
	bool all;

	pthread_mutex_lock(&vm->lock);
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

/* A signalfd for the stop signals, which vm__block_signals() blocked. */
static int vm__signalfd(void)
{
	sigset_t set;
	int fd;

	vm__block_signals(&set);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	fd = inject__fail("signalfd") ?: signalfd(-1, &set, SFD_CLOEXEC);
	if (fd < 0)
		pr_err("signalfd failed: %s", strerror(errno));
	return fd;
}

/*
 * Milliseconds until --boot-timeout runs out, for poll(): -1 without one or
 * once the guest's init has written the boot timer, 0 when it has run out.
 * The deadline counts from faultline's start, the boot timer's zero.
 */
static int vm__boot_wait_ms(struct vm *vm)
{
	uint64_t deadline, now;

	if (!vm->boot_timeout_s || __atomic_load_n(&vm->boot_timer.boot_ns, __ATOMIC_RELAXED))
		return -1;
	deadline = vm->boot_timer.start_ns + vm->boot_timeout_s * 1000000000ULL;
	now = mmu__now_ns();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

static void vm__wait(struct vm *vm, int sig_fd)
{
	struct pollfd fds[2] = {
		{.fd = vm->stop_fd, .events = POLLIN},
		{.fd = sig_fd, .events = POLLIN},
	};
	struct signalfd_siginfo si;
	int ms, n;

	for (;;) {
		ms = vm__boot_wait_ms(vm);
		if (ms == 0) {
			vm__stop_from_outside(
				vm, FL_EXIT_BOOT,
				"the guest's init did not start within %u s (no write "
				"to the boot timer, port 0x%x: --boot-timeout)",
				vm->boot_timeout_s, BOOT_TIMER_PORT);
			return;
		}
		n = poll(fds, 2, ms);
		if (n == 0)
			continue;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vm__stop(vm, FL_EXIT_INTERNAL, "poll failed: %s", strerror(errno));
			return;
		}
		if (fds[0].revents)
			return;
		if (fds[1].revents && read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
			vm__stop_from_outside(vm, 128 + (int)si.ssi_signo, "stopped by signal %s",
					      strsignal((int)si.ssi_signo));
			return;
		}
	}
}

int vm__run(struct vm *vm)
{
	unsigned i;
	int sig_fd;

	sig_fd = vm__signalfd();
	if (sig_fd < 0 || vcpu__setup_signals()) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot set up signal handling");
		goto out;
	}
	/* Before any thread that serves the guest runs; the channel's, running, gets it too. */
	if (seccomp__install(vm->seccomp)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot install the seccomp filter (--seccomp)");
		goto out;
	}
	if (mmu__start(&vm->mmu)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot start the fault handler threads");
		goto out;
	}
	vm->serial.gate = vm__device_may_run;
	vm->serial.gate_ctx = vm;
	if (vm->boot_linux && serial__start_input(&vm->serial, STDIN_FILENO, vm->stop_fd)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot start the serial input thread");
		goto out;
	}
	if (vm->dedup && dedup__start(vm->dedup)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot start the dedup threads");
		goto out;
	}
	if (vm->frontend && vm->frontend->start(vm->frontend_ctx)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot start the control socket");
		goto out;
	}
	__atomic_store_n(&vm->run_ns, mmu__now_ns(), __ATOMIC_RELEASE);
	for (i = 0; i < vm->nr_vcpus; i++) {
		int ret = vcpu__start(&vm->vcpus[i]);

		if (ret) {
			vm__stop(vm, FL_EXIT_INTERNAL, "cannot start the thread of vCPU %u: %s", i,
				 strerror(-ret));
			break;
		}
	}
	vm__wait(vm, sig_fd);
out:
	__atomic_store_n(&vm->stopped_ns, mmu__now_ns(), __ATOMIC_RELEASE);
	vm__close_frontend(vm); /* no request to a stopping VM */
	for (i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
	if (vm->boot_linux)
		vm__stop_linux(vm); /* guest memory is still served */
	if (vm->dedup)
		dedup__stop(vm->dedup); /* before the MMU's handlers: a merge may wait on them */
	mmu__stop(&vm->mmu);
	serial__flush(&vm->serial); /* also ends the input thread */
	if (sig_fd >= 0)
		close(sig_fd);
	__atomic_store_n(&vm->ended_ns, mmu__now_ns(), __ATOMIC_RELEASE);
	return vm->status;
}

void vm__exit(struct vm *vm)
{
	unsigned i;

	vm__close_frontend(vm);
	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		vcpu__exit(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	kvm_stats__close(&vm->kvm_stats);
	vm__exit_bars(vm);
	if (vm->boot_linux)
		vm__exit_linux(vm);
	kvm__exit(&vm->kvm);
	if (vm->dedup)
		dedup__exit(vm->dedup);
	free(vm->dedup);
	vm->dedup = NULL;
	mmu__exit(&vm->mmu);
	serial__exit(&vm->serial);
	bus__exit(&vm->pio_bus);
	bus__exit(&vm->mmio_bus);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->status_fd >= 0)
		close(vm->status_fd);
	if (vm->smaps_fd >= 0)
		close(vm->smaps_fd);
	pthread_cond_destroy(&vm->state_cond);
	pthread_mutex_destroy(&vm->lock);
}
