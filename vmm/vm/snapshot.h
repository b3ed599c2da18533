/*
 * Snapshots of a running VM (docs/snapshots.md). A snapshot is a
 * directory of three files:
 *   manifest.json  what the VM is (version, host CPU, RAM, vCPUs, board,
 *                  devices) and a size and XXH3 checksum of the others;
 *   state          KVM's state of the VM and every vCPU, the devices'
 *                  blobs and the MMU's budget (lib/blob.h sections);
 *   memory         guest RAM as a sparse file in host-offset order, the
 *                  layout --backing file: reads; pages never touched or all
 *                  zeros are holes. A diff snapshot (--diff) holds only the
 *                  pages written since the snapshot it is based on, and
 *   pages          (a diff only) which: one bit per page, 64-bit words.
 * The VM writes the state and the memory into descriptors the client
 * passes on the control socket, and returns the manifest: it opens no
 * file once it runs (the seccomp filter). `faultline ctl` makes the
 * directory, under a temporary name until the whole snapshot is there.
 */
#ifndef FAULTLINE_SNAPSHOT_H
#define FAULTLINE_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm/vm.h"

#define SNAPSHOT_VERSION   1
#define SNAPSHOT_MANIFEST  "manifest.json"
#define SNAPSHOT_STATE	   "state"
#define SNAPSHOT_MEMORY	   "memory"
#define SNAPSHOT_PAGES	   "pages"
#define SNAPSHOT_WHY_LEN   256
#define SNAPSHOT_PATH_MAX  4096
#define SNAPSHOT_STATE_MAX (64U << 20) /* bytes of a state file, at most */

/* What `faultline ctl SOCKET snapshot` asks for. */
struct snapshot_request {
	int state_fd, memory_fd; /* empty regular files */
	int pages_fd;		 /* --diff: the third one */
	bool resume, diff;
	const char *dir; /* the directory it will be, absolute; NULL: not known */
};

/*
 * Snapshot @vm: pause it (if it runs), write its state and memory (a diff:
 * only the pages written since its last snapshot, and which) into the
 * request's files, then resume it when asked and it ran. Adds to @reply
 * the "manifest" to write beside them, the bytes written, pages and what
 * each part took. 0, or -1 with @why (SNAPSHOT_WHY_LEN bytes) saying why;
 * the VM is left as it was. Any thread but a vCPU's.
 */
int vm__snapshot(struct vm *vm, const struct snapshot_request *req, json_t *reply, char *why);

/* A snapshot read back: its manifest checked, its state file read and checked. */
struct snapshot {
	char dir[SNAPSHOT_PATH_MAX];
	char memory_path[SNAPSHOT_PATH_MAX + 16];
	json_t *manifest;
	uint8_t *state;
	size_t state_len;
	bool linux_board;
	bool balloon;	      /* the VM has a virtio-balloon (--balloon) */
	bool channel;	      /* the VM has a channel (--channel: a restore names a socket) */
	const char *shm_path; /* --shm: NULL without (strings: the manifest's) */
	const char *shm_doorbell;
	uint64_t shm_size;
	uint64_t vram_size, vram_pool; /* --vram: 0 without */
	enum dedup_mode dedup;	       /* --dedup, and its knobs as they were */
	struct dedup_knobs dedup_knobs;
	uint64_t mem;
	unsigned vcpus;
	uint64_t limit_pages; /* the budget when it was taken */
	enum vm_oom_policy on_oom;
	unsigned oom_pause_timeout_s;
	uint32_t cpuid[8]; /* KVM_CPUID_WORDS (vmm/kvm/kvm_state.h) */
	char id[VM_SNAP_ID_LEN + 1];
	char base_dir[SNAPSHOT_PATH_MAX]; /* a diff's base; empty: a full snapshot */
	char base_id[VM_SNAP_ID_LEN + 1];
	/*
	 * snapshot__open(): the diffs from this one down to the full snapshot
	 * under them, newest first (the memory file and its pages each), and
	 * that full snapshot's memory, the backing file.
	 */
	struct snapshot_layer {
		char memory_path[SNAPSHOT_PATH_MAX + 16];
		unsigned long *pages;
	} layers[MMU_MAX_LAYERS];
	unsigned nr_layers;
	char backing_path[SNAPSHOT_PATH_MAX + 16];
	/* The caller's, for vm__restore(): what the handlers prefetch from their start. */
	enum vm_prefetch prefetch;
	const uint32_t *ws_pages; /* ws__load()'s; NULL: none */
	uint64_t ws_len;
};

/*
 * Read the snapshot in @dir and fill @cfg with what it fixes (board, RAM,
 * vCPUs, the memory file as backing; the budget and --on-oom unless the
 * command line set them). Returns 0, or an exit status after reporting
 * what is wrong, naming the file and the field: 66 a file cannot be read,
 * 78 the snapshot is corrupt, of another version or for another host.
 */
int snapshot__open(struct snapshot *s, const char *dir, struct run_config *cfg);
void snapshot__close(struct snapshot *s);

/*
 * The manifest's checks of snapshot__open(), on its @text (@len bytes):
 * version, host, VM. 0 or 78 after reporting. s->dir names it in messages.
 * snapshot__close() frees what it kept.
 */
int snapshot__parse_manifest(struct snapshot *s, const char *text, size_t len);

/*
 * Instead of vm__load(): create the vCPUs and give them, the VM's chips
 * and the devices the snapshot's state. Returns 0 or a set-up error;
 * -EPROTO (reported): the state does not fit this VM or host.
 */
int vm__restore(struct vm *vm, const struct snapshot *s) __attribute__((warn_unused_result));

#endif
