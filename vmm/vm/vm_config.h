/*
 * What one VM is made of: the run's configuration. The command line
 * (vmm/cmd/cli.c) and the JSON config (vmm/cmd/config.c) fill it; the VM
 * (vmm/vm/) and main() read it.
 */
#ifndef FAULTLINE_VM_CONFIG_H
#define FAULTLINE_VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "mmu/dedup.h"
#include "mmu/mmu.h"
#include "vmm/boot/fdt.h"
#include "vmm/sys/seccomp.h"

#define KVM_DEVICE_DEFAULT "/dev/kvm"
#define VM_MAX_GUEST_ARGS  64
#define VM_MAX_DISKS	   4
#define VM_MEM_MIN	   (4ULL << 20)
#define VM_MEM_MAX	   (63ULL << 30)
#define VM_MEM_ALIGN	   (2ULL << 20)
#define VM_VCPUS_MAX	   64

enum vm_oom_policy {
	VM_OOM_KILL,
	VM_OOM_MCE,
	VM_OOM_PAUSE,
};

enum cli_stats {
	CLI_STATS_OFF,
	CLI_STATS_TEXT,
	CLI_STATS_JSON,
};

/* --prefetch: what a restore installs while the guest runs (vmm/vm/vm_ws.c). */
enum vm_prefetch {
	VM_PREFETCH_AUTO, /* the recorded working set if DIR has one, else nothing */
	VM_PREFETCH_OFF,
	VM_PREFETCH_WS,	 /* the recorded working set; DIR must have one */
	VM_PREFETCH_SEQ, /* every page the memory file holds, in address order */
};

/* --record-ws[=STOP]: what ends the recording, besides the VM's end. */
enum vm_ws_stop {
	VM_WS_STOP_END,	  /* the VM's end only */
	VM_WS_STOP_PORT,  /* the guest writes the boot-timer port */
	VM_WS_STOP_MS,	  /* value milliseconds after the vCPUs start */
	VM_WS_STOP_PAGES, /* value pages recorded */
};

struct vm_ws_until {
	enum vm_ws_stop kind;
	uint64_t value;
};

struct vm_disk {
	const char *path;
	bool read_only;
};

struct run_config {
	const char *kvm_device; /* /dev/kvm, or $FAULTLINE_KVM_DEVICE */
	const char *kernel;
	const char *initrd; /* NULL: none */
	unsigned nr_disks;
	struct vm_disk disks[VM_MAX_DISKS];
	const char *channel;	 /* the channel's Unix socket; NULL: none */
	bool balloon;		 /* --balloon: free page reporting */
	unsigned boot_timeout_s; /* --boot-timeout: Linux's init within SECS; 0: no limit */
	const char *api;	 /* the control socket (--api); NULL: none */
	bool boot_linux;	 /* set by main(): the kernel is a bzImage */
	uint64_t start_ns; /* CLOCK_MONOTONIC when faultline started (the boot timer's zero) */
	uint64_t mem;
	unsigned vcpus;
	const char *cmdline;
	unsigned nr_guest_args;
	struct guest_arg guest_args[VM_MAX_GUEST_ARGS];
	uint64_t mem_limit; /* 0: --mem */
	enum vm_oom_policy on_oom;
	unsigned oom_pause_timeout_s; /* --on-oom pause,timeout=SECS; 0: none */
	const char *backing_file;     /* NULL: zero */
	unsigned fault_around;
	bool prefault;
	bool hugepages;	     /* guest RAM on 2 MiB hugetlbfs pages (--hugepages) */
	bool diff_snapshots; /* track the pages written between snapshots (--diff-snapshots) */
	enum mmu_handler fault_handler;
	unsigned fault_retries;
	unsigned fault_timeout_ms;
	unsigned fault_threads; /* 0: from --vcpus */
	unsigned fault_spin_us;
	unsigned fault_ahead;
	enum cli_stats stats;
	const char *shm_path; /* NULL: no shm device */
	uint64_t shm_size;
	const char *shm_doorbell; /* NULL: none */
	uint64_t vram_size;	  /* 0: no vram device */
	uint64_t vram_pool;
	enum dedup_mode dedup;
	struct dedup_knobs dedup_knobs;
	enum seccomp_mode seccomp;
	const char *restore;  /* --restore DIR: the snapshot to start from; NULL: boot */
	bool paused;	      /* --paused: the vCPUs wait for ctl resume from the start */
	bool mem_limit_given; /* --mem-limit on the command line: it overrides a snapshot's */
	bool on_oom_given;    /* --on-oom likewise */
	bool record_ws;	      /* --record-ws: write DIR/ws */
	struct vm_ws_until record_until;
	enum vm_prefetch prefetch;
	/*
	 * A restore whose memory file is on tmpfs maps it (mmu_config.share):
	 * set by main() unless --private-memory, or the snapshot is a diff.
	 */
	bool share_memory;
	bool private_memory; /* --private-memory */
	/* --clone N, what the guest reads at CLONE_ID_PORT; else main() sets 0 or the PID */
	uint32_t clone;
	bool clone_given;
};

#endif
