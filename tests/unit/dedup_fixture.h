/*
 * The dedup engine's unit-test fixture, shared by test_dedup.c,
 * test_dedup_cow.c and test_dedup_races.c: an engine with dedup on 1024
 * pages of memfd RAM (no KVM), host threads that write guest RAM the way
 * vCPUs do, and content kinds to fill pages with and check them against.
 * The engine itself and the log buffer are the MMU fixture's (mmu and
 * log_buf, mmu_fixture.c); the two suites never run at once.
 */
#ifndef FAULTLINE_TESTS_DEDUP_FIXTURE_H
#define FAULTLINE_TESTS_DEDUP_FIXTURE_H

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mmu/dedup.h"
#include "mmu/mmu.h"

#define PAGE	 MMU_PAGE_SIZE
#define RAM	 (4ULL << 20) /* 1024 pages */
#define NR_PAGES (RAM / PAGE)

#define ZERO_KIND UINT64_MAX /* a page of zeros */

/* What the owner's fault_failed() saw, and what it should do; under dd_failed_lock. */
struct dd_failed_rec {
	int calls;
	fault_t result;
	uint64_t gpa;
	char why[256];
	bool poison;
	bool make_room; /* once: give a page back and ask for a refault (--on-oom pause) */
};

extern struct mmu mmu;	   /* mmu_fixture.c */
extern char log_buf[1024]; /* mmu_fixture.c */
extern struct dedup dd;
extern pthread_mutex_t dd_failed_lock;
extern struct dd_failed_rec dd_failed;
extern unsigned dd_fault_around; /* the next setup's --fault-around (1) */

/* A counter of dedup's, read while its threads may update it. */
#define DSTAT(name) __atomic_load_n(&dd.stats.name, __ATOMIC_RELAXED)

/* The owner's fault_failed(): records what it saw in dd_failed. */
void dd_fault_failed(void *owner, struct fault_ctx *ctx, fault_t result, const char *why);
int failed_calls(void);

/* The engine on RAM (or @file), budget @limit, dedup in @mode; its fault reader started when
 * @reader. */
void setup_parts(const char *file, uint64_t limit, const struct dedup_knobs *knobs,
		 enum dedup_mode mode, bool reader);
void setup_with(const char *file, uint64_t limit, const struct dedup_knobs *knobs,
		enum dedup_mode mode);
void setup(void);
void teardown(void);

/* A tcase of @s named @name, on setup() and teardown(), 60 s per test. */
TCase *dd_tcase(Suite *s, const char *name);

uint64_t resident(void); /* mmu_fixture.c */
void settle_faults(void);
void leave_budget(uint64_t pages);
void pass(void);

uint64_t word_of(uint64_t kind);
volatile uint64_t *guest_words(uint64_t page);
void fill(uint64_t page, uint64_t kind);
int bad_words(uint64_t page, uint64_t kind);
void fill_pattern(uint64_t n, uint64_t kinds);
void check_pattern(uint64_t n, uint64_t kinds);

/* A backing file of @pages pages, page i holding content i % 2; removed by teardown(). */
const char *dd_make_file(uint64_t pages);

#endif
