/*
 * Dedup's copy-on-write breaks (guest and monitor writes, the charge of the
 * copy, injected failures) and unmerge. test_dedup.c says how the suite
 * works.
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
#include "tests/unit/sibling.h"
#include "tests/unit/dedup_fixture.h"
#include "tests/unit/unit.h"

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
	settle_faults();
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
	settle_faults();
	ck_assert_uint_eq(resident(), NR_PAGES);
	guest_words(1)[0] = 2; /* the last sharer: no new charge */
	settle_faults();
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
	ck_assert_uint_eq(dd_failed.result, FAULT_OOM);
	ck_assert_uint_eq(dd_failed.gpa, 4 * PAGE);
	ck_assert_str_eq(dd_failed.why,
			 "copy-on-write break of a shared page: budget of 1024 pages exhausted");
	ck_assert_uint_eq(mmu.stats.faults_monitor, 1);
	ck_assert_uint_eq(mmu.stats.result_oom, 1);
	ck_assert_uint_eq(DSTAT(cow_break_failures), 1);
	ck_assert_uint_eq(DSTAT(pages_sharing), 14); /* left merged and intact */
	check_pattern(16, 2);

	pthread_mutex_lock(&dd_failed_lock);
	dd_failed.make_room = true;
	pthread_mutex_unlock(&dd_failed_lock);
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
	pthread_mutex_lock(&dd_failed_lock);
	dd_failed.poison = true; /* as --on-oom mce does */
	pthread_mutex_unlock(&dd_failed_lock);
	sigaction(SIGBUS, &sa, NULL);
	ck_assert_int_eq(pthread_create(&w.thread, NULL, writer_thread, &w), 0);
	pthread_join(w.thread, NULL);
	/* BUS_ADRERR where the host kernel lacks CONFIG_MEMORY_FAILURE (test_mmu.c) */
	ck_assert_msg(w.sigbus_code == BUS_MCEERR_AR || w.sigbus_code == BUS_ADRERR, "si_code %d",
		      w.sigbus_code);
	ck_assert_int_eq(failed_calls(), 1);
	ck_assert_uint_eq(dd_failed.result, FAULT_OOM);
	ck_assert_uint_eq(dd_failed.gpa, 3 * PAGE);
	ck_assert_str_eq(dd_failed.why,
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
	pthread_mutex_lock(&dd_failed_lock);
	dd_failed.poison = true; /* an OOM is a SIGBUS for the writer, not a hang */
	pthread_mutex_unlock(&dd_failed_lock);
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

	settle_faults();
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
	ck_assert_uint_eq(dd_failed.result, FAULT_OOM);
	ck_assert_str_eq(dd_failed.why,
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
	settle_faults();
	ck_assert_uint_eq(resident(), 2);
	guest_words(1)[0] = 2; /* the last sharer: charged before the lock, given back */
	settle_faults();
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
	ck_assert_str_eq(dd_failed.why,
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

void dedup_cow_tcases(Suite *s)
{
	TCase *tc_cow, *tc_unmerge;

	tc_cow = dd_tcase(s, "cow");
	tcase_add_test(tc_cow, guest_write_breaks_sharing);
	tcase_add_test(tc_cow, last_sharer_takes_the_charge_over);
	tcase_add_test(tc_cow, monitor_access_breaks_and_pins);
	tcase_add_test(tc_cow, monitor_cow_break_over_budget_goes_to_the_owner);
	tcase_add_test(tc_cow, cow_break_over_budget_is_oom_and_stops_dedup);
	tcase_add_test(tc_cow, cow_break_on_a_full_budget_waits_for_a_siblings_charge);
	tcase_add_test(tc_cow, cow_break_waits_for_a_siblings_charge_up_to_the_bound);
	tcase_add_test(tc_cow, an_unneeded_cow_charge_is_given_back);
	tcase_add_test(tc_cow, injected_cow_failure_is_an_error_not_a_loop);
	tcase_add_test(tc_cow, injected_cow_io_error_fails_the_access);
	tcase_add_test(tc_cow, injected_map_failure_leaves_pages_as_they_were);
	tcase_add_test(tc_cow, injected_node_failure_leaves_pages_as_they_were);
	tc_unmerge = dd_tcase(s, "unmerge");
	tcase_add_test(tc_unmerge, unmerge_is_interruptible_and_resumable);
	tcase_add_test(tc_unmerge, unmerge_out_of_budget_stops);
}
