/*
 * A microVM: the KVM VM, guest RAM, the port-I/O and MMIO buses with their
 * devices, the vCPUs, and the one place that decides how the VM stops.
 *
 * Lifecycle: vm__init() -> vm__load() -> vm__run() -> vm__exit().
 * Stopping: whichever thread first calls vm__stop() sets the exit status
 * and message; every vCPU is kicked out of KVM_RUN and vm__run() returns.
 * A running VM's outcome is an exit status (lib/status.h) from the start:
 * the guest's own 0-63 passes through the exit device unchanged. Set-up
 * returns -errno instead ("Set-up errors" below).
 */
#ifndef FAULTLINE_VM_H
#define FAULTLINE_VM_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "devices/bar/dedup_dev.h"
#include "devices/bar/shm.h"
#include "devices/bar/vram.h"
#include "devices/bus.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/boot_timer.h"
#include "devices/legacy/clone_id.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/exit_dev.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pvpanic.h"
#include "devices/legacy/serial.h"
#include "devices/virtio/virtio_balloon.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "mmu/mmu.h"
#include "lib/blob.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/elf.h"
#include "vmm/boot/fdt.h"
#include "vmm/boot/linux.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/kvm_stats.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/vm/vm_config.h"

#define VM_STOP_MSG_LEN 512

/*
 * Device BARs live in the MMIO hole, one fixed window each, and map their
 * pages through memory slots of their own: slot numbers from
 * VM_BAR_SLOT_BASE up, at most VM_BAR_SLOTS, fewer if KVM has fewer.
 */
#define VM_SNAP_ID_LEN	 32 /* hex digits of a snapshot's id */
#define VM_SHM_GPA	 0xd0000000ULL
#define VM_VRAM_GPA	 0xe0000000ULL
#define VM_DEDUP_GPA	 0xd8000000ULL
#define VM_BAR_SLOT_BASE 8

/* virtio-mmio devices: one 4 KiB window each from here, and these ISA IRQs. */
#define VM_VIRTIO_GPA 0xc0000000ULL
#define VM_VIRTIO_IRQS                                                                             \
	{                                                                                          \
		5, 6, 7, 10, 11, 12, 14, 15                                                        \
	} /* 9 is the ACPI SCI */
#define VM_VIRTIO_MAX 8
#define VM_BAR_SLOTS  4096

struct vcpu;
struct vm;

/*
 * --record-ws (vmm/vm/vm_ws.c): the recording's files, opened before the
 * VM is, and what stopped it. The main thread writes it.
 */
struct vm_ws {
	struct vm_ws_until until;
	int dir_fd;   /* the snapshot's directory: tmp is renamed to ws in it */
	int tmp_fd;   /* DIR/tmp */
	char tmp[32]; /* ws.tmp.PID: restores recording at once each have their own */
	int done_fd;  /* eventfd: the recording stopped, write it */
	char dir[4096];
	char id[VM_SNAP_ID_LEN + 1]; /* the snapshot's id, which the recording names */
	uint64_t stop_ns;	     /* CLOCK_MONOTONIC when it stopped; 0: recording */
	enum vm_ws_stop why;	     /* what stopped it */
	bool saved;		     /* written as DIR/ws */
	bool failed;		     /* could not be written: the run exits 70 */
};

/*
 * A front end that drives the VM and hears its events: the control socket
 * (vmm/api/vm_api.c). The VM calls it only through these, so that nothing
 * in vmm/vm/ knows the layer above it.
 */
struct vm_frontend_ops {
	/* vm__run(), before the vCPUs start: 0, or -errno and the VM stops. */
	int (*start)(void *ctx);
	/* An event, @fields taken over; called under vm->lock, in order. */
	void (*publish)(void *ctx, const char *name, json_t *fields);
	/* No request after this returns; frees @ctx. vm__run()'s end, vm__exit(). */
	void (*close)(void *ctx);
};

/* Whether the vCPUs run (vm__pause, vm__resume, --on-oom pause). */
enum vm_pause {
	VM_RUNNING,
	VM_PAUSED,     /* by a request on the control socket */
	VM_PAUSED_OOM, /* --on-oom pause: a fault waits for a larger budget */
};

struct vm {
	struct kvm kvm;
	struct mmu mmu; /* guest RAM; mmu.ram is its layout */
	enum vm_oom_policy on_oom;
	enum seccomp_mode seccomp;
	unsigned oom_pause_timeout_s; /* --on-oom pause,timeout=SECS; 0: none */
	const char *backing_file;
	struct bus pio_bus;
	struct bus mmio_bus;
	struct serial serial;
	struct exit_dev exit_dev;
	bool boot_linux; /* a Linux boot: irqchip, PIT, legacy devices, quiet port probes */
	const struct vm_board *board; /* vm_board_linux or vm_board_test */
	unsigned nr_created;	      /* of board->devices, from the first: create() was called */
	struct i8042 i8042;	      /* Linux boots only, like cmos */
	struct cmos cmos;
	struct acpi_pm acpi_pm;
	struct boot_timer boot_timer;
	unsigned boot_timeout_s; /* --boot-timeout: the boot timer written within; 0: no limit */
	struct pvpanic pvpanic;
	struct clone_id clone_id;
	unsigned nr_virtio; /* virtio-mmio windows taken, in order: disks, channel, balloon */
	unsigned nr_disks;
	struct virtio_blk *disks;	/* nr_disks of them, Linux boots only */
	struct virtio_console *channel; /* --channel, Linux boots only; NULL: none */
	struct virtio_balloon *balloon; /* --balloon, Linux boots only; NULL: none */
	bool stdin_raw;			/* the terminal on stdin was put in raw mode, to restore */
	struct shm_dev *shm;		/* NULL without --shm */
	struct vram_dev *vram;		/* NULL without --vram */
	struct dedup *dedup;		/* NULL with --dedup off */
	struct dedup_dev *dedup_dev;
	pthread_mutex_t slot_lock;
	unsigned nr_bar_slots;
	uint8_t bar_slot_used[VM_BAR_SLOTS];
	unsigned nr_vcpus;
	struct vcpu *vcpus;
	unsigned tsc_khz;	    /* the guest's TSC frequency (KVM_GET_TSC_KHZ), 0: unknown */
	struct kvm_stats kvm_stats; /* KVM's own counters (--stats "kvm"); read-only once open */
	/*
	 * Where the process's time went (--stats "times_s"), CLOCK_MONOTONIC:
	 * faultline's start, the vCPUs' start, the VM's stop (every vCPU told
	 * to stop), and vm__run()'s end (threads joined); 0: not yet. Written
	 * by the main thread; read by the control socket's (atomics).
	 */
	uint64_t start_ns, run_ns, stopped_ns, ended_ns;

	const struct vm_frontend_ops *frontend; /* NULL: none (vm__set_frontend()) */
	void *frontend_ctx;
	const char *api_path; /* --api, for messages; NULL: none */
	bool start_paused;    /* --paused */
	bool restored;	      /* started from a snapshot (vm__restore()) */
	/*
	 * The last snapshot of this VM, or the one it was restored from: its
	 * manifest's id (32 hex digits; empty: none a diff may build on) and
	 * directory. --diff-snapshots tracks the pages written since.
	 */
	char snap_id[VM_SNAP_ID_LEN + 1];
	char snap_dir[4096];
	uint64_t reads_before_run; /* restored: backing-file reads before the vCPUs started */
	struct vm_ws ws;	   /* --record-ws; ws.dir_fd < 0: not recording */

	pthread_mutex_t lock;	   /* protects everything below */
	pthread_cond_t state_cond; /* broadcast when stopping, pause or nr_parked change */
	bool stopping;
	int status;
	char stop_msg[VM_STOP_MSG_LEN];
	unsigned nr_halted;
	enum vm_pause pause;
	char pause_msg[VM_STOP_MSG_LEN]; /* VM_PAUSED_OOM: the fault that waits */
	uint64_t oom_deadline_ns;	 /* VM_PAUSED_OOM with a timeout: when it stops; else 0 */
	unsigned nr_parked;		 /* vCPU threads waiting for the VM to run */
	uint64_t pauses;		 /* times the VM paused, on request or out of memory */
	uint64_t oom_pauses;		 /* of them, out of memory */
	bool clock_stopped;		 /* paused with every vCPU out: the guest clock read */
	uint64_t clock_ns;		 /* clock_stopped: what it read (KVM_GET_CLOCK) */
	bool clock_warned;		 /* KVM_GET_CLOCK or KVM_SET_CLOCK failed, said once */
	int stop_fd;			 /* eventfd, readable once stopping */
	int status_fd;			 /* /proc/self/status, for the host memory; -1: none */
	int status_err;			 /* why status_fd is -1 (errno) */
	int smaps_fd;			 /* /proc/self/smaps, for anonymous RAM; -1: none */
	int smaps_err;			 /* why smaps_fd is -1 (errno) */
	/*
	 * Stopped from outside (a signal, ctl stop): where it was taken, in
	 * every vcpu's at_stop and here (vm__print_where()).
	 */
	bool where_taken;
	bool where_queued;	   /* guest faults queued on the userfaultfd */
	unsigned where_in_service; /* handlers reading or serving faults */
};

/*
 * Set-up errors. vm__init(), vm__load(), vm__load_linux(), a board's init
 * and a device's create return 0 or -errno, reported when returned; main()
 * turns one into the exit status. The errno says whose the failure is:
 *   -ENODEV     no usable KVM (the device, its API version, a capability);
 *   -ENOENT, -EACCES, -EISDIR, -ENOTDIR, -ELOOP, -EROFS, -EMEDIUMTYPE (not
 *               a regular file): a file the configuration names cannot be
 *               used;
 *   -ERANGE, -ENAMETOOLONG: an option's value cannot be met (more vCPUs
 *               than KVM allows, a command line whose device tree does not
 *               fit, a socket path too long);
 *   -EDQUOT     boot state does not fit in the memory budget;
 *   -EPROTO     a snapshot's state does not fit this VM or host (vm__restore());
 *   any other   a host call failed.
 * Once the VM runs, a stop carries its outcome instead (vm__stop()).
 */

/* Open KVM, create the VM, map RAM and register devices. */
int vm__init(struct vm *vm, const struct run_config *cfg) __attribute__((warn_unused_result));

/*
 * Copy the image into RAM, write boot structures and the device tree,
 * create the vCPUs. Returns 0 or a set-up error.
 */
int vm__load(struct vm *vm, const struct run_config *cfg, const void *image,
	     const struct elf_image *img) __attribute__((warn_unused_result));

/*
 * Run the vCPUs until the VM stops or SIGINT/SIGTERM/SIGHUP arrives.
 * Returns the exit status; vm->stop_msg holds the reason (empty when the
 * guest exited normally). Main thread only.
 */
int vm__run(struct vm *vm);

/* Stop the VM; the first call wins. @fmt may be NULL (a clean guest exit). */
void vm__stop(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * vm__stop() for a stop from outside the guest (a signal, ctl stop): it
 * also notes where every vCPU and the fault handlers were, for
 * vm__print_where().
 */
void vm__stop_from_outside(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * After a stop from outside, say on stderr where the VM was: each vCPU
 * inside KVM_RUN (for how long) or in faultline, its exits, and whether
 * guest faults waited for the fault handlers; a VM that hung shows whether
 * the guest or the monitor held it. Nothing otherwise. Main thread, after
 * vm__run().
 */
void vm__print_where(struct vm *vm);

/*
 * Pause the VM: every vCPU leaves KVM_RUN and waits in vm__vcpu_may_run()
 * until vm__resume() or the stop. Returns the state before. Any thread.
 */
enum vm_pause vm__pause(struct vm *vm);

/*
 * Let the vCPUs run again; a fault waiting in --on-oom pause is served
 * again, and pauses the VM again if the budget still has no room. Returns
 * the state before. Any thread.
 */
enum vm_pause vm__resume(struct vm *vm);

/* "running", "paused" or "paused-oom". */
const char *vm__pause_name(enum vm_pause pause);

/*
 * Wait at most @ms for every vCPU that has not halted to be parked by a
 * pause. Returns the number parked. Any thread but a vCPU's.
 */
unsigned vm__wait_parked(struct vm *vm, unsigned ms);

/*
 * The vCPU loop asks before every KVM_RUN: waits while the VM is paused
 * (its last exit completed first, vcpu__settle()), returns false once it
 * is stopping. @vcpu's thread.
 */
bool vm__vcpu_may_run(struct vm *vm, struct vcpu *vcpu);

/*
 * A device's own thread (the channel's, the serial input's) asks before it
 * touches the guest: waits while the VM is paused, so that a pause stops
 * the devices too; returns false once the VM is stopping. @vm: struct vm.
 */
bool vm__device_may_run(void *vm);
/*
 * Whether the VM runs now, without waiting: a device thread asks again
 * under its own lock before it touches the guest, so that nothing it does
 * crosses a pause that began after vm__device_may_run() let it go (a
 * snapshot saves the device under that lock). @vm: struct vm.
 */
bool vm__device_running(void *vm);

/*
 * --on-oom pause: report @oom, pause the VM and wait until it resumes
 * (ctx->refault: serve the fault again) or stops. On the thread of the
 * fault: a handler thread's, or a vCPU's, which counts as parked.
 */
void vm__oom_pause(struct vm *vm, struct fault_ctx *ctx, const char *oom);

/*
 * Attach the front end @ops (@ctx its own) to @vm, after vm__init() and
 * before vm__run(). vm__run()'s end or vm__exit() closes it.
 */
void vm__set_frontend(struct vm *vm, const struct vm_frontend_ops *ops, void *ctx);

/*
 * Publish the event @name (@fields taken over) on the control socket's
 * streams, under vm->lock so that it takes its place among the VM's state
 * changes; nothing without --api. Any thread not holding vm->lock.
 */
void vm__event(struct vm *vm, const char *name, json_t *fields);

/* --stats as one JSON object (the caller owns it); NULL without memory. */
json_t *vm__stats_json(struct vm *vm);

/*
 * With --balloon: its sizes (target_pages, actual_pages) and, once the
 * guest's driver gave them, its memory statistics (guest_stats, with
 * age_ms). When @may_ask and they are a second old, the driver is asked
 * again and has 100 ms to answer (virtio_balloon__guest_stats()). NULL
 * without memory.
 */
json_t *vm__balloon_json(const struct vm *vm, bool may_ask);

/*
 * A vCPU executed HLT. Parks the calling vCPU thread until the VM stops;
 * if every vCPU is parked, stops the VM (nothing can wake them).
 */
void vm__vcpu_halted(struct vm *vm, unsigned vcpu_id);

/*
 * Tell vCPU ctx->vcpu, whose thread this is, that guest page ctx->gpa is
 * lost: inject a machine check. Sets ctx->resume when done; otherwise the
 * VM stops with @status and @why, saying why the guest could not be told.
 */
void vm__inject_mce(struct vm *vm, struct fault_ctx *ctx, int status, const char *why);

/*
 * Load a Linux bzImage @li, the kernel command line @cmdline and @initrd
 * (lay->initrd_size bytes) where linux__place() put them in @lay: also the
 * zero page, the MP and ACPI tables, the boot page tables, and the vCPUs
 * (the BSP at the 64-bit entry, the others waiting for the INIT/SIPI Linux
 * sends). vm_linux.c. Returns 0 or a set-up error.
 */
int vm__load_linux(struct vm *vm, const struct run_config *cfg, const struct linux_image *li,
		   const struct linux_layout *lay, const char *cmdline, const void *initrd)
	__attribute__((warn_unused_result));

/*
 * The Linux board's VM generation ID (vmm/boot/acpi.h): write a new random
 * one and, with @announce, tell the guest (a restore: its random numbers
 * reseed). 0 or a set-up error (reported).
 */
int vm__new_generation(struct vm *vm, bool announce) __attribute__((warn_unused_result));

#define VM_CHANNEL_FLUSH_MS 1000 /* the channel's last words at a stop (vm_virtio.c) */

/* Create and set up every vCPU, entering at @entry. Returns 0 or -errno (reported). */
int vm__create_vcpus(struct vm *vm, uint64_t entry) __attribute__((warn_unused_result));

/*
 * Report a failed write of boot state @what (-ENOMEM: the budget). Returns
 * the set-up error: -EDQUOT for the budget, -ERANGE when it does not fit.
 */
int vm__load_error(struct vm *vm, int err, const char *what);

/*
 * A BAR access failed for good (bar__access() did not return DONE): apply
 * the policy. SIGBUS: a machine check at the GPA where the guest can take
 * one, else the VM stops (74); OOM: the VM's --on-oom; REFAULT at the
 * bound: stop (74); a register the device rejected: stop (73). Sets
 * ctx->resume when the vCPU may go on, ctx->refault when the access should
 * be tried again (--on-oom pause, resumed). vCPU thread.
 */
void vm__bar_failed(struct vm *vm, struct fault_ctx *ctx, fault_t r, const char *why);

/* --stats: the fault engine's, the devices' and the buses' counters. */
void vm__print_stats(struct vm *vm, bool json, FILE *out);

void vm__exit(struct vm *vm);

/*
 * --record-ws (vmm/vm/vm_ws.c; the file and ws__open() in vmm/vm/ws.h).
 * Close what ws__open() opened; DIR/ws.tmp.PID goes unless the recording was
 * saved. vm__exit() calls it.
 */
void vm__ws_close(struct vm_ws *w);

/* vm__run(), before the handlers start: record from now on. 0 or -errno (reported). */
int vm__ws_start(struct vm *vm) __attribute__((warn_unused_result));

/* Stop recording for @why; any thread. The main thread then writes it (vm__ws_save()). */
void vm__ws_stop(struct vm *vm, enum vm_ws_stop why);

/* The main thread: write the stopped recording into DIR/ws once. */
void vm__ws_save(struct vm *vm);

/* Milliseconds until --record-ws=Nms stops the recording, for poll(); -1: no such stop. */
int vm__ws_wait_ms(struct vm *vm);

/* ---- the device table (vm_board.c) ---- */

#define VM_DESC_MAX 8

/* What the guest is told of its devices (vm_device_ops.describe). */
struct vm_guest_desc {
	struct fdt_pio_device pio[VM_DESC_MAX]; /* the test guest's device tree */
	unsigned nr_pio;
	struct fdt_mmio_device mmio[VM_DESC_MAX]; /* its BAR nodes */
	unsigned nr_mmio;
	struct acpi_mmio_device acpi[ACPI_MAX_DEVICES]; /* a Linux guest's DSDT */
	unsigned nr_acpi;
};

/*
 * One kind of device, as the VM sees it. Its state lives in struct vm;
 * these are what the VM does with it, in the board's order. A NULL op
 * does nothing.
 */
struct vm_device_ops {
	const char *name;
	/*
	 * Create it when @cfg asks for it, and register it on its bus.
	 * Returns 0 (also when it is not asked for) or a set-up error. exit()
	 * undoes whatever part of it ran.
	 */
	int (*create)(struct vm *vm, const struct run_config *cfg);
	/* Add what the guest is told of it (device tree, ACPI) to @d. */
	void (*describe)(const struct vm *vm, struct vm_guest_desc *d);
	/* --stats: lines of text; keys of @root, or of @devices for a BAR. */
	void (*stats_text)(const struct vm *vm, FILE *out);
	void (*stats_json)(const struct vm *vm, json_t *root, json_t *devices);
	/*
	 * Its state as a versioned blob (lib/blob.h), and back from one (bad
	 * input: -EINVAL, reported, and the device keeps its state). No vCPU
	 * runs. NULL: the device cannot be saved yet (vm__save_devices()).
	 */
	int (*save)(struct vm *vm, struct blob *b);
	int (*restore)(struct vm *vm, struct blob_reader *r);
	/*
	 * Optional: start its own threads, once the VM is built and restored
	 * and the seccomp filter is in, before the vCPUs. 0 or -errno (reported).
	 */
	int (*start)(struct vm *vm);
	/* The vCPUs stopped; guest memory is still served. */
	void (*stop)(struct vm *vm);
	void (*exit)(struct vm *vm);
};

/* A machine: what it sets up first, then its devices, in order. */
struct vm_board {
	const char *name;
	/* Before any device (the Linux board's irqchip). 0 or a set-up error. */
	int (*init)(struct vm *vm, const struct run_config *cfg);
	const struct vm_device_ops *const *devices;
	unsigned nr_devices;
};

extern const struct vm_board vm_board_test;  /* the test guest: serial, exit, BARs */
extern const struct vm_board vm_board_linux; /* a PC for Linux: legacy, virtio, BARs */

/* The board's init, then each device's create. 0 or a set-up error. */
int vm__create_devices(struct vm *vm, const struct run_config *cfg)
	__attribute__((warn_unused_result));
void vm__describe_devices(const struct vm *vm, struct vm_guest_desc *d);
/*
 * Every device's state, each as a blob in @b: its name, then its own
 * blob. -EOPNOTSUPP (reported, naming it) for a device without save.
 */
int vm__save_devices(struct vm *vm, struct blob *b) __attribute__((warn_unused_result));
/*
 * An optional device's section @section: whether the VM has it, then, when
 * it does, what its save adds before blob__section_end(). Returns where
 * the length goes.
 */
size_t vm__save_present(struct blob *b, const char *section, bool present);
/* A device that holds no state: an empty section @section (version 1), and back. */
void vm__save_empty(struct blob *b, const char *section);
int vm__restore_empty(struct blob_reader *r, const char *section)
	__attribute__((warn_unused_result));
/*
 * Enter such a section into @sub and read whether the snapshot's VM had the
 * device (*@had). One that differs from @present is refused, as "NAME: the
 * snapshot HAS, this VM has none" (@has and @has_not say it for the
 * snapshot). 0 or -EINVAL, @r says why. Then the device's restore reads
 * @sub, and vm__restore_present_end() checks it was read to its end.
 */
int vm__restore_present(struct blob_reader *r, const char *section, const char *name,
			const char *has, const char *has_not, bool present, struct blob_reader *sub,
			bool *had) __attribute__((warn_unused_result));
int vm__restore_present_end(struct blob_reader *r, const char *name, struct blob_reader *sub)
	__attribute__((warn_unused_result));
/*
 * Back from vm__save_devices()'s blob, into a VM of the same board whose
 * vCPUs have not run. 0 or -EINVAL (reported, saying why); then the
 * devices before the bad one hold the blob's state, the rest their own.
 */
int vm__restore_devices(struct vm *vm, struct blob_reader *r) __attribute__((warn_unused_result));
void vm__stop_devices(struct vm *vm);
/* Each device's start, in order; the first error. */
int vm__start_devices(struct vm *vm) __attribute__((warn_unused_result));
/* Each device's exit, the last created first. */
void vm__exit_devices(struct vm *vm);

/* The BAR devices' memory slots, before the first BAR (vm_bars.c). */
void vm__init_bar_slots(struct vm *vm);

/* The Linux board's irqchip (vm_linux.c): KVM_CREATE_IRQCHIP, the PIT. */
int vm__init_linux_board(struct vm *vm, const struct run_config *cfg)
	__attribute__((warn_unused_result));

/* The devices' entries: vm_legacy.c, vm_virtio.c, vm_bars.c. */
extern const struct vm_device_ops vm_serial_dev, vm_exit_dev, vm_i8042_dev, vm_cmos_dev,
	vm_acpi_pm_dev, vm_boot_timer_dev, vm_pvpanic_dev, vm_clone_id_dev;
extern const struct vm_device_ops vm_disks_dev, vm_channel_dev, vm_balloon_dev;
extern const struct vm_device_ops vm_shm_dev, vm_vram_dev, vm_dedup_dev;

/* A counter of --stats: one text line, one JSON key (vm_stats.c). */
void vm__counter_text(FILE *out, const char *name, const uint64_t *v, const char *help);
void vm__counter_json(json_t *o, const char *name, const uint64_t *v);

/* ---- between the VM's own files ---- */

/* mmu_ops.vcpu_of_tid: the vCPU index of thread @tid, or -1. vm.c. */
int vm__vcpu_of_tid(void *owner, int tid);

/*
 * mmu_ops.fault_failed: a guest fault failed for good; apply the policy.
 * A fault handler or vCPU thread. vm_oom.c.
 */
void vm__fault_failed(void *owner, struct fault_ctx *ctx, fault_t result, const char *why);

/*
 * Whether machine checks can reach the guest (KVM injects into every vCPU,
 * the kernel poisons pages); with --on-oom mce and no way, say so and use
 * kill. vm_oom.c.
 */
void vm__check_mce(struct vm *vm);

/* Detach and close the front end; no request after it. vm_state.c. */
void vm__close_frontend(struct vm *vm);

/* ---- the vCPU threads (vcpu_run.c, vcpu_exit.c) ---- */

/* Start the vCPU thread. Returns 0 or -errno (not reported). */
int vcpu__start(struct vcpu *vcpu) __attribute__((warn_unused_result));

/* Install the kick and SIGBUS handlers; once, before any vCPU starts. */
int vcpu__setup_signals(void) __attribute__((warn_unused_result));

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
