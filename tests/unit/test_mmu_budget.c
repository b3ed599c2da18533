/* The fault engine's retries, budget, refaults and reclaim (mmu_fixture.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/mmu.h"
#include "tests/unit/sibling.h"
#include "tests/unit/unit.h"
#include "tests/unit/mmu_fixture.h"

/* ---- retry -------------------------------------------------------------------------- */

START_TEST(retry_then_done)
{
	struct fault_ctx ctx;

	ck_assert_int_eq(inject__init("UFFDIO_ZEROPAGE:EAGAIN:0:2"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20});
	ck_assert_uint_eq(fault_at(0, FAULT_WRITE, FAULT_SRC_UFFD, &ctx), FAULT_DONE);
	ck_assert_uint_eq(ctx.attempt, 2);
	ck_assert_uint_eq(ctx.flags & FAULT_FLAG_TRIED, FAULT_FLAG_TRIED);
	ck_assert_uint_eq(STAT(retries), 2);
	ck_assert_uint_eq(resident(), 1);
	ck_assert_int_eq(F.calls, 0);
	mmu_teardown();
}
END_TEST

START_TEST(copy_retry_then_done)
{
	uint8_t *data;
	const char *path = make_file(4 * PAGE, &data);
	uint64_t *p;

	ck_assert_int_eq(inject__init("UFFDIO_COPY:EAGAIN:0:2"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20, .file = path});
	ck_assert_uint_eq(fault_at(PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(STAT(retries), 2);
	ck_assert_uint_eq(STAT(uffdio_copy), 3);
	ck_assert_int_eq(mmu__access(&mmu, PAGE, 8, (void **)&p), 0);
	ck_assert_int_eq(memcmp(p, data + PAGE, 8), 0);
	free(data);
	mmu_teardown();
}
END_TEST

START_TEST(retry_bounded_in_count)
{
	ck_assert_int_eq(inject__init("UFFDIO_ZEROPAGE:EAGAIN:0:0"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20, .retries = 5});
	ck_assert_uint_eq(fault_at(PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_RETRY);
	ck_assert_uint_eq(STAT(retries), 4);
	ck_assert_uint_eq(STAT(result_retry_exhausted), 1);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_uint_eq(F.result, FAULT_RETRY);
	ck_assert_uint_eq(F.gpa, PAGE);
	ck_assert_msg(!strncmp(F.why, "still RETRY after 5 attempts in ", 32), "why: %s", F.why);
	ck_assert_uint_eq(resident(), 0); /* every failed attempt uncharged */
	mmu_teardown();
}
END_TEST

START_TEST(retry_bounded_in_time)
{
	struct timespec a, b;
	long ms;

	ck_assert_int_eq(inject__init("UFFDIO_ZEROPAGE:EAGAIN:0:0"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20, .retries = 1000000, .retry_ms = 30});
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_uint_eq(fault_at(0, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_RETRY);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 30);
	ck_assert_uint_lt(STAT(retries), 1000000);
	ck_assert_int_eq(F.calls, 1);
	mmu_teardown();
}
END_TEST

/* Once the VM is stopping, a guest fault is not retried again; the monitor's is. */
START_TEST(stopping_interrupts_guest_retries)
{
	struct fault_ctx ctx = {.gpa = 0, .access = FAULT_READ, .vcpu = 0};

	ck_assert_int_eq(inject__init("UFFDIO_ZEROPAGE:EAGAIN:0:0"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20, .retries = 4});
	mmu__stop(&mmu);
	ctx.mmu = &mmu;
	ctx.hva = mmu.ram.host;
	ctx.source = FAULT_SRC_UFFD;
	ctx.flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_INTERRUPTIBLE;
	ck_assert_uint_eq(mmu__handle_fault(&ctx), FAULT_RETRY);
	ck_assert_uint_eq(ctx.attempt, 0);
	ck_assert_int_eq(F.calls, 0); /* a stopping VM is not told again */
	ctx.attempt = 0;
	ctx.flags = FAULT_FLAG_ALLOW_RETRY;
	ctx.source = FAULT_SRC_MONITOR;
	ck_assert_uint_eq(mmu__handle_fault(&ctx), FAULT_RETRY);
	ck_assert_uint_eq(ctx.attempt, 3);
	mmu_teardown();
}
END_TEST

START_TEST(no_retry_without_allow_retry)
{
	struct fault_ctx ctx = {.gpa = 0, .access = FAULT_READ, .vcpu = -1};

	ck_assert_int_eq(inject__init("UFFDIO_ZEROPAGE:EAGAIN:0:0"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20});
	ctx.mmu = &mmu;
	ctx.hva = mmu.ram.host;
	ctx.source = FAULT_SRC_UFFD;
	ck_assert_uint_eq(mmu__handle_fault(&ctx), FAULT_RETRY);
	ck_assert_uint_eq(STAT(retries), 0);
	mmu_teardown();
}
END_TEST

/* ---- budget and OOM ------------------------------------------------------------------- */

START_TEST(budget_exhausted_is_oom)
{
	void *p;
	unsigned i;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 4 * PAGE});
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(fault_at(i * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL),
				  FAULT_DONE);
	ck_assert_uint_eq(fault_at(9 * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_uint_eq(F.result, FAULT_OOM);
	ck_assert_uint_eq(F.gpa, 9 * PAGE);
	ck_assert_str_eq(F.why, "budget of 4 pages exhausted");
	ck_assert_uint_eq(resident(), 4);
	/* The monitor's access fails too, and is the caller's to report. */
	ck_assert_int_eq(mmu__access(&mmu, 10 * PAGE, 8, &p), -ENOMEM);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_uint_eq(STAT(result_oom), 2);
	mmu_teardown();
}
END_TEST

/* A window that does not fit never causes an OOM a single page would not. */
START_TEST(window_over_budget_falls_back)
{
	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 3 * PAGE, .around = 16});
	ck_assert_uint_eq(fault_at(0, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(STAT(fallbacks), 1);
	ck_assert_uint_eq(resident(), 1);
	ck_assert_uint_eq(fault_at(5 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(fault_at(6 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(fault_at(7 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_uint_eq(resident(), 3);
	mmu_teardown();
}
END_TEST

/*
 * A budget of 4 pages: 3 resident, the 4th charged by a sibling's install
 * in progress (@sib). @retry_ms: the retry bound (0: the default).
 */
static void full_with_a_siblings_charge(struct sibling *sib, unsigned retry_ms)
{
	unsigned i;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 4 * PAGE, .retry_ms = retry_ms});
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(fault_at(i * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL),
				  FAULT_DONE);
	sibling_charges(sib, &mmu);
}

/*
 * A budget full only of a sibling's charge that is not over is no OOM: the
 * fault waits for it (a CI run of threads_race_for_the_same_pages saw one
 * page called out of memory while eight threads raced on a full budget).
 */
START_TEST(a_full_budget_waits_for_a_siblings_charge)
{
	struct sibling sib;

	full_with_a_siblings_charge(&sib, 0);
	sibling_ends_after(&sib, 20);
	ck_assert_uint_eq(fault_at(9 * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	sibling_join(&sib);
	ck_assert_int_eq(F.calls, 0);
	ck_assert_uint_eq(STAT(result_oom), 0);
	ck_assert_uint_eq(resident(), 4);
	mmu_teardown();
}
END_TEST

/* ... for the retry bound at most: a charge that does not end leaves the budget full. */
START_TEST(a_siblings_charge_that_does_not_end_is_oom_at_the_bound)
{
	struct sibling sib;

	full_with_a_siblings_charge(&sib, 30);
	ck_assert_uint_eq(fault_at(9 * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_str_eq(F.why, "budget of 4 pages exhausted");
	ck_assert_uint_eq(STAT(result_oom), 1);
	sibling_ends(&sib);
	ck_assert_uint_eq(resident(), 3);
	mmu_teardown();
}
END_TEST

/* ---- making room: refault and a budget set while running (--on-oom pause) ------------------ */

START_TEST(refault_after_the_budget_grows)
{
	struct fault_ctx ctx;
	unsigned i;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 4 * PAGE});
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(fault_at(i * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL),
				  FAULT_DONE);
	failed.refaults = 1;
	failed.raise_to = 8;
	ck_assert_uint_eq(fault_at(9 * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, &ctx), FAULT_DONE);
	ck_assert(!ctx.refault);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_uint_eq(F.result, FAULT_OOM);
	ck_assert_str_eq(F.why, "budget of 4 pages exhausted");
	/* The refault is a fault of its own: every fault has exactly one result. */
	ck_assert_uint_eq(STAT(refaults), 1);
	ck_assert_uint_eq(STAT(faults), 6);
	ck_assert_uint_eq(STAT(result_oom), 1);
	ck_assert_uint_eq(STAT(result_done), 5);
	ck_assert_uint_eq(resident(), 5);
	mmu_teardown();
}
END_TEST

/* An owner that makes no room gets the same OOM back each time, and ends it. */
START_TEST(refault_without_room_fails_again)
{
	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 1 * PAGE});
	ck_assert_uint_eq(fault_at(0, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	failed.refaults = 3;
	ck_assert_uint_eq(fault_at(PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_int_eq(F.calls, 4);
	ck_assert_uint_eq(STAT(refaults), 3);
	ck_assert_uint_eq(STAT(result_oom), 4);
	ck_assert_uint_eq(resident(), 1);
	mmu_teardown();
}
END_TEST

/* A stopping MMU serves no refault: the VM's stop ends the pause's fault. */
START_TEST(refault_ends_when_stopping)
{
	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 1 * PAGE});
	ck_assert_uint_eq(fault_at(0, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	failed.refaults = 1;
	failed.raise_to = 2;
	__atomic_store_n(&mmu.stopping, true, __ATOMIC_RELEASE);
	ck_assert_uint_eq(fault_at(PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	/* Stopping: the owner was not even asked. */
	ck_assert_int_eq(F.calls, 0);
	ck_assert_uint_eq(STAT(refaults), 0);
	mmu_teardown();
}
END_TEST

/*
 * The shape of --on-oom pause: a guest thread blocks on a page over budget,
 * the handler thread's owner holds the fault until the budget is raised
 * from another thread, then refaults; the guest thread goes on with every
 * page intact.
 */
START_TEST(held_fault_goes_on_once_the_budget_grows)
{
	struct toucher t = {.first = 0, .count = 8, .write = true, .value = 0x5a5a};
	struct toucher check = {.first = 0, .count = 8, .value = 0x5a5a};
	int i;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 4 * PAGE, .handlers = 1});
	pthread_mutex_lock(&failed_lock);
	failed.hold = true;
	failed.refaults = 1;
	pthread_mutex_unlock(&failed_lock);
	touch_start(&t);
	pthread_mutex_lock(&failed_lock);
	while (!failed.calls)
		pthread_cond_wait(&failed_cond, &failed_lock);
	pthread_mutex_unlock(&failed_lock);
	for (i = 0; i < 20; i++) /* the toucher stays blocked */
		usleep(1000);
	ck_assert_uint_eq(resident(), 4);
	ck_assert_int_eq(mmu__set_limit(&mmu, 8), 0);
	pthread_mutex_lock(&failed_lock);
	failed.hold = false;
	pthread_cond_broadcast(&failed_cond);
	pthread_mutex_unlock(&failed_lock);
	pthread_join(t.thread, NULL);
	settle();
	ck_assert_int_eq(t.sigbus_code, 0);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_uint_eq(STAT(refaults), 1);
	ck_assert_uint_eq(resident(), 8);
	touch(&check);
	mmu_teardown();
}
END_TEST

/*
 * Once the VM runs, the monitor's own access that finds no room (a device's
 * buffer) reaches the owner too, who can make room; before (loading), it is
 * the caller's to report. The injection scopes follow: @load, then @device.
 */
START_TEST(device_access_oom_goes_to_the_owner)
{
	void *p;
	unsigned i;

	ck_assert_int_eq(inject__init("budget.charge@device:ENOMEM:0:0"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 4 * PAGE});
	ck_assert_int_eq(mmu__access(&mmu, 0, 8, &p), 0); /* loading: @device is not it */
	for (i = 1; i < 4; i++)
		ck_assert_uint_eq(fault_at(i * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL),
				  FAULT_DONE);
	ck_assert_int_eq(mmu__access(&mmu, 9 * PAGE, 8, &p), -ENOMEM);
	ck_assert_int_eq(F.calls, 0);
	ck_assert_int_eq(inject__init(NULL), 0);
	ck_assert_int_eq(mmu__start(&mmu), 0);
	failed.refaults = 1;
	failed.raise_to = 8;
	ck_assert_int_eq(mmu__access(&mmu, 9 * PAGE, 8, &p), 0);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_int_eq(F.source, FAULT_SRC_MONITOR);
	ck_assert_str_eq(F.why, "budget of 4 pages exhausted");
	ck_assert_uint_eq(STAT(refaults), 1);
	/* Running: @device now fails the monitor's accesses; no room made, -ENOMEM. */
	ck_assert_int_eq(inject__init("budget.charge@device:ENOMEM:0:0"), 0);
	ck_assert_int_eq(mmu__access(&mmu, 20 * PAGE, 8, &p), -ENOMEM);
	ck_assert_int_eq(F.calls, 2);
	ck_assert_uint_eq(fault_at(21 * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	mmu_teardown();
}
END_TEST

START_TEST(set_limit_bounds)
{
	uint8_t *data;
	const char *path;
	unsigned i;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 8 * PAGE});
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(fault_at(i * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL),
				  FAULT_DONE);
	ck_assert_int_eq(mmu__set_limit(&mmu, 0), -ERANGE);
	ck_assert_int_eq(mmu__set_limit(&mmu, 257), -ERANGE); /* 1 MiB is 256 pages */
	/* Below what is resident, with nothing clean to drop. */
	ck_assert_int_eq(mmu__set_limit(&mmu, 3), -EBUSY);
	ck_assert_int_eq(mmu__set_limit(&mmu, 4), 0);
	ck_assert_uint_eq(fault_at(5 * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_str_eq(F.why, "budget of 4 pages exhausted");
	ck_assert_int_eq(mmu__set_limit(&mmu, 256), 0);
	ck_assert_uint_eq(fault_at(5 * PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	mmu_teardown();

	/* Clean file pages are dropped to meet a lower budget. */
	path = make_file(16 * PAGE, &data);
	mmu_setup(&(struct setup){.ram = 16 * PAGE, .file = path});
	ck_assert(mmu.wp);
	for (i = 0; i < 16; i++)
		ck_assert_uint_eq(fault_at(i * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(resident(), 16);
	ck_assert_int_eq(mmu__set_limit(&mmu, 6), 0);
	ck_assert_uint_le(resident(), 6);
	free(data);
	mmu_teardown();
}
END_TEST

/* ---- --diff-snapshots: the pages written since a reset ----------------------------------- */

static uint64_t written_pages(void)
{
	uint64_t pi, n = 0;

	for (pi = 0; pi < mmu.nr_pages; pi++)
		n += mmu__written(&mmu, pi);
	return n;
}

static int writes_reset(void)
{
	int ret;

	pthread_mutex_lock(&mmu.reclaim_lock);
	ret = mmu__writes_reset_locked(&mmu);
	pthread_mutex_unlock(&mmu.reclaim_lock);
	return ret;
}

/*
 * After a reset only what is written again counts: a guest write (a
 * write-protect fault), a first touch by a write, a device's access; a
 * read, even one that installs the page, does not.
 */
START_TEST(writes_since_a_reset_are_tracked)
{
	struct toucher wr = {.first = 0, .count = 32, .write = true, .value = 7};
	struct toucher rd = {.first = 40, .count = 4, .value = 0};
	struct toucher one = {.first = 5, .count = 1, .write = true, .value = 9};
	uint8_t *p;

	mmu_setup(&(struct setup){.ram = 64 * PAGE, .handlers = 1, .track = true});
	ck_assert(mmu.wp && mmu.uffd_wp);
	touch(&wr);
	ck_assert_uint_eq(written_pages(), 32);
	ck_assert_int_eq(writes_reset(), 0);
	ck_assert_uint_eq(written_pages(), 0);
	touch(&one);
	one.first = 10;
	touch(&one);
	ck_assert(mmu__written(&mmu, 5) && mmu__written(&mmu, 10));
	ck_assert_uint_eq(written_pages(), 2);
	touch(&rd);
	ck_assert_uint_eq(written_pages(), 2);
	one.first = 41; /* read above, installed clean: its first write is seen */
	touch(&one);
	one.first = 50; /* never touched: installed by the write */
	touch(&one);
	ck_assert(mmu__written(&mmu, 41) && mmu__written(&mmu, 50));
	ck_assert_int_eq(mmu__access(&mmu, 20 * PAGE + 8, 8, (void **)&p), 0);
	ck_assert(mmu__written(&mmu, 20));
	ck_assert_uint_eq(written_pages(), 5);
	wr.value = 7; /* nothing was lost: the words the first pass wrote are there */
	wr.write = false;
	wr.count = 5;
	touch(&wr);
	ck_assert_int_eq(wr.bad, 0);
	mmu_teardown();
}
END_TEST

struct scribbler {
	pthread_t thread;
	bool stop; /* atomic */
	uint64_t rounds;
};

/* Writes a counter into a page after page of 64, round after round, until told to stop. */
static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	uint64_t pi, v = 1;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		for (pi = (v * 7) % 64; pi < 64; pi += 3)
			__atomic_store_n((uint64_t *)(void *)(mmu.ram.host + pi * PAGE), v++,
					 __ATOMIC_RELAXED);
		s->rounds++;
	}
	return NULL;
}

/*
 * Host threads write while resets are taken, as a diff is taken while
 * the guest runs on (--resume): every page whose bytes changed since a
 * reset is marked written.
 */
START_TEST(writes_during_resets_are_never_missed)
{
	static uint8_t copy[64 * PAGE];
	struct scribbler s[2] = {0};
	uint64_t pi, changed = 0;
	int round, i;

	mmu_setup(&(struct setup){.ram = 64 * PAGE, .handlers = 2, .track = true});
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&s[i].thread, NULL, scribble, &s[i]), 0);
	for (round = 0; round < 50; round++) {
		bool was[64];

		/* Only resident pages are read: the monitor's view of a hole would fill it. */
		pthread_mutex_lock(&mmu.reclaim_lock);
		ck_assert_int_eq(mmu__writes_reset_locked(&mmu), 0);
		for (pi = 0; pi < 64; pi++) {
			was[pi] = page_bits__resident(&mmu.bits, pi);
			if (was[pi])
				memcpy(copy + pi * PAGE, mmu.alias + pi * PAGE, PAGE);
		}
		pthread_mutex_unlock(&mmu.reclaim_lock);
		usleep(2000);
		pthread_mutex_lock(&mmu.reclaim_lock);
		for (pi = 0; pi < 64; pi++) {
			bool now = page_bits__resident(&mmu.bits, pi);

			if (!was[pi] && !now)
				continue;
			/* Installed since: by a write, the only thing the scribblers do. */
			if (was[pi] && !memcmp(copy + pi * PAGE, mmu.alias + pi * PAGE, PAGE))
				continue;
			changed++;
			ck_assert_msg(mmu__written(&mmu, pi),
				      "round %d: page %" PRIu64 " changed, not marked", round, pi);
		}
		pthread_mutex_unlock(&mmu.reclaim_lock);
	}
	for (i = 0; i < 2; i++) {
		__atomic_store_n(&s[i].stop, true, __ATOMIC_RELAXED);
		pthread_join(s[i].thread, NULL);
	}
	ck_assert_uint_gt(changed, 0);
	ck_assert_uint_gt(STAT(faults_wp), 50);
	mmu_teardown();
}
END_TEST

/* A write-protect that fails at a reset is reported: the caller must not build on it. */
START_TEST(a_reset_that_cannot_protect_fails)
{
	struct toucher wr = {.first = 0, .count = 4, .write = true, .value = 3};

	mmu_setup(&(struct setup){.ram = 16 * PAGE, .handlers = 1, .track = true});
	touch(&wr);
	ck_assert_int_eq(inject__init("UFFDIO_WRITEPROTECT.reset:EIO"), 0);
	ck_assert_int_eq(writes_reset(), -EIO);
	ck_assert_int_eq(inject__init(NULL), 0);
	mmu_teardown();
}
END_TEST

/*
 * Layers over the backing file, as a diff snapshot's restore has them:
 * each page comes from the newest layer that holds it, else the file.
 */
START_TEST(layers_cover_the_backing_file)
{
	char lpath[64];
	uint8_t *data, *layer = calloc(16, PAGE), *want = malloc(16 * PAGE);
	const char *path = make_file(16 * PAGE, &data);
	unsigned long pages[1] = {1UL << 3 | 1UL << 4 | 1UL << 9};
	struct toucher rd = {.first = 0, .count = 16, .expect = want};
	uint64_t pi;
	int fd;

	ck_assert_ptr_nonnull(layer);
	ck_assert_ptr_nonnull(want);
	for (pi = 0; pi < 16; pi++)
		memset(layer + pi * PAGE, 0x40 + (int)pi, PAGE);
	snprintf(lpath, sizeof(lpath), "/tmp/faultline-layer-%d", getpid());
	fd = open(lpath, O_CREAT | O_TRUNC | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, layer, 16 * PAGE), 16 * PAGE);
	unlink(lpath);
	memcpy(want, data, 16 * PAGE);
	for (pi = 0; pi < 16; pi++)
		if (pages[0] >> pi & 1)
			memcpy(want + pi * PAGE, layer + pi * PAGE, PAGE);
	mmu_setup(&(struct setup){.ram = 16 * PAGE, .file = path, .around = 8});
	ck_assert_int_eq(mmu__add_layer(&mmu, fd, pages), 0); /* before the handlers start */
	mmu.cfg.nr_handlers = 1;
	ck_assert_int_eq(mmu__start(&mmu), 0);
	touch(&rd);
	ck_assert_int_eq(rd.bad, 0);
	ck_assert_int_eq(mmu__read_page(&mmu, 9, layer), 0);
	ck_assert_int_eq(memcmp(layer, want + 9 * PAGE, PAGE), 0);
	mmu_teardown();
	/* Without a backing file there is nothing to lay over. */
	mmu_setup(&(struct setup){.ram = 16 * PAGE});
	ck_assert_int_eq(mmu__add_layer(&mmu, -1, pages), -EINVAL);
	mmu_teardown();
	free(data);
	free(layer);
	free(want);
}
END_TEST

/* ---- reclaim of clean file pages ----------------------------------------------------------- */

START_TEST(reclaim_keeps_file_reads_within_budget)
{
	uint8_t *data;
	const char *path = make_file(64 * PAGE, &data);
	struct toucher t = {.first = 0, .count = 64, .expect = data};

	mmu_setup(
		&(struct setup){.ram = 64 * PAGE, .limit = 8 * PAGE, .file = path, .handlers = 1});
	ck_assert(mmu.wp);
	touch(&t);
	ck_assert_uint_le(resident(), 8);
	ck_assert_uint_ge(STAT(pages_reclaimed), 56);
	ck_assert_uint_eq(STAT(result_oom), 0);
	/* Read it all again: reclaimed pages come back from the file. */
	touch(&t);
	ck_assert_uint_eq(STAT(result_oom), 0);
	ck_assert_int_eq(F.calls, 0);
	free(data);
	mmu_teardown();
}
END_TEST

START_TEST(dirty_pages_are_never_reclaimed)
{
	uint8_t *data;
	const char *path = make_file(64 * PAGE, &data);
	struct toucher rd = {.first = 0, .count = 8, .expect = data};
	struct toucher wr = {.first = 0, .count = 8, .write = true, .value = 0xabcdef};

	mmu_setup(
		&(struct setup){.ram = 64 * PAGE, .limit = 8 * PAGE, .file = path, .handlers = 1});
	touch(&rd); /* 8 clean pages */
	touch(&wr); /* now 8 dirty ones, by write-protect faults */
	ck_assert_uint_eq(STAT(faults_wp), 8);
	ck_assert_uint_ge(STAT(uffdio_writeprotect), 8);
	ck_assert_uint_eq(mmu__reclaim(&mmu, 100), 0);
	ck_assert_uint_eq(fault_at(20 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_str_eq(F.why, "budget of 8 pages exhausted and no clean page left to reclaim");
	rd.expect = NULL, rd.value = 0xabcdef; /* the writes survived */
	touch(&rd);
	free(data);
	mmu_teardown();
}
END_TEST

/*
 * Nine clean pages in a budget of eight, read round and round: each fault
 * drops a page the next faults want back. That is out of memory once
 * such faults outnumber the others by MMU_THRASH_FAULTS, not refaults for
 * ever. A second pass over a file larger than the budget is not (above).
 */
START_TEST(thrashing_is_out_of_memory)
{
	uint8_t *data;
	const char *path = make_file(64 * PAGE, &data);
	fault_t r = FAULT_DONE;
	unsigned i;

	mmu_setup(
		&(struct setup){.ram = 64 * PAGE, .limit = 8 * PAGE, .file = path, .handlers = 1});
	ck_assert_uint_eq(mmu__thrash_faults(&mmu), MMU_THRASH_MIN); /* 8 x 4 < 1024 */
	for (i = 0; i < 4 * MMU_THRASH_MIN && r == FAULT_DONE; i++)
		r = fault_at((i % 9) * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL);
	ck_assert_uint_eq(r, FAULT_OOM);
	ck_assert_uint_ge(i, MMU_THRASH_MIN);
	ck_assert_uint_ge(STAT(refaults_reclaimed), MMU_THRASH_MIN);
	ck_assert_uint_eq(STAT(result_oom), 1);
	ck_assert_str_eq(F.why, "budget of 8 pages exhausted: the guest's pages do not fit, 1024 "
				"more faults on pages reclaim had just dropped than on others");
	mmu.limit_pages = 1000; /* a larger budget: four budgets' worth */
	ck_assert_uint_eq(mmu__thrash_faults(&mmu), 4000);
	/* The count starts over: the next fault is served (a resume would go on). */
	ck_assert_uint_eq(fault_at(0, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	free(data);
	mmu_teardown();
}
END_TEST

/* A page first touched by a write is dirty from the start. */
START_TEST(write_fault_installs_dirty)
{
	uint8_t *data;
	const char *path = make_file(16 * PAGE, &data);
	struct toucher wr = {.first = 0, .count = 4, .write = true, .value = 1};

	mmu_setup(&(struct setup){.ram = 16 * PAGE, .file = path, .handlers = 1});
	touch(&wr);
	ck_assert_uint_eq(mmu__reclaim(&mmu, 100), 0);
	ck_assert_uint_eq(resident(), 4);
	free(data);
	mmu_teardown();
}
END_TEST

START_TEST(monitor_access_pins)
{
	uint8_t *data, *p;
	const char *path = make_file(16 * PAGE, &data);

	mmu_setup(&(struct setup){.ram = 16 * PAGE, .file = path, .around = 4});
	ck_assert_int_eq(mmu__access(&mmu, 5 * PAGE, 16, (void **)&p), 0);
	ck_assert_int_eq(memcmp(p, data + 5 * PAGE, 16), 0);
	ck_assert_uint_eq(resident(), 4);	       /* the window 4-7 */
	ck_assert_uint_eq(mmu__reclaim(&mmu, 100), 3); /* all but the pinned page */
	ck_assert_uint_eq(resident(), 1);
	free(data);
	mmu_teardown();
}
END_TEST

START_TEST(no_reclaim_without_write_protect)
{
	uint8_t *data;
	const char *path = make_file(16 * PAGE, &data);

	ck_assert_int_eq(inject__init("uffd.wp:EIO"), 0);
	mmu_setup(&(struct setup){.ram = 16 * PAGE, .limit = PAGE, .file = path});
	ck_assert(!mmu.wp);
	ck_assert_uint_eq(fault_at(0, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(fault_at(PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_str_eq(F.why, "budget of 1 pages exhausted");
	ck_assert_uint_eq(STAT(reclaims), 0);
	free(data);
	mmu_teardown();
}
END_TEST

/* The retry, budget, refault and reclaim cases of the mmu suite. */
void mmu_budget_tcases(Suite *s)
{
	TCase *tc;

	tc = tcase_create("retry");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, retry_then_done);
	tcase_add_test(tc, copy_retry_then_done);
	tcase_add_test(tc, retry_bounded_in_count);
	tcase_add_test(tc, retry_bounded_in_time);
	tcase_add_test(tc, no_retry_without_allow_retry);
	tcase_add_test(tc, stopping_interrupts_guest_retries);
	suite_add_tcase(s, tc);

	tc = tcase_create("budget");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, budget_exhausted_is_oom);
	tcase_add_test(tc, window_over_budget_falls_back);
	tcase_add_test(tc, a_full_budget_waits_for_a_siblings_charge);
	tcase_add_test(tc, a_siblings_charge_that_does_not_end_is_oom_at_the_bound);
	suite_add_tcase(s, tc);

	tc = tcase_create("refault");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, refault_after_the_budget_grows);
	tcase_add_test(tc, refault_without_room_fails_again);
	tcase_add_test(tc, refault_ends_when_stopping);
	tcase_add_test(tc, held_fault_goes_on_once_the_budget_grows);
	tcase_add_test(tc, set_limit_bounds);
	tcase_add_test(tc, device_access_oom_goes_to_the_owner);
	suite_add_tcase(s, tc);

	tc = tcase_create("writes");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, writes_since_a_reset_are_tracked);
	tcase_add_test(tc, writes_during_resets_are_never_missed);
	tcase_add_test(tc, a_reset_that_cannot_protect_fails);
	tcase_add_test(tc, layers_cover_the_backing_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("reclaim");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reclaim_keeps_file_reads_within_budget);
	tcase_add_test(tc, thrashing_is_out_of_memory);
	tcase_add_test(tc, dirty_pages_are_never_reclaimed);
	tcase_add_test(tc, write_fault_installs_dirty);
	tcase_add_test(tc, monitor_access_pins);
	tcase_add_test(tc, no_reclaim_without_write_protect);
	suite_add_tcase(s, tc);
}
