/*
 * A snapshot's working set (vmm/vm/vm_ws.c) without KVM: --record-ws's
 * STOP, DIR/ws written and read back, each refusal of a recording that
 * does not match its snapshot naming the field, and the failures of
 * writing one, which leave the last recording as it was.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "lib/status.h"
#include "tests/unit/unit.h"
#include "vmm/vm/ws.h"

#define ID "0123456789abcdef0123456789abcdef"

static char log_buf[1024];

START_TEST(stop_parses)
{
	struct vm_ws_until u;
	char buf[32];

	ck_assert_int_eq(ws__parse_until(NULL, &u), 0);
	ck_assert_int_eq(u.kind, VM_WS_STOP_END);
	ck_assert_int_eq(ws__parse_until("port", &u), 0);
	ck_assert_int_eq(u.kind, VM_WS_STOP_PORT);
	ck_assert_int_eq(ws__parse_until("250ms", &u), 0);
	ck_assert_int_eq(u.kind, VM_WS_STOP_MS);
	ck_assert_uint_eq(u.value, 250);
	ck_assert_str_eq(ws__until_str(&u, buf, sizeof(buf)), "250ms");
	ck_assert_int_eq(ws__parse_until("1000pages", &u), 0);
	ck_assert_int_eq(u.kind, VM_WS_STOP_PAGES);
	ck_assert_str_eq(ws__until_str(&u, buf, sizeof(buf)), "1000pages");
	ck_assert_int_eq(ws__parse_until("0ms", &u), -EINVAL);
	ck_assert_int_eq(ws__parse_until("3600001ms", &u), -EINVAL);
	ck_assert_int_eq(ws__parse_until("5s", &u), -EINVAL);
	ck_assert_int_eq(ws__parse_until("-1pages", &u), -EINVAL);
	ck_assert_int_eq(ws__parse_until("ms", &u), -EINVAL);
	ck_assert_int_eq(ws__parse_until("portx", &u), -EINVAL);
}
END_TEST

/* A recording of @n pages for snapshot ID of 4096 pages. */
static uint8_t *encoded(const uint32_t *pages, uint64_t n, size_t *len)
{
	struct ws_info info = {.ram_pages = 4096, .count = n, .elapsed_us = 1500};
	uint8_t *buf;

	snprintf(info.id, sizeof(info.id), "%s", ID);
	info.until.kind = VM_WS_STOP_MS;
	info.until.value = 20;
	ck_assert_int_eq(ws__encode(&info, pages, &buf, len), 0);
	return buf;
}

START_TEST(a_recording_reads_back)
{
	const uint32_t pages[] = {7, 3, 4095, 0};
	struct ws_info info;
	uint32_t *got;
	char why[WS_WHY_LEN];
	size_t len;
	uint8_t *buf = encoded(pages, 4, &len);

	ck_assert_uint_eq(len, WS_HEADER_LEN + 16);
	ck_assert_int_eq(memcmp(buf, "FLWS", 4), 0);
	ck_assert_int_eq(ws__decode(buf, len, ID, 4096, &info, &got, why), 0);
	ck_assert_uint_eq(info.count, 4);
	ck_assert_uint_eq(info.elapsed_us, 1500);
	ck_assert_int_eq(info.until.kind, VM_WS_STOP_MS);
	ck_assert_uint_eq(info.until.value, 20);
	ck_assert_mem_eq(got, pages, sizeof(pages));
	free(got);
	free(buf);
	buf = encoded(NULL, 0, &len); /* nothing recorded: nothing to prefetch */
	ck_assert_int_eq(ws__decode(buf, len, ID, 4096, &info, &got, why), 0);
	ck_assert_ptr_null(got);
	free(buf);
}
END_TEST

/* Decode @buf for ID and 4096 pages: it must be refused, saying @want. */
static void refused(const uint8_t *buf, size_t len, const char *id, uint64_t ram, const char *want)
{
	struct ws_info info;
	uint32_t *got = (uint32_t *)1;
	char why[WS_WHY_LEN] = "";

	ck_assert_int_eq(ws__decode(buf, len, id, ram, &info, &got, why), -EINVAL);
	ck_assert_ptr_null(got);
	ck_assert_str_eq(why, want);
}

/* Fix up the checksum of a recording whose pages a test changed. */
static void resum(uint8_t *buf, size_t len)
{
	uint64_t sum = XXH3_64bits(buf + WS_HEADER_LEN, len - WS_HEADER_LEN);
	unsigned i;

	for (i = 0; i < 8; i++)
		buf[80 + i] = (uint8_t)(sum >> (8 * i));
}

START_TEST(a_recording_that_does_not_match_is_refused)
{
	const uint32_t pages[] = {7, 3, 9};
	size_t len;
	uint8_t *buf = encoded(pages, 3, &len);

	refused(buf, 10, ID, 4096, "not a working-set recording (field: magic)");
	refused(buf, len, "fedcba9876543210fedcba9876543210", 4096,
		"recorded for snapshot '" ID "', this one is 'fedcba9876543210fedcba9876543210' "
		"(field: id)");
	refused(buf, len, ID, 8192,
		"recorded for 4096 pages of RAM, the snapshot has 8192 (field: ram_pages)");
	refused(buf, len - 1, ID, 4096, "3 pages in 99 bytes (field: count)");
	buf[WS_HEADER_LEN] ^= 1;
	refused(buf, len, ID, 4096, "the pages do not match their checksum (field: checksum)");
	buf[WS_HEADER_LEN] = 0x00, buf[WS_HEADER_LEN + 1] = 0x10; /* page 4096 */
	resum(buf, len);
	refused(buf, len, ID, 4096, "page 4096 is past the end of RAM (field: pages[0])");
	buf[WS_HEADER_LEN] = 9, buf[WS_HEADER_LEN + 1] = 0;
	resum(buf, len);
	refused(buf, len, ID, 4096, "page 9 is there twice (field: pages[2])");
	buf[48] = 9;
	refused(buf, len, ID, 4096, "no such stop 9 (field: stop)");
	buf[4] = 2;
	refused(buf, len, ID, 4096, "version 2, this faultline reads 1 (field: version)");
	free(buf);
}
END_TEST

/* ws__load() as a restore calls it: the file there, not there, not matching. */
START_TEST(load_follows_the_prefetch_mode)
{
	char dir[] = "/tmp/faultline-ws-XXXXXX", path[64];
	const uint32_t pages[] = {5, 6};
	uint32_t *got;
	uint64_t n;
	size_t len;
	uint8_t *buf = encoded(pages, 2, &len);
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ws", dir);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(ws__load(dir, ID, 4096, VM_PREFETCH_AUTO, &got, &n), 0);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(ws__load(dir, ID, 4096, VM_PREFETCH_WS, &got, &n), FL_EXIT_NOINPUT);
	ck_assert_ptr_nonnull(strstr(log_buf, "faultline: cannot prefetch the working set: No such "
					      "file or directory; record one with --record-ws, or "
					      "give --prefetch off or seq (file: "));
	ck_assert_ptr_nonnull(strstr(log_buf, path));
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
	ck_assert_int_eq(ws__load(dir, ID, 4096, VM_PREFETCH_AUTO, &got, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_mem_eq(got, pages, sizeof(pages));
	free(got);
	ck_assert_int_eq(ws__load(dir, ID, 4096, VM_PREFETCH_OFF, &got, &n), 0);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(ws__load(dir, ID, 4096, VM_PREFETCH_SEQ, &got, &n), 0);
	ck_assert_ptr_null(got);
	log_buf[0] = '\0';
	ck_assert_int_eq(ws__load(dir, ID, 2048, VM_PREFETCH_AUTO, &got, &n), FL_EXIT_SNAPSHOT);
	ck_assert_ptr_nonnull(strstr(log_buf,
				     "cannot prefetch the working set: recorded for 4096 "
				     "pages of RAM, the snapshot has 2048 (field: "
				     "ram_pages); record it again, or give --prefetch off"));
	ck_assert_ptr_nonnull(strstr(log_buf, path));
	unlink(path);
	rmdir(dir);
	log__capture(NULL, 0);
	free(buf);
}
END_TEST

/* A VM of 64 pages recording into @dir: the MMU alone, no KVM. */
static void ws_vm(struct vm *vm, const char *dir, const struct vm_ws_until *until)
{
	const struct mmu_config mc = {.ram_size = 64 * 4096,
				      .fault_around = 1,
				      .max_retries = 8,
				      .retry_ms = 1000,
				      .nr_handlers = 1};
	void *p;

	memset(vm, 0, sizeof(*vm));
	ck_assert_int_eq(ws__open(&vm->ws, dir, ID, until), 0);
	ck_assert_int_eq(mmu__init(&vm->mmu, &mc, &(struct mmu_ops){0}), 0);
	ck_assert_int_eq(vm__ws_start(vm), 0);
	ck_assert_int_eq(mmu__access(&vm->mmu, 9 * 4096, 8, &p), 0);
	ck_assert_int_eq(mmu__access(&vm->mmu, 2 * 4096, 8, &p), 0);
}

static void ws_vm_exit(struct vm *vm)
{
	vm__ws_close(&vm->ws);
	mmu__exit(&vm->mmu);
}

START_TEST(the_recording_is_saved_once_and_renamed)
{
	char dir[] = "/tmp/faultline-ws-XXXXXX", tmp[64];
	const uint32_t want[] = {9, 2};
	struct vm_ws_until end = {0};
	struct vm vm;
	uint32_t *got;
	uint64_t n;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	log__capture(log_buf, sizeof(log_buf));
	ws_vm(&vm, dir, &end);
	snprintf(tmp, sizeof(tmp), "%s/ws.tmp.%d", dir, (int)getpid());
	ck_assert_int_eq(access(tmp, F_OK), 0);
	vm__ws_stop(&vm, VM_WS_STOP_PORT);
	vm__ws_stop(&vm, VM_WS_STOP_END); /* the first stop is what stopped it */
	vm__ws_save(&vm);
	ck_assert(vm.ws.saved && !vm.ws.failed);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	ck_assert_ptr_nonnull(strstr(log_buf, "faultline: recorded the working set: 2 pages in 0 "
					      "ms, until the guest wrote the boot timer (file: "));
	ws_vm_exit(&vm);
	ck_assert_int_eq(ws__load(dir, ID, 64, VM_PREFETCH_WS, &got, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_mem_eq(got, want, sizeof(want));
	free(got);
	/* A recording that fails to be written leaves the last one as it was. */
	ck_assert_int_eq(inject__init("write.ws:ENOSPC"), 0);
	ws_vm(&vm, dir, &end);
	log_buf[0] = '\0';
	vm__ws_save(&vm);
	ck_assert(vm.ws.failed && !vm.ws.saved);
	ck_assert_ptr_nonnull(strstr(log_buf, "faultline: cannot record the working set: write "
					      "failed: No space left on device; "));
	ck_assert_ptr_nonnull(strstr(log_buf, "/ws is as it was (file: "));
	ws_vm_exit(&vm);
	ck_assert_int_eq(access(tmp, F_OK), -1); /* removed */
	ck_assert_int_eq(inject__init("fsync.ws:EIO"), 0);
	ws_vm(&vm, dir, &end);
	vm__ws_save(&vm);
	ck_assert(vm.ws.failed);
	ws_vm_exit(&vm);
	ck_assert_int_eq(inject__init(NULL), 0);
	ck_assert_int_eq(ws__load(dir, ID, 64, VM_PREFETCH_WS, &got, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(got);
	unlink(tmp);
	snprintf(tmp, sizeof(tmp), "%s/ws", dir);
	unlink(tmp);
	rmdir(dir);
	log__capture(NULL, 0);
}
END_TEST

/* A page count stops it, and says so through the eventfd the main thread polls. */
START_TEST(a_page_count_stops_the_recording)
{
	char dir[] = "/tmp/faultline-ws-XXXXXX", path[64];
	struct vm_ws_until two = {.kind = VM_WS_STOP_PAGES, .value = 2};
	struct vm vm;
	uint64_t v;
	void *p;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	log__capture(log_buf, sizeof(log_buf));
	ws_vm(&vm, dir, &two);
	ck_assert_int_eq(read(vm.ws.done_fd, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(mmu__access(&vm.mmu, 30 * 4096, 8, &p), 0); /* past the count */
	ck_assert_uint_eq(vm.mmu.stats.pages_recorded, 2);
	vm__ws_save(&vm);
	ck_assert(vm.ws.saved);
	ck_assert_ptr_nonnull(strstr(log_buf, "until the page count given"));
	ws_vm_exit(&vm);
	snprintf(path, sizeof(path), "%s/ws", dir);
	unlink(path);
	rmdir(dir);
	log__capture(NULL, 0);
}
END_TEST

/* --record-ws=port: the guest's write to the boot timer stops it. */
START_TEST(the_boot_timer_stops_the_recording)
{
	char dir[] = "/tmp/faultline-ws-XXXXXX", path[64];
	struct vm_ws_until port = {.kind = VM_WS_STOP_PORT};
	uint8_t one = 1;
	struct vm vm;
	uint64_t v;
	void *p;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	log__capture(log_buf, sizeof(log_buf));
	ws_vm(&vm, dir, &port);
	ck_assert_int_eq(read(vm.ws.done_fd, &v, sizeof(v)), -1); /* not yet */
	ck_assert_int_eq(boot_timer_ops.write(&vm.boot_timer, 0, &one, 1), 0);
	ck_assert_int_eq(read(vm.ws.done_fd, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(vm.ws.why, VM_WS_STOP_PORT);
	ck_assert_int_eq(mmu__access(&vm.mmu, 30 * 4096, 8, &p), 0); /* after it: not recorded */
	ck_assert_uint_eq(vm.mmu.stats.pages_recorded, 2);
	vm__ws_save(&vm);
	ck_assert_ptr_nonnull(strstr(log_buf, "until the guest wrote the boot timer"));
	ws_vm_exit(&vm);
	snprintf(path, sizeof(path), "%s/ws", dir);
	unlink(path);
	rmdir(dir);
	log__capture(NULL, 0);
}
END_TEST

START_TEST(a_directory_it_cannot_write_is_refused)
{
	struct vm_ws_until end = {0};
	struct vm_ws w;
	char want[256];

	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(ws__open(&w, "/nonexistent-faultline", ID, &end), FL_EXIT_NOINPUT);
	snprintf(want, sizeof(want),
		 "faultline: cannot record the working set: cannot create it: No such file or "
		 "directory (file: /nonexistent-faultline/ws.tmp.%d)\n",
		 (int)getpid());
	ck_assert_str_eq(log_buf, want);
	ck_assert_int_eq(w.dir_fd, -1);
	ck_assert_int_eq(inject__init("open.ws:EROFS"), 0);
	log_buf[0] = '\0';
	ck_assert_int_eq(ws__open(&w, "/tmp", ID, &end), FL_EXIT_NOINPUT);
	snprintf(want, sizeof(want),
		 "faultline: cannot record the working set: cannot create it: Read-only file "
		 "system (file: /tmp/ws.tmp.%d)\n",
		 (int)getpid());
	ck_assert_str_eq(log_buf, want);
	ck_assert_int_eq(inject__init(NULL), 0);
	log__capture(NULL, 0);
}
END_TEST

Suite *ws_suite(void)
{
	Suite *s = suite_create("ws");
	TCase *tc = tcase_create("file");

	tcase_add_test(tc, stop_parses);
	tcase_add_test(tc, a_recording_reads_back);
	tcase_add_test(tc, a_recording_that_does_not_match_is_refused);
	tcase_add_test(tc, load_follows_the_prefetch_mode);
	tcase_add_test(tc, the_recording_is_saved_once_and_renamed);
	tcase_add_test(tc, a_page_count_stops_the_recording);
	tcase_add_test(tc, the_boot_timer_stops_the_recording);
	tcase_add_test(tc, a_directory_it_cannot_write_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
