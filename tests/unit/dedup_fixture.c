/* The dedup engine's unit-test fixture (dedup_fixture.h). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "tests/unit/unit.h"
#include "tests/unit/dedup_fixture.h"

struct dedup dd;
pthread_mutex_t dd_failed_lock = PTHREAD_MUTEX_INITIALIZER;
struct dd_failed_rec dd_failed;
unsigned dd_fault_around = 1;

void dd_fault_failed(void *owner, struct fault_ctx *ctx, fault_t result, const char *why)
{
	(void)owner;
	pthread_mutex_lock(&dd_failed_lock);
	dd_failed.calls++;
	dd_failed.result = result;
	dd_failed.gpa = ctx->gpa;
	snprintf(dd_failed.why, sizeof(dd_failed.why), "%s", why);
	if (dd_failed.poison && (result & FAULT_OOM))
		ck_assert_int_eq(mmu__poison(&mmu, ctx->gpa), 0);
	if (dd_failed.make_room && (result & FAULT_OOM)) {
		mmu__uncharge(&mmu, 1);
		ctx->refault = true;
		dd_failed.make_room = false;
	}
	pthread_mutex_unlock(&dd_failed_lock);
}

int failed_calls(void)
{
	int n;

	pthread_mutex_lock(&dd_failed_lock);
	n = dd_failed.calls;
	pthread_mutex_unlock(&dd_failed_lock);
	return n;
}

/* As setup_with(), with dedup's fault reader started when @reader. */
void setup_parts(const char *file, uint64_t limit, const struct dedup_knobs *knobs,
		 enum dedup_mode mode, bool reader)
{
	const struct mmu_config cfg = {
		.ram_size = RAM,
		.mem_limit = limit,
		.backing_file = file,
		.fault_around = dd_fault_around,
		.max_retries = 8,
		.retry_ms = 2000,
		.nr_handlers = 2,
		.dedup = true,
	};
	const struct mmu_ops ops = {.fault_failed = dd_fault_failed};

	memset(&dd_failed, 0, sizeof(dd_failed));
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), 0);
	ck_assert_int_eq(dedup__init(&dd, &mmu, mode, knobs), 0);
	ck_assert_int_eq(mmu__start(&mmu), 0);
	if (reader)
		ck_assert_int_eq(dedup__start_reader(&dd), 0);
}

void setup_with(const char *file, uint64_t limit, const struct dedup_knobs *knobs,
		enum dedup_mode mode)
{
	setup_parts(file, limit, knobs, mode, true);
}

void setup(void)
{
	setup_with(NULL, 0, NULL, DEDUP_ON);
}

void teardown(void)
{
	char path[64];

	/* As vm.c: the fault handlers end before dedup does. */
	mmu__stop(&mmu);
	dedup__exit(&dd);
	mmu__exit(&mmu);
	snprintf(path, sizeof(path), "/tmp/faultline-dedup-%d", getpid());
	unlink(path);
	dd_fault_around = 1;
	ck_assert_int_eq(inject__init(NULL), 0);
}

TCase *dd_tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

/*
 * Wait until every fault taken has ended: a writer goes on as soon as its
 * page is installed, before the handler marks it resident.
 */
void settle_faults(void)
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
void leave_budget(uint64_t pages)
{
	ck_assert_int_eq(mmu__charge(&mmu, mmu.limit_pages - resident() - pages), 0);
}

/* One full pass of the scanner, from page 0. */
void pass(void)
{
	uint64_t scans = DSTAT(full_scans);

	settle_faults();
	dedup__scan(&dd, NR_PAGES - dd.cursor);
	ck_assert_uint_eq(DSTAT(full_scans), scans + 1);
}

/* The word every 8 bytes of a page of content @kind holds. */
uint64_t word_of(uint64_t kind)
{
	return kind == ZERO_KIND ? 0 : 0x9e3779b97f4a7c15ULL * (kind + 1);
}

volatile uint64_t *guest_words(uint64_t page)
{
	return (volatile uint64_t *)(mmu.ram.host + page * PAGE);
}

void fill(uint64_t page, uint64_t kind)
{
	volatile uint64_t *w = guest_words(page);
	uint64_t k;

	for (k = 0; k < PAGE / 8; k++)
		w[k] = word_of(kind);
}

/* Words of @page not holding content @kind. */
int bad_words(uint64_t page, uint64_t kind)
{
	volatile uint64_t *w = guest_words(page);
	uint64_t k;
	int bad = 0;

	for (k = 0; k < PAGE / 8; k++)
		bad += w[k] != word_of(kind);
	return bad;
}

/* Fill pages [0, n) with contents i % kinds. */
void fill_pattern(uint64_t n, uint64_t kinds)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		fill(i, i % kinds);
}

void check_pattern(uint64_t n, uint64_t kinds)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		ck_assert_msg(bad_words(i, i % kinds) == 0, "page %llu lost its contents",
			      (unsigned long long)i);
}

const char *dd_make_file(uint64_t pages)
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
