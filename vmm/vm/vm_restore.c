/*
 * Starting from a snapshot: check its manifest and state file before
 * anything is created, then give a VM of the same shape its state. Guest
 * memory is the backing file of the fault engine, read page by page as
 * the guest touches it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/file.h"
#include "lib/log.h"
#include "lib/status.h"
#include "vmm/kvm/kvm_state.h"
#include "vmm/sys/seccomp.h"
#include "vmm/vm/snapshot.h"
#include "vmm/vm/ws.h"

#define SNAPSHOT_MAGIC 0x53534c46U /* "FLSS" */

/* Report a bad snapshot: the file, what is wrong, the field. Returns 78. */
static __attribute__((format(printf, 3, 4))) int
snapshot_bad(const struct snapshot *s, const char *file, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_err("cannot restore the snapshot: %s (file: %s/%s)", msg, s->dir, file);
	return FL_EXIT_SNAPSHOT;
}

/* The object member @key of @o, of JSON type @type; NULL when it is not. */
static json_t *manifest_get(json_t *o, const char *key, json_type type)
{
	json_t *v = json_object_get(o, key);

	return v && json_typeof(v) == type ? v : NULL;
}

static int manifest_u64(const struct snapshot *s, json_t *o, const char *path, const char *key,
			uint64_t min, uint64_t max, uint64_t *out)
{
	json_t *v = manifest_get(o, key, JSON_INTEGER);

	if (!v || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
	    (uint64_t)json_integer_value(v) > max)
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected a whole number of %" PRIu64 "..%" PRIu64
				    " (field: %s%s)",
				    min, max, path, key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int manifest_hex(const struct snapshot *s, json_t *o, const char *path, const char *key,
			uint64_t *out)
{
	json_t *v = manifest_get(o, key, JSON_STRING);
	const char *t = v ? json_string_value(v) : NULL;
	char *end;

	errno = 0;
	*out = t ? strtoull(t, &end, 16) : 0;
	if (!t || !*t || *end || errno)
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected a hexadecimal string (field: %s%s)", path, key);
	return 0;
}

/* Read @name into a buffer of at most @max bytes. 0 or an exit status. */
static int snapshot_read(struct snapshot *s, const char *name, size_t max, uint8_t **buf,
			 size_t *len)
{
	char path[SNAPSHOT_PATH_MAX + 32];
	int err = 0;

	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	switch (file__read_all(path, max, buf, len, &err)) {
	case FILE_OK: return 0;
	case FILE_OPEN:
	case FILE_NOT_REGULAR:
		pr_err("cannot restore the snapshot: cannot read it: %s (file: %s)",
		       err ? strerror(err) : "not a regular file", path);
		return FL_EXIT_NOINPUT;
	case FILE_TOO_BIG:
		return snapshot_bad(s, name, "%lld bytes, more than the %zu a snapshot's %s has",
				    (long long)*len, max, name);
	case FILE_READ:
		pr_err("cannot restore the snapshot: cannot read it: %s (file: %s)",
		       err ? strerror(err) : "it shrank while read", path);
		return FL_EXIT_NOINPUT;
	case FILE_NO_MEMORY: break;
	}
	pr_err("cannot restore the snapshot: out of memory (file: %s)", path);
	return FL_EXIT_INTERNAL;
}

/* vm.dedup: null, or its mode and every knob, each within its bounds. */
static int manifest_dedup(struct snapshot *s, json_t *d)
{
	const char *mode;
	uint64_t v = 0;
	int ret = 0;

	s->dedup = DEDUP_OFF;
	dedup__default_knobs(&s->dedup_knobs);
	if (json_is_null(d))
		return 0;
	mode = json_string_value(json_object_get(d, "mode"));
	if (mode && !strcmp(mode, "on"))
		s->dedup = DEDUP_ON;
	else if (mode && !strcmp(mode, "zero"))
		s->dedup = DEDUP_ZERO;
	else
		return snapshot_bad(
			s, SNAPSHOT_MANIFEST,
			"expected null, or a mode \"on\" or \"zero\" (field: vm.dedup)");
#define MANIFEST_KNOB(name, def, min, max, help)                                                   \
	ret = ret ?: manifest_u64(s, d, "vm.dedup.", #name, min, max, &v);                         \
	s->dedup_knobs.name = v;
	DEDUP_KNOBS(MANIFEST_KNOB)
#undef MANIFEST_KNOB
	return ret;
}

/* A BAR's size: 4 KiB..256 MiB, a multiple of 4 KiB. */
static int manifest_bar_size(const struct snapshot *s, json_t *o, const char *path, const char *key,
			     uint64_t *out)
{
	int ret = manifest_u64(s, o, path, key, 4096, 256ULL << 20, out);

	if (!ret && *out % 4096)
		ret = snapshot_bad(s, SNAPSHOT_MANIFEST,
				   "%" PRIu64 " bytes is not a multiple of 4 KiB (field: %s%s)",
				   *out, path, key);
	return ret;
}

/* vm.shm: null, or the file, its size and the doorbell (a path or null). */
static int manifest_shm(struct snapshot *s, json_t *o)
{
	json_t *bell = json_object_get(o, "doorbell");

	if (json_is_null(o))
		return 0;
	s->shm_path = json_string_value(json_object_get(o, "path"));
	if (!json_is_object(o) || !s->shm_path || !s->shm_path[0] ||
	    !(json_is_null(bell) || json_is_string(bell)))
		return snapshot_bad(
			s, SNAPSHOT_MANIFEST,
			"expected null, or a path, bytes and a doorbell (field: vm.shm)");
	s->shm_doorbell = json_string_value(bell);
	return manifest_bar_size(s, o, "vm.shm.", "bytes", &s->shm_size);
}

/* vm.vram: null, or its size and pool. */
static int manifest_vram(struct snapshot *s, json_t *o)
{
	int ret;

	if (json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected null, or bytes and a pool (field: vm.vram)");
	ret = manifest_bar_size(s, o, "vm.vram.", "bytes", &s->vram_size);
	ret = ret ?: manifest_bar_size(s, o, "vm.vram.", "pool", &s->vram_pool);
	if (!ret && s->vram_pool > s->vram_size)
		ret = snapshot_bad(s, SNAPSHOT_MANIFEST,
				   "a pool larger than the BAR (field: vm.vram.pool)");
	return ret;
}

static int manifest_vm(struct snapshot *s, json_t *vm)
{
	const char *board, *on_oom;
	uint64_t v = 0;
	int ret;

	board = json_string_value(manifest_get(vm, "board", JSON_STRING));
	if (!board || (strcmp(board, "linux") && strcmp(board, "test")))
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected \"linux\" or \"test\" (field: vm.board)");
	s->linux_board = !strcmp(board, "linux");
	ret = manifest_u64(s, vm, "vm.", "mem", VM_MEM_MIN, VM_MEM_MAX, &s->mem);
	if (!ret && s->mem % VM_MEM_ALIGN)
		ret = snapshot_bad(s, SNAPSHOT_MANIFEST,
				   "%" PRIu64 " bytes is not a multiple of 2 MiB (field: vm.mem)",
				   s->mem);
	ret = ret ?: manifest_u64(s, vm, "vm.", "vcpus", 1, VM_VCPUS_MAX, &v);
	s->vcpus = (unsigned)v;
	ret = ret
		      ?: manifest_u64(s, vm, "vm.", "budget_pages", 1, s->mem / MMU_PAGE_SIZE,
				      &s->limit_pages);
	ret = ret ?: manifest_u64(s, vm, "vm.", "on_oom_timeout_s", 0, 86400, &v);
	if (ret)
		return ret;
	s->oom_pause_timeout_s = (unsigned)v;
	on_oom = json_string_value(manifest_get(vm, "on_oom", JSON_STRING));
	if (on_oom && !strcmp(on_oom, "kill"))
		s->on_oom = VM_OOM_KILL;
	else if (on_oom && !strcmp(on_oom, "mce"))
		s->on_oom = VM_OOM_MCE;
	else if (on_oom && !strcmp(on_oom, "pause"))
		s->on_oom = VM_OOM_PAUSE;
	else
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected \"kill\", \"mce\" or \"pause\" (field: vm.on_oom)");
	if (!json_is_boolean(json_object_get(vm, "balloon")))
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected true or false (field: vm.balloon)");
	s->balloon = json_is_true(json_object_get(vm, "balloon"));
	if (!json_is_boolean(json_object_get(vm, "channel")))
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected true or false (field: vm.channel)");
	s->channel = json_is_true(json_object_get(vm, "channel"));
	ret = manifest_shm(s, json_object_get(vm, "shm"));
	ret = ret ?: manifest_vram(s, json_object_get(vm, "vram"));
	if (ret)
		return ret;
	return manifest_dedup(s, json_object_get(vm, "dedup"));
}

static int manifest_host(struct snapshot *s, json_t *host)
{
	const char *vendor = json_string_value(manifest_get(host, "cpu_vendor", JSON_STRING));
	json_t *cpuid = manifest_get(host, "cpuid", JSON_OBJECT);
	char mine[13], path[32];
	unsigned i;

	kvm__cpu_vendor(mine);
	if (!vendor || !cpuid)
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected host.cpu_vendor and host.cpuid (field: host)");
	if (strcmp(vendor, mine))
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "taken on a %s host, this one is %s (field: host.cpu_vendor)",
				    vendor, mine);
	for (i = 0; i < KVM_CPUID_WORDS; i++) {
		uint64_t w;
		int ret = manifest_hex(s, cpuid, "host.cpuid.", kvm_cpuid_words[i], &w);

		if (ret)
			return ret;
		if (w > UINT32_MAX) {
			snprintf(path, sizeof(path), "%s", kvm_cpuid_words[i]);
			return snapshot_bad(s, SNAPSHOT_MANIFEST,
					    "more than 32 bits (field: host.cpuid.%s)", path);
		}
		s->cpuid[i] = (uint32_t)w;
	}
	return 0;
}

/* files.NAME: its size, and its checksum when @data is there to check. */
static int manifest_file(struct snapshot *s, json_t *files, const char *name, const uint8_t *data,
			 uint64_t size)
{
	json_t *f = manifest_get(files, name, JSON_OBJECT);
	char path[64];
	uint64_t bytes, sum;
	int ret;

	snprintf(path, sizeof(path), "files.%s.", name);
	if (!f)
		return snapshot_bad(s, SNAPSHOT_MANIFEST, "missing (field: files.%s)", name);
	ret = manifest_u64(s, f, path, "bytes", 0, UINT64_MAX >> 1, &bytes);
	ret = ret ?: manifest_hex(s, f, path, "xxh3", &sum);
	if (ret)
		return ret;
	if (bytes != size)
		return snapshot_bad(s, name,
				    "%" PRIu64 " bytes, the manifest says %" PRIu64
				    " (field: files.%s.bytes)",
				    size, bytes, name);
	if (data && XXH3_64bits(data, size) != sum)
		return snapshot_bad(s, name,
				    "its checksum does not match: the file changed or is corrupt "
				    "(field: files.%s.xxh3)",
				    name);
	return 0;
}

static int snapshot_memory_size(struct snapshot *s, uint64_t *size)
{
	struct stat st;

	snprintf(s->memory_path, sizeof(s->memory_path), "%s/%s", s->dir, SNAPSHOT_MEMORY);
	if (stat(s->memory_path, &st) < 0 || !S_ISREG(st.st_mode)) {
		pr_err("cannot restore the snapshot: cannot read it: %s (file: %s)",
		       errno ? strerror(errno) : "not a regular file", s->memory_path);
		return FL_EXIT_NOINPUT;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

/* @o's "id": 32 lowercase hex digits, into @id. */
static int manifest_id(const struct snapshot *s, json_t *o, const char *path, char *id)
{
	const char *v = json_string_value(manifest_get(o, "id", JSON_STRING));

	if (!v || strlen(v) != VM_SNAP_ID_LEN || strspn(v, "0123456789abcdef") != VM_SNAP_ID_LEN)
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected %d hexadecimal digits (field: %sid)", VM_SNAP_ID_LEN,
				    path);
	memcpy(id, v, VM_SNAP_ID_LEN + 1);
	return 0;
}

/* "base": null (a full snapshot), or the directory and id of a diff's base. */
static int manifest_base(struct snapshot *s, json_t *base)
{
	const char *dir = json_string_value(json_object_get(base, "dir"));

	s->base_dir[0] = '\0';
	if (json_is_null(base))
		return 0;
	if (!json_is_object(base) || !dir || dir[0] != '/' || strlen(dir) >= sizeof(s->base_dir))
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected null, or an absolute dir and an id (field: base)");
	snprintf(s->base_dir, sizeof(s->base_dir), "%s", dir);
	return manifest_id(s, base, "base.", s->base_id);
}

int snapshot__parse_manifest(struct snapshot *s, const char *text, size_t len)
{
	json_error_t jerr;
	uint64_t version;
	int ret;

	s->manifest = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(s->manifest))
		return snapshot_bad(s, SNAPSHOT_MANIFEST, "not a JSON object: %s (line %d)",
				    s->manifest ? "another value" : jerr.text, jerr.line);
	ret = manifest_u64(s, s->manifest, "", "faultline_snapshot", 0, UINT32_MAX, &version);
	if (ret)
		return ret;
	if (version != SNAPSHOT_VERSION)
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "a snapshot of version %" PRIu64 ", this faultline reads %d "
				    "(field: faultline_snapshot)",
				    version, SNAPSHOT_VERSION);
	ret = manifest_id(s, s->manifest, "", s->id);
	ret = ret ?: manifest_base(s, json_object_get(s->manifest, "base"));
	ret = ret ?: manifest_host(s, manifest_get(s->manifest, "host", JSON_OBJECT));
	return ret ?: manifest_vm(s, manifest_get(s->manifest, "vm", JSON_OBJECT));
}

/*
 * The snapshot's disks: their paths, unless --disk gave as many others;
 * each image must have the size it had, and one at its own path the same
 * modification time (what the guest wrote before the snapshot is on it,
 * and nothing since).
 */
static int snapshot_disks(struct snapshot *s, struct run_config *cfg)
{
	json_t *disks = manifest_get(s->manifest, "disks", JSON_ARRAY), *d;
	bool given = cfg->nr_disks != 0;
	size_t i;

	if (!disks || json_array_size(disks) > VM_MAX_DISKS)
		return snapshot_bad(s, SNAPSHOT_MANIFEST,
				    "expected at most %d disks (field: disks)", VM_MAX_DISKS);
	if (given && cfg->nr_disks != json_array_size(disks)) {
		pr_err("usage: the snapshot has %zu disks; --disk gave %u (--restore %s)",
		       json_array_size(disks), cfg->nr_disks, s->dir);
		return FL_EXIT_USAGE;
	}
	json_array_foreach(disks, i, d)
	{
		const char *path = json_string_value(manifest_get(d, "path", JSON_STRING));
		json_t *ro = json_object_get(d, "read_only");
		char field[32];
		uint64_t bytes, mtime;
		struct stat st;
		int ret;

		snprintf(field, sizeof(field), "disks[%zu].", i);
		if (!path || !json_is_boolean(ro))
			return snapshot_bad(s, SNAPSHOT_MANIFEST,
					    "expected a path and read_only (field: disks[%zu])", i);
		ret = manifest_u64(s, d, field, "bytes", 0, INT64_MAX, &bytes);
		ret = ret ?: manifest_u64(s, d, field, "mtime_ns", 0, INT64_MAX, &mtime);
		if (ret)
			return ret;
		if (!given)
			cfg->disks[i].path = path;
		cfg->disks[i].read_only = json_is_true(ro);
		if (stat(cfg->disks[i].path, &st) < 0) {
			pr_err("cannot restore the snapshot: cannot read disk %zu: %s (file: %s)",
			       i, strerror(errno), cfg->disks[i].path);
			return FL_EXIT_NOINPUT;
		}
		if ((uint64_t)st.st_size != bytes) {
			pr_err("cannot restore the snapshot: disk %zu is %lld bytes, the "
			       "snapshot's "
			       "was %" PRIu64 " (field: disks[%zu].bytes) (file: %s)",
			       i, (long long)st.st_size, bytes, i, cfg->disks[i].path);
			return FL_EXIT_SNAPSHOT;
		}
		if (!given &&
		    (uint64_t)(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec) != mtime) {
			pr_err("cannot restore the snapshot: disk %zu changed since the snapshot "
			       "(field: disks[%zu].mtime_ns) (file: %s)",
			       i, i, cfg->disks[i].path);
			return FL_EXIT_SNAPSHOT;
		}
	}
	cfg->nr_disks = (unsigned)json_array_size(disks);
	return 0;
}

/* A diff's pages file, checked against its manifest; into a new layer of @top. */
static int snapshot_layer(struct snapshot *top, struct snapshot *d)
{
	struct snapshot_layer *l = &top->layers[top->nr_layers];
	json_t *files = manifest_get(d->manifest, "files", JSON_OBJECT);
	size_t want = bitmap_words(d->mem / MMU_PAGE_SIZE) * sizeof(unsigned long), len = 0;
	uint8_t *pages = NULL;
	int ret;

	if (top->nr_layers == MMU_MAX_LAYERS)
		return snapshot_bad(d, SNAPSHOT_MANIFEST,
				    "more than %d diffs on one full snapshot (field: base)",
				    MMU_MAX_LAYERS);
	ret = snapshot_read(d, SNAPSHOT_PAGES, want, &pages, &len);
	ret = ret ?: manifest_file(d, files, SNAPSHOT_PAGES, pages, len);
	if (!ret && len != want)
		ret = snapshot_bad(d, SNAPSHOT_PAGES, "%zu bytes for %" PRIu64 " pages", len,
				   (uint64_t)(d->mem / MMU_PAGE_SIZE));
	if (ret) {
		free(pages);
		return ret;
	}
	snprintf(l->memory_path, sizeof(l->memory_path), "%s", d->memory_path);
	l->pages = (unsigned long *)pages;
	top->nr_layers++;
	return 0;
}

/* The same VM: board, RAM and vCPUs. */
static int snapshot_same_vm(const struct snapshot *top, const struct snapshot *b)
{
	if (b->linux_board != top->linux_board || b->mem != top->mem || b->vcpus != top->vcpus)
		return snapshot_bad(b, SNAPSHOT_MANIFEST,
				    "the base of %s is of another VM (its board, RAM or vCPUs) "
				    "(field: vm)",
				    top->dir);
	return 0;
}

/*
 * A diff's bases, down to the full snapshot: each one's manifest, id and
 * memory file are checked, and each diff's pages read. The full one's
 * memory becomes the backing file.
 */
static int snapshot_bases(struct snapshot *s)
{
	char dir[SNAPSHOT_PATH_MAX], id[VM_SNAP_ID_LEN + 1];
	int ret = snapshot_layer(s, s);

	snprintf(dir, sizeof(dir), "%s", s->base_dir);
	snprintf(id, sizeof(id), "%s", s->base_id);
	while (!ret) {
		struct snapshot b = {0};
		uint8_t *text = NULL;
		uint64_t size = 0;
		size_t len;

		snprintf(b.dir, sizeof(b.dir), "%s", dir);
		ret = snapshot_read(&b, SNAPSHOT_MANIFEST, 1 << 20, &text, &len);
		ret = ret ?: snapshot__parse_manifest(&b, (const char *)text, len);
		free(text);
		if (!ret && strcmp(b.id, id))
			ret = snapshot_bad(&b, SNAPSHOT_MANIFEST,
					   "another snapshot than the base a diff was taken on: id "
					   "%s, the diff's base is %s (field: id)",
					   b.id, id);
		ret = ret ?: snapshot_same_vm(s, &b);
		ret = ret ?: snapshot_memory_size(&b, &size);
		if (!ret && size != s->mem)
			ret = snapshot_bad(&b, SNAPSHOT_MEMORY,
					   "%" PRIu64 " bytes for %" PRIu64 " bytes of RAM", size,
					   s->mem);
		if (!ret && !b.base_dir[0]) {
			snprintf(s->backing_path, sizeof(s->backing_path), "%s", b.memory_path);
			snapshot__close(&b);
			return 0;
		}
		ret = ret ?: snapshot_layer(s, &b);
		snprintf(dir, sizeof(dir), "%s", b.base_dir);
		snprintf(id, sizeof(id), "%s", b.base_id);
		snapshot__close(&b);
	}
	return ret;
}

int snapshot__open(struct snapshot *s, const char *dir, struct run_config *cfg)
{
	uint8_t *text = NULL;
	size_t len;
	uint64_t mem_size;
	json_t *files;
	int ret;

	memset(s, 0, sizeof(*s));
	if (strlen(dir) >= sizeof(s->dir)) {
		pr_err("cannot restore the snapshot: the path is too long (--restore %s)", dir);
		return FL_EXIT_USAGE;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	ret = snapshot_read(s, SNAPSHOT_MANIFEST, 1 << 20, &text, &len);
	if (ret)
		return ret;
	ret = snapshot__parse_manifest(s, (const char *)text, len);
	free(text);
	if (ret)
		return ret;
	files = manifest_get(s->manifest, "files", JSON_OBJECT);
	ret = snapshot_read(s, SNAPSHOT_STATE, SNAPSHOT_STATE_MAX, &s->state, &s->state_len);
	ret = ret ?: manifest_file(s, files, SNAPSHOT_STATE, s->state, s->state_len);
	ret = ret ?: snapshot_memory_size(s, &mem_size);
	/* The memory is not read here: the guest reads it page by page. */
	ret = ret ?: manifest_file(s, files, SNAPSHOT_MEMORY, NULL, mem_size);
	if (!ret && mem_size != s->mem)
		ret = snapshot_bad(s, SNAPSHOT_MEMORY,
				   "%" PRIu64 " bytes for %" PRIu64 " bytes of RAM (field: vm.mem)",
				   mem_size, s->mem);
	snprintf(s->backing_path, sizeof(s->backing_path), "%s", s->memory_path);
	if (!ret && s->base_dir[0])
		ret = snapshot_bases(s);
	ret = ret ?: snapshot_disks(s, cfg);
	if (ret)
		return ret;
	if (s->channel != (cfg->channel != NULL)) {
		pr_err("usage: %s (--restore %s)",
		       s->channel
			       ? "the snapshot has a channel: give --channel SOCKET, a new socket "
				 "for its host side"
			       : "the snapshot has no channel: --channel cannot add one",
		       s->dir);
		return FL_EXIT_USAGE;
	}
	cfg->boot_linux = s->linux_board;
	cfg->balloon = s->balloon;
	cfg->shm_path = s->shm_path;
	cfg->shm_size = s->shm_size;
	cfg->shm_doorbell = s->shm_doorbell;
	cfg->vram_size = s->vram_size;
	cfg->vram_pool = s->vram_pool;
	cfg->dedup = s->dedup;
	cfg->dedup_knobs = s->dedup_knobs;
	cfg->mem = s->mem;
	cfg->vcpus = s->vcpus;
	cfg->backing_file = s->backing_path;
	cfg->cmdline = "";
	if (!cfg->mem_limit_given)
		cfg->mem_limit = s->limit_pages * MMU_PAGE_SIZE;
	if (cfg->mem_limit > cfg->mem)
		cfg->mem_limit = cfg->mem;
	if (!cfg->on_oom_given) {
		cfg->on_oom = s->on_oom;
		cfg->oom_pause_timeout_s = s->oom_pause_timeout_s;
	}
	if (cfg->on_oom == VM_OOM_PAUSE && !cfg->api) {
		pr_err("usage: the snapshot's --on-oom pause needs --api SOCKET; give one, or "
		       "another --on-oom");
		return FL_EXIT_USAGE;
	}
	if (!cfg->fault_threads)
		cfg->fault_threads = 1 + (cfg->vcpus - 1) / 4;
	return 0;
}

void snapshot__close(struct snapshot *s)
{
	while (s->nr_layers)
		free(s->layers[--s->nr_layers].pages);
	json_decref(s->manifest);
	free(s->state);
	s->manifest = NULL;
	s->state = NULL;
}

/* Report a state file that does not fit; returns -EPROTO. */
static int restore_bad(const struct snapshot *s, const char *why)
{
	pr_err("cannot restore the snapshot: %s (file: %s/%s)", why, s->dir, SNAPSHOT_STATE);
	return -EPROTO;
}

static int restore_header(const struct snapshot *s, struct blob_reader *r)
{
	uint32_t magic = blob__get_u32(r);
	uint16_t version = blob__get_u16(r);

	if (!r->err && magic != SNAPSHOT_MAGIC)
		blob__fail(r, "not a faultline state file (magic 0x%08x)", magic);
	else if (!r->err && version != SNAPSHOT_VERSION)
		blob__fail(r, "state of version %u, this faultline reads %d", version,
			   SNAPSHOT_VERSION);
	return r->err ? restore_bad(s, r->why) : 0;
}

static int restore_mmu(const struct snapshot *s, struct blob_reader *r)
{
	struct blob_reader sub;
	uint16_t version;

	if (blob__enter(r, "mmu", 1, &version, &sub))
		return restore_bad(s, r->why);
	(void)blob__get_u64(&sub); /* the budget: the manifest's, or --mem-limit */
	if (blob_reader__done(&sub))
		return restore_bad(s, sub.why);
	return 0;
}

static int restore_cpuid(struct vm *vm, const struct snapshot *s)
{
	uint32_t bits;
	int i = kvm__cpuid_missing(&vm->kvm, s->cpuid, &bits);
	char why[160];

	if (i < 0)
		return 0;
	snprintf(why, sizeof(why),
		 "this host lacks CPU features the snapshot's vCPUs were given: CPUID %s bits "
		 "0x%08x (field: host.cpuid.%s)",
		 kvm_cpuid_words[i], bits, kvm_cpuid_words[i]);
	pr_err("cannot restore the snapshot: %s (file: %s/%s)", why, s->dir, SNAPSHOT_MANIFEST);
	return -EPROTO;
}

/* A diff's memory files over the full snapshot's, oldest first; its id is the VM's last. */
static int restore_layers(struct vm *vm, const struct snapshot *s)
{
	char real[PATH_MAX];
	unsigned i;

	for (i = s->nr_layers; i-- > 0;) {
		int fd = open(s->layers[i].memory_path, O_RDONLY | O_CLOEXEC), ret;

		if (fd < 0) {
			pr_err("cannot restore the snapshot: cannot read it: %s (file: %s)",
			       strerror(errno), s->layers[i].memory_path);
			return -EPROTO;
		}
		ret = mmu__add_layer(&vm->mmu, fd, s->layers[i].pages);
		if (ret) {
			close(fd);
			pr_err("cannot restore the snapshot: %s (file: %s)", strerror(-ret),
			       s->layers[i].memory_path);
			return -EPROTO;
		}
	}
	snprintf(vm->snap_id, sizeof(vm->snap_id), "%s", s->id);
	if (realpath(s->dir, real) && strlen(real) < sizeof(vm->snap_dir))
		snprintf(vm->snap_dir, sizeof(vm->snap_dir), "%s", real);
	return 0;
}

int vm__restore(struct vm *vm, const struct snapshot *s)
{
	struct blob_reader r, devices;
	uint64_t clock_ns;
	uint16_t version;
	unsigned i;
	int ret;

	ret = restore_cpuid(vm, s);
	ret = ret ?: vm__create_vcpus(vm, 0);
	/*
	 * KVM touches guest pages while it takes some state: the kvmclock MSRs
	 * map the guest's clock page at once (KVM_SET_MSRS). Those are faults
	 * on the memory file, served by the handlers, which start now.
	 */
	ret = ret ?: restore_layers(vm, s);
	/* The plan before the handlers start: they prefetch from their first idle moment. */
	ret = ret ?: vm__prefetch(vm, s->prefetch, s->ws_pages, s->ws_len);
	if (!ret)
		seccomp__prepare(); /* before the handlers: no thread may open a file later */
	ret = ret ?: mmu__start(&vm->mmu);
	if (ret)
		return ret;
	blob_reader__init(&r, s->state, s->state_len);
	ret = restore_header(s, &r);
	if (ret)
		return ret;
	ret = kvm__restore(&vm->kvm, vm->boot_linux, &r, &clock_ns);
	if (ret)
		return r.err ? restore_bad(s, r.why) : -EPROTO;
	ret = restore_mmu(s, &r);
	if (ret)
		return ret;
	if (blob__enter(&r, "devices", 1, &version, &devices))
		return restore_bad(s, r.why);
	if (vm__restore_devices(vm, &devices))
		return restore_bad(s, "a device's state does not fit (above)");
	if (blob__get_u32(&r) != vm->nr_vcpus && !r.err)
		blob__fail(&r, "the state of a number of vCPUs other than %u", vm->nr_vcpus);
	for (i = 0; !r.err && i < vm->nr_vcpus; i++) {
		ret = vcpu__restore(&vm->vcpus[i], vm->boot_linux, &r, &vm->vcpus[i].halted);
		if (ret && !r.err)
			return -EPROTO; /* KVM refused it: reported */
	}
	if (blob_reader__done(&r))
		return restore_bad(s, r.why);
	/* A restored guest is another VM than the one snapshotted: a new generation. */
	if (vm->boot_linux && vm__new_generation(vm, true))
		return -EPROTO;
	vm->restored = true;
	ret = kvm__set_clock(&vm->kvm, clock_ns);
	if (ret) {
		pr_err("KVM_SET_CLOCK failed: %s", strerror(-ret));
		return -EPROTO;
	}
	return 0;
}
