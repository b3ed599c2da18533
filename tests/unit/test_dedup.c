/*
 * The dedup engine without KVM: host threads write userfaultfd-registered
 * guest RAM the way vCPUs do; the tests drive passes of the scanner with
 * dedup__scan() and use the counters as the oracle. Needs userfaultfd
 * write-protect on shared memory (Linux 5.19) and root or
 * vm.unprivileged_userfaultfd=1. This file: what merges and what does not
 * (knobs, the checksum gate, zero pages, runs, limits, a file-backed VM).
 * Copy-on-write and unmerge are in test_dedup_cow.c; the scanner against
 * writers and set-up failures in test_dedup_races.c.
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
	settle_faults();
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
	settle_faults();
	ck_assert_uint_eq(resident(), 96);
	pass();
	pass();
	ck_assert_uint_eq(DSTAT(zero_pages), 64);
	ck_assert_uint_eq(resident(), 2);
	for (i = 32; i < 96; i++)
		ck_assert_uint_eq(guest_words(i)[i % 512], 0);
	settle_faults();
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
	settle_faults();
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

START_TEST(file_pages_merge_and_zeroed_pages_stay_zero)
{
	teardown();
	setup_with(dd_make_file(32), 0, NULL, DEDUP_ON);
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

Suite *dedup_suite(void)
{
	Suite *s = suite_create("dedup");
	TCase *tc_knobs, *tc_merge, *tc_zero, *tc_runs, *tc_limits, *tc_file;

	tc_knobs = dd_tcase(s, "knobs");
	tcase_add_test(tc_knobs, knobs_parse_and_check_ranges);
	tc_merge = dd_tcase(s, "merge");
	tcase_add_test(tc_merge, checksum_gate_needs_two_passes);
	tcase_add_test(tc_merge, volatile_pages_are_not_merged);
	tcase_add_test(tc_merge, unique_pages_stay_unshared);
	tcase_add_test(tc_merge, merge_frees_memory);
	tcase_add_test(tc_merge, max_page_sharing_bounds_each_page);
	tcase_add_test(tc_merge, merging_works_with_a_full_budget);
	tcase_add_test(tc_merge, scanner_sleeps_between_batches);
	tc_zero = dd_tcase(s, "zero");
	tcase_add_test(tc_zero, zero_pages_are_released_and_read_as_zeros);
	tcase_add_test(tc_zero, zero_mode_merges_nothing_else);
	tcase_add_test(tc_zero, zero_runs_are_released_together);
	tcase_add_test(tc_zero, zero_run_protect_failure_leaves_pages_as_they_were);
	tc_runs = dd_tcase(s, "runs");
	tcase_add_test(tc_runs, runs_merge_together);
	tcase_add_test(tc_runs, runs_with_a_failed_step);
	tcase_add_test(tc_runs, pairs_get_slots_in_a_row_after_many_frees);
	tcase_add_test(tc_runs, run_whose_protection_fails_stays_writable);
	tc_limits = dd_tcase(s, "limits");
	tcase_add_test(tc_limits, map_limit_stops_merging);
	tcase_add_test(tc_limits, map_count_follows_merges);
	tc_file = dd_tcase(s, "file");
	tcase_add_test(tc_file, file_pages_merge_and_zeroed_pages_stay_zero);
	dedup_cow_tcases(s);
	dedup_race_tcases(s);
	return s;
}
