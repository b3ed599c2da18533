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

int vm__vcpu_of_tid(void *owner, int tid)
{
	struct vm *vm = owner;
	unsigned i;

	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		if (__atomic_load_n(&vm->vcpus[i].tid, __ATOMIC_ACQUIRE) == tid)
			return (int)i;
	return -1;
}

/* A file of /proc for the statistics (inject site open.proc). */
static void vm_open_proc(int *fd, int *err, const char *path)
{
	*err = inject__check("open.proc");
	if (!*err) {
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		*err = *fd < 0 ? errno : 0;
	}
}

static int vm_init_ram(struct vm *vm, const struct run_config *cfg)
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
		.track_writes = cfg->diff_snapshots,
		.share = cfg->share_memory,
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
static void vm_block_signals(sigset_t *set)
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

	vm_block_signals(&blocked);
	memset(vm, 0, sizeof(*vm));
	vm->stop_fd = vm->status_fd = vm->smaps_fd = -1;
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	vm->kvm_stats.vm_fd = -1;
	vm->mmu.memfd = vm->mmu.uffd = vm->mmu.backing_fd = vm->mmu.stop_fd = -1;
	vm->ws.dir_fd = vm->ws.tmp_fd = vm->ws.done_fd = -1;
	vm->nr_vcpus = cfg->vcpus;
	vm->start_paused = cfg->paused;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->state_cond, &attr);
	pthread_condattr_destroy(&attr);
	ret = bus__init(&vm->pio_bus, "pio");
	ret = ret ?: bus__init(&vm->mmio_bus, "mmio");
	if (ret) {
		pr_err("cannot create the VM: pthread_rwlock_init failed: %s", strerror(-ret));
		return ret;
	}
	vm->stop_fd = inject__fail("eventfd.vm") ?: eventfd(0, EFD_CLOEXEC);
	if (vm->stop_fd < 0) {
		ret = -errno;
		pr_err("cannot create the VM: eventfd failed: %s", strerror(-ret));
		return ret;
	}
	/*
	 * Opened now: the seccomp filter allows no open() once the VM is
	 * loaded. Anonymous RAM (the kernel baseline) is found in smaps.
	 */
	vm_open_proc(&vm->status_fd, &vm->status_err, "/proc/self/status");
	if (cfg->fault_handler == MMU_HANDLER_KERNEL || cfg->share_memory)
		vm_open_proc(&vm->smaps_fd, &vm->smaps_err, "/proc/self/smaps");
	ret = kvm__init(&vm->kvm, cfg->kvm_device);
	if (ret)
		return ret;
	kvm__probe_state(&vm->kvm); /* for a snapshot, while files may still be opened */
	if (cfg->vcpus > vm->kvm.max_vcpus) {
		pr_err("invalid option value: this KVM allows at most %u vCPUs (--vcpus: %u)",
		       vm->kvm.max_vcpus, cfg->vcpus);
		return -ERANGE;
	}
	vm->on_oom = cfg->on_oom;
	vm->seccomp = cfg->seccomp;
	vm->oom_pause_timeout_s = cfg->oom_pause_timeout_s;
	vm->backing_file = cfg->backing_file;
	vm->boot_linux = cfg->boot_linux;
	vm->boot_timeout_s = cfg->boot_timeout_s;
	vm->start_ns = cfg->start_ns;
	ret = vm_init_ram(vm, cfg);
	if (ret)
		return ret;
	vm->api_path = cfg->api;
	vm->board = vm->boot_linux ? &vm_board_linux : &vm_board_test;
	return vm__create_devices(vm, cfg);
}

static int vm_write_fdt(struct vm *vm, const struct run_config *cfg)
{
	struct vm_guest_desc d = {0};
	struct fdt_params p = {
		.ram = &vm->mmu.ram,
		.nr_vcpus = vm->nr_vcpus,
		.cmdline = cfg->cmdline,
		.guest_args = cfg->guest_args,
		.nr_guest_args = cfg->nr_guest_args,
		.devices = d.pio,
		.mmio_devices = d.mmio,
	};
	struct guest_access ga = mmu__guest_access(&vm->mmu);
	int ret = 0;
	void *buf = ga.ptr(ga.ctx, BOOT_FDT_GPA, BOOT_FDT_MAX, &ret);

	if (!buf)
		return ret;
	vm__describe_devices(vm, &d);
	p.nr_devices = d.nr_pio;
	p.nr_mmio_devices = d.nr_mmio;
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
		pr_err("guest out of memory: no room in the budget for %s (budget %llu pages, "
		       "resident %llu pages)",
		       what, (unsigned long long)pages.budget, (unsigned long long)pages.resident);
		return -EDQUOT;
	}
	pr_err("cannot write %s into guest RAM: %s", what, strerror(-err));
	return err == -ENOSPC ? -ERANGE : err;
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
	ret = vm_write_fdt(vm, cfg);
	if (ret)
		return ret == -ENOSPC ? -ERANGE : vm__load_error(vm, ret, "the device tree");
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
static void vm_open_kvm_stats(struct vm *vm)
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
	int ret;

	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->nr_vcpus; i++) {
		vm->vcpus[i].fd = -1;
		ret = vcpu__init(&vm->vcpus[i], &vm->kvm, i, &boot);
		if (ret)
			return ret;
		vm->vcpus[i].vm = vm;
	}
	vm->tsc_khz = vcpu__tsc_khz(&vm->vcpus[0]);
	vm__check_mce(vm);
	vm_open_kvm_stats(vm);
	return 0;
}

/* A signalfd for the stop signals, which vm_block_signals() blocked. */
static int vm_signalfd(void)
{
	sigset_t set;
	int fd;

	vm_block_signals(&set);
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
static int vm_boot_wait_ms(struct vm *vm)
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

static void vm_wait(struct vm *vm, int sig_fd)
{
	struct pollfd fds[3] = {
		{.fd = vm->stop_fd, .events = POLLIN},
		{.fd = sig_fd, .events = POLLIN},
		{.fd = vm->ws.done_fd, .events = POLLIN}, /* -1 without --record-ws */
	};
	struct signalfd_siginfo si;
	uint64_t done;
	int ms, n, ws_ms;

	for (;;) {
		ms = vm_boot_wait_ms(vm);
		if (ms == 0) {
			vm__stop_from_outside(
				vm, FL_EXIT_BOOT,
				"the guest's init did not start within %u s (no write "
				"to the boot timer, port 0x%x: --boot-timeout)",
				vm->boot_timeout_s, BOOT_TIMER_PORT);
			return;
		}
		ws_ms = vm__ws_wait_ms(vm); /* --record-ws=Nms */
		if (ws_ms == 0) {
			vm__ws_stop(vm, VM_WS_STOP_MS);
			continue;
		}
		if (ws_ms > 0 && (ms < 0 || ws_ms < ms))
			ms = ws_ms;
		n = poll(fds, 3, ms);
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
		if (fds[2].revents && read(vm->ws.done_fd, &done, sizeof(done)) == sizeof(done)) {
			vm__ws_save(vm); /* --record-ws stopped: write DIR/ws now */
			fds[2].fd = -1;
			continue;
		}
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

	sig_fd = vm_signalfd();
	if (sig_fd < 0 || vcpu__setup_signals()) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot set up signal handling");
		goto out;
	}
	/* Before any thread that serves the guest runs. */
	seccomp__allow_renameat(vm->ws.dir_fd);
	if (seccomp__install(vm->seccomp)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot install the seccomp filter (--seccomp)");
		goto out;
	}
	if (vm__ws_start(vm)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot record the working set (--record-ws)");
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
	if (vm__start_devices(vm)) {
		vm__stop(vm, FL_EXIT_INTERNAL, "cannot start a device's thread (above)");
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
	if (vm->start_paused)
		vm__pause(vm); /* --paused: the vCPUs park before they enter the guest */
	vm->reads_before_run = __atomic_load_n(&vm->mmu.stats.backing_reads, __ATOMIC_RELAXED);
	__atomic_store_n(&vm->run_ns, mmu__now_ns(), __ATOMIC_RELEASE);
	for (i = 0; i < vm->nr_vcpus; i++) {
		int ret = vcpu__start(&vm->vcpus[i]);

		if (ret) {
			vm__stop(vm, FL_EXIT_INTERNAL, "cannot start the thread of vCPU %u: %s", i,
				 strerror(-ret));
			break;
		}
	}
	vm_wait(vm, sig_fd);
out:
	__atomic_store_n(&vm->stopped_ns, mmu__now_ns(), __ATOMIC_RELEASE);
	vm__close_frontend(vm); /* no request to a stopping VM */
	for (i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
	vm__stop_devices(vm); /* guest memory is still served */
	if (vm->dedup)
		dedup__stop(vm->dedup); /* before the MMU's handlers: a merge may wait on them */
	mmu__stop(&vm->mmu);
	vm__ws_save(vm); /* --record-ws: the VM's end stops it, if nothing did */
	if (vm->ws.failed && !vm->status)
		vm->status = FL_EXIT_INTERNAL;
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
	vm__ws_close(&vm->ws);
	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		vcpu__exit(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	kvm_stats__close(&vm->kvm_stats);
	vm__exit_devices(vm);
	kvm__exit(&vm->kvm);
	if (vm->dedup)
		dedup__exit(vm->dedup);
	free(vm->dedup);
	vm->dedup = NULL;
	mmu__exit(&vm->mmu);
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
