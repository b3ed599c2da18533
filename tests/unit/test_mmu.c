/*
 * The fault engine without KVM: host threads touch userfaultfd-registered
 * guest RAM the way vCPUs do, and the tests call mmu__handle_fault()
 * directly for the results a blocked thread could not report. Needs
 * userfaultfd for kernel faults (root, or vm.unprivileged_userfaultfd=1).
 * This file: results, lazy RAM, fault-ahead, the baselines;
 * test_mmu_budget.c: retry, the budget, refault, reclaim;
 * test_mmu_failures.c: injected failures, poison, discard.
 */
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

/* ---- results ------------------------------------------------------------------ */

START_TEST(errno_mapping)
{
	ck_assert_uint_eq(fault__from_errno(0), FAULT_DONE);
	ck_assert_uint_eq(fault__from_errno(-EEXIST), FAULT_DONE);
	ck_assert_uint_eq(fault__from_errno(-EAGAIN), FAULT_RETRY);
	ck_assert_uint_eq(fault__from_errno(-ENOMEM), FAULT_OOM);
	ck_assert_uint_eq(fault__from_errno(-ENOSPC), FAULT_OOM);
	ck_assert_uint_eq(fault__from_errno(-EIO), FAULT_SIGBUS);
	ck_assert_uint_eq(fault__from_errno(-EFAULT), FAULT_SIGBUS);
	ck_assert_int_eq(fault__to_errno(FAULT_DONE), 0);
	ck_assert_int_eq(fault__to_errno(FAULT_RETRY), -EAGAIN);
	ck_assert_int_eq(fault__to_errno(FAULT_OOM), -ENOMEM);
	ck_assert_int_eq(fault__to_errno(FAULT_HWPOISON), -EHWPOISON);
	ck_assert_int_eq(fault__to_errno(FAULT_SIGBUS), -EFAULT);
	ck_assert_int_eq(fault__to_errno(FAULT_MMIO), -ENXIO);
	ck_assert_str_eq(fault__name(FAULT_OOM | FAULT_RETRY), "oom");
	ck_assert_str_eq(fault__name(FAULT_HWPOISON), "hwpoison");
	ck_assert_str_eq(fault__name(FAULT_FALLBACK), "fallback");
	ck_assert_str_eq(fault__name(FAULT_DONE), "done");
	ck_assert_uint_eq(FAULT_ERROR & FAULT_RETRY, 0);
}
END_TEST

/* ---- lazy RAM through host threads -------------------------------------------------- */

START_TEST(zero_fill_on_touch)
{
	struct toucher t = {.first = 3, .count = 8, .value = 0};

	mmu_setup(&(struct setup){.ram = 4 << 20, .handlers = 1});
	ck_assert_uint_eq(resident(), 0);
	touch(&t);
	ck_assert_uint_eq(resident(), 8);
	ck_assert_uint_eq(STAT(faults_uffd), 8);
	ck_assert_uint_eq(STAT(pages_installed), 8);
	ck_assert_uint_eq(STAT(uffdio_zeropage), 8);
	ck_assert_uint_eq(STAT(result_done), 8);
	ck_assert_int_eq(F.calls, 0);
	mmu_teardown();
}
END_TEST

START_TEST(fault_around_window)
{
	struct toucher a = {.first = 5, .count = 1}, b = {.first = 20, .count = 1};

	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16, .handlers = 1});
	touch(&a);
	ck_assert_uint_eq(resident(), 16); /* pages 0-15 */
	ck_assert_uint_eq(STAT(pages_around), 15);
	touch(&b);
	ck_assert_uint_eq(resident(), 32); /* and 16-31 */
	ck_assert_uint_eq(STAT(faults_uffd), 2);
	a.first = 0, a.count = 32; /* all there now: no more faults */
	touch(&a);
	ck_assert_uint_eq(STAT(faults_uffd), 2);
	mmu_teardown();
}
END_TEST

/*
 * What the host holds of guest RAM is the memfd's pages, mapped or not: the
 * resident pages the budget counts, window and monitor's accesses alike.
 */
START_TEST(host_bytes_are_the_memfds_pages)
{
	struct toucher t = {.first = 40, .count = 1};
	uint64_t bytes = 1;
	void *p;

	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16, .handlers = 1});
	ck_assert_int_eq(mmu__host_bytes(&mmu, &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	touch(&t);						   /* pages 32-47 */
	ck_assert_int_eq(mmu__access(&mmu, 200 * PAGE, 8, &p), 0); /* and 192-207 */
	ck_assert_uint_eq(resident(), 32);
	ck_assert_int_eq(mmu__host_bytes(&mmu, &bytes), 0);
	ck_assert_uint_eq(bytes, 32 * PAGE);
	ck_assert_int_eq(inject__init("fstat.guest_ram:EIO"), 0);
	ck_assert_int_eq(mmu__host_bytes(&mmu, &bytes), -EIO);
	ck_assert_uint_eq(bytes, 32 * PAGE); /* untouched */
	mmu_teardown();
}
END_TEST

START_TEST(writes_reach_the_alias)
{
	struct toucher t = {.first = 0, .count = 4, .write = true, .value = 0x1122334455667788ULL};
	uint64_t *p;

	mmu_setup(&(struct setup){.ram = 1 << 20, .handlers = 1});
	touch(&t);
	ck_assert_int_eq(mmu__access(&mmu, 3 * PAGE + 8, 8, (void **)&p), 0);
	ck_assert_uint_eq(*p, 0x1122334455667788ULL);
	ck_assert_uint_eq(STAT(faults_monitor), 0); /* resident already */
	mmu_teardown();
}
END_TEST

START_TEST(file_backing_read_lazily)
{
	uint8_t *data;
	const char *path = make_file(10 * PAGE + 100, &data); /* zero past its end */
	struct toucher t = {.first = 0, .count = 32, .expect = data};

	mmu_setup(&(struct setup){.ram = 32 * PAGE, .file = path, .around = 4, .handlers = 1});
	touch(&t);
	ck_assert_uint_eq(resident(), 32);
	ck_assert_uint_eq(STAT(faults_uffd), 8);
	ck_assert_uint_ge(STAT(backing_reads), 3);
	ck_assert_uint_eq(STAT(pages_installed), 32);
	free(data);
	mmu_teardown();
}
END_TEST

/* Many threads on the same pages: each page is charged and installed once. */
START_TEST(threads_race_for_the_same_pages)
{
	struct toucher t[8];
	unsigned i;

	mmu_setup(&(struct setup){.ram = 1 << 20, .handlers = 4});
	for (i = 0; i < 8; i++) {
		t[i] = (struct toucher){.first = 0, .count = 256};
		touch_start(&t[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i].thread, NULL);
		ck_assert_int_eq(t[i].bad, 0);
		ck_assert_int_eq(t[i].sigbus_code, 0);
	}
	quiesce();
	ck_assert_uint_eq(resident(), 256);
	ck_assert_uint_eq(STAT(pages_installed), 256);
	ck_assert_msg(STAT(result_done) == STAT(faults),
		      "faults %llu: done %llu, oom %llu, sigbus %llu, hwpoison %llu, retry "
		      "exhausted %llu; retries %llu, eexist %llu, wake %llu",
		      (unsigned long long)STAT(faults), (unsigned long long)STAT(result_done),
		      (unsigned long long)STAT(result_oom), (unsigned long long)STAT(result_sigbus),
		      (unsigned long long)STAT(result_hwpoison),
		      (unsigned long long)STAT(result_retry_exhausted),
		      (unsigned long long)STAT(retries), (unsigned long long)STAT(uffdio_eexist),
		      (unsigned long long)STAT(uffdio_wake));
	ck_assert_int_eq(F.calls, 0);
	mmu_teardown();
}
END_TEST

/* Spin-then-poll: the handler finds the next fault while polling. */
START_TEST(spin_then_poll)
{
	struct toucher t = {.first = 0, .count = 64, .write = true, .value = 3};

	mmu_setup(&(struct setup){.ram = 1 << 20, .handlers = 1, .spin_us = 10000});
	touch(&t);
	ck_assert_uint_eq(STAT(faults_uffd), 64);
	ck_assert_uint_ge(STAT(spin_hits), 1);
	ck_assert_uint_le(STAT(spin_hits), 63);
	mmu_teardown();
}
END_TEST

/* A sibling installed the page first: EEXIST counts as done, nothing charged twice. */
START_TEST(eexist_is_done)
{
	mmu_setup(&(struct setup){.ram = 1 << 20});
	install_zero_outside(2 * PAGE);
	ck_assert_uint_eq(fault_at(2 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(STAT(uffdio_eexist), 1);
	ck_assert_uint_eq(resident(), 0); /* the sibling's charge, not ours */
	mmu_teardown();
}
END_TEST

/*
 * A waiter on a page that is mapped when its event is served, but was not
 * installed for it (dedup releasing a zero page between clearing the page's
 * resident bit and punching it), must be woken: the EEXIST of the install
 * wakes nobody. The mapping here is made without a wake-up.
 */
START_TEST(eexist_wakes_the_waiter)
{
	struct uffdio_zeropage z = {.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE};
	struct pollfd p;
	struct timespec until;
	struct toucher t = {.first = 5, .count = 1};
	int i, joined;

	mmu_setup(&(struct setup){.ram = 1 << 20});
	touch_start(&t);
	p = (struct pollfd){.fd = mmu.uffd, .events = POLLIN};
	for (i = 0; i < 2000 && poll(&p, 1, 0) == 0; i++)
		usleep(1000);
	ck_assert_msg(p.revents & POLLIN, "the toucher did not fault within 2 s");
	z.range = (struct uffdio_range){(uint64_t)(uintptr_t)(mmu.ram.host + 5 * PAGE), PAGE};
	ck_assert_int_eq(ioctl(mmu.uffd, UFFDIO_ZEROPAGE, &z), 0);
	ck_assert_uint_eq(fault_at(5 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(STAT(uffdio_eexist), 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	joined = pthread_timedjoin_np(t.thread, NULL, &until);
	if (joined) {
		struct uffdio_range r = {(uint64_t)(uintptr_t)(mmu.ram.host + 5 * PAGE), PAGE};

		ioctl(mmu.uffd, UFFDIO_WAKE, &r); /* let the thread end */
		pthread_join(t.thread, NULL);
	}
	ck_assert_msg(joined == 0, "the waiter slept on after an EEXIST install");
	ck_assert_int_eq(t.bad, 0);
	mmu_teardown();
}
END_TEST

/* Part of a fault-around window is there: fall back to the one page. */
START_TEST(partial_window_falls_back)
{
	mmu_setup(&(struct setup){.ram = 1 << 20, .around = 16});
	install_zero_outside(3 * PAGE);
	ck_assert_uint_eq(fault_at(8 * PAGE, FAULT_READ, FAULT_SRC_UFFD, NULL), FAULT_DONE);
	ck_assert_uint_eq(STAT(fallbacks), 1);
	ck_assert_uint_eq(STAT(uffdio_eexist), 1);
	ck_assert_uint_eq(resident(), 4); /* 0-2 before the sibling's page, then 8 alone */
	mmu_teardown();
}
END_TEST

/* ---- fault-ahead ------------------------------------------------------------------- */

/* A fault of vCPU @vcpu at page @page, served here, then its fault-ahead: pages installed ahead. */
static uint64_t fault_then_ahead(int vcpu, uint64_t page)
{
	struct fault_ctx ctx = {
		.mmu = &mmu,
		.gpa = page * PAGE,
		.hva = guest_ram__ptr(&mmu.ram, page * PAGE, PAGE),
		.access = FAULT_WRITE,
		.vcpu = vcpu,
		.flags = FAULT_FLAG_ALLOW_RETRY,
		.source = FAULT_SRC_UFFD,
	};

	ck_assert_uint_eq(mmu__handle_fault(&ctx), FAULT_DONE);
	return mmu__fault_ahead(&ctx);
}

/*
 * A stream proves sequential at its second fault; from then on each fault
 * at the end of what was installed installs twice as much ahead, up to
 * fault_ahead. Each vCPU has a stream of its own.
 */
START_TEST(fault_ahead_ramps_on_a_sequential_stream)
{
	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16, .ahead = 64});
	ck_assert_uint_eq(fault_then_ahead(0, 0), 0);	 /* [0, 16): a new stream */
	ck_assert_uint_eq(fault_then_ahead(1, 512), 0);	 /* vCPU 1: a stream of its own */
	ck_assert_uint_eq(fault_then_ahead(0, 16), 16);	 /* [16, 32), then [32, 48) ahead */
	ck_assert_uint_eq(fault_then_ahead(1, 528), 16); /* [528, 544), then 16 ahead */
	ck_assert_uint_eq(fault_then_ahead(0, 48), 32);	 /* [48, 64), then [64, 96) */
	ck_assert_uint_eq(fault_then_ahead(0, 96), 64);	 /* [96, 112), then [112, 176) */
	ck_assert_uint_eq(fault_then_ahead(0, 176), 64); /* capped at fault_ahead */
	ck_assert_uint_eq(resident(), 256 + 48);
	ck_assert_uint_eq(STAT(pages_ahead), 16 + 16 + 32 + 64 + 64);
	ck_assert_uint_eq(STAT(pages_installed), 256 + 48);
	/* Elsewhere: not sequential, nothing ahead, and the ramp starts again. */
	ck_assert_uint_eq(fault_then_ahead(0, 800), 0);
	ck_assert_uint_eq(fault_then_ahead(0, 816), 16);
	ck_assert_uint_eq(fault_then_ahead(-1, 900), 0); /* a thread that is no vCPU */
	ck_assert_uint_eq(fault_then_ahead(-1, 912), 16);
	ck_assert_int_eq(F.calls, 0);
	mmu_teardown();
}
END_TEST

/* Random faults install nothing ahead; neither does fault_ahead 0. */
START_TEST(fault_ahead_not_for_random_faults)
{
	static const uint64_t pages[] = {300, 17, 900, 512, 64, 700, 5, 1000};
	unsigned i;

	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16, .ahead = 64});
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		ck_assert_uint_eq(fault_then_ahead(0, pages[i]), 0);
	ck_assert_uint_eq(STAT(pages_ahead), 0);
	mmu_teardown();
	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16});
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(fault_then_ahead(0, i * 16), 0);
	ck_assert_uint_eq(resident(), 128);
	mmu_teardown();
}
END_TEST

/*
 * Ahead stops at a page already resident, and takes no budget that would
 * leave less than fault_ahead pages free: the guest's own faults still fit.
 */
START_TEST(fault_ahead_stops_at_resident_pages_and_spares_the_budget)
{
	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16, .ahead = 64});
	install_zero_outside(40 * PAGE); /* a sibling's page, inside [32, 48) */
	fault_then_ahead(0, 0);
	ck_assert_uint_eq(fault_then_ahead(0, 16), 8); /* [32, 40) */
	mmu_teardown();

	/* 100 pages of budget: after [0,16) and [16,32), 16 more would leave 52 < 64 free. */
	mmu_setup(&(struct setup){.ram = 4 << 20, .limit = 100 * PAGE, .around = 16, .ahead = 64});
	fault_then_ahead(0, 0);
	ck_assert_uint_eq(fault_then_ahead(0, 16), 0);
	ck_assert_uint_eq(resident(), 32);
	ck_assert_uint_eq(fault_then_ahead(0, 32), 0);
	ck_assert_uint_eq(resident(), 48);
	ck_assert_uint_eq(STAT(pages_ahead), 0);
	ck_assert_int_eq(F.calls, 0);
	mmu_teardown();
}
END_TEST

/* An install ahead that fails fails no fault and is not reported: the pages stay absent. */
START_TEST(fault_ahead_failure_is_silent)
{
	/* The third UFFDIO_ZEROPAGE is the first ahead. */
	ck_assert_int_eq(inject__init("UFFDIO_ZEROPAGE:EIO:2"), 0);
	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16, .ahead = 64});
	ck_assert_uint_eq(fault_then_ahead(0, 0), 0);
	ck_assert_uint_eq(fault_then_ahead(0, 16), 0);
	ck_assert_uint_eq(resident(), 32);
	ck_assert_int_eq(F.calls, 0);
	ck_assert_uint_eq(STAT(result_done), 2);
	ck_assert_uint_eq(fault_then_ahead(0, 32), 32); /* the stream goes on */
	mmu_teardown();
}
END_TEST

/*
 * Through the handler thread: a host thread writing 1024 pages in order
 * finds every page it wrote, and the engine installed some ahead of it.
 * The writer is paced: ahead yields to a queued fault, and on a loaded
 * machine an unpaced writer can fault again before every ahead starts.
 */
START_TEST(fault_ahead_serves_a_writer)
{
	struct toucher t = {.first = 0,
			    .count = 1024,
			    .write = true,
			    .value = 0x5a5a5a5a5a5a5a5aULL,
			    .pace = true};
	struct toucher r = {.first = 0, .count = 1024, .value = 0x5a5a5a5a5a5a5a5aULL};

	mmu_setup(&(struct setup){.ram = 4 << 20, .around = 16, .ahead = 256, .handlers = 1});
	touch(&t);
	touch(&r);
	quiesce();
	ck_assert_uint_eq(resident(), 1024);
	ck_assert_uint_eq(STAT(pages_installed), 1024);
	ck_assert_uint_gt(STAT(pages_ahead), 0);
	ck_assert_uint_lt(STAT(faults_uffd), 1024 / 16); /* fewer than fault-around alone */
	mmu_teardown();
}
END_TEST

/* ---- the guest-physical map ------------------------------------------------------------------ */

START_TEST(lookup_by_host_address)
{
	uint64_t gpa;

	mmu_setup(&(struct setup){.ram = 4ULL << 30});
	ck_assert(mmu__gpa_of_hva(&mmu, mmu.ram.host + 5, &gpa));
	ck_assert_uint_eq(gpa, 5);
	ck_assert(mmu__gpa_of_hva(&mmu, mmu.ram.host + (3ULL << 30), &gpa));
	ck_assert_uint_eq(gpa, 4ULL << 30); /* above the MMIO hole */
	ck_assert(!mmu__gpa_of_hva(&mmu, mmu.ram.host + (4ULL << 30), &gpa));
	ck_assert(!mmu__gpa_of_hva(&mmu, mmu.alias, &gpa));
	mmu_teardown();
}
END_TEST

/* ---- the baselines of faultline bench ------------------------------------------ */

/* The naive handler: one UFFDIO_COPY per fault, no fault-around, pages counted. */
START_TEST(naive_handler_one_page_per_fault)
{
	struct toucher t = {.first = 0, .count = 64, .write = true, .value = 11};
	struct toucher r = {.first = 0, .count = 64, .value = 11};

	mmu_setup(&(struct setup){
		.ram = 1 << 20, .around = 16, .handlers = 4, .handler = MMU_HANDLER_NAIVE});
	ck_assert_uint_eq(mmu.nr_handlers_started, 1);
	touch(&t);
	touch(&r);
	ck_assert_uint_eq(STAT(faults_uffd), 64);
	ck_assert_uint_eq(STAT(pages_installed), 64);
	ck_assert_uint_eq(STAT(uffdio_copy), 64);
	ck_assert_uint_eq(STAT(pages_around), 0);
	ck_assert_uint_eq(resident(), 64);
	mmu_teardown();
}
END_TEST

/* A naive install that fails goes through the engine, which reports what stays failed. */
START_TEST(naive_handler_failure_reaches_the_engine)
{
	struct toucher t = {.first = 0, .count = 2, .write = true, .value = 5};

	/* the rules before the handler thread starts: it reads them unlocked */
	ck_assert_int_eq(inject__init("naive.copy:EIO:0:1"), 0);
	mmu_setup(&(struct setup){
		.ram = 1 << 20, .handlers = 1, .retries = 2, .handler = MMU_HANDLER_NAIVE});
	touch(&t);
	ck_assert_uint_eq(STAT(faults_uffd), 2);
	ck_assert_uint_eq(STAT(uffdio_zeropage), 1); /* the engine served the first page */
	ck_assert_uint_eq(failed_snapshot()->calls, 0);

	mmu_teardown();
	/* the rules before the handler thread starts: it reads them unlocked */
	ck_assert_int_eq(inject__init("naive.copy:EIO:0:1,UFFDIO_ZEROPAGE:EIO:0:1"), 0);
	mmu_setup(&(struct setup){
		.ram = 1 << 20, .handlers = 1, .retries = 2, .handler = MMU_HANDLER_NAIVE});
	touch_start(&t);
	for (int i = 0; i < 2000 && !failed_snapshot()->calls; i++)
		usleep(1000);
	ck_assert_int_eq(failed_snapshot()->calls, 1);
	ck_assert_uint_eq(failed_snapshot()->result, FAULT_SIGBUS);
	ck_assert_str_eq(failed_snapshot()->why,
			 "the page could not be installed: Input/output error");
	install_zero_outside(0); /* the toucher still waits on page 0: let it go on */
	pthread_join(t.thread, NULL);
	settle();
	ck_assert_int_eq(t.bad, 0);
	ck_assert_uint_eq(STAT(faults_uffd), 2);
	mmu_teardown();
}
END_TEST

/* The kernel baseline: no userfaultfd at all; the kernel backs pages on touch. */
START_TEST(kernel_handler_has_no_userfaultfd)
{
	struct toucher t = {.first = 8, .count = 64, .write = true, .value = 9};
	uint64_t bytes;
	void *p;

	mmu_setup(&(struct setup){.ram = 1 << 20, .handlers = 2, .handler = MMU_HANDLER_KERNEL});
	ck_assert_int_eq(mmu.uffd, -1);
	ck_assert_ptr_eq(mmu.alias, mmu.ram.host);
	ck_assert_uint_eq(mmu.nr_handlers_started, 0);
	touch(&t);
	ck_assert_uint_eq(STAT(faults), 0);
	ck_assert_uint_eq(resident(), 64);
	ck_assert_int_eq(mmu__access(&mmu, 0, PAGE, &p), 0);
	ck_assert_ptr_eq(p, mmu.ram.host);
	ck_assert_int_eq(mmu__poison(&mmu, 0), -EOPNOTSUPP);
	ck_assert_int_eq(mmu__set_limit(&mmu, 128), -EOPNOTSUPP); /* no budget to set */
	/* a fault that reaches the engine (an MMIO exit in RAM) is populated */
	ck_assert_uint_eq(fault_at(200 * PAGE, FAULT_WRITE, FAULT_SRC_MMIO_EXIT, NULL), FAULT_DONE);
	ck_assert_uint_eq(resident(), 65);
	ck_assert_int_eq(mmu__prefault(&mmu), 0);
	ck_assert_uint_eq(resident(), 256);
	/* no memfd: the process's smaps tell what the host holds (vmm/sys/host_mem.h) */
	ck_assert_int_eq(mmu__host_bytes(&mmu, &bytes), -EOPNOTSUPP);
	mmu_teardown();
}
END_TEST

/* The baselines keep no budget, backing file or dedup: asking for one is an error. */
START_TEST(baselines_refuse_budget_and_backing)
{
	struct mmu_config cfg = {.ram_size = 1 << 20,
				 .mem_limit = 1 << 19,
				 .fault_around = 1,
				 .max_retries = 1,
				 .retry_ms = 1,
				 .handler = MMU_HANDLER_NAIVE};
	const struct mmu_ops ops = {0};

	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), -EINVAL);
	ck_assert_log(log_buf, "faultline: cannot set up guest RAM: the naive handler has no "
			       "budget, backing file or dedup\n");
	mmu__exit(&mmu);
	cfg.mem_limit = 0;
	cfg.dedup = true;
	cfg.handler = MMU_HANDLER_KERNEL;
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), -EINVAL);
	ck_assert_log(log_buf, "faultline: cannot set up guest RAM: the kernel handler has no "
			       "budget, backing file or dedup\n");
	mmu__exit(&mmu);
	log__capture(NULL, 0);
}
END_TEST

Suite *mmu_suite(void)
{
	Suite *s = suite_create("mmu");
	TCase *tc;

	tc = tcase_create("results");
	tcase_add_test(tc, errno_mapping);
	suite_add_tcase(s, tc);

	tc = tcase_create("lazy");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, zero_fill_on_touch);
	tcase_add_test(tc, host_bytes_are_the_memfds_pages);
	tcase_add_test(tc, fault_around_window);
	tcase_add_test(tc, writes_reach_the_alias);
	tcase_add_test(tc, file_backing_read_lazily);
	tcase_add_test(tc, threads_race_for_the_same_pages);
	tcase_add_test(tc, spin_then_poll);
	tcase_add_test(tc, eexist_is_done);
	tcase_add_test(tc, eexist_wakes_the_waiter);
	tcase_add_test(tc, partial_window_falls_back);
	tcase_add_test(tc, lookup_by_host_address);
	suite_add_tcase(s, tc);

	tc = tcase_create("baselines");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, naive_handler_one_page_per_fault);
	tcase_add_test(tc, naive_handler_failure_reaches_the_engine);
	tcase_add_test(tc, kernel_handler_has_no_userfaultfd);
	tcase_add_test(tc, baselines_refuse_budget_and_backing);
	suite_add_tcase(s, tc);

	tc = tcase_create("ahead");
	tcase_add_test(tc, fault_ahead_ramps_on_a_sequential_stream);
	tcase_add_test(tc, fault_ahead_not_for_random_faults);
	tcase_add_test(tc, fault_ahead_stops_at_resident_pages_and_spares_the_budget);
	tcase_add_test(tc, fault_ahead_failure_is_silent);
	tcase_add_test(tc, fault_ahead_serves_a_writer);
	suite_add_tcase(s, tc);

	mmu_budget_tcases(s);
	mmu_failure_tcases(s);
	mmu_prefetch_tcases(s);
	return s;
}
