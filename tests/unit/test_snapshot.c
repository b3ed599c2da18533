/*
 * Reading a snapshot back (vmm/vm/vm_restore.c) without KVM: the manifest's
 * checks, each refusal naming the file and the field, and the checks of
 * the state and memory files against it (size, checksum). A snapshot is
 * untrusted input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/log.h"
#include "lib/status.h"
#include "lib/file.h"
#include "tests/unit/unit.h"
#include "vmm/kvm/kvm_state.h"
#include "vmm/vm/snapshot.h"

#define CPUID                                                                                      \
	"\"cpuid\": {\"1.ecx\": \"0x1\", \"1.edx\": \"0x2\", \"7.0.ebx\": \"0\", \"7.0.ecx\": "    \
	"\"0\", \"7.0.edx\": \"0\", \"0x80000001.ecx\": \"0\", \"0x80000001.edx\": \"0\", "        \
	"\"0xd.0.eax\": \"0x7\"}"

#define SNAP_ID "0123456789abcdef0123456789abcdef"

/* The id and base the next manifest() has: a full snapshot unless a test says. */
static const char *cur_id = SNAP_ID, *cur_base = "null";

static char log_buf[1024];

/* A manifest of this host's CPU vendor, with @vm as its "vm" and @files as its "files". */
static char *manifest(const char *version, const char *vm, const char *files)
{
	char vendor[13], *text;

	kvm__cpu_vendor(vendor);
	ck_assert_int_gt(asprintf(&text,
				  "{\"faultline_snapshot\": %s, \"id\": \"%s\", \"base\": %s, "
				  "\"host\": {\"cpu_vendor\": \"%s\", "
				  "%s}, \"vm\": %s, \"disks\": [], \"files\": %s}",
				  version, cur_id, cur_base, vendor, CPUID, vm, files),
			 0);
	return text;
}

#define GOOD_VM                                                                                    \
	"{\"board\": \"linux\", \"mem\": 67108864, \"vcpus\": 2, \"budget_pages\": 8192, "         \
	"\"on_oom\": \"pause\", \"on_oom_timeout_s\": 60, \"balloon\": true, \"channel\": false, " \
	"\"shm\": null, \"vram\": null, \"dedup\": null}"

static int parse(const char *text, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "D");
	log_buf[0] = '\0';
	log__capture(log_buf, sizeof(log_buf));
	return snapshot__parse_manifest(s, text, strlen(text));
}

START_TEST(a_good_manifest_reads_back)
{
	char *text = manifest("1", GOOD_VM, "{}");
	struct snapshot s;

	ck_assert_int_eq(parse(text, &s), 0);
	ck_assert(s.linux_board);
	ck_assert_uint_eq(s.mem, 64 << 20);
	ck_assert_uint_eq(s.vcpus, 2);
	ck_assert_uint_eq(s.limit_pages, 8192);
	ck_assert_int_eq(s.on_oom, VM_OOM_PAUSE);
	ck_assert_uint_eq(s.oom_pause_timeout_s, 60);
	ck_assert_uint_eq(s.cpuid[0], 1);
	ck_assert_uint_eq(s.cpuid[7], 7);
	ck_assert_int_eq(s.dedup, DEDUP_OFF);
	ck_assert_str_eq(log_buf, "");
	snapshot__close(&s);
	free(text);
	text = manifest("1",
			"{\"board\": \"test\", \"mem\": 67108864, \"vcpus\": 1, \"budget_pages\": "
			"1, \"on_oom\": \"kill\", \"on_oom_timeout_s\": 0, \"balloon\": false, "
			"\"channel\": false, \"shm\": null, \"vram\": null, "
			"\"dedup\": {\"mode\": \"on\", \"run\": 1, \"pages_to_scan\": 4096, "
			"\"sleep_ms\": 1, \"max_page_sharing\": 256, \"map_limit\": 0}}",
			"{}");
	ck_assert_int_eq(parse(text, &s), 0);
	ck_assert_int_eq(s.dedup, DEDUP_ON);
	ck_assert_uint_eq(s.dedup_knobs.pages_to_scan, 4096);
	ck_assert_uint_eq(s.dedup_knobs.sleep_ms, 1);
	ck_assert(!s.channel && !s.shm_path && !s.vram_size);
	snapshot__close(&s);
	free(text);
	text = manifest("1",
			"{\"board\": \"test\", \"mem\": 67108864, \"vcpus\": 1, \"budget_pages\": "
			"1, \"on_oom\": \"kill\", \"on_oom_timeout_s\": 0, \"balloon\": false, "
			"\"channel\": true, \"shm\": {\"path\": \"/tmp/s\", \"bytes\": 8192, "
			"\"doorbell\": null}, \"vram\": {\"bytes\": 65536, \"pool\": 8192}, "
			"\"dedup\": null}",
			"{}");
	ck_assert_int_eq(parse(text, &s), 0);
	ck_assert(s.channel);
	ck_assert_str_eq(s.shm_path, "/tmp/s");
	ck_assert_ptr_null(s.shm_doorbell);
	ck_assert_uint_eq(s.shm_size, 8192);
	ck_assert_uint_eq(s.vram_size, 65536);
	ck_assert_uint_eq(s.vram_pool, 8192);
	snapshot__close(&s);
	free(text);
	text = manifest("1",
			"{\"board\": \"test\", \"mem\": 67108864, \"vcpus\": 1, \"budget_pages\": "
			"1, \"on_oom\": \"kill\", \"on_oom_timeout_s\": 0, \"balloon\": false, "
			"\"channel\": false, \"shm\": null, \"vram\": null, "
			"\"dedup\": {\"mode\": \"on\", \"run\": 7}}",
			"{}");
	ck_assert_int_eq(parse(text, &s), FL_EXIT_SNAPSHOT);
	ck_assert_str_eq(log_buf, "faultline: cannot restore the snapshot: expected a whole number "
				  "of 0..2 (field: vm.dedup.run) (file: D/manifest.json)\n");
	snapshot__close(&s);
	free(text);
}
END_TEST

static const struct bad_manifest {
	const char *version, *vm, *why;
} bad_manifests[] = {
	{"2", GOOD_VM,
	 "a snapshot of version 2, this faultline reads 1 (field: faultline_snapshot)"},
	{"\"1\"", GOOD_VM, "expected a whole number of 0..4294967295 (field: faultline_snapshot)"},
	{"1", "{\"board\": \"arm\"}", "expected \"linux\" or \"test\" (field: vm.board)"},
	{"1",
	 "{\"board\": \"test\", \"mem\": 67108865, \"vcpus\": 2, \"budget_pages\": 1, \"on_oom\": "
	 "\"kill\", \"on_oom_timeout_s\": 0}",
	 "67108865 bytes is not a multiple of 2 MiB (field: vm.mem)"},
	{"1",
	 "{\"board\": \"test\", \"mem\": 67108864, \"vcpus\": 0, \"budget_pages\": 1, \"on_oom\": "
	 "\"kill\", \"on_oom_timeout_s\": 0}",
	 "expected a whole number of 1..64 (field: vm.vcpus)"},
	{"1",
	 "{\"board\": \"test\", \"mem\": 67108864, \"vcpus\": 1, \"budget_pages\": 16385, "
	 "\"on_oom\": \"kill\", \"on_oom_timeout_s\": 0}",
	 "expected a whole number of 1..16384 (field: vm.budget_pages)"},
	{"1",
	 "{\"board\": \"test\", \"mem\": 67108864, \"vcpus\": 1, \"budget_pages\": 1, \"on_oom\": "
	 "\"maybe\", \"on_oom_timeout_s\": 0}",
	 "expected \"kill\", \"mce\" or \"pause\" (field: vm.on_oom)"},
#define VM_UP_TO_BALLOON                                                                           \
	"{\"board\": \"test\", \"mem\": 67108864, \"vcpus\": 1, \"budget_pages\": 1, \"on_oom\": " \
	"\"kill\", \"on_oom_timeout_s\": 0, \"balloon\": false, "
	{"1", VM_UP_TO_BALLOON "\"shm\": null}", "expected true or false (field: vm.channel)"},
	{"1", VM_UP_TO_BALLOON "\"channel\": false, \"shm\": {\"bytes\": 4096}}",
	 "expected null, or a path, bytes and a doorbell (field: vm.shm)"},
	{"1",
	 VM_UP_TO_BALLOON
	 "\"channel\": false, \"shm\": {\"path\": \"f\", \"bytes\": 4097, \"doorbell\": null}}",
	 "4097 bytes is not a multiple of 4 KiB (field: vm.shm.bytes)"},
	{"1", VM_UP_TO_BALLOON "\"channel\": false, \"shm\": null, \"vram\": 3}",
	 "expected null, or bytes and a pool (field: vm.vram)"},
	{"1",
	 VM_UP_TO_BALLOON "\"channel\": false, \"shm\": null, \"vram\": {\"bytes\": 8192, "
			  "\"pool\": 16384}}",
	 "a pool larger than the BAR (field: vm.vram.pool)"},
};

START_TEST(a_bad_manifest_names_its_field)
{
	const struct bad_manifest *b = &bad_manifests[_i];
	char *text = manifest(b->version, b->vm, "{}"), want[512];
	struct snapshot s;

	ck_assert_int_eq(parse(text, &s), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want), "faultline: cannot restore the snapshot: %s (file: D/%s)\n",
		 b->why, SNAPSHOT_MANIFEST);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);
	free(text);
}
END_TEST

START_TEST(another_vendor_and_bad_json_are_refused)
{
	struct snapshot s;
	char vendor[13];
	char *text;

	kvm__cpu_vendor(vendor);
	ck_assert_int_gt(asprintf(&text,
				  "{\"faultline_snapshot\": 1, \"id\": \"" SNAP_ID
				  "\", \"base\": null, \"host\": {\"cpu_vendor\": \"%s\", "
				  "%s}, \"vm\": %s}",
				  strcmp(vendor, "GenuineIntel") ? "GenuineIntel" : "AuthenticAMD",
				  CPUID, GOOD_VM),
			 0);
	ck_assert_int_eq(parse(text, &s), FL_EXIT_SNAPSHOT);
	ck_assert_ptr_nonnull(strstr(log_buf, "host, this one is "));
	ck_assert_ptr_nonnull(strstr(log_buf, "(field: host.cpu_vendor) (file: D/manifest.json)"));
	snapshot__close(&s);
	free(text);
	ck_assert_int_eq(parse("{\"faultline_snapshot\": 1,", &s), FL_EXIT_SNAPSHOT);
	ck_assert_ptr_nonnull(strstr(log_buf, "cannot restore the snapshot: not a JSON object: "));
	snapshot__close(&s);
	ck_assert_int_eq(parse("[1]", &s), FL_EXIT_SNAPSHOT);
	ck_assert_ptr_nonnull(strstr(log_buf, "not a JSON object: another value"));
	snapshot__close(&s);
}
END_TEST

static const char *cur_files = ""; /* more of the manifest's files, after a comma */

/* A snapshot directory: the manifest for @state and a memory file of @mem_bytes. */
static void write_dir(const char *dir, const char *state, uint64_t mem_bytes, const char *sum)
{
	char path[256], files[512], hex[17], *text;
	FILE *f;

	snprintf(hex, sizeof(hex), "%016llx",
		 (unsigned long long)XXH3_64bits(state, strlen(state)));
	snprintf(files, sizeof(files),
		 "{\"state\": {\"bytes\": %zu, \"xxh3\": \"%s\"}, \"memory\": {\"bytes\": "
		 "67108864, \"xxh3\": \"0\"}%s}",
		 strlen(state), sum ? sum : hex, cur_files);
	text = manifest("1", GOOD_VM, files);
	snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_MANIFEST);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	free(text);
	snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_STATE);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(state, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_MEMORY);
	ck_assert_int_eq(truncate(path, 0) == 0 || errno == ENOENT, 1);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(truncate(path, (off_t)mem_bytes), 0);
}

static int open_dir(const char *dir, struct snapshot *s, struct run_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->api = "api.sock";
	log_buf[0] = '\0';
	log__capture(log_buf, sizeof(log_buf));
	return snapshot__open(s, dir, cfg);
}

START_TEST(the_files_are_checked_against_the_manifest)
{
	char dir[] = "/tmp/faultline-snapshot-XXXXXX", want[512], path[300];
	struct run_config cfg;
	struct snapshot s;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_dir(dir, "state bytes", 64 << 20, NULL);
	ck_assert_int_eq(open_dir(dir, &s, &cfg), 0);
	ck_assert_uint_eq(cfg.mem, 64 << 20);
	ck_assert_uint_eq(cfg.vcpus, 2);
	ck_assert(cfg.boot_linux);
	ck_assert_uint_eq(cfg.mem_limit, 8192ULL * 4096);
	ck_assert_int_eq(cfg.on_oom, VM_OOM_PAUSE);
	snprintf(path, sizeof(path), "%s/memory", dir);
	ck_assert_str_eq(cfg.backing_file, path);
	snapshot__close(&s);

	write_dir(dir, "state bytes", 64 << 20, "0123456789abcdef");
	ck_assert_int_eq(open_dir(dir, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: its checksum does not match: the file "
		 "changed or is corrupt (field: files.state.xxh3) (file: %s/state)\n",
		 dir);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);

	write_dir(dir, "state bytes", 32 << 20, NULL);
	ck_assert_int_eq(open_dir(dir, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: 33554432 bytes, the manifest says "
		 "67108864 (field: files.memory.bytes) (file: %s/memory)\n",
		 dir);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);

	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	ck_assert_int_eq(open_dir(dir, &s, &cfg), FL_EXIT_NOINPUT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: cannot read it: No such file or "
		 "directory (file: %s/state)\n",
		 dir);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);
	unlink(path);
	snprintf(path, sizeof(path), "%s/memory", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* Write @len bytes of @data as @dir/@name. */
static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void remove_dir(const char *dir)
{
	const char *names[] = {"state", "memory", "pages", "manifest.json"};
	char path[300];
	unsigned i;

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

/*
 * A diff on a full snapshot: the full one's memory is the backing file,
 * the diff's memory a layer holding the pages its list names. A base that
 * is not there, of another id, or a list of pages of another size or
 * checksum is refused, naming the file and the field.
 */
START_TEST(a_diff_reads_its_base)
{
	char full[] = "/tmp/faultline-full-XXXXXX", diff[] = "/tmp/faultline-diff-XXXXXX";
	char base[400], extra[200], want[800], path[300];
	static unsigned long pages[64 << 20 >> 12 >> 6]; /* 16384 pages */
	struct run_config cfg;
	struct snapshot s;

	ck_assert_ptr_nonnull(mkdtemp(full));
	ck_assert_ptr_nonnull(mkdtemp(diff));
	write_dir(full, "full state", 64 << 20, NULL);
	memset(pages, 0, sizeof(pages));
	pages[0] = 0x5; /* pages 0 and 2 */
	pages[255] = 1ULL << 63;
	snprintf(extra, sizeof(extra), ", \"pages\": {\"bytes\": %zu, \"xxh3\": \"%016llx\"}",
		 sizeof(pages), (unsigned long long)XXH3_64bits(pages, sizeof(pages)));
	snprintf(base, sizeof(base), "{\"dir\": \"%s\", \"id\": \"%s\"}", full, SNAP_ID);
	cur_id = "fedcba9876543210fedcba9876543210";
	cur_base = base;
	cur_files = extra;
	write_dir(diff, "diff state", 64 << 20, NULL);
	write_file(diff, SNAPSHOT_PAGES, pages, sizeof(pages));
	ck_assert_int_eq(open_dir(diff, &s, &cfg), 0);
	snprintf(path, sizeof(path), "%s/memory", full);
	ck_assert_str_eq(cfg.backing_file, path);
	ck_assert_uint_eq(s.nr_layers, 1);
	snprintf(path, sizeof(path), "%s/memory", diff);
	ck_assert_str_eq(s.layers[0].memory_path, path);
	ck_assert_uint_eq(s.layers[0].pages[0], 0x5);
	ck_assert_uint_eq(s.layers[0].pages[255], 1ULL << 63);
	ck_assert_str_eq(s.id, "fedcba9876543210fedcba9876543210");
	snapshot__close(&s);

	/* The list of pages changed since. */
	pages[1] = 1;
	write_file(diff, SNAPSHOT_PAGES, pages, sizeof(pages));
	ck_assert_int_eq(open_dir(diff, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: its checksum does not match: the file "
		 "changed or is corrupt (field: files.pages.xxh3) (file: %s/pages)\n",
		 diff);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);
	write_file(diff, SNAPSHOT_PAGES, pages, 8);
	ck_assert_int_eq(open_dir(diff, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: 8 bytes, the manifest says 2048 (field: "
		 "files.pages.bytes) (file: %s/pages)\n",
		 diff);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);
	pages[1] = 0;
	write_file(diff, SNAPSHOT_PAGES, pages, sizeof(pages));

	/* A base of another id: the full snapshot was taken again under the same name. */
	snprintf(base, sizeof(base), "{\"dir\": \"%s\", \"id\": \"%s\"}", full,
		 "00000000000000000000000000000000");
	write_dir(diff, "diff state", 64 << 20, NULL);
	ck_assert_int_eq(open_dir(diff, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: another snapshot than the base a diff "
		 "was taken on: id %s, the diff's base is 00000000000000000000000000000000 "
		 "(field: id) (file: %s/manifest.json)\n",
		 SNAP_ID, full);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);

	/* A base that is gone. */
	snprintf(base, sizeof(base), "{\"dir\": \"%s.gone\", \"id\": \"%s\"}", full, SNAP_ID);
	write_dir(diff, "diff state", 64 << 20, NULL);
	ck_assert_int_eq(open_dir(diff, &s, &cfg), FL_EXIT_NOINPUT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: cannot read it: No such file or "
		 "directory (file: %s.gone/manifest.json)\n",
		 full);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);

	/* A relative base, and a diff whose base is itself (a loop ends at the limit). */
	cur_base = "{\"dir\": \"rel\", \"id\": \"" SNAP_ID "\"}";
	write_dir(diff, "diff state", 64 << 20, NULL);
	ck_assert_int_eq(open_dir(diff, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: expected null, or an absolute dir and an "
		 "id (field: base) (file: %s/manifest.json)\n",
		 diff);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);
	snprintf(base, sizeof(base), "{\"dir\": \"%s\", \"id\": \"%s\"}", diff, cur_id);
	cur_base = base;
	write_dir(diff, "diff state", 64 << 20, NULL);
	ck_assert_int_eq(open_dir(diff, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: more than 32 diffs on one full snapshot "
		 "(field: base) (file: %s/manifest.json)\n",
		 diff);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);
	cur_id = "0123";
	write_dir(diff, "diff state", 64 << 20, NULL);
	ck_assert_int_eq(open_dir(diff, &s, &cfg), FL_EXIT_SNAPSHOT);
	snprintf(want, sizeof(want),
		 "faultline: cannot restore the snapshot: expected 32 hexadecimal digits (field: "
		 "id) (file: %s/manifest.json)\n",
		 diff);
	ck_assert_str_eq(log_buf, want);
	snapshot__close(&s);
	cur_id = SNAP_ID;
	cur_base = "null";
	cur_files = "";
	remove_dir(full);
	remove_dir(diff);
}
END_TEST

/* lib/file.c, which reads a snapshot's files and the kernel: each failure says which. */
START_TEST(a_whole_file_reads_back)
{
	char dir[] = "/tmp/faultline-file-XXXXXX", path[64];
	uint8_t *buf;
	size_t len;
	int err;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	write_file(dir, "f", "hello", 5);
	ck_assert_int_eq(file__read_all(path, 5, &buf, &len, &err), FILE_OK);
	ck_assert_uint_eq(len, 5);
	ck_assert_str_eq((char *)buf, "hello"); /* a NUL after the bytes */
	free(buf);
	ck_assert_int_eq(file__read_all(path, 4, &buf, &len, &err), FILE_TOO_BIG);
	ck_assert_uint_eq(len, 5);
	ck_assert_ptr_null(buf);
	ck_assert_int_eq(file__read_all(dir, 100, &buf, &len, &err), FILE_NOT_REGULAR);
	ck_assert_int_eq(err, 0);
	unlink(path);
	ck_assert_int_eq(file__read_all(path, 100, &buf, &len, &err), FILE_OPEN);
	ck_assert_int_eq(err, ENOENT);
	ck_assert_ptr_null(buf);
	rmdir(dir);
}
END_TEST

START_TEST(a_vcpu_state_that_is_cut_is_refused)
{
	struct blob_reader r;
	static const uint8_t junk[] = "vcpu";

	blob_reader__init(&r, junk, sizeof(junk));
	ck_assert_int_eq(vcpu__parse_state(&r, 0, 4096), -EINVAL);
	ck_assert(r.err);
	ck_assert_str_ne(r.why, "");
}
END_TEST

Suite *snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("snapshot");

	tcase_add_test(tc, a_good_manifest_reads_back);
	tcase_add_loop_test(tc, a_bad_manifest_names_its_field, 0,
			    sizeof(bad_manifests) / sizeof(bad_manifests[0]));
	tcase_add_test(tc, another_vendor_and_bad_json_are_refused);
	tcase_add_test(tc, the_files_are_checked_against_the_manifest);
	tcase_add_test(tc, a_vcpu_state_that_is_cut_is_refused);
	tcase_add_test(tc, a_diff_reads_its_base);
	tcase_add_test(tc, a_whole_file_reads_back);
	suite_add_tcase(s, tc);
	return s;
}
