/*
 * Taking a snapshot: pause, save KVM's and the devices' state, write guest
 * memory as a sparse file, and describe both in a manifest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/page_bits.h"
#include "vmm/kvm/kvm_state.h"
#include "vmm/vm/snapshot.h"

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION "unknown"
#endif

#define SNAPSHOT_PARK_MS   5000	       /* for the vCPUs to leave the guest */
#define SNAPSHOT_RUN_PAGES 256	       /* pages written with one pwrite at most */
#define SNAPSHOT_MAGIC	   0x53534c46U /* "FLSS" */

static uint64_t ms_since(uint64_t t0)
{
	return (mmu__now_ns() - t0) / 1000000ULL;
}

static const char *snapshot_on_oom(enum vm_oom_policy p)
{
	return p == VM_OOM_MCE ? "mce" : p == VM_OOM_PAUSE ? "pause" : "kill";
}

/* All of @len bytes at @off; 0 or -errno. */
static int snapshot_pwrite(int fd, const void *p, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = inject__fail("snapshot.write")
				    ?: pwrite(fd, (const char *)p + done, len - done,
					      (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* An empty regular file the client passed. */
static int snapshot_check_fd(int fd, const char *what, char *why)
{
	struct stat st;

	if (fd < 0) {
		snprintf(why, SNAPSHOT_WHY_LEN,
			 "the request carries no file for the %s (faultline ctl passes two)", what);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size) {
		snprintf(why, SNAPSHOT_WHY_LEN, "the file for the %s is not an empty regular file",
			 what);
		return -1;
	}
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[MMU_PAGE_SIZE];

	return !memcmp(p, zero, MMU_PAGE_SIZE);
}

/*
 * Guest page @pi as the guest sees it: merged pages from the guest view,
 * resident ones from the monitor's, others as their next touch would fill
 * them (the backing file and its layers: a restored VM), else zeros
 * (NULL). Reclaim lock held.
 */
static const uint8_t *snapshot_page(struct mmu *m, uint64_t pi, uint8_t *buf, int *err)
{
	uint64_t off = pi * MMU_PAGE_SIZE;

	/* A page dedup moves now is neither here nor there: wait for the move. */
	while (page_bits__busy(&m->bits, pi))
		page_bits__wait(&m->bits, pi, &m->reclaim_lock);
	/* A merged page is a shared page the guest view maps: its own is a hole. */
	if (page_bits__merged(&m->bits, pi)) {
		memcpy(buf, m->ram.host + off, MMU_PAGE_SIZE);
		return buf;
	}
	if (page_bits__resident(&m->bits, pi))
		return m->alias + off;
	if ((m->backing_fd < 0 || off >= m->backing_size) && !bit_test(m->bits.zeroed, pi))
		return NULL;
	*err = mmu__read_page(m, pi, buf);
	return *err ? NULL : buf;
}

struct snapshot_mem {
	uint64_t pages_written, pages_in_diff, bytes;
	XXH64_hash_t sum;
	unsigned long *diff; /* --diff: the pages it holds; NULL: all */
	bool reset;	     /* --diff-snapshots: the pages written are counted from here */
	bool reset_failed;   /* --diff-snapshots: what is written from now on may be missed */
};

/*
 * Write guest RAM into @fd, sizing it to RAM first so that holes read as
 * zeros. Under the reclaim lock, so that no clean page is dropped while it
 * is read. 0 or -errno.
 */
static int snapshot_memory(struct vm *vm, int fd, struct snapshot_mem *out)
{
	static const uint8_t zero[MMU_PAGE_SIZE];
	struct mmu *m = &vm->mmu;
	XXH3_state_t *st = XXH3_createState();
	uint8_t *buf = malloc(MMU_PAGE_SIZE);
	uint64_t pi, run = 0, run_start = 0;
	int err = 0;

	if (!st || !buf) {
		XXH3_freeState(st);
		free(buf);
		return -ENOMEM;
	}
	XXH3_64bits_reset(st);
	if (ftruncate(fd, (off_t)m->ram.size) < 0)
		err = -errno;
	pthread_mutex_lock(&m->reclaim_lock);
	for (pi = 0; !err && pi < m->nr_pages; pi++) {
		bool in = !out->diff || mmu__written(m, pi);
		const uint8_t *p = in ? snapshot_page(m, pi, buf, &err) : NULL;
		bool data = p && !page_is_zero(p);

		if (in)
			XXH3_64bits_update(st, p ? p : zero, MMU_PAGE_SIZE);
		if (in && out->diff) {
			bit_set(out->diff, pi);
			out->pages_in_diff++;
		}
		/* Runs of resident pages go out of the monitor's view in one write. */
		if (run &&
		    (!data || p != m->alias + pi * MMU_PAGE_SIZE || run == SNAPSHOT_RUN_PAGES)) {
			err = snapshot_pwrite(fd, m->alias + run_start * MMU_PAGE_SIZE,
					      run * MMU_PAGE_SIZE, run_start * MMU_PAGE_SIZE);
			run = 0;
		}
		if (err || !data)
			continue;
		out->pages_written++;
		if (p == m->alias + pi * MMU_PAGE_SIZE) {
			if (!run++)
				run_start = pi;
		} else {
			err = snapshot_pwrite(fd, p, MMU_PAGE_SIZE, pi * MMU_PAGE_SIZE);
		}
	}
	if (!err && run)
		err = snapshot_pwrite(fd, m->alias + run_start * MMU_PAGE_SIZE, run * MMU_PAGE_SIZE,
				      run_start * MMU_PAGE_SIZE);
	/* Still under the lock, the vCPUs out: the next diff starts from here. */
	if (!err && m->cfg.track_writes) {
		out->reset = true;
		out->reset_failed = mmu__writes_reset_locked(m) != 0;
	}
	pthread_mutex_unlock(&m->reclaim_lock);
	if (!err && (inject__fail("snapshot.fsync") ?: fsync(fd)) < 0)
		err = -errno;
	out->sum = XXH3_64bits_digest(st);
	out->bytes = m->ram.size;
	XXH3_freeState(st);
	free(buf);
	return err;
}

/* KVM's state, the budget, the devices and the vCPUs, in that order. */
static int snapshot_state(struct vm *vm, struct blob *b, char *why)
{
	uint64_t clock_ns = vm->clock_ns;
	unsigned i;
	int ret;

	if (!vm->clock_stopped && kvm__get_clock(&vm->kvm, &clock_ns)) {
		snprintf(why, SNAPSHOT_WHY_LEN, "KVM_GET_CLOCK failed: %s", strerror(errno));
		return -1;
	}
	blob__u32(b, SNAPSHOT_MAGIC);
	blob__u16(b, SNAPSHOT_VERSION);
	ret = kvm__save(&vm->kvm, vm->boot_linux, clock_ns, b);
	if (!ret) {
		size_t at = blob__section(b, "mmu", 1);

		blob__u64(b, __atomic_load_n(&vm->mmu.limit_pages, __ATOMIC_RELAXED));
		blob__section_end(b, at);
		at = blob__section(b, "devices", 1);
		ret = vm__save_devices(vm, b);
		blob__section_end(b, at);
	}
	blob__u32(b, vm->nr_vcpus);
	for (i = 0; !ret && i < vm->nr_vcpus; i++) {
		bool halted;

		pthread_mutex_lock(&vm->lock);
		halted = vm->vcpus[i].halted;
		pthread_mutex_unlock(&vm->lock);
		ret = vcpu__save(&vm->vcpus[i], vm->boot_linux, halted, vm->tsc_khz, b);
	}
	ret = ret ?: blob__end(b);
	if (!ret && b->len > SNAPSHOT_STATE_MAX) {
		snprintf(why, SNAPSHOT_WHY_LEN,
			 "the state is %zu bytes, more than the %u a state file holds (the pages "
			 "of --vram the guest touched)",
			 b->len, SNAPSHOT_STATE_MAX);
		return -1;
	}
	if (ret) {
		snprintf(why, SNAPSHOT_WHY_LEN, "cannot save the VM's state: %s%s", strerror(-ret),
			 ret == -EOPNOTSUPP ? " (the VM's stderr names the device)" : "");
		return -1;
	}
	return 0;
}

static json_t *snapshot_file_json(uint64_t bytes, XXH64_hash_t sum)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)sum);
	return json_pack("{s:I,s:s}", "bytes", (json_int_t)bytes, "xxh3", hex);
}

/*
 * Each disk, synced so that what the guest wrote is on it, with its path,
 * size and modification time: a restore refuses a disk that changed.
 */
static json_t *snapshot_disks(struct vm *vm, char *why)
{
	json_t *disks = json_array();
	unsigned i;

	for (i = 0; disks && i < vm->nr_disks; i++) {
		const struct virtio_blk *d = &vm->disks[i];
		struct stat st;

		if ((!d->read_only && fdatasync(d->fd) < 0) || fstat(d->fd, &st) < 0) {
			snprintf(why, SNAPSHOT_WHY_LEN, "cannot sync disk %u: %s (file: %s)", i,
				 strerror(errno), d->path);
			json_decref(disks);
			return NULL;
		}
		json_array_append_new(disks,
				      json_pack("{s:s,s:I,s:I,s:b}", "path", d->path, "bytes",
						(json_int_t)st.st_size, "mtime_ns",
						(json_int_t)(st.st_mtim.tv_sec * 1000000000LL +
							     st.st_mtim.tv_nsec),
						"read_only", d->read_only));
	}
	if (!disks && !why[0])
		snprintf(why, SNAPSHOT_WHY_LEN, "out of memory");
	return disks;
}

/* --dedup: its mode and knobs as they are now; null when off. Merges are not saved. */
static json_t *snapshot_dedup(const struct vm *vm)
{
	json_t *o;

	if (!vm->dedup)
		return json_null();
	o = json_pack("{s:s}", "mode", dedup__mode_name(vm->dedup->mode));
#define SNAPSHOT_KNOB(name, def, min, max, help)                                                   \
	json_object_set_new(o, #name,                                                              \
			    json_integer((json_int_t)__atomic_load_n(&vm->dedup->knobs.name,       \
								     __ATOMIC_RELAXED)));
	if (o) {
		DEDUP_KNOBS(SNAPSHOT_KNOB)
	}
#undef SNAPSHOT_KNOB
	return o ?: json_null();
}

/* The BAR devices' options (--shm, --vram); null for one the VM has not. */
static json_t *snapshot_shm(const struct vm *vm)
{
	if (!vm->shm)
		return json_null();
	return json_pack("{s:s,s:I,s:s?}", "path", vm->shm->path, "bytes",
			 (json_int_t)vm->shm->size, "doorbell", vm->shm->doorbell_path)
		       ?: json_null();
}

static json_t *snapshot_vram(const struct vm *vm)
{
	if (!vm->vram)
		return json_null();
	return json_pack("{s:I,s:I}", "bytes", (json_int_t)(vm->vram->nr_pages * BAR_PAGE_SIZE),
			 "pool", (json_int_t)(vm->vram->pool_pages * BAR_PAGE_SIZE))
		       ?: json_null();
}

/* --diff: which pages the diff holds, into @fd. Its size and checksum into @out. */
static int snapshot_pages(const struct vm *vm, const struct snapshot_mem *mem, int fd,
			  uint64_t *bytes, XXH64_hash_t *sum)
{
	int err;

	*bytes = bitmap_words(vm->mmu.nr_pages) * sizeof(unsigned long);
	*sum = XXH3_64bits(mem->diff, *bytes);
	err = snapshot_pwrite(fd, mem->diff, *bytes, 0);
	if (!err && (inject__fail("snapshot.fsync") ?: fsync(fd)) < 0)
		err = -errno;
	return err;
}

/* A new snapshot's id: 16 random bytes in hex. 0 or -errno. */
static int snapshot_new_id(char id[VM_SNAP_ID_LEN + 1])
{
	uint8_t r[VM_SNAP_ID_LEN / 2];
	unsigned i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -errno;
	for (i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/*
 * The manifest. @id is the new snapshot's; a diff's @base names the one it
 * builds on, and @pages_bytes > 0 the pages file's size and checksum.
 */
static json_t *snapshot_manifest(struct vm *vm, const struct blob *state,
				 const struct snapshot_mem *mem, json_t *disks, const char *id,
				 json_t *base, uint64_t pages_bytes, XXH64_hash_t pages_sum)
{
	json_t *m;
	uint32_t words[KVM_CPUID_WORDS];
	json_t *cpuid = json_object(), *devices = json_array();
	char vendor[13], hex[16], created[32];
	time_t now = time(NULL);
	struct tm tm;
	unsigned i;

	kvm__cpu_vendor(vendor);
	kvm__cpuid_words(&vm->kvm, words);
	for (i = 0; cpuid && i < KVM_CPUID_WORDS; i++) {
		snprintf(hex, sizeof(hex), "0x%08x", words[i]);
		json_object_set_new(cpuid, kvm_cpuid_words[i], json_string(hex));
	}
	for (i = 0; devices && i < vm->nr_created; i++)
		json_array_append_new(devices, json_string(vm->board->devices[i]->name));
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	m = json_pack(
		"{s:i,s:s,s:s,s:s,s:o,s:{s:s,s:o*},s:{s:s,s:I,s:i,s:I,s:s,s:i,s:b,s:b,s:o,s:o,s:o},"
		"s:o*,s:o,s:{s:o*,s:o*}}",
		"faultline_snapshot", SNAPSHOT_VERSION, "faultline_version", FAULTLINE_VERSION,
		"created", created, "id", id, "base", base, "host", "cpu_vendor", vendor, "cpuid",
		cpuid, "vm", "board", vm->board->name, "mem", (json_int_t)vm->mmu.ram.size, "vcpus",
		(int)vm->nr_vcpus, "budget_pages",
		(json_int_t)__atomic_load_n(&vm->mmu.limit_pages, __ATOMIC_RELAXED), "on_oom",
		snapshot_on_oom(vm->on_oom), "on_oom_timeout_s", (int)vm->oom_pause_timeout_s,
		"balloon", vm->balloon != NULL, "channel", vm->channel != NULL, "shm",
		snapshot_shm(vm), "vram", snapshot_vram(vm), "dedup", snapshot_dedup(vm), "devices",
		devices, "disks", disks, "files", SNAPSHOT_STATE,
		snapshot_file_json(state->len, XXH3_64bits(state->buf, state->len)),
		SNAPSHOT_MEMORY, snapshot_file_json(mem->bytes, mem->sum));
	if (m && pages_bytes)
		json_object_set_new(json_object_get(m, "files"), SNAPSHOT_PAGES,
				    snapshot_file_json(pages_bytes, pages_sum));
	return m;
}

/* What this VM cannot snapshot yet; NULL: it can. */
static const char *snapshot_unsupported(const struct vm *vm)
{
	if (vm->mmu.cfg.handler != MMU_HANDLER_FAULTLINE)
		return "the baseline fault handlers keep no page state (--fault-handler)";
	if (vm->mmu.cfg.huge)
		return "guest RAM on huge pages cannot be restored from a file (--hugepages)";
	return NULL;
}

/* Pause, unless paused already, and wait for every vCPU to leave the guest. */
static int snapshot_pause(struct vm *vm, enum vm_pause *was, char *why)
{
	unsigned parked, halted;

	*was = vm__pause(vm);
	parked = vm__wait_parked(vm, SNAPSHOT_PARK_MS);
	pthread_mutex_lock(&vm->lock);
	halted = vm->nr_halted;
	pthread_mutex_unlock(&vm->lock);
	if (parked + halted >= vm->nr_vcpus)
		return 0;
	snprintf(why, SNAPSHOT_WHY_LEN,
		 "%u of %u vCPUs did not leave the guest within %d ms (one may wait in the "
		 "kernel for a page)",
		 vm->nr_vcpus - parked - halted, vm->nr_vcpus, SNAPSHOT_PARK_MS);
	return -1;
}

/* Why a diff cannot be taken now; NULL: it can. */
static const char *snapshot_no_diff(const struct vm *vm)
{
	if (!vm->mmu.cfg.track_writes)
		return "a diff needs the VM started with --diff-snapshots, which tracks the pages "
		       "written between snapshots";
	if (!vm->snap_id[0])
		return "no snapshot of this VM to build a diff on: take a full one first, or "
		       "restore the VM from one";
	if (!vm->snap_dir[0])
		return "the directory of the last snapshot is not known (an older faultline ctl "
		       "took it)";
	return NULL;
}

int vm__snapshot(struct vm *vm, const struct snapshot_request *req, json_t *reply, char *why)
{
	uint64_t t0 = mmu__now_ns(), t_pause, t_state, t_mem, pages_bytes = 0;
	struct snapshot_mem mem = {0};
	const char *unsupported = snapshot_unsupported(vm);
	enum vm_pause was = VM_PAUSED;
	char id[VM_SNAP_ID_LEN + 1];
	XXH64_hash_t pages_sum = 0;
	json_t *manifest, *disks, *base = json_null();
	struct blob b;
	int ret = -1, err;

	if (!unsupported && req->diff)
		unsupported = snapshot_no_diff(vm);
	if (unsupported) {
		snprintf(why, SNAPSHOT_WHY_LEN, "cannot snapshot this VM: %s", unsupported);
		return -1;
	}
	if (snapshot_check_fd(req->state_fd, "state", why) ||
	    snapshot_check_fd(req->memory_fd, "memory", why) ||
	    (req->diff && snapshot_check_fd(req->pages_fd, "list of pages", why)))
		return -1;
	if (snapshot_new_id(id)) {
		snprintf(why, SNAPSHOT_WHY_LEN,
			 "cannot make the snapshot's id: getrandom failed: %s", strerror(errno));
		return -1;
	}
	if (req->diff) {
		mem.diff = calloc(bitmap_words(vm->mmu.nr_pages) ?: 1, sizeof(unsigned long));
		base = json_pack("{s:s,s:s}", "dir", vm->snap_dir, "id", vm->snap_id);
		if (!mem.diff || !base) {
			snprintf(why, SNAPSHOT_WHY_LEN, "out of memory");
			free(mem.diff);
			json_decref(base);
			return -1;
		}
	}
	blob__init(&b);
	if (snapshot_pause(vm, &was, why))
		goto out;
	t_pause = ms_since(t0);
	if (snapshot_state(vm, &b, why))
		goto out;
	err = snapshot_pwrite(req->state_fd, b.buf, b.len, 0);
	if (!err && (inject__fail("snapshot.fsync") ?: fsync(req->state_fd)) < 0)
		err = -errno;
	if (err) {
		snprintf(why, SNAPSHOT_WHY_LEN, "cannot write the state file: %s", strerror(-err));
		goto out;
	}
	t_state = ms_since(t0) - t_pause;
	err = snapshot_memory(vm, req->memory_fd, &mem);
	if (err) {
		snprintf(why, SNAPSHOT_WHY_LEN, "cannot write the memory file: %s", strerror(-err));
		goto out;
	}
	if (req->diff &&
	    (err = snapshot_pages(vm, &mem, req->pages_fd, &pages_bytes, &pages_sum))) {
		snprintf(why, SNAPSHOT_WHY_LEN, "cannot write the list of pages: %s",
			 strerror(-err));
		goto out;
	}
	t_mem = ms_since(t0) - t_pause - t_state;
	disks = snapshot_disks(vm, why);
	if (!disks)
		goto out;
	manifest = snapshot_manifest(vm, &b, &mem, disks, id, base, pages_bytes, pages_sum);
	base = NULL; /* the manifest's now */
	if (!manifest) {
		snprintf(why, SNAPSHOT_WHY_LEN, "out of memory");
		goto out;
	}
	json_object_set_new(reply, "manifest", manifest);
	json_object_set_new(reply, "files",
			    json_pack("{s:I,s:I}", SNAPSHOT_STATE, (json_int_t)b.len,
				      SNAPSHOT_MEMORY, (json_int_t)mem.bytes));
	if (pages_bytes)
		json_object_set_new(json_object_get(reply, "files"), SNAPSHOT_PAGES,
				    json_integer((json_int_t)pages_bytes));
	json_object_set_new(reply, "pages_written", json_integer((json_int_t)mem.pages_written));
	if (req->diff)
		json_object_set_new(reply, "pages_in_diff",
				    json_integer((json_int_t)mem.pages_in_diff));
	json_object_set_new(reply, "times_ms",
			    json_pack("{s:I,s:I,s:I}", "pause", (json_int_t)t_pause, "state",
				      (json_int_t)t_state, "memory", (json_int_t)t_mem));
	ret = 0;
out:
	blob__free(&b);
	free(mem.diff);
	json_decref(base);
	/* The next diff builds on this one; on none after a failure or a lost write-protect. */
	if (!ret && !mem.reset_failed) {
		snprintf(vm->snap_id, sizeof(vm->snap_id), "%s", id);
		snprintf(vm->snap_dir, sizeof(vm->snap_dir), "%s",
			 req->dir && strlen(req->dir) < sizeof(vm->snap_dir) ? req->dir : "");
	} else if (mem.reset) {
		vm->snap_id[0] = '\0';
	}
	if (mem.reset_failed)
		pr_err("warning: cannot write-protect guest RAM again after the snapshot: the next "
		       "one must be full (--diff is refused)");
	if (was == VM_RUNNING && (req->resume || ret))
		vm__resume(vm);
	json_object_set_new(reply, "state",
			    json_string(vm__pause_name(
				    was == VM_RUNNING && req->resume ? VM_RUNNING : VM_PAUSED)));
	return ret;
}
