/* The fault engine's injected failures, poison and discard (mmu_fixture.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

/* ---- injected failures ---------------------------------------------------------------- */

static void expect_injected(const char *spec, const char *file, fault_t want, const char *why)
{
	uint8_t *data = NULL;

	ck_assert_int_eq(inject__init(spec), 0);
	if (file)
		file = make_file(8 * PAGE, &data);
	mmu_setup(&(struct setup){.ram = 1 << 20, .file = file});
	ck_assert_uint_eq(fault_at(0, FAULT_READ, FAULT_SRC_UFFD, NULL), want);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_str_eq(F.why, why);
	ck_assert_uint_eq(resident(), 0);
	free(data);
	mmu_teardown();
}

START_TEST(injected_budget_charge)
{
	expect_injected("budget.charge:ENOMEM", NULL, FAULT_OOM, "budget of 256 pages exhausted");
}
END_TEST

START_TEST(injected_backing_eio)
{
	expect_injected("backing.read:EIO", "file", FAULT_SIGBUS,
			"the backing file could not be read: Input/output error");
}
END_TEST

START_TEST(injected_copy_enomem)
{
	expect_injected("UFFDIO_COPY:ENOMEM:0:0", "file", FAULT_OOM,
			"the host could not allocate the page: Cannot allocate memory");
}
END_TEST

START_TEST(injected_zeropage_efault)
{
	expect_injected("UFFDIO_ZEROPAGE:EFAULT", NULL, FAULT_SIGBUS,
			"the page could not be installed: Bad address");
}
END_TEST

/* A file-backed VM's install that fails is not blamed on the file. */
START_TEST(injected_copy_efault_with_file)
{
	expect_injected("UFFDIO_COPY:EFAULT:0:0", "file", FAULT_SIGBUS,
			"the page could not be installed: Bad address");
}
END_TEST

/* The file shrinks under the VM: a short read is an I/O error, not zeros. */
START_TEST(backing_file_shrinks)
{
	uint8_t *data;
	const char *path = make_file(8 * PAGE, &data);

	mmu_setup(&(struct setup){.ram = 1 << 20, .file = path});
	ck_assert_int_eq(truncate(path, PAGE), 0);
	ck_assert_uint_eq(fault_at(4 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_SIGBUS);
	ck_assert_str_eq(F.why, "the backing file could not be read: Input/output error");
	free(data);
	mmu_teardown();
}
END_TEST

START_TEST(backing_file_missing)
{
	const struct mmu_config cfg = {
		.ram_size = 1 << 20,
		.backing_file = "/nonexistent/faultline-backing",
		.fault_around = 1,
		.max_retries = 1,
		.nr_handlers = 1,
	};
	const struct mmu_ops ops = {0};

	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), -ENOENT);
	ck_assert_log(log_buf, "faultline: cannot open the backing file: No such file or "
			       "directory (file: /nonexistent/faultline-backing)\n");
	mmu__exit(&mmu);
}
END_TEST

/* A directory or a device is not a backing file: its size means nothing. */
START_TEST(backing_file_not_regular)
{
	const char *paths[] = {"/tmp", "/dev/null"};
	char want[128];
	unsigned i;

	for (i = 0; i < 2; i++) {
		const struct mmu_config cfg = {.ram_size = 1 << 20,
					       .backing_file = paths[i],
					       .fault_around = 1,
					       .max_retries = 1};
		const struct mmu_ops ops = {0};

		log__capture(log_buf, sizeof(log_buf));
		ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), -EMEDIUMTYPE);
		snprintf(want, sizeof(want),
			 "faultline: cannot use the backing file: not a regular file (file: %s)\n",
			 paths[i]);
		ck_assert_log(log_buf, want);
		mmu__exit(&mmu);
	}
}
END_TEST

START_TEST(injected_userfaultfd)
{
	const struct mmu_config cfg = {.ram_size = 1 << 20, .fault_around = 1, .max_retries = 1};
	const struct mmu_ops ops = {0};

	ck_assert_int_eq(inject__init("userfaultfd:EPERM"), 0);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), -EPERM);
	ck_assert_log(log_buf, "faultline: cannot set up guest RAM: userfaultfd failed: Operation "
			       "not permitted; run as root or set vm.unprivileged_userfaultfd=1\n");
	mmu__exit(&mmu);
	ck_assert_int_eq(inject__init(NULL), 0);
}
END_TEST

/* Each other set-up call of guest RAM: its failure names the call, and nothing leaks. */
static void expect_setup_failure(const char *spec, int err, const char *log)
{
	const struct mmu_config cfg = {.ram_size = 1 << 20, .fault_around = 1, .max_retries = 1};
	const struct mmu_ops ops = {0};

	ck_assert_int_eq(inject__init(spec), 0);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), err);
	ck_assert_log(log_buf, log);
	mmu__exit(&mmu);
	ck_assert_int_eq(inject__init(NULL), 0);
}

START_TEST(injected_memfd_create)
{
	expect_setup_failure(
		"memfd_create:ENOSPC", -ENOSPC,
		"faultline: cannot set up guest RAM: memfd_create failed: No space left on "
		"device\n");
}
END_TEST

START_TEST(injected_stop_eventfd)
{
	expect_setup_failure("eventfd.fault:EMFILE", -EMFILE,
			     "faultline: cannot set up guest RAM: eventfd failed: Too many open "
			     "files\n");
}
END_TEST

START_TEST(injected_alias_mmap)
{
	expect_setup_failure(
		"mmap.alias:ENOMEM", -ENOMEM,
		"faultline: cannot set up guest RAM: mmap of the RAM alias failed: Cannot "
		"allocate memory\n");
}
END_TEST

/* The fifth of the eight page bitmaps cannot be allocated: nothing leaks (ASan). */
START_TEST(injected_page_bits)
{
	expect_setup_failure("calloc.page_bits:ENOMEM:4", -ENOMEM,
			     "faultline: cannot set up guest RAM: allocation of the page bitmaps "
			     "failed: Cannot allocate memory\n");
}
END_TEST

/*
 * The second of three handler threads cannot start: mmu__start() says which
 * and fails, and mmu__exit() stops the one that did start (no hang, no leak).
 */
START_TEST(injected_handler_thread)
{
	const struct mmu_config cfg = {
		.ram_size = 1 << 20, .fault_around = 1, .max_retries = 1, .nr_handlers = 3};
	const struct mmu_ops ops = {0};

	ck_assert_int_eq(inject__init("pthread_create.fault:EAGAIN:1"), 0);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), 0);
	ck_assert_int_eq(mmu__start(&mmu), -EAGAIN);
	ck_assert_log(log_buf, "faultline: cannot start fault handler thread 1: Resource "
			       "temporarily unavailable\n");
	ck_assert_uint_eq(mmu.nr_handlers_started, 1);
	mmu__stop(&mmu);
	mmu__exit(&mmu);
	ck_assert_int_eq(inject__init(NULL), 0);
}
END_TEST

/*
 * Lifting the write protection of a clean file page fails: the write fault
 * fails as SIGBUS with the reason, the page stays resident and protected,
 * and the next write fault (the host recovered) makes it dirty.
 */
START_TEST(injected_unprotect_failure)
{
	uint8_t *data;
	const char *path = make_file(16 * PAGE, &data);

	mmu_setup(&(struct setup){.ram = 16 * PAGE, .file = path});
	ck_assert_uint_eq(fault_at(0, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_int_eq(inject__init("UFFDIO_WRITEPROTECT:EIO"), 0);
	ck_assert_uint_eq(fault_at(0, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_SIGBUS);
	ck_assert_int_eq(F.calls, 1);
	ck_assert_str_eq(F.why, "the write protection could not be lifted: Input/output error");
	ck_assert_uint_eq(resident(), 1);
	ck_assert_uint_eq(fault_at(0, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(mmu__reclaim(&mmu, 100), 0); /* dirty now: never reclaimed */
	ck_assert_uint_eq(resident(), 1);
	free(data);
	mmu_teardown();
}
END_TEST

/* A resolver that never answers is released when the MMU stops. */
START_TEST(stalled_resolver_released_by_stop)
{
	struct toucher t = {.first = 1, .count = 1};

	ck_assert_int_eq(inject__init("resolver.stall:EIO"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20, .handlers = 1});
	touch_start(&t);
	usleep(50 * 1000);
	ck_assert_uint_eq(resident(), 0); /* still waiting */
	mmu__stop(&mmu);		  /* returns: the stalled handler saw the stop */
	install_zero_outside(PAGE);	  /* and the toucher is let go by hand */
	pthread_join(t.thread, NULL);
	ck_assert_int_eq(t.bad, 0);
	mmu_teardown();
}
END_TEST

/*
 * mmu__waiting(), the hang report's view of the engine: a fault nobody has
 * read is queued; one a handler holds counts that handler as at work; a
 * served fault leaves neither.
 */
START_TEST(waiting_faults_are_seen_queued_or_in_service)
{
	struct toucher t = {.first = 1, .count = 1};
	unsigned in_service;
	bool queued;

	mmu_setup(&(struct setup){.ram = 1 << 20}); /* no handler yet */
	mmu__waiting(&mmu, &queued, &in_service);
	ck_assert(!queued);
	ck_assert_uint_eq(in_service, 0);
	touch_start(&t);
	for (int i = 0; i < 500 && !queued; i++) {
		usleep(2000);
		mmu__waiting(&mmu, &queued, &in_service);
	}
	ck_assert(queued);
	ck_assert_uint_eq(in_service, 0);
	ck_assert_int_eq(inject__init("resolver.stall:EIO"), 0);
	mmu.cfg.nr_handlers = 1; /* started only now, to find the fault queued */
	ck_assert_int_eq(mmu__start(&mmu), 0);
	for (int i = 0; i < 500 && (queued || !in_service); i++) {
		usleep(2000);
		mmu__waiting(&mmu, &queued, &in_service);
	}
	ck_assert(!queued);
	ck_assert_uint_eq(in_service, 1); /* the stalled handler holds it */
	mmu__stop(&mmu);
	mmu__waiting(&mmu, &queued, &in_service);
	ck_assert(!queued);
	ck_assert_uint_eq(in_service, 0);
	install_zero_outside(PAGE);
	pthread_join(t.thread, NULL);
	ck_assert_int_eq(t.bad, 0);
	mmu_teardown();
}
END_TEST

START_TEST(kernel_handler_has_nothing_waiting)
{
	unsigned in_service = 9;
	bool queued = true;

	mmu_setup(&(struct setup){.ram = 1 << 20, .handler = MMU_HANDLER_KERNEL});
	mmu__waiting(&mmu, &queued, &in_service);
	ck_assert(!queued);
	ck_assert_uint_eq(in_service, 0);
	mmu_teardown();
}
END_TEST

/* ---- poison (--on-oom mce) and memory errors --------------------------------------------- */

START_TEST(oom_poison_raises_sigbus)
{
	struct toucher t = {.first = 0, .count = 4, .write = true, .value = 7};
	void *p;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 2 * PAGE, .handlers = 1});
	ck_assert_msg(mmu__can_poison(&mmu), "this kernel has no UFFDIO_POISON");
	pthread_mutex_lock(&failed_lock);
	failed.poison = true;
	pthread_mutex_unlock(&failed_lock);
	touch_start(&t);
	pthread_join(t.thread, NULL);
	settle();
	/*
	 * A poisoned page raises BUS_MCEERR_AR (KVM always sends that); a
	 * kernel built without CONFIG_MEMORY_FAILURE reports a user access
	 * as BUS_ADRERR.
	 */
	ck_assert_msg(t.sigbus_code == BUS_MCEERR_AR || t.sigbus_code == BUS_ADRERR, "si_code %d",
		      t.sigbus_code);
	ck_assert_uint_eq(t.sigbus_addr, (uintptr_t)(mmu.ram.host + 2 * PAGE));
	ck_assert_uint_eq(F.result, FAULT_OOM);
	ck_assert_uint_eq(STAT(pages_poisoned), 1);
	/* The page stays poisoned: every later fault on it is HWPOISON. */
	ck_assert_uint_eq(fault_at(2 * PAGE, FAULT_READ, FAULT_SRC_SIGBUS, NULL), FAULT_HWPOISON);
	ck_assert_str_eq(F.why, "the page is poisoned: it was touched after the budget ran out");
	ck_assert_int_eq(mmu__access(&mmu, 2 * PAGE, 8, &p), -EHWPOISON);
	/* A vCPU's userfaultfd fault on it is only woken, to meet the poison. */
	ck_assert_uint_eq(fault_at(2 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_HWPOISON);
	ck_assert_uint_eq(STAT(uffdio_wake), 1);
	ck_assert_int_eq(mmu__poison(&mmu, 0), -EEXIST); /* resident pages cannot be poisoned */
	ck_assert_int_eq(mmu__poison(&mmu, 1ULL << 40), -EFAULT);
	ck_assert_uint_eq(resident(), 2);
	mmu_teardown();
}
END_TEST

START_TEST(injected_poison_failure)
{
	ck_assert_int_eq(inject__init("UFFDIO_POISON:ENOMEM"), 0);
	mmu_setup(&(struct setup){.ram = 1 << 20});
	ck_assert_int_eq(mmu__poison(&mmu, PAGE), -ENOMEM);
	ck_assert_uint_eq(STAT(pages_poisoned), 0);
	/* Not poisoned after all: the page can still be served. */
	ck_assert_uint_eq(fault_at(PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_int_eq(mmu__poison(&mmu, 3 * PAGE), 0);
	ck_assert_uint_eq(STAT(pages_poisoned), 1);
	mmu_teardown();
}
END_TEST

/* SIGBUS from the host on a resident page: the page is lost and uncharged. */
START_TEST(host_memory_error)
{
	struct fault_ctx ctx;

	mmu_setup(&(struct setup){.ram = 1 << 20});
	ck_assert_uint_eq(fault_at(PAGE, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(resident(), 1);
	ck_assert_uint_eq(fault_at(PAGE, FAULT_READ, FAULT_SRC_SIGBUS, &ctx), FAULT_HWPOISON);
	ck_assert_int_eq(ctx.err, EHWPOISON);
	ck_assert_str_eq(F.why,
			 "the host reported a memory error on the page (SIGBUS, BUS_MCEERR_AR)");
	ck_assert_uint_eq(STAT(faults_sigbus), 1);
	ck_assert_uint_eq(STAT(result_hwpoison), 1);
	ck_assert_uint_eq(resident(), 0);
	mmu_teardown();
}
END_TEST

START_TEST(injected_punch_failure)
{
	uint8_t *data;
	const char *path = make_file(16 * PAGE, &data);
	struct toucher rd = {.first = 0, .count = 2, .expect = data};

	ck_assert_int_eq(inject__init("reclaim.punch:EIO:0:0"), 0);
	mmu_setup(
		&(struct setup){.ram = 16 * PAGE, .limit = 2 * PAGE, .file = path, .handlers = 1});
	touch(&rd);
	ck_assert_uint_eq(fault_at(9 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_OOM);
	ck_assert_uint_eq(STAT(reclaims), 1);
	ck_assert_uint_eq(STAT(pages_reclaimed), 0);
	ck_assert_uint_eq(resident(), 2);
	touch(&rd); /* still resident and intact: no new fault */
	ck_assert_uint_eq(STAT(faults_uffd), 3);
	free(data);
	mmu_teardown();
}
END_TEST

/* ---- pages the guest gives back (mmu__discard: --balloon) ---------------------------------- */

/*
 * Free pages reported by the guest are dropped and their charge given
 * back; a later touch is a first touch again (zeros), and the pages around
 * them are untouched. A page a device accessed while running is kept.
 */
/* mmu__discard() of [@gpa, @gpa + @len) drops @dropped pages and keeps @kept. */
static void expect_discard(uint64_t gpa, uint64_t len, uint64_t dropped, uint64_t kept)
{
	uint64_t d, k;

	ck_assert_int_eq(mmu__discard(&mmu, gpa, len, &d, &k), 0);
	ck_assert_uint_eq(d, dropped);
	ck_assert_uint_eq(k, kept);
}

START_TEST(discard_drops_and_refaults_zeros)
{
	struct toucher wr = {.first = 0, .count = 16, .write = true, .value = 0x77};
	struct toucher zeros = {.first = 4, .count = 4, .value = 0};
	struct toucher rest = {.first = 8, .count = 8, .value = 0x77};
	uint64_t dropped, kept;
	void *p;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 16 * PAGE, .handlers = 1});
	ck_assert_int_eq(mmu__allow_discard(&mmu), 0);
	touch(&wr);
	ck_assert_uint_eq(resident(), 16);
	ck_assert_int_eq(mmu__access(&mmu, 6 * PAGE, 8, &p), 0); /* a device's buffer */
	/* [4, 8) reported free, and half of page 3 (a part page is kept as it is) */
	expect_discard(3 * PAGE + PAGE / 2, PAGE / 2 + 4 * PAGE, 3, 1);
	ck_assert_uint_eq(resident(), 13);
	ck_assert_uint_eq(STAT(pages_discarded), 3);
	/* Not resident any more: nothing to drop again. */
	ck_assert_int_eq(mmu__discard(&mmu, 4 * PAGE, 2 * PAGE, &dropped, &kept), 0);
	ck_assert_uint_eq(dropped + kept, 0);
	/* The budget (16 pages) has room for the 3 again, which come back as zeros. */
	zeros.first = 4, zeros.count = 2;
	touch(&zeros);
	ck_assert_uint_eq(*(uint64_t *)(mmu.ram.host + 6 * PAGE), 0x77); /* kept */
	zeros.first = 7, zeros.count = 1;
	touch(&zeros);
	touch(&rest);
	ck_assert_uint_eq(resident(), 16);
	ck_assert_uint_eq(STAT(result_oom), 0);
	mmu_teardown();
}
END_TEST

/*
 * A device's buffer held for a request (mmu__access_held) is kept while
 * held, once per holder, and can go once given back; a pointer taken with
 * mmu__access() is kept for good, as is a page held 255 times at once.
 */
START_TEST(discard_held_pages_go_once_released)
{
	struct toucher wr = {.first = 0, .count = 16, .write = true, .value = 0x77};
	unsigned i;
	void *p;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 16 * PAGE, .handlers = 1});
	ck_assert_int_eq(mmu__allow_discard(&mmu), 0);
	touch(&wr);
	ck_assert_int_eq(mmu__access_held(&mmu, 3 * PAGE + 8, PAGE, &p), 0); /* pages 3 and 4 */
	ck_assert_int_eq(mmu__access_held(&mmu, 3 * PAGE, 8, &p), 0);	     /* page 3 again */
	ck_assert_int_eq(mmu__access(&mmu, 7 * PAGE, 8, &p), 0);
	for (i = 0; i < 300; i++)
		ck_assert_int_eq(mmu__access_held(&mmu, 9 * PAGE, 8, &p), 0);
	expect_discard(2 * PAGE, 8 * PAGE, 4, 4); /* 2, 5, 6, 8 dropped; 3, 4, 7, 9 kept */
	mmu__release(&mmu, 3 * PAGE + 8, PAGE);
	mmu__release(&mmu, 9 * PAGE, 8);
	expect_discard(2 * PAGE, 8 * PAGE, 1, 3); /* 4; 3 is held once more, 7 and 9 for good */
	mmu__release(&mmu, 3 * PAGE, 8);
	mmu__release(&mmu, 3 * PAGE, 8);	  /* not held any more: nothing */
	mmu__release(&mmu, 64 * PAGE * 1024, 8);  /* not RAM: nothing */
	expect_discard(2 * PAGE, 8 * PAGE, 1, 2); /* 3 */
	ck_assert_uint_eq(resident(), 10);
	mmu_teardown();
}
END_TEST

/* A held access that fails holds nothing: the pages before the one that failed are given back. */
START_TEST(held_access_failure_holds_nothing)
{
	struct toucher wr = {.first = 0, .count = 4, .write = true, .value = 0x77};
	void *p;

	mmu_setup(&(struct setup){.ram = 1 << 20, .limit = 4 * PAGE, .handlers = 1});
	ck_assert_int_eq(mmu__allow_discard(&mmu), 0);
	touch(&wr);
	/* Pages 2 and 3 are resident, 4 does not fit in the budget. */
	ck_assert_int_eq(mmu__access_held(&mmu, 2 * PAGE, 3 * PAGE, &p), -ENOMEM);
	expect_discard(0, 4 * PAGE, 4, 0);
	mmu_teardown();
}
END_TEST

/* Outside guest RAM, or no discards allowed: nothing happens. */
START_TEST(discard_bad_ranges)
{
	uint64_t dropped = 9, kept = 9;

	mmu_setup(&(struct setup){.ram = 1 << 20, .handlers = 1});
	ck_assert_uint_eq(fault_at(0, FAULT_WRITE, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_int_eq(mmu__discard(&mmu, 0, PAGE, &dropped, &kept), 0);
	ck_assert_uint_eq(dropped + kept, 0); /* mmu__allow_discard() was not called */
	ck_assert_int_eq(mmu__allow_discard(&mmu), 0);
	ck_assert_int_eq(mmu__discard(&mmu, (1 << 20) - PAGE, 2 * PAGE, &dropped, &kept), -EFAULT);
	ck_assert_int_eq(mmu__discard(&mmu, 1ULL << 40, PAGE, &dropped, &kept), -EFAULT);
	ck_assert_int_eq(mmu__discard(&mmu, PAGE, 0, &dropped, &kept), -EFAULT);
	ck_assert_int_eq(mmu__discard(&mmu, ~0ULL - PAGE, 2 * PAGE, &dropped, &kept), -EFAULT);
	ck_assert_int_eq(mmu__discard(&mmu, 0, PAGE / 2, &dropped, &kept), 0);
	ck_assert_uint_eq(dropped + kept, 0);
	ck_assert_uint_eq(resident(), 1);
	ck_assert_int_eq(mmu__discard(&mmu, 0, PAGE, &dropped, &kept), 0);
	ck_assert_uint_eq(dropped, 1);
	ck_assert_uint_eq(resident(), 0);
	mmu_teardown();
}
END_TEST

/* The punch fails: the pages stay resident, intact and charged. */
START_TEST(discard_punch_failure_keeps_the_pages)
{
	struct toucher wr = {.first = 0, .count = 4, .write = true, .value = 0x55};
	struct toucher rd = {.first = 0, .count = 4, .value = 0x55};
	uint64_t dropped, kept;

	mmu_setup(&(struct setup){.ram = 1 << 20, .handlers = 1});
	ck_assert_int_eq(mmu__allow_discard(&mmu), 0);
	touch(&wr);
	ck_assert_int_eq(inject__init("reclaim.punch:EIO"), 0);
	ck_assert_int_eq(mmu__discard(&mmu, 0, 4 * PAGE, &dropped, &kept), -EIO);
	ck_assert_uint_eq(dropped, 0);
	ck_assert_uint_eq(resident(), 4);
	ck_assert_uint_eq(STAT(pages_discarded), 0);
	touch(&rd);
	ck_assert_uint_eq(STAT(faults_uffd), 4); /* no new fault: still there */
	mmu_teardown();
}
END_TEST

/* A file-backed page given back comes back from the file, and clean. */
START_TEST(discard_file_page_comes_back_from_the_file)
{
	uint8_t *data;
	const char *path = make_file(16 * PAGE, &data);
	struct toucher wr = {.first = 2, .count = 1, .write = true, .value = 0x99};
	struct toucher rd = {.first = 0, .count = 4, .expect = data};
	uint64_t dropped, kept;

	mmu_setup(&(struct setup){.ram = 16 * PAGE, .file = path, .handlers = 1});
	ck_assert_int_eq(mmu__allow_discard(&mmu), 0);
	touch(&wr);
	ck_assert(bit_test(mmu.bits.dirty, 2));
	ck_assert_int_eq(mmu__discard(&mmu, 2 * PAGE, PAGE, &dropped, &kept), 0);
	ck_assert_uint_eq(dropped, 1);
	ck_assert(!bit_test(mmu.bits.dirty, 2));
	touch(&rd);
	ck_assert(!bit_test(mmu.bits.dirty, 2));
	free(data);
	mmu_teardown();
}
END_TEST

/* The discard, failure and poison cases of the mmu suite. */
void mmu_failure_tcases(Suite *s)
{
	TCase *tc;

	tc = tcase_create("discard");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, discard_drops_and_refaults_zeros);
	tcase_add_test(tc, discard_bad_ranges);
	tcase_add_test(tc, discard_held_pages_go_once_released);
	tcase_add_test(tc, held_access_failure_holds_nothing);
	tcase_add_test(tc, discard_punch_failure_keeps_the_pages);
	tcase_add_test(tc, discard_file_page_comes_back_from_the_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, injected_budget_charge);
	tcase_add_test(tc, injected_backing_eio);
	tcase_add_test(tc, injected_copy_enomem);
	tcase_add_test(tc, injected_zeropage_efault);
	tcase_add_test(tc, injected_copy_efault_with_file);
	tcase_add_test(tc, backing_file_shrinks);
	tcase_add_test(tc, backing_file_missing);
	tcase_add_test(tc, backing_file_not_regular);
	tcase_add_test(tc, injected_userfaultfd);
	tcase_add_test(tc, injected_memfd_create);
	tcase_add_test(tc, injected_alias_mmap);
	tcase_add_test(tc, injected_page_bits);
	tcase_add_test(tc, injected_stop_eventfd);
	tcase_add_test(tc, injected_handler_thread);
	tcase_add_test(tc, injected_unprotect_failure);
	tcase_add_test(tc, stalled_resolver_released_by_stop);
	tcase_add_test(tc, waiting_faults_are_seen_queued_or_in_service);
	tcase_add_test(tc, kernel_handler_has_nothing_waiting);
	tcase_add_test(tc, injected_punch_failure);
	suite_add_tcase(s, tc);

	tc = tcase_create("poison");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, oom_poison_raises_sigbus);
	tcase_add_test(tc, injected_poison_failure);
	tcase_add_test(tc, host_memory_error);
	suite_add_tcase(s, tc);
}
