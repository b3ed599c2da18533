/*
 * The working set in the fault engine (mmu/prefetch.c): what a recording
 * holds and in which order, when it stops, how a plan is cut into runs,
 * and a prefetch that installs them within the budget while faults go
 * first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/inject.h"
#include "tests/unit/mmu_fixture.h"
#include "tests/unit/unit.h"

static uint32_t rec[256];
static uint64_t nrec;

static void recorded(void)
{
	ck_assert_uint_le(mmu.ws.max, 256);
	mmu__recorded(&mmu, rec, &nrec);
}

static const uint8_t *file_data;

/* A guest's read of page @pi, checked against the backing file. */
static void read_page(uint64_t pi)
{
	struct toucher t = {.first = pi, .count = 1, .pace = true, .expect = file_data};

	touch(&t);
}

/* Wait until the plan is done (or stopped), at most 2 s. */
static void prefetch_wait(void)
{
	int i;

	for (i = 0; i < 2000 && mmu__prefetch_pending(&mmu); i++)
		usleep(1000);
	ck_assert_msg(!mmu__prefetch_pending(&mmu), "the prefetch did not end within 2 s");
}

START_TEST(recording_keeps_the_order_of_installs)
{
	static const uint32_t want[] = {10, 3, 7, 20 | MMU_WS_WRITTEN}; /* a device's: pinned */
	uint8_t *data, *p;
	const char *path = make_file(64 * PAGE, &data);

	file_data = data;
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = path});
	ck_assert_int_eq(mmu__record(&mmu, 64, -1), 0);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	read_page(10);
	read_page(3);
	read_page(7);
	ck_assert_int_eq(mmu__access(&mmu, 20 * PAGE, 8, (void **)&p), 0); /* a device's */
	read_page(3);							   /* once only */
	ck_assert(mmu__record_stop(&mmu));
	ck_assert(!mmu__record_stop(&mmu));
	read_page(30); /* after the stop: not recorded */
	recorded();
	ck_assert_uint_eq(nrec, 4);
	ck_assert_mem_eq(rec, want, sizeof(want));
	ck_assert_uint_eq(STAT(pages_recorded), 4);
	free(data);
	mmu_teardown();
}
END_TEST

/* A fault-around window is recorded whole, the faulting page first. */
START_TEST(recording_holds_the_window_faulting_page_first)
{
	static const uint32_t want[] = {5, 0, 1, 2, 3, 4, 6, 7};
	uint8_t *data;
	const char *path = make_file(64 * PAGE, &data);

	file_data = data;
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = path, .around = 8});
	ck_assert_int_eq(mmu__record(&mmu, 64, -1), 0);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	read_page(5);
	ck_assert(mmu__record_stop(&mmu));
	recorded();
	ck_assert_uint_eq(nrec, 8);
	ck_assert_mem_eq(rec, want, sizeof(want));
	free(data);
	mmu_teardown();
}
END_TEST

START_TEST(recording_stops_when_full_and_says_so)
{
	struct toucher t = {.first = 0, .count = 16, .pace = true};
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t v = 0, i;

	ck_assert_int_ge(efd, 0);
	mmu_setup(&(struct setup){.ram = 64 * PAGE});
	ck_assert_int_eq(mmu__record(&mmu, 0, efd), -EINVAL);
	ck_assert_int_eq(mmu__record(&mmu, 4, efd), 0);
	ck_assert_int_eq(mmu__record(&mmu, 4, efd), -EBUSY);
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, rec, 0), -EBUSY);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	touch(&t);
	ck_assert_int_eq(read(efd, &v, sizeof(v)), sizeof(v));
	ck_assert_uint_eq(v, 1);
	ck_assert(!mmu__record_stop(&mmu)); /* it stopped itself */
	recorded();
	ck_assert_uint_eq(nrec, 4);
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(rec[i], i);
	close(efd);
	mmu_teardown();
}
END_TEST

START_TEST(a_plan_is_runs_largest_first_in_windows)
{
	uint32_t pages[MMU_PREFETCH_WINDOW + 3];
	uint64_t i;

	mmu_setup(&(struct setup){.ram = 4096 * PAGE});
	/* Window 1: 9, then 1..3, 40..41, 5, 3 again; the rest of it 1000 onwards. */
	pages[0] = 9, pages[1] = 1, pages[2] = 2, pages[3] = 3, pages[4] = 40, pages[5] = 41;
	pages[6] = 5, pages[7] = 3;
	for (i = 8; i < MMU_PREFETCH_WINDOW; i++)
		pages[i] = (uint32_t)(1000 + 2 * i); /* one page apart: runs of one */
	/* Window 2: 100..102, and 9 again (planned already). */
	pages[MMU_PREFETCH_WINDOW] = 102, pages[MMU_PREFETCH_WINDOW + 1] = 100;
	pages[MMU_PREFETCH_WINDOW + 2] = 101;
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, MMU_PREFETCH_WINDOW + 3), 0);
	ck_assert(mmu__prefetch_pending(&mmu));
	ck_assert_uint_eq(mmu.ws.runs[0].first, 1);
	ck_assert_uint_eq(mmu.ws.runs[0].n, 3);
	ck_assert_uint_eq(mmu.ws.runs[1].first, 40);
	ck_assert_uint_eq(mmu.ws.runs[1].n, 2);
	ck_assert_uint_eq(mmu.ws.runs[2].first, 5);
	ck_assert_uint_eq(mmu.ws.runs[3].first, 9);
	ck_assert_uint_eq(mmu.ws.runs[3].n, 1);
	/* 6 distinct pages + 504 of the rest in window 1: 4 + 504 runs, then 100..102. */
	ck_assert_uint_eq(mmu.ws.nr_runs, 4 + (MMU_PREFETCH_WINDOW - 8) + 1);
	ck_assert_uint_eq(mmu.ws.runs[mmu.ws.nr_runs - 1].first, 100);
	ck_assert_uint_eq(mmu.ws.runs[mmu.ws.nr_runs - 1].n, 3);
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 1), -EBUSY);
	ck_assert_int_eq(mmu__record(&mmu, 8, -1), -EBUSY);
	mmu_teardown();
	/* A run is at most MMU_PREFETCH_RUN_MAX pages; a page past RAM is refused. */
	mmu_setup(&(struct setup){.ram = 4096 * PAGE});
	for (i = 0; i < 100; i++)
		pages[i] = (uint32_t)i;
	pages[100] = 4096;
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 101), -EINVAL);
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 100), 0);
	ck_assert_uint_eq(mmu.ws.nr_runs, 2);
	ck_assert_uint_eq(mmu.ws.runs[0].n, MMU_PREFETCH_RUN_MAX);
	ck_assert_uint_eq(mmu.ws.runs[1].first, MMU_PREFETCH_RUN_MAX);
	mmu_teardown();
}
END_TEST

/* The whole plan installed before the guest reads it: no fault, the file's bytes. */
START_TEST(prefetched_pages_take_no_fault)
{
	uint32_t pages[200];
	uint8_t *data;
	const char *path = make_file(256 * PAGE, &data);
	struct toucher t = {.first = 0, .count = 200, .expect = data};
	struct toucher w = {.first = 7, .count = 1, .write = true, .value = 3};
	uint64_t i;

	for (i = 0; i < 200; i++)
		pages[i] = (uint32_t)(199 - i);
	mmu_setup(&(struct setup){.ram = 512 * PAGE, .file = path});
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 200), 0);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	prefetch_wait();
	ck_assert_uint_eq(STAT(pages_prefetched), 200);
	ck_assert_uint_eq(resident(), 200);
	touch(&t);
	ck_assert_int_eq(t.bad, 0);
	ck_assert_uint_eq(STAT(faults_uffd), 0);
	touch(&w); /* a write: the guest used a prefetched page */
	ck_assert_uint_eq(STAT(prefetch_used), 1);
	ck_assert_uint_eq(STAT(faults_wp), 1);
	ck_assert_uint_eq(STAT(prefetch_late), 0);
	free(data);
	mmu_teardown();
}
END_TEST

/* Pages recorded written are installed writable: their writes take no fault, and stay. */
START_TEST(pages_written_when_recorded_go_writable)
{
	uint32_t pages[] = {0 | MMU_WS_WRITTEN, 1 | MMU_WS_WRITTEN, 2};
	uint8_t *data;
	const char *path = make_file(64 * PAGE, &data);
	struct toucher w = {.first = 0, .count = 2, .write = true, .value = 5};

	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = path});
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 3), 0);
	ck_assert_uint_eq(mmu.ws.nr_runs, 2);
	ck_assert(mmu.ws.runs[0].written && mmu.ws.runs[0].n == 2);
	ck_assert(!mmu.ws.runs[1].written);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	prefetch_wait();
	ck_assert(page_bits__dirty(&mmu.bits, 0) && page_bits__dirty(&mmu.bits, 1));
	ck_assert(!page_bits__dirty(&mmu.bits, 2));
	touch(&w);
	ck_assert_uint_eq(STAT(faults_uffd), 0);
	w.first = 2, w.count = 1;
	touch(&w);
	ck_assert_uint_eq(STAT(faults_wp), 1);
	ck_assert_uint_eq(mmu__reclaim(&mmu, 64), 0); /* all three dirty now */
	w.first = 0, w.count = 3, w.write = false;
	touch(&w);
	ck_assert_int_eq(w.bad, 0);
	free(data);
	mmu_teardown();
}
END_TEST

/* A fault before the prefetch: its window's pages recorded written go writable with it. */
START_TEST(a_late_windows_written_pages_go_writable)
{
	uint32_t pages[8];
	uint8_t *data;
	const char *path = make_file(64 * PAGE, &data);
	struct toucher w = {.first = 8, .count = 8, .write = true, .value = 5};
	uint64_t i;

	for (i = 0; i < 8; i++)
		pages[i] = (uint32_t)(8 + i) | (i < 6 ? MMU_WS_WRITTEN : 0);
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = path, .around = 8});
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 8), 0);
	ck_assert_uint_eq(fault_at(10 * PAGE, FAULT_READ, FAULT_SRC_MMIO_EXIT, NULL), FAULT_DONE);
	ck_assert_uint_eq(STAT(prefetch_late), 1);
	for (i = 8; i < 16; i++)
		ck_assert_msg(page_bits__dirty(&mmu.bits, i) == (i < 14), "page %u", (unsigned)i);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	touch(&w);
	ck_assert_uint_eq(STAT(faults_wp), 2); /* 14 and 15: recorded clean */
	free(data);
	mmu_teardown();
}
END_TEST

/* The prefetch leaves an eighth of the budget (at most 64 pages) to faults, and ends there. */
START_TEST(prefetch_stops_before_the_budget)
{
	uint32_t pages[256];
	uint8_t *data;
	const char *path = make_file(256 * PAGE, &data);
	struct toucher t = {.first = 0, .count = 256, .expect = data};
	uint64_t i;

	for (i = 0; i < 256; i++)
		pages[i] = (uint32_t)i;
	mmu_setup(&(struct setup){.ram = 256 * PAGE, .limit = 128 * PAGE, .file = path});
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 256), 0);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	prefetch_wait();
	ck_assert_uint_eq(mmu__prefetch_spare(&mmu), 16);
	ck_assert_uint_eq(STAT(pages_prefetched), 128 - 16);
	ck_assert_uint_eq(resident(), 128 - 16);
	ck_assert_uint_eq(STAT(result_oom), 0);
	ck_assert_int_eq(F.calls, 0);
	/* The faults that follow reclaim as ever; nothing is lost. */
	touch(&t);
	ck_assert_int_eq(t.bad, 0);
	ck_assert_uint_eq(STAT(result_oom), 0);
	ck_assert_uint_gt(STAT(prefetch_late), 0);
	free(data);
	mmu_teardown();
}
END_TEST

/* A fault on a planned page before the prefetch gets there is late, and served. */
START_TEST(a_fault_before_the_prefetch_is_late)
{
	uint32_t pages[] = {4, 5, 6};
	uint8_t *data;
	const char *path = make_file(16 * PAGE, &data);

	mmu_setup(&(struct setup){.ram = 16 * PAGE, .file = path});
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 3), 0);
	ck_assert_uint_eq(fault_at(5 * PAGE, FAULT_READ, FAULT_SRC_MMIO_EXIT, NULL), FAULT_DONE);
	ck_assert_uint_eq(STAT(prefetch_late), 1);
	/* The handler then skips what is resident and installs the rest. */
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	prefetch_wait();
	ck_assert_uint_eq(STAT(pages_prefetched), 2);
	ck_assert_uint_eq(resident(), 3);
	free(data);
	mmu_teardown();
}
END_TEST

/* --prefetch seq: the pages the file holds data for, in address order. */
START_TEST(seq_plans_the_files_data)
{
	char path[64];
	uint8_t page[PAGE];
	int fd;
	uint64_t pi;

	snprintf(path, sizeof(path), "/tmp/faultline-seq-%d", getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	memset(page, 0x5a, sizeof(page));
	ck_assert_int_eq(ftruncate(fd, 256 * PAGE), 0);
	for (pi = 0; pi < 4; pi++)
		ck_assert_int_eq(pwrite(fd, page, PAGE, (off_t)(pi * PAGE)), PAGE);
	for (pi = 100; pi < 102; pi++)
		ck_assert_int_eq(pwrite(fd, page, PAGE, (off_t)(pi * PAGE)), PAGE);
	close(fd);
	mmu_setup(&(struct setup){.ram = 256 * PAGE});
	ck_assert_int_eq(mmu__prefetch_seq(&mmu), -EINVAL); /* no file */
	mmu_teardown();
	mmu_setup(&(struct setup){.ram = 256 * PAGE, .file = path});
	ck_assert_int_eq(mmu__prefetch_seq(&mmu), 0);
	ck_assert_uint_eq(mmu.ws.nr_runs, 2);
	ck_assert_uint_eq(mmu.ws.runs[0].first, 0);
	ck_assert_uint_eq(mmu.ws.runs[0].n, 4);
	ck_assert_uint_eq(mmu.ws.runs[1].first, 100);
	ck_assert_uint_eq(mmu.ws.runs[1].n, 2);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	prefetch_wait();
	ck_assert_uint_eq(STAT(pages_prefetched), 6);
	mmu_teardown();
	unlink(path);
}
END_TEST

/* Injected: no memory for the recording or the plan. */
START_TEST(no_memory_for_the_working_set)
{
	uint32_t pages[] = {1};

	mmu_setup(&(struct setup){.ram = 16 * PAGE});
	ck_assert_int_eq(inject__init("calloc.ws:ENOMEM"), 0);
	ck_assert_int_eq(mmu__record(&mmu, 8, -1), -ENOMEM);
	ck_assert_int_eq(inject__init("calloc.prefetch:ENOMEM"), 0);
	ck_assert_int_eq(mmu__prefetch_pages(&mmu, pages, 1), -ENOMEM);
	ck_assert(!mmu__prefetch_pending(&mmu));
	mmu_teardown();
}
END_TEST

/* ---- a shared memory file (mmu.shared): clones of one snapshot ------------------------ */

static char shm_path[64];

/* A file on tmpfs of 64 pages: data in 0..31 (*@data), holes after. */
static uint8_t *shm_file(void)
{
	uint8_t *data = malloc(64 * PAGE);
	uint64_t i;
	int fd;

	ck_assert_ptr_nonnull(data);
	memset(data, 0, 64 * PAGE);
	for (i = 0; i < 32 * PAGE; i++)
		data[i] = (uint8_t)(i * 7 + i / PAGE + 1);
	snprintf(shm_path, sizeof(shm_path), "/dev/shm/faultline-share-%d", getpid());
	fd = open(shm_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 64 * PAGE), 0);
	ck_assert_int_eq(pwrite(fd, data, 32 * PAGE, 0), 32 * PAGE);
	close(fd);
	return data;
}

/* The file holds what it held: nothing the guest or the monitor wrote reached it. */
static void shm_unchanged(const uint8_t *data)
{
	uint8_t *now = malloc(64 * PAGE);
	int fd = open(shm_path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_nonnull(now);
	ck_assert_int_eq(pread(fd, now, 64 * PAGE, 0), 64 * PAGE);
	ck_assert_int_eq(memcmp(now, data, 64 * PAGE), 0);
	close(fd);
	free(now);
}

/*
 * Whether mmu_setup() shared the file; when not (a kernel without MINOR
 * faults on shared memory), the test is skipped: all it made is undone.
 */
static bool shared_or_skip(uint8_t *data, uint8_t *want)
{
	if (mmu.shared)
		return true;
	mmu_teardown();
	free(data);
	free(want);
	unlink(shm_path);
	return false;
}

START_TEST(a_shared_file_is_mapped_and_never_written)
{
	uint8_t *data = shm_file(), *want = malloc(64 * PAGE), *p;
	struct toucher rd = {.first = 0, .count = 64, .expect = want};
	struct toucher wr = {.first = 2, .count = 2, .write = true, .value = 0x77};
	uint64_t i, dropped, kept;

	ck_assert_ptr_nonnull(want);
	memcpy(want, data, 64 * PAGE);
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = shm_path, .around = 8, .share = true});
	if (!shared_or_skip(data, want))
		return;
	ck_assert_ptr_eq(mmu.alias, mmu.ram.host);
	ck_assert_int_eq(mmu.memfd, -1);
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	touch(&rd); /* data pages and holes */
	ck_assert_int_eq(rd.bad, 0);
	ck_assert_uint_gt(STAT(uffdio_continue), 0);
	touch(&wr); /* a write: the kernel's copy, this process's own */
	for (i = 2 * PAGE; i < 4 * PAGE; i += 8)
		*(uint64_t *)(want + i) = 0x77;
	ck_assert_int_eq(mmu__access(&mmu, 40 * PAGE, 8, (void **)&p), 0); /* a device's, a hole */
	memset(p, 0x5a, 8);
	memset(want + 40 * PAGE, 0x5a, 8);
	ck_assert_int_eq(mmu__access(&mmu, 5 * PAGE, 8, (void **)&p), 0); /* a device's, data */
	memset(p, 0x33, 8);
	memset(want + 5 * PAGE, 0x33, 8);
	shm_unchanged(data);
	/* Reclaim drops the clean pages only; they come back from the file. */
	ck_assert_uint_ge(mmu__reclaim(&mmu, 64), 50);
	ck_assert(page_bits__resident(&mmu.bits, 2) && page_bits__resident(&mmu.bits, 5) &&
		  page_bits__resident(&mmu.bits, 40));
	rd.bad = 0;
	touch(&rd);
	ck_assert_int_eq(rd.bad, 0);
	shm_unchanged(data);
	/* Pages the guest gives back (the balloon): its own copies go, the snapshot's come back. */
	ck_assert_int_eq(mmu__allow_discard(&mmu), 0);
	ck_assert_int_eq(mmu__discard(&mmu, 2 * PAGE, 2 * PAGE, &dropped, &kept), 0);
	ck_assert_uint_eq(dropped, 2);
	ck_assert_uint_eq(kept, 0);
	memcpy(want + 2 * PAGE, data + 2 * PAGE, 2 * PAGE);
	rd.bad = 0;
	touch(&rd);
	ck_assert_int_eq(rd.bad, 0);
	shm_unchanged(data);
	ck_assert_uint_eq(STAT(result_sigbus), 0);
	mmu_teardown();
	/* Not asked to, or failing: copied, as ever. */
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = shm_path});
	ck_assert(!mmu.shared && mmu.memfd >= 0);
	mmu_teardown();
	ck_assert_int_eq(inject__init("share:EIO"), 0);
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = shm_path, .share = true});
	ck_assert(!mmu.shared);
	mmu_teardown();
	free(want);
	/* A file of another size is copied too. */
	ck_assert_int_eq(truncate(shm_path, 32 * PAGE), 0);
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = shm_path, .share = true});
	ck_assert(!mmu.shared);
	mmu_teardown();
	unlink(shm_path);
	free(data);
}
END_TEST

/*
 * A hole of a shared file would be a private page of zeros in each clone:
 * the window ends at one, and only a faulting page in a hole is copied.
 * The file: data in pages 0-7 and 20-31, holes in 8-19 and 32-63.
 */
START_TEST(a_shared_file_s_holes_are_not_faulted_around)
{
	static const struct {
		uint64_t page, installed; /* touched; pages it installs */
	} steps[] = {
		{4, 8},	 /* data up to the hole at 8 */
		{24, 1}, /* a hole at the window's start, 16: the page alone */
		{40, 1}, /* a hole: the page alone */
		{32, 1}, /* a hole at the window's start: it alone, the window ends at 33 */
		{20, 1}, /* data after a hole in its window (16-23): the page alone */
		{28, 7}, /* data 25-31, between resident pages */
	};
	uint8_t *data = shm_file(), *want = malloc(64 * PAGE);
	struct toucher rd = {.first = 0, .count = 64, .expect = want};
	uint64_t i, before;
	size_t k;
	int fd;

	ck_assert_ptr_nonnull(want);
	memset(data + 8 * PAGE, 0, 12 * PAGE);
	memcpy(want, data, 64 * PAGE);
	fd = open(shm_path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8 * PAGE, 12 * PAGE), 0);
	close(fd);
	mmu_setup(&(struct setup){.ram = 64 * PAGE, .file = shm_path, .around = 16, .share = true});
	if (!shared_or_skip(data, want))
		return;
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct toucher one = {.first = steps[k].page, .count = 1, .expect = want};

		before = STAT(pages_installed);
		touch(&one);
		ck_assert_int_eq(one.bad, 0);
		ck_assert_msg(STAT(pages_installed) - before == steps[k].installed,
			      "page %llu installed %llu pages, expected %llu",
			      (unsigned long long)steps[k].page,
			      (unsigned long long)(STAT(pages_installed) - before),
			      (unsigned long long)steps[k].installed);
	}
	for (i = 0; i < 64; i++)
		ck_assert_msg(page_bits__resident(&mmu.bits, i) ==
				      (i < 8 || i == 20 || (i >= 24 && i <= 32) || i == 40),
			      "page %llu", (unsigned long long)i);
	touch(&rd); /* every page reads what the file holds, a hole as zeros */
	ck_assert_int_eq(rd.bad, 0);
	shm_unchanged(data);
	ck_assert_uint_eq(STAT(result_sigbus), 0);
	mmu_teardown();
	unlink(shm_path);
	free(want);
	free(data);
}
END_TEST

void mmu_prefetch_tcases(Suite *s)
{
	TCase *tc = tcase_create("working-set");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, recording_keeps_the_order_of_installs);
	tcase_add_test(tc, a_shared_file_s_holes_are_not_faulted_around);
	tcase_add_test(tc, recording_holds_the_window_faulting_page_first);
	tcase_add_test(tc, recording_stops_when_full_and_says_so);
	tcase_add_test(tc, a_plan_is_runs_largest_first_in_windows);
	tcase_add_test(tc, prefetched_pages_take_no_fault);
	tcase_add_test(tc, pages_written_when_recorded_go_writable);
	tcase_add_test(tc, a_late_windows_written_pages_go_writable);
	tcase_add_test(tc, prefetch_stops_before_the_budget);
	tcase_add_test(tc, a_fault_before_the_prefetch_is_late);
	tcase_add_test(tc, seq_plans_the_files_data);
	tcase_add_test(tc, no_memory_for_the_working_set);
	suite_add_tcase(s, tc);

	tc = tcase_create("shared");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_shared_file_is_mapped_and_never_written);
	suite_add_tcase(s, tc);
}
