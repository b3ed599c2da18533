/*
 * The dedup engine without KVM: host threads write userfaultfd-registered
 * guest RAM the way vCPUs do; the tests drive passes of the scanner with
 * dedup__scan() and use the counters as the oracle. Needs userfaultfd
 * write-protect on shared memory (Linux 5.19) and root or
 * vm.unprivileged_userfaultfd=1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/dedup.h"
#include "mmu/mmu.h"
#include "tests/unit/sibling.h"
#include "tests/unit/unit.h"

#define PAGE	 MMU_PAGE_SIZE
#define RAM	 (4ULL << 20) /* 1024 pages */
#define NR_PAGES (RAM / PAGE)

static struct mmu mmu;
static struct dedup dd;
static char log_buf[1024];

static pthread_mutex_t failed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int calls;
	fault_t result;
	uint64_t gpa;
	char why[256];
	bool poison;
	bool make_room; /* once: give a page back and ask for a refault (--on-oom pause) */
} failed;

#define DSTAT(name) __atomic_load_n(&dd.stats.name, __ATOMIC_RELAXED)

static void on_fault_failed(void *owner, struct fault_ctx *ctx, fault_t result, const char *why)
{
	(void)owner;
	pthread_mutex_lock(&failed_lock);
	failed.calls++;
	failed.result = result;
	failed.gpa = ctx->gpa;
	snprintf(failed.why, sizeof(failed.why), "%s", why);
	if (failed.poison && (result & FAULT_OOM))
		ck_assert_int_eq(mmu__poison(&mmu, ctx->gpa), 0);
	if (failed.make_room && (result & FAULT_OOM)) {
		mmu__uncharge(&mmu, 1);
		ctx->refault = true;
		failed.make_room = false;
	}
	pthread_mutex_unlock(&failed_lock);
}

static int failed_calls(void)
{
	int n;

	pthread_mutex_lock(&failed_lock);
	n = failed.calls;
	pthread_mutex_unlock(&failed_lock);
	return n;
}

/* As setup_with(), with dedup's fault reader started when @reader. */
static void setup_parts(const char *file, uint64_t limit, const struct dedup_knobs *knobs,
			enum dedup_mode mode, bool reader)
{
	const struct mmu_config cfg = {
		.ram_size = RAM,
		.mem_limit = limit,
		.backing_file = file,
		.fault_around = 1,
		.max_retries = 8,
		.retry_ms = 2000,
		.nr_handlers = 2,
		.dedup = true,
	};
	const struct mmu_ops ops = {.fault_failed = on_fault_failed};

	memset(&failed, 0, sizeof(failed));
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), 0);
	ck_assert_int_eq(dedup__init(&dd, &mmu, mode, knobs), 0);
	ck_assert_int_eq(mmu__start(&mmu), 0);
	if (reader)
		ck_assert_int_eq(dedup__start_reader(&dd), 0);
}

static void setup_with(const char *file, uint64_t limit, const struct dedup_knobs *knobs,
		       enum dedup_mode mode)
{
	setup_parts(file, limit, knobs, mode, true);
}

static void setup(void)
{
	setup_with(NULL, 0, NULL, DEDUP_ON);
}

static void teardown(void)
{
	char path[64];

	/* As vm.c: the fault handlers end before dedup does. */
	mmu__stop(&mmu);
	dedup__exit(&dd);
	mmu__exit(&mmu);
	snprintf(path, sizeof(path), "/tmp/faultline-dedup-%d", getpid());
	unlink(path);
	ck_assert_int_eq(inject__init(NULL), 0);
}

static uint64_t resident(void)
{
	struct mmu_pages p;

	mmu__pages(&mmu, &p);
	return p.resident;
}

/*
 * Wait until every fault taken has ended: a writer goes on as soon as its
 * page is installed, before the handler marks it resident.
 */
static void settle(void)
{
	int i;

	for (i = 0; i < 2000; i++) {
		const struct mmu_stats *s = &mmu.stats;
		uint64_t ended = __atomic_load_n(&s->result_done, __ATOMIC_ACQUIRE) +
				 __atomic_load_n(&s->result_oom, __ATOMIC_ACQUIRE) +
				 __atomic_load_n(&s->result_sigbus, __ATOMIC_ACQUIRE) +
				 __atomic_load_n(&s->result_hwpoison, __ATOMIC_ACQUIRE);

		if (ended == __atomic_load_n(&s->faults, __ATOMIC_ACQUIRE))
			return;
		usleep(1000);
	}
	ck_abort_msg("faults still in flight after 2 s");
}

/* Charge the budget (as a device would) until only @pages are left. */
static void leave_budget(uint64_t pages)
{
	ck_assert_int_eq(mmu__charge(&mmu, mmu.limit_pages - resident() - pages), 0);
}

/* One full pass of the scanner, from page 0. */
static void pass(void)
{
	uint64_t scans = DSTAT(full_scans);

	settle();
	dedup__scan(&dd, NR_PAGES - dd.cursor);
	ck_assert_uint_eq(DSTAT(full_scans), scans + 1);
}

#define ZERO_KIND UINT64_MAX /* a page of zeros */

/* The word every 8 bytes of a page of content @kind holds. */
static uint64_t word_of(uint64_t kind)
{
	return kind == ZERO_KIND ? 0 : 0x9e3779b97f4a7c15ULL * (kind + 1);
}

static volatile uint64_t *guest_words(uint64_t page)
{
	return (volatile uint64_t *)(mmu.ram.host + page * PAGE);
}

static void fill(uint64_t page, uint64_t kind)
{
	volatile uint64_t *w = guest_words(page);
	uint64_t k;

	for (k = 0; k < PAGE / 8; k++)
		w[k] = word_of(kind);
}

/* Words of @page not holding content @kind. */
static int bad_words(uint64_t page, uint64_t kind)
{
	volatile uint64_t *w = guest_words(page);
	uint64_t k;
	int bad = 0;

	for (k = 0; k < PAGE / 8; k++)
		bad += w[k] != word_of(kind);
	return bad;
}

/* Fill pages [0, n) with contents i % kinds. */
static void fill_pattern(uint64_t n, uint64_t kinds)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		fill(i, i % kinds);
}

static void check_pattern(uint64_t n, uint64_t kinds)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		ck_assert_msg(bad_words(i, i % kinds) == 0, "page %llu lost its contents",
			      (unsigned long long)i);
}

/* ---- knobs ---------------------------------------------------------------------- */

START_TEST(knobs_parse_and_check_ranges)
{
	struct dedup_knobs k;

	dedup__default_knobs(&k);
	ck_assert_uint_eq(k.run, 1);
	ck_assert_uint_eq(k.pages_to_scan, 256);
	ck_assert_uint_eq(k.sleep_ms, 20);
	ck_assert_uint_eq(k.max_page_sharing, 256);
	ck_assert_uint_eq(k.map_limit, 0);
	ck_assert_int_eq(dedup__set_knob(&k, "pages_to_scan", "4096"), 0);
	ck_assert_uint_eq(k.pages_to_scan, 4096);
	ck_assert_int_eq(dedup__set_knob(&k, "run", "2"), 0);
	ck_assert_int_eq(dedup__set_knob(&k, "run", "3"), -ERANGE);
	ck_assert_int_eq(dedup__set_knob(&k, "max_page_sharing", "1"), -ERANGE);
	ck_assert_int_eq(dedup__set_knob(&k, "pages_to_scan", "0"), -ERANGE);
	ck_assert_int_eq(dedup__set_knob(&k, "sleep_ms", "-1"), -EINVAL);
	ck_assert_int_eq(dedup__set_knob(&k, "sleep_ms", "10ms"), -EINVAL);
	ck_assert_int_eq(dedup__set_knob(&k, "sleep_ms", ""), -EINVAL);
	ck_assert_int_eq(dedup__set_knob(&k, "pages", "1"), -ENOENT);
	ck_assert_uint_eq(k.run, 2);
}
END_TEST

/* ---- the checksum gate and the indexes ----------------------------------------------- */

START_TEST(checksum_gate_needs_two_passes)
{
	fill_pattern(64, 4);
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_eq(DSTAT(pages_sharing), 0);
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 4);
	ck_assert_uint_eq(DSTAT(pages_sharing), 60);
	check_pattern(64, 4);
}
END_TEST

START_TEST(volatile_pages_are_not_merged)
{
	fill_pattern(8, 1);
	pass();
	fill(3, 7); /* changes between the passes */
	fill(5, 7);
	pass();
	ck_assert_uint_eq(DSTAT(pages_volatile), 2);
	ck_assert_uint_eq(DSTAT(pages_sharing), 5); /* 6 equal pages left */
	pass();					    /* 3 and 5 kept their checksum */
	ck_assert_uint_eq(DSTAT(pages_volatile), 0);
	ck_assert_uint_eq(DSTAT(pages_shared), 2);
	ck_assert_uint_eq(DSTAT(pages_sharing), 6);
	ck_assert_int_eq(bad_words(3, 7), 0);
	ck_assert_int_eq(bad_words(4, 0), 0);
}
END_TEST

START_TEST(unique_pages_stay_unshared)
{
	uint64_t i;

	for (i = 0; i < 16; i++)
		fill(i, 100 + i);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_eq(DSTAT(pages_unshared), 0); /* a finished pass starts the index again */
	dedup__scan(&dd, 16);
	ck_assert_uint_eq(DSTAT(pages_unshared), 16);
}
END_TEST

START_TEST(merge_frees_memory)
{
	uint64_t before, bytes;

	fill_pattern(512, 16);
	settle();
	before = resident();
	ck_assert_uint_eq(before, 512);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 16);
	ck_assert_uint_eq(DSTAT(pages_sharing), 496);
	ck_assert_uint_eq(resident(), 16); /* the shared pages alone */
	/* and the host holds those alone: the guest's own pages were punched */
	ck_assert_int_eq(mmu__host_bytes(&mmu, &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_int_eq(dedup__shared_bytes(&dd, &bytes), 0);
	ck_assert_uint_eq(bytes, 16 * PAGE);
	ck_assert_uint_eq(DSTAT(cow_breaks), 0);
	check_pattern(512, 16);
	pass(); /* merged pages stay as they are */
	ck_assert_uint_eq(DSTAT(pages_sharing), 496);
	ck_assert_uint_eq(DSTAT(merge_errors), 0);
}
END_TEST

START_TEST(merging_works_with_a_full_budget)
{
	teardown();
	setup_with(NULL, 64 * PAGE, NULL, DEDUP_ON);
	fill_pattern(64, 4);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 60);
	ck_assert_uint_eq(DSTAT(merge_errors), 0);
	ck_assert_uint_eq(resident(), 4);
	check_pattern(64, 4);
}
END_TEST

/* The scanner sleeps sleep_ms between batches (a monotonic deadline). */
START_TEST(scanner_sleeps_between_batches)
{
	struct dedup_knobs k;

	teardown();
	dedup__default_knobs(&k);
	k.pages_to_scan = 1;
	k.sleep_ms = 5000;
	setup_with(NULL, 0, &k, DEDUP_ON);
	ck_assert_int_eq(dedup__start(&dd), 0);
	usleep(300 * 1000);
	ck_assert_uint_le(DSTAT(pages_scanned), 1);
	dedup__stop(&dd); /* wakes it: does not wait 5 s */
}
END_TEST

START_TEST(max_page_sharing_bounds_each_page)
{
	struct dedup_knobs k;

	teardown();
	dedup__default_knobs(&k);
	k.max_page_sharing = 4;
	setup_with(NULL, 0, &k, DEDUP_ON);
	fill_pattern(10, 1);
	pass();
	pass();
	/* 4 + 4 + 2 sharers: three shared pages. */
	ck_assert_uint_eq(DSTAT(pages_shared), 3);
	ck_assert_uint_eq(DSTAT(pages_sharing), 7);
	check_pattern(10, 1);
}
END_TEST

/* ---- zero pages -------------------------------------------------------------------------- */

START_TEST(zero_pages_are_released_and_read_as_zeros)
{
	uint64_t i;

	fill_pattern(32, 2);
	for (i = 32; i < 96; i++)
		fill(i, 0), memset((void *)guest_words(i), 0, PAGE);
	settle();
	ck_assert_uint_eq(resident(), 96);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(zero_pages), 64);
	ck_assert_uint_eq(resident(), 2);
	for (i = 32; i < 96; i++)
		ck_assert_uint_eq(guest_words(i)[i % 512], 0);
	settle();
	ck_assert_uint_eq(resident(), 66); /* read again: installed as zeros */
	fill(40, 9);
	ck_assert_int_eq(bad_words(40, 9), 0);
	check_pattern(32, 2);
}
END_TEST

/*
 * Zero pages 0..63 but 10 and 40, resident, after one pass (which releases
 * nothing: the checksum gate), with the injection @spec (before any thread).
 */
static void zero_run_setup(const char *spec)
{
	uint64_t i;

	teardown();
	ck_assert_int_eq(inject__init(spec), 0);
	setup_with(NULL, 0, NULL, DEDUP_ZERO);
	for (i = 0; i < 64; i++)
		fill(i, i == 10 ? 3 : i == 40 ? 4 : ZERO_KIND);
	pass();
	ck_assert_uint_eq(resident(), 64);
	ck_assert_uint_eq(DSTAT(zero_pages), 0);
}

/*
 * Zero pages found in a row go together: one write-protect and one punch
 * per stretch. The injected failure of the first punch costs its whole
 * stretch, pages 0..9, which stay resident and are released at the next
 * pass. (A batch's end releases its run too: the next test cuts one.)
 */
START_TEST(zero_runs_are_released_together)
{
	uint64_t i;

	zero_run_setup("dedup.zero_punch:EIO:0:1");
	pass();
	ck_assert_uint_eq(DSTAT(merge_errors), 10);
	ck_assert_uint_eq(DSTAT(zero_pages), 52);
	ck_assert_uint_eq(resident(), 12);
	guest_words(3)[1] = 5; /* still resident and writable */
	ck_assert_uint_eq(DSTAT(zero_pages), 52);
	guest_words(3)[1] = 0;
	ck_assert_int_eq(bad_words(10, 3), 0);
	ck_assert_int_eq(bad_words(40, 4), 0);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(zero_pages), 62);
	ck_assert_uint_eq(resident(), 2);
	for (i = 0; i < 64; i++)
		ck_assert_int_eq(bad_words(i, i == 10 ? 3 : i == 40 ? 4 : ZERO_KIND), 0);
}
END_TEST

/* A run that cannot be write-protected is left as it was, and tried again later. */
START_TEST(zero_run_protect_failure_leaves_pages_as_they_were)
{
	uint64_t scans, wp;

	zero_run_setup("dedup.zero_protect:EPERM:2:1");
	/* batches of 16: the stretches are 0..9, 11..15, 16..31 (fails), 32..39, ... */
	for (scans = DSTAT(full_scans); DSTAT(full_scans) == scans;)
		dedup__scan(&dd, 16);
	ck_assert_uint_eq(DSTAT(merge_errors), 16);
	ck_assert_uint_eq(DSTAT(zero_pages), 62 - 16);
	ck_assert_uint_eq(resident(), 18);
	wp = __atomic_load_n(&mmu.stats.faults_wp, __ATOMIC_RELAXED);
	guest_words(20)[0] = 7; /* not protected: no fault */
	settle();
	ck_assert_uint_eq(__atomic_load_n(&mmu.stats.faults_wp, __ATOMIC_RELAXED), wp);
	guest_words(20)[0] = 0;
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(zero_pages), 62);
	ck_assert_uint_eq(resident(), 2);
}
END_TEST

START_TEST(zero_mode_merges_nothing_else)
{
	uint64_t i;

	teardown();
	setup_with(NULL, 0, NULL, DEDUP_ZERO);
	fill_pattern(32, 2);
	for (i = 32; i < 40; i++)
		memset((void *)guest_words(i), 0, PAGE);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(zero_pages), 8);
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_eq(resident(), 32);
}
END_TEST

/* ---- copy-on-write ------------------------------------------------------------------------ */

START_TEST(guest_write_breaks_sharing)
{
	fill_pattern(64, 4);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 60);
	guest_words(5)[3] = 42; /* a write fault on the dedup userfaultfd */
	ck_assert_uint_eq(guest_words(5)[3], 42);
	ck_assert_uint_eq(guest_words(5)[4], word_of(1));
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);
	ck_assert_uint_eq(DSTAT(pages_sharing), 59);
	settle();
	ck_assert_uint_eq(resident(), 5);
	/* Its sharers kept their contents. */
	ck_assert_int_eq(bad_words(1, 1), 0);
	ck_assert_int_eq(bad_words(9, 1), 0);
	guest_words(5)[3] = word_of(1);
	check_pattern(64, 4);
	/* The page is a page like others again: merged at the next passes. */
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 60);
}
END_TEST

START_TEST(last_sharer_takes_the_charge_over)
{
	fill_pattern(2, 1);
	pass();
	pass();
	ck_assert_uint_eq(resident(), 1);
	leave_budget(1);
	guest_words(0)[0] = 1;
	settle();
	ck_assert_uint_eq(resident(), NR_PAGES);
	guest_words(1)[0] = 2; /* the last sharer: no new charge */
	settle();
	ck_assert_uint_eq(resident(), NR_PAGES);
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_eq(DSTAT(cow_breaks), 2);
	ck_assert_int_eq(failed_calls(), 0);
}
END_TEST

START_TEST(monitor_access_breaks_and_pins)
{
	uint64_t *p;

	fill_pattern(16, 2);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 14);
	ck_assert_int_eq(mmu__access(&mmu, 4 * PAGE, 8, (void **)&p), 0);
	ck_assert_uint_eq(*p, word_of(0));
	*p = 7;
	ck_assert_uint_eq(guest_words(4)[0], 7);
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);
	*p = word_of(0);
	pass();
	pass();
	/* Pinned: the monitor may still hold the pointer. */
	ck_assert_uint_eq(DSTAT(pages_sharing), 13);
	check_pattern(16, 2);
}
END_TEST

/*
 * The monitor's access (a device's DMA) to a merged page whose copy does
 * not fit: the owner hears of it as of a vCPU's fault, so that --on-oom
 * decides, and a refault after room was made completes the access.
 */
START_TEST(monitor_cow_break_over_budget_goes_to_the_owner)
{
	uint64_t *p;

	fill_pattern(16, 2);
	pass();
	pass();
	leave_budget(0);
	ck_assert_int_eq(mmu__access(&mmu, 4 * PAGE, 8, (void **)&p), -ENOMEM);
	ck_assert_int_eq(failed_calls(), 1);
	ck_assert_uint_eq(failed.result, FAULT_OOM);
	ck_assert_uint_eq(failed.gpa, 4 * PAGE);
	ck_assert_str_eq(failed.why,
			 "copy-on-write break of a shared page: budget of 1024 pages exhausted");
	ck_assert_uint_eq(mmu.stats.faults_monitor, 1);
	ck_assert_uint_eq(mmu.stats.result_oom, 1);
	ck_assert_uint_eq(DSTAT(cow_break_failures), 1);
	ck_assert_uint_eq(DSTAT(pages_sharing), 14); /* left merged and intact */
	check_pattern(16, 2);

	pthread_mutex_lock(&failed_lock);
	failed.make_room = true;
	pthread_mutex_unlock(&failed_lock);
	ck_assert_int_eq(mmu__access(&mmu, 4 * PAGE, 8, (void **)&p), 0);
	ck_assert_int_eq(failed_calls(), 2);
	ck_assert_uint_eq(mmu.stats.refaults, 1);
	ck_assert_uint_eq(mmu.stats.faults_monitor, 2);
	ck_assert_uint_eq(mmu.stats.result_oom, 2);
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);
	*p = 7;
	ck_assert_uint_eq(guest_words(4)[0], 7);
	*p = word_of(0);
	check_pattern(16, 2);
}
END_TEST

/* The writer of a page whose copy cannot be charged. */
struct writer {
	uint64_t page;
	pthread_t thread;
	int sigbus_code;
};

static __thread sigjmp_buf *volatile writer_jmp;
static __thread int writer_code;

static void writer_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!writer_jmp) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	writer_code = si->si_code;
	siglongjmp(*writer_jmp, 1);
}

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		writer_jmp = NULL;
		w->sigbus_code = writer_code;
		return NULL;
	}
	writer_jmp = &jb;
	guest_words(w->page)[0] = 1;
	writer_jmp = NULL;
	return NULL;
}

START_TEST(cow_break_over_budget_is_oom_and_stops_dedup)
{
	struct writer w = {.page = 3};
	struct sigaction sa = {.sa_sigaction = writer_sigbus, .sa_flags = SA_SIGINFO};
	int i;

	fill_pattern(64, 4);
	pass();
	pass();
	leave_budget(0);
	pthread_mutex_lock(&failed_lock);
	failed.poison = true; /* as --on-oom mce does */
	pthread_mutex_unlock(&failed_lock);
	sigaction(SIGBUS, &sa, NULL);
	ck_assert_int_eq(pthread_create(&w.thread, NULL, writer_thread, &w), 0);
	pthread_join(w.thread, NULL);
	/* BUS_ADRERR where the host kernel lacks CONFIG_MEMORY_FAILURE (test_mmu.c) */
	ck_assert_msg(w.sigbus_code == BUS_MCEERR_AR || w.sigbus_code == BUS_ADRERR, "si_code %d",
		      w.sigbus_code);
	ck_assert_int_eq(failed_calls(), 1);
	ck_assert_uint_eq(failed.result, FAULT_OOM);
	ck_assert_uint_eq(failed.gpa, 3 * PAGE);
	ck_assert_str_eq(failed.why,
			 "copy-on-write break of a shared page: budget of 1024 pages exhausted");
	ck_assert_uint_eq(DSTAT(cow_break_failures), 1);
	ck_assert_uint_eq(dd.knobs.run, 0);
	ck_assert_str_eq(log_buf, "faultline: dedup: stopped merging: a copy-on-write break "
				  "failed at GPA 0x3000: out of memory\n");
	/* The page is gone (poisoned); its sharers are intact; nothing loops. */
	ck_assert_uint_eq(DSTAT(pages_sharing), 59);
	for (i = 0; i < 64; i++)
		if (i != 3)
			ck_assert_int_eq(bad_words((uint64_t)i, (uint64_t)i % 4), 0);
	ck_assert_uint_eq(mmu.stats.faults_wp, 1);
}
END_TEST

/*
 * A copy-on-write break on a budget full only of a sibling's charge that is
 * not over (two faults on one page both charge it for a moment) waits for
 * it, as a missing page's fault does, in all three places a break happens:
 * a guest write, the monitor's access and an unmerge. It charged under the
 * reclaim lock, where it cannot wait, and was called out of memory (dedup
 * stopped; --on-oom kill would have stopped a healthy VM).
 */
START_TEST(cow_break_on_a_full_budget_waits_for_a_siblings_charge)
{
	struct sigaction sa = {.sa_sigaction = writer_sigbus, .sa_flags = SA_SIGINFO};
	struct writer w = {.page = 3};
	struct sibling sib;
	uint64_t *p;

	fill_pattern(64, 4);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 60);
	leave_budget(1);
	pthread_mutex_lock(&failed_lock);
	failed.poison = true; /* an OOM is a SIGBUS for the writer, not a hang */
	pthread_mutex_unlock(&failed_lock);
	sigaction(SIGBUS, &sa, NULL);

	/* A guest write. */
	sibling_charges(&sib, &mmu);
	sibling_ends_after(&sib, 20);
	ck_assert_int_eq(pthread_create(&w.thread, NULL, writer_thread, &w), 0);
	pthread_join(w.thread, NULL);
	sibling_join(&sib);
	ck_assert_int_eq(w.sigbus_code, 0);
	ck_assert_uint_eq(guest_words(3)[0], 1);
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);

	/* The monitor's access (a device's DMA). */
	mmu__uncharge(&mmu, 1);
	sibling_charges(&sib, &mmu);
	sibling_ends_after(&sib, 20);
	ck_assert_int_eq(mmu__access(&mmu, 4 * PAGE, 8, (void **)&p), 0);
	sibling_join(&sib);
	ck_assert_uint_eq(*p, word_of(0));
	ck_assert_uint_eq(DSTAT(cow_breaks), 2);

	/* An unmerge. */
	mmu__uncharge(&mmu, 1);
	sibling_charges(&sib, &mmu);
	sibling_ends_after(&sib, 20);
	ck_assert_int_eq(dedup__set_run(&dd, 2), 0);
	ck_assert_int_eq(dedup__unmerge(&dd, 1), 1);
	sibling_join(&sib);
	ck_assert_uint_eq(DSTAT(unmerged), 1);

	settle();
	ck_assert_int_eq(failed_calls(), 0);
	ck_assert_uint_eq(DSTAT(cow_break_failures), 0);
	ck_assert_uint_eq(mmu.stats.result_oom, 0);
	ck_assert_uint_eq(DSTAT(pages_sharing), 57);
	ck_assert_uint_eq(resident(), NR_PAGES);
	ck_assert_uint_eq(charging(&mmu), 0);
	guest_words(3)[0] = word_of(3);
	check_pattern(64, 4);
}
END_TEST

/* ... for the retry bound at most: a charge that does not end leaves the budget full. */
START_TEST(cow_break_waits_for_a_siblings_charge_up_to_the_bound)
{
	struct sibling sib;
	uint64_t *p;

	fill_pattern(16, 2);
	pass();
	pass();
	leave_budget(1);
	sibling_charges(&sib, &mmu);
	ck_assert_int_eq(mmu__access(&mmu, 4 * PAGE, 8, (void **)&p), -ENOMEM);
	ck_assert_int_eq(failed_calls(), 1);
	ck_assert_uint_eq(failed.result, FAULT_OOM);
	ck_assert_str_eq(failed.why,
			 "copy-on-write break of a shared page: budget of 1024 pages exhausted");
	ck_assert_uint_eq(DSTAT(cow_break_failures), 1);
	sibling_ends(&sib);
	ck_assert_uint_eq(charging(&mmu), 0);
	ck_assert_uint_eq(resident(), NR_PAGES - 1);
	check_pattern(16, 2);
}
END_TEST

/* A page charged for a break that turns out not to need it (the last sharer) goes back. */
START_TEST(an_unneeded_cow_charge_is_given_back)
{
	fill_pattern(2, 1);
	pass();
	pass();
	ck_assert_uint_eq(resident(), 1);
	guest_words(0)[0] = 1;
	settle();
	ck_assert_uint_eq(resident(), 2);
	guest_words(1)[0] = 2; /* the last sharer: charged before the lock, given back */
	settle();
	ck_assert_uint_eq(DSTAT(cow_breaks), 2);
	ck_assert_uint_eq(resident(), 2);
	ck_assert_uint_eq(charging(&mmu), 0);
	ck_assert_int_eq(failed_calls(), 0);
}
END_TEST

START_TEST(injected_cow_failure_is_an_error_not_a_loop)
{
	void *p;

	fill_pattern(16, 1);
	pass();
	pass();
	ck_assert_int_eq(inject__init("dedup.cow:ENOMEM"), 0);
	ck_assert_int_eq(mmu__access(&mmu, 2 * PAGE, 8, &p), -ENOMEM);
	ck_assert_int_eq(failed_calls(), 1); /* an OOM: the VM's policy decides */
	ck_assert_uint_eq(DSTAT(cow_break_failures), 1);
	ck_assert_uint_eq(DSTAT(cow_breaks), 0);
	ck_assert_uint_eq(dd.knobs.run, 0);
	ck_assert_uint_eq(resident(), 1); /* the failed copy was given back */
	/* The next try succeeds: the page was left merged and consistent. */
	ck_assert_int_eq(mmu__access(&mmu, 2 * PAGE, 8, &p), 0);
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);
	check_pattern(16, 1);
}
END_TEST

/* A copy that fails for another reason is the access's error, not an OOM. */
START_TEST(injected_cow_io_error_fails_the_access)
{
	void *p;
	struct fault_ctx vcpu_write = {
		.mmu = &mmu,
		.gpa = 3 * PAGE,
		.hva = (uint8_t *)guest_words(3),
		.access = FAULT_WRITE,
		.flags = FAULT_FLAG_ALLOW_RETRY,
		.source = FAULT_SRC_EFAULT,
	};

	fill_pattern(16, 1);
	pass();
	pass();
	ck_assert_int_eq(inject__init("dedup.cow:EIO:0:2"), 0);
	ck_assert_int_eq(mmu__access(&mmu, 2 * PAGE, 8, &p), -EFAULT);
	ck_assert_int_eq(failed_calls(), 0);
	ck_assert_uint_eq(mmu.stats.result_sigbus, 1);
	ck_assert_uint_eq(DSTAT(cow_break_failures), 1);
	ck_assert_str_eq(log_buf, "faultline: dedup: stopped merging: a copy-on-write break "
				  "failed at GPA 0x2000: Input/output error\n");
	/* A vCPU's write: its owner hears what failed, not a guess. */
	ck_assert_uint_eq(mmu__handle_fault(&vcpu_write), FAULT_SIGBUS);
	ck_assert_int_eq(failed_calls(), 1);
	ck_assert_str_eq(failed.why,
			 "the copy-on-write break of a shared page failed: Input/output error");
	ck_assert_uint_eq(DSTAT(cow_break_failures), 2);
	check_pattern(16, 1);
}
END_TEST

/*
 * Eight equal pages, whose merges fail at the injection @spec: nothing is
 * shared, and the pages are as they were, resident, intact and writable
 * (not left protected).
 */
static void merges_fail_with(const char *spec)
{
	fill_pattern(8, 1);
	pass();
	ck_assert_int_eq(inject__init(spec), 0);
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_eq(resident(), 8);
	fill(2, 5);
	ck_assert_int_eq(bad_words(2, 5), 0);
	ck_assert_int_eq(bad_words(3, 0), 0);
}

START_TEST(injected_map_failure_leaves_pages_as_they_were)
{
	merges_fail_with("dedup.map:ENOMEM:0:0");
	ck_assert_uint_ge(DSTAT(merge_errors), 4);
}
END_TEST

/* No shared page can be made (out of memory for the node); the next pass merges. */
START_TEST(injected_node_failure_leaves_pages_as_they_were)
{
	merges_fail_with("dedup.node:ENOMEM:0:0");
	ck_assert_uint_eq(DSTAT(pages_sharing), 0);
	fill(2, 0);
	ck_assert_int_eq(inject__init(NULL), 0);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 1);
	ck_assert_uint_eq(DSTAT(pages_sharing), 7);
	check_pattern(8, 1);
	ck_assert_int_eq(failed_calls(), 0);
}
END_TEST

/* ---- runs ------------------------------------------------------------------------------------ */

/*
 * 64 pages of 16 contents in a row (i % 16): at the second pass pages
 * 16..31 pair with 0..15, a run of 16 pairs that makes shared pages 0..15
 * in a row of the memfd, merged with one mapping on each side; 32..63 are
 * then one run into them, write-protected with one call and mapped with
 * one mapping per stretch of shared pages in a row (32..47, 48..63). The
 * calls of dedup.map: 0..15, 16..31, 32..47, 48..63; of dedup.protect:
 * 0..15, 16..31, 32..63. With @spec injected for that pass, @left pages
 * are not merged.
 */
static void merge_runs_with(const char *spec, uint64_t left)
{
	fill_pattern(64, 16);
	pass();
	ck_assert_int_eq(inject__init(spec), 0);
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 16);
	ck_assert_uint_eq(DSTAT(pages_sharing), 48 - left);
	ck_assert_uint_eq(resident(), 64 - (48 - left));
	check_pattern(64, 16);
	/*
	 * Only when set: ThreadSanitizer cannot see that a later write fault
	 * orders this with the dedup reader's reads of the rules.
	 */
	if (spec)
		ck_assert_int_eq(inject__init(NULL), 0);
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 48);
	ck_assert_uint_eq(resident(), 16);
	check_pattern(64, 16);
}

START_TEST(runs_merge_together)
{
	merge_runs_with(NULL, 0);
	ck_assert_uint_eq(DSTAT(merge_errors), 0);
	/* A break inside a run leaves its neighbours shared and whole. */
	fill(40, 3);
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);
	ck_assert_uint_eq(DSTAT(pages_sharing), 47);
	ck_assert_int_eq(bad_words(39, 7), 0);
	ck_assert_int_eq(bad_words(40, 3), 0);
	ck_assert_int_eq(bad_words(41, 9), 0);
	ck_assert_int_eq(dedup__set_run(&dd, 2), 0);
	ck_assert_int_eq(dedup__unmerge(&dd, 1000), 63);
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_eq(resident(), 64);
	fill(40, 8);
	check_pattern(64, 16);
	ck_assert_int_eq(failed_calls(), 0);
}
END_TEST

/*
 * One step of the merges fails once, at the second pass; the pages it
 * leaves (and only they) stay as they were, and merge at the next pass:
 * the mapping of the first run (its 16 pages); the mapping of the pairs'
 * second side (the first side is merged alone); the pairs' shared pages
 * (all 32 pages stay; 32..47 take their place in the unstable index and
 * pair with 48..63).
 */
START_TEST(runs_with_a_failed_step)
{
	static const struct {
		const char *spec;
		uint64_t left;
	} cases[] = {
		{"dedup.map:ENOMEM:2:1", 16},
		{"dedup.map:ENOMEM:1:1", 16},
		{"dedup.node:ENOMEM:0:1", 32},
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		teardown();
		setup();
		merge_runs_with(cases[i].spec, cases[i].left);
		ck_assert_uint_eq(DSTAT(merge_errors), 1);
		ck_assert_int_eq(failed_calls(), 0);
	}
}
END_TEST

/*
 * The write-protection of 32..63, one run into the pairs' shared pages,
 * fails: its pages stay writable, and merge at the next pass.
 */
START_TEST(run_whose_protection_fails_stays_writable)
{
	fill_pattern(64, 16);
	pass();
	ck_assert_int_eq(inject__init("dedup.protect:EPERM:2:1"), 0);
	pass();
	ck_assert_uint_eq(DSTAT(merge_errors), 32);
	ck_assert_uint_eq(DSTAT(pages_sharing), 16);
	fill(50, 5); /* no copy-on-write: the page was never protected */
	ck_assert_uint_eq(DSTAT(cow_breaks), 0);
	ck_assert_int_eq(bad_words(50, 5), 0);
	fill(50, 50 % 16); /* its checksum at the last pass again */
	ck_assert_int_eq(inject__init(NULL), 0);
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 48);
	check_pattern(64, 16);
	ck_assert_int_eq(failed_calls(), 0);
}
END_TEST

/*
 * Shared pages made and freed again and again, more of them in all than
 * the stable memfd has slots: a second copy of 32 pages still gets its 32
 * shared pages in a row each time (freed slots are taken again, lowest
 * first).
 */
START_TEST(pairs_get_slots_in_a_row_after_many_frees)
{
	unsigned cycle;
	uint64_t i;

	for (i = 0; i < 64; i++)
		fill(i, i % 32);
	for (cycle = 0; cycle < 40; cycle++) {
		pass();
		pass();
		ck_assert_uint_eq(DSTAT(pages_shared), 32);
		ck_assert_uint_eq(DSTAT(pages_sharing), 32);
		for (i = 0; i < 64; i++)
			ck_assert_msg(dd.rmap[i].node->slot == dd.rmap[0].node->slot + i % 32,
				      "cycle %u: page %llu's shared page is not in the row", cycle,
				      (unsigned long long)i);
		ck_assert_int_eq(dedup__set_run(&dd, 2), 0);
		ck_assert_int_eq(dedup__unmerge(&dd, 1000), 64);
		ck_assert_int_eq(dedup__set_run(&dd, 1), 0);
	}
	for (i = 0; i < 64; i++)
		ck_assert_int_eq(bad_words(i, i % 32), 0);
	ck_assert_uint_eq(DSTAT(merge_errors), 0);
}
END_TEST

/* ---- unmerge -------------------------------------------------------------------------------- */

START_TEST(unmerge_is_interruptible_and_resumable)
{
	fill_pattern(64, 4);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_sharing), 60);
	ck_assert_int_eq(dedup__set_run(&dd, 2), 0);
	ck_assert_int_eq(dedup__unmerge(&dd, 10), 10);
	ck_assert_uint_eq(DSTAT(unmerged), 10);
	ck_assert_uint_eq(DSTAT(pages_sharing), 50);
	check_pattern(64, 4);
	/* Asked to stop: nothing more, the state is consistent. */
	ck_assert_int_eq(dedup__set_run(&dd, 0), 0);
	ck_assert_int_eq(dedup__unmerge(&dd, 64), 0);
	ck_assert_uint_eq(DSTAT(pages_sharing), 50);
	/* Resumed where it stopped. */
	ck_assert_int_eq(dedup__set_run(&dd, 2), 0);
	ck_assert_int_eq(dedup__unmerge(&dd, 1000), 54);
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_eq(DSTAT(pages_sharing), 0);
	ck_assert_uint_eq(resident(), 64);
	ck_assert_int_eq(dedup__unmerge(&dd, 1000), 0);
	check_pattern(64, 4);
}
END_TEST

START_TEST(unmerge_out_of_budget_stops)
{
	fill_pattern(64, 4);
	pass();
	pass();
	leave_budget(5);
	ck_assert_int_eq(dedup__set_run(&dd, 2), 0);
	ck_assert_int_eq(dedup__unmerge(&dd, 1000), -ENOMEM);
	ck_assert_uint_eq(DSTAT(unmerged), 5);
	ck_assert_uint_eq(DSTAT(cow_break_failures), 1);
	ck_assert_uint_eq(DSTAT(pages_sharing), 55);
	check_pattern(64, 4);
	ck_assert_int_eq(failed_calls(), 0); /* the monitor's own: no guest policy */
}
END_TEST

/* ---- limits ---------------------------------------------------------------------------------- */

START_TEST(map_limit_stops_merging)
{
	struct dedup_knobs k;

	teardown();
	dedup__default_knobs(&k);
	k.map_limit = 1; /* below what the process holds already */
	setup_with(NULL, 0, &k, DEDUP_ON);
	fill_pattern(16, 1);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(pages_shared), 0);
	ck_assert_uint_ge(DSTAT(merges_skipped_map_limit), 1);
	check_pattern(16, 1);
}
END_TEST

/* Lines of /proc/self/maps inside the guest view. */
static unsigned guest_view_maps(void)
{
	uintptr_t lo = (uintptr_t)mmu.ram.host, hi = lo + RAM, a, b;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a >= lo && b <= hi)
			n++;
	fclose(f);
	return n;
}

START_TEST(map_count_follows_merges)
{
	uint64_t before = dd.maps;

	ck_assert_uint_eq(guest_view_maps(), 1);
	fill_pattern(16, 1);
	pass();
	pass();
	/* 16 one-page mappings of the shared page, and the rest of the view. */
	ck_assert_uint_eq(guest_view_maps(), 17);
	ck_assert_uint_ge(dd.maps, before + 16); /* refreshed from /proc/self/maps */
	/* Unmerged, the view is one mapping again. */
	ck_assert_int_eq(dedup__set_run(&dd, 2), 0);
	ck_assert_int_eq(dedup__unmerge(&dd, 100), 16);
	ck_assert_uint_eq(guest_view_maps(), 1);
	check_pattern(16, 1);
}
END_TEST

/* ---- a file-backed VM -------------------------------------------------------------------------
 */

static const char *make_file(uint64_t pages)
{
	static char path[64];
	uint64_t i, k, w;
	int fd;

	snprintf(path, sizeof(path), "/tmp/faultline-dedup-%d", getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	for (i = 0; i < pages; i++)
		for (k = 0; k < PAGE / 8; k++) {
			w = word_of(i % 2);
			ck_assert_int_eq(write(fd, &w, 8), 8);
		}
	close(fd);
	return path;
}

START_TEST(file_pages_merge_and_zeroed_pages_stay_zero)
{
	teardown();
	setup_with(make_file(32), 0, NULL, DEDUP_ON);
	check_pattern(32, 2); /* read from the file: clean */
	memset((void *)guest_words(6), 0, PAGE);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(zero_pages), 1);
	ck_assert_uint_eq(DSTAT(pages_shared), 2);
	ck_assert_uint_eq(DSTAT(pages_sharing), 29);
	/* Zeros, not the file's bytes, come back for the page written with zeros. */
	ck_assert_uint_eq(guest_words(6)[0], 0);
	ck_assert_uint_eq(guest_words(6)[511], 0);
	/* Reclaim drops no merged page. */
	ck_assert_uint_eq(mmu__reclaim(&mmu, 64), 0);
	guest_words(7)[0] = 5;
	ck_assert_uint_eq(guest_words(7)[1], word_of(1));
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);
}
END_TEST

/* ---- the scanner against writers
 * ------------------------------------------------------------------ */

struct racer {
	uint64_t first, count;
	unsigned rounds;
	bool zeros; /* one content in three is zeros */
	pthread_t thread;
	uint64_t last[64]; /* content kind last written per page */
};

static void *racer_thread(void *arg)
{
	struct racer *r = arg;
	unsigned round;
	uint64_t i;

	for (round = 0; round < r->rounds; round++)
		for (i = 0; i < r->count; i++) {
			uint64_t kind = (round / 4 + i) % 3; /* repeats: pages merge between */

			if (r->zeros && kind == 2)
				kind = ZERO_KIND;
			fill(r->first + i, kind);
			r->last[i] = kind;
			if (i % 8 == 0)
				usleep(100);
		}
	return NULL;
}

/*
 * 4 writer threads rewrite 64 pages each while the scanner runs without
 * sleeping (@zeros: one content in three is zeros); every page must end
 * with what its writer wrote last.
 */
static void race_the_scanner(bool zeros)
{
	struct racer racers[4];
	struct dedup_knobs k;
	unsigned t;
	uint64_t i;

	teardown();
	dedup__default_knobs(&k);
	k.sleep_ms = 0;
	k.pages_to_scan = 64;
	setup_with(NULL, 0, &k, DEDUP_ON);
	ck_assert_int_eq(dedup__start(&dd), 0);
	for (t = 0; t < 4; t++) {
		racers[t] =
			(struct racer){.first = t * 64, .count = 64, .rounds = 40, .zeros = zeros};
		ck_assert_int_eq(pthread_create(&racers[t].thread, NULL, racer_thread, &racers[t]),
				 0);
	}
	for (t = 0; t < 4; t++)
		pthread_join(racers[t].thread, NULL);
	dedup__stop(&dd);
	for (t = 0; t < 4; t++)
		for (i = 0; i < 64; i++)
			ck_assert_msg(bad_words(racers[t].first + i, racers[t].last[i]) == 0,
				      "page %llu lost a write", (unsigned long long)(t * 64 + i));
	ck_assert_uint_ge(DSTAT(full_scans), 1);
}

START_TEST(no_write_is_lost_while_the_scanner_runs)
{
	race_the_scanner(false);
	ck_assert_uint_gt(DSTAT(cow_breaks), 0);
}
END_TEST

static volatile int written;

static void *scan_thread(void *arg)
{
	(void)arg;
	dedup__scan(&dd, NR_PAGES - dd.cursor);
	return NULL;
}

static void *write_thread(void *arg)
{
	(void)arg;
	guest_words(1)[3] = 42;
	__atomic_store_n(&written, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Poll @cond (a bitmap bit or a flag) for up to 5 s. */
#define WAIT_FOR(cond)                                                                             \
	do {                                                                                       \
		int tries_;                                                                        \
		for (tries_ = 0; tries_ < 5000 && !(cond); tries_++)                               \
			usleep(1000);                                                              \
	} while (0)

/*
 * A write to a page while its merge runs is left pending (the page is
 * busy); the merge wakes it when it ends, and only such a merge makes the
 * wake-up calls. Without dedup's reader the merge stops in mremap(), with
 * both pages busy, until the test starts the reader.
 */
START_TEST(write_during_a_merge_is_woken_when_it_ends)
{
	pthread_t scanner, writer;
	struct pollfd p = {.fd = -1, .events = POLLIN};

	teardown();
	setup_parts(NULL, 0, NULL, DEDUP_ON, false);
	written = 0;
	fill(0, 7);
	fill(1, 7);
	pass();
	ck_assert_int_eq(pthread_create(&scanner, NULL, scan_thread, NULL), 0);
	p.fd = dd.uffd;
	ck_assert_int_eq(poll(&p, 1, 5000), 1); /* page 0's UFFD_EVENT_REMAP, unread */
	ck_assert(dedup__page_busy(&dd, 1));
	ck_assert_int_eq(pthread_create(&writer, NULL, write_thread, NULL), 0);
	WAIT_FOR(bit_test(dd.waiting, 1));
	ck_assert_msg(bit_test(dd.waiting, 1), "the write was not left pending");
	ck_assert_int_eq(__atomic_load_n(&written, __ATOMIC_ACQUIRE), 0);
	ck_assert_int_eq(dedup__start_reader(&dd), 0);
	pthread_join(scanner, NULL);
	WAIT_FOR(__atomic_load_n(&written, __ATOMIC_ACQUIRE));
	ck_assert_msg(__atomic_load_n(&written, __ATOMIC_ACQUIRE), "the writer was never woken");
	pthread_join(writer, NULL);
	ck_assert(!bit_test(dd.waiting, 1));
	ck_assert_uint_eq(guest_words(1)[3], 42);
	ck_assert_uint_eq(guest_words(1)[4], word_of(7));
	ck_assert_int_eq(bad_words(0, 7), 0);
	ck_assert_uint_eq(DSTAT(cow_breaks), 1);
	ck_assert_uint_eq(DSTAT(pages_sharing), 0);
	ck_assert_uint_eq(DSTAT(merge_errors), 0);
}
END_TEST

static int cpus_of(pthread_t t, cpu_set_t *set)
{
	ck_assert_int_eq(pthread_getaffinity_np(t, sizeof(*set), set), 0);
	return CPU_COUNT(set);
}

/*
 * For a batch, the scanner and the reader keep to one CPU, the scanner's
 * (each merge waits for the reader); between batches both get back what
 * they had. The test holds the reclaim lock to stop the scanner inside its
 * batch.
 */
START_TEST(scanner_and_reader_share_a_cpu_for_a_batch)
{
	struct dedup_knobs k;
	cpu_set_t all, scanner, reader;
	int n = cpus_of(pthread_self(), &all);

	teardown();
	dedup__default_knobs(&k);
	k.sleep_ms = 10000;
	setup_with(NULL, 0, &k, DEDUP_ON);
	fill_pattern(8, 2);
	settle();
	pthread_mutex_lock(&mmu.reclaim_lock);
	ck_assert_int_eq(dedup__start(&dd), 0);
	WAIT_FOR(cpus_of(dd.reader, &reader) == 1 || n == 1);
	ck_assert_int_eq(cpus_of(dd.reader, &reader), 1);
	ck_assert_int_eq(cpus_of(dd.scanner, &scanner), 1);
	ck_assert(CPU_EQUAL(&reader, &scanner));
	ck_assert_uint_eq(DSTAT(full_scans), 0);
	pthread_mutex_unlock(&mmu.reclaim_lock);
	WAIT_FOR(DSTAT(pages_scanned) == k.pages_to_scan && cpus_of(dd.reader, &reader) == n);
	ck_assert_uint_eq(DSTAT(pages_scanned), k.pages_to_scan);
	ck_assert_int_eq(cpus_of(dd.reader, &reader), n);
	ck_assert(CPU_EQUAL(&reader, &all));
	ck_assert_int_eq(cpus_of(dd.scanner, &scanner), n);
	ck_assert(CPU_EQUAL(&scanner, &all));
}
END_TEST

/* The same with zeros among the contents: released and installed again under the writers. */
START_TEST(no_write_is_lost_to_zero_releases)
{
	race_the_scanner(true);
	ck_assert_uint_gt(DSTAT(zero_pages), 0);
}
END_TEST

/*
 * dedup__init() fails with the injection @spec: it returns @err and says
 * @log; the MMU under it stays usable and is torn down as usual.
 */
static void expect_dedup_init_failure(const char *spec, int err, const char *log)
{
	const struct mmu_config cfg = {
		.ram_size = RAM, .fault_around = 1, .max_retries = 1, .retry_ms = 1, .dedup = true};
	const struct mmu_ops ops = {.fault_failed = on_fault_failed};

	teardown();
	ck_assert_int_eq(inject__init(spec), 0);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), 0);
	ck_assert_int_eq(dedup__init(&dd, &mmu, DEDUP_ON, NULL), err);
	ck_assert_str_eq(log_buf, log);
	dedup__exit(&dd);
	mmu__exit(&mmu);
	setup();
}

START_TEST(dedup_needs_write_protect)
{
	expect_dedup_init_failure("uffd.wp:95", -EOPNOTSUPP,
				  "faultline: cannot set up dedup: write-protect of guest RAM "
				  "failed: Operation not supported\n");
}
END_TEST

START_TEST(injected_dedup_eventfd)
{
	expect_dedup_init_failure("eventfd.dedup:EMFILE", -EMFILE,
				  "faultline: cannot set up dedup: eventfd failed: Too many open "
				  "files\n");
}
END_TEST

START_TEST(injected_dedup_userfaultfd)
{
	expect_dedup_init_failure("userfaultfd.dedup:ENOMEM", -ENOMEM,
				  "faultline: cannot set up dedup: userfaultfd failed: Cannot "
				  "allocate memory\n");
}
END_TEST

/*
 * Dedup's threads cannot start: the reader (the first thread), then the
 * scanner once the reader runs. Each says which, and stopping after either
 * joins only what started.
 */
START_TEST(injected_dedup_threads)
{
	static const struct {
		const char *spec, *log;
		bool reader_started;
	} cases[] = {
		{"pthread_create.dedup:EAGAIN",
		 "faultline: cannot start the dedup fault reader: Resource temporarily "
		 "unavailable\n",
		 false},
		{"pthread_create.dedup:EAGAIN:1",
		 "faultline: cannot start the dedup scanner: Resource temporarily unavailable\n",
		 true},
	};
	unsigned i;

	for (i = 0; i < 2; i++) {
		teardown();
		ck_assert_int_eq(inject__init(cases[i].spec), 0);
		setup_parts(NULL, 0, NULL, DEDUP_ON, false);
		ck_assert_int_eq(dedup__start(&dd), -EAGAIN);
		ck_assert_str_eq(log_buf, cases[i].log);
		ck_assert(dd.reader_started == cases[i].reader_started && !dd.scanner_started);
		dedup__stop(&dd);
		ck_assert(!dd.reader_started);
	}
}
END_TEST

Suite *dedup_suite(void)
{
	Suite *s = suite_create("dedup");
	TCase *tc = tcase_create("dedup");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, knobs_parse_and_check_ranges);
	tcase_add_test(tc, checksum_gate_needs_two_passes);
	tcase_add_test(tc, volatile_pages_are_not_merged);
	tcase_add_test(tc, unique_pages_stay_unshared);
	tcase_add_test(tc, merge_frees_memory);
	tcase_add_test(tc, max_page_sharing_bounds_each_page);
	tcase_add_test(tc, merging_works_with_a_full_budget);
	tcase_add_test(tc, scanner_sleeps_between_batches);
	tcase_add_test(tc, zero_pages_are_released_and_read_as_zeros);
	tcase_add_test(tc, zero_mode_merges_nothing_else);
	tcase_add_test(tc, zero_runs_are_released_together);
	tcase_add_test(tc, zero_run_protect_failure_leaves_pages_as_they_were);
	tcase_add_test(tc, guest_write_breaks_sharing);
	tcase_add_test(tc, last_sharer_takes_the_charge_over);
	tcase_add_test(tc, monitor_access_breaks_and_pins);
	tcase_add_test(tc, monitor_cow_break_over_budget_goes_to_the_owner);
	tcase_add_test(tc, cow_break_over_budget_is_oom_and_stops_dedup);
	tcase_add_test(tc, cow_break_on_a_full_budget_waits_for_a_siblings_charge);
	tcase_add_test(tc, cow_break_waits_for_a_siblings_charge_up_to_the_bound);
	tcase_add_test(tc, an_unneeded_cow_charge_is_given_back);
	tcase_add_test(tc, injected_cow_failure_is_an_error_not_a_loop);
	tcase_add_test(tc, injected_cow_io_error_fails_the_access);
	tcase_add_test(tc, injected_map_failure_leaves_pages_as_they_were);
	tcase_add_test(tc, unmerge_is_interruptible_and_resumable);
	tcase_add_test(tc, unmerge_out_of_budget_stops);
	tcase_add_test(tc, map_limit_stops_merging);
	tcase_add_test(tc, map_count_follows_merges);
	tcase_add_test(tc, runs_merge_together);
	tcase_add_test(tc, runs_with_a_failed_step);
	tcase_add_test(tc, pairs_get_slots_in_a_row_after_many_frees);
	tcase_add_test(tc, run_whose_protection_fails_stays_writable);
	tcase_add_test(tc, file_pages_merge_and_zeroed_pages_stay_zero);
	tcase_add_test(tc, no_write_is_lost_while_the_scanner_runs);
	tcase_add_test(tc, no_write_is_lost_to_zero_releases);
	tcase_add_test(tc, write_during_a_merge_is_woken_when_it_ends);
	tcase_add_test(tc, scanner_and_reader_share_a_cpu_for_a_batch);
	tcase_add_test(tc, dedup_needs_write_protect);
	tcase_add_test(tc, injected_dedup_userfaultfd);
	tcase_add_test(tc, injected_dedup_eventfd);
	tcase_add_test(tc, injected_dedup_threads);
	tcase_add_test(tc, injected_node_failure_leaves_pages_as_they_were);
	suite_add_tcase(s, tc);
	return s;
}
