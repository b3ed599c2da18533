/*
 * The fault engine without KVM: host threads touch userfaultfd-registered
 * guest RAM the way vCPUs do, and the tests call mmu__handle_fault()
 * directly for the results a blocked thread could not report. Needs
 * userfaultfd for kernel faults (root, or vm.unprivileged_userfaultfd=1).
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

#define PAGE MMU_PAGE_SIZE

static struct mmu mmu;
static char log_buf[1024];

/*
 * What the owner's fault_failed() saw, and what it should do; written by
 * handler threads under failed_lock, read through F (a locked snapshot).
 */
static pthread_mutex_t failed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct failed_rec {
	int calls;
	fault_t result;
	enum fault_source source;
	uint64_t gpa;
	int err;
	char why[256];
	bool poison; /* poison the page, as --on-oom mce does */
	/* --on-oom pause: the owner refaults this many times, raising the budget to raise_to */
	int refaults;
	uint64_t raise_to;
	bool hold; /* wait until released (the VM paused until the operator resumes it) */
} failed, failed_copy;

static pthread_cond_t failed_cond = PTHREAD_COND_INITIALIZER;

static const struct failed_rec *failed_snapshot(void)
{
	pthread_mutex_lock(&failed_lock);
	failed_copy = failed;
	pthread_mutex_unlock(&failed_lock);
	return &failed_copy;
}

#define F (*failed_snapshot())

/* A counter of the engine's, read while its threads may update it. */
#define STAT(name) __atomic_load_n(&mmu.stats.name, __ATOMIC_RELAXED)

static void on_fault_failed(void *owner, struct fault_ctx *ctx, fault_t result, const char *why)
{
	(void)owner;
	pthread_mutex_lock(&failed_lock);
	failed.calls++;
	failed.result = result;
	failed.source = ctx->source;
	failed.gpa = ctx->gpa;
	failed.err = ctx->err;
	snprintf(failed.why, sizeof(failed.why), "%s", why);
	if (failed.poison && (result & FAULT_OOM))
		ck_assert_int_eq(mmu__poison(&mmu, ctx->gpa), 0);
	pthread_cond_broadcast(&failed_cond);
	while (failed.hold)
		pthread_cond_wait(&failed_cond, &failed_lock);
	if (failed.refaults > 0 && (result & FAULT_OOM)) {
		failed.refaults--;
		if (failed.raise_to)
			ck_assert_int_eq(mmu__set_limit(&mmu, failed.raise_to), 0);
		ctx->refault = true;
	}
	pthread_mutex_unlock(&failed_lock);
}

struct setup {
	uint64_t ram;
	uint64_t limit;
	const char *file;
	unsigned around;
	unsigned handlers;
	unsigned retries;
	unsigned retry_ms;
	unsigned spin_us;
	enum mmu_handler handler;
	unsigned ahead;
};

static void mmu_setup(const struct setup *s)
{
	const struct mmu_config cfg = {
		.ram_size = s->ram,
		.mem_limit = s->limit,
		.backing_file = s->file,
		.fault_around = s->around ? s->around : 1,
		.max_retries = s->retries ? s->retries : 8,
		.retry_ms = s->retry_ms ? s->retry_ms : 2000,
		.nr_handlers = s->handlers,
		.spin_us = s->spin_us,
		.handler = s->handler,
		.fault_ahead = s->ahead,
	};
	const struct mmu_ops ops = {.fault_failed = on_fault_failed};

	memset(&failed, 0, sizeof(failed));
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), 0);
	if (s->handlers)
		ck_assert_int_eq(mmu__start(&mmu), 0);
}

static uint64_t resident(void)
{
	struct mmu_pages p;

	mmu__pages(&mmu, &p);
	return p.resident;
}

/* A fault as a vCPU's would arrive, served on this thread. */
static fault_t fault_at(uint64_t gpa, enum fault_access access, enum fault_source source,
			struct fault_ctx *out)
{
	struct fault_ctx ctx = {
		.mmu = &mmu,
		.gpa = gpa,
		.hva = guest_ram__ptr(&mmu.ram, gpa, PAGE),
		.access = access,
		.vcpu = 0,
		.flags = FAULT_FLAG_ALLOW_RETRY,
		.source = source,
	};
	fault_t r;

	ck_assert_ptr_nonnull(ctx.hva);
	r = mmu__handle_fault(&ctx);
	if (out)
		*out = ctx;
	return r;
}

/* Install a page behind the engine's back, as a sibling would. */
static void install_zero_outside(uint64_t gpa)
{
	struct uffdio_zeropage z = {
		.range = {.start = (uint64_t)(uintptr_t)(mmu.ram.host + gpa), .len = PAGE},
	};

	ck_assert_int_eq(ioctl(mmu.uffd, UFFDIO_ZEROPAGE, &z), 0);
}

/* ---- host threads touching guest RAM ---------------------------------------- */

struct toucher {
	uint64_t first, count, stride; /* pages */
	bool write;
	uint64_t value;	       /* written to / expected in every word (read: 0 unless check_file) */
	const uint8_t *expect; /* when set: the bytes every page must hold (indexed by GPA) */
	bool pace;	       /* after each page, wait until no handler is in service */
	pthread_t thread;
	int bad;	 /* words that did not hold what was expected */
	int sigbus_code; /* si_code of a SIGBUS that ended the walk, 0 if none */
	uintptr_t sigbus_addr;
};

/* volatile: the signal handler reads it; stores to it must not be elided. */
static __thread sigjmp_buf *volatile touch_jmp;
static __thread siginfo_t touch_si;

static void touch_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!touch_jmp) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	touch_si = *si;
	siglongjmp(*touch_jmp, 1);
}

/*
 * Wait, up to 2 s, until no handler serves an event. A paced toucher
 * faults only into an idle handler, so what the handler does after the
 * install (fault-ahead) never yields to it, however the threads are
 * scheduled.
 */
static void touch_pace(void)
{
	int i;

	for (i = 0; i < 200000 && __atomic_load_n(&mmu.in_flight, __ATOMIC_ACQUIRE); i++)
		usleep(10);
}

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;
	sigjmp_buf jb;
	uint64_t i, k;

	if (sigsetjmp(jb, 1)) {
		touch_jmp = NULL;
		t->sigbus_code = touch_si.si_code;
		t->sigbus_addr = (uintptr_t)touch_si.si_addr;
		return NULL;
	}
	touch_jmp = &jb;
	for (i = 0; i < t->count; i++) {
		uint64_t gpa = (t->first + i * (t->stride ? t->stride : 1)) * PAGE;
		volatile uint64_t *w = (volatile uint64_t *)(mmu.ram.host + gpa);

		for (k = 0; k < PAGE / 8; k++) {
			uint64_t want = t->value;

			if (t->expect)
				memcpy(&want, t->expect + gpa + k * 8, 8);
			if (t->write)
				w[k] = t->value;
			else if (w[k] != want)
				t->bad++;
		}
		if (t->pace)
			touch_pace();
	}
	touch_jmp = NULL;
	return NULL;
}

static void touch_start(struct toucher *t)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = touch_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	ck_assert_int_eq(pthread_create(&t->thread, NULL, touch_thread, t), 0);
}

/*
 * Wait until no event read from the userfaultfd is in service: a toucher
 * runs on as soon as its page is installed, before the handler counts what
 * it did.
 */
static void settle(void)
{
	int i;

	for (i = 0; i < 2000 && __atomic_load_n(&mmu.in_flight, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	ck_assert_msg(!__atomic_load_n(&mmu.in_flight, __ATOMIC_ACQUIRE),
		      "fault events still in service after 2 s");
}

/*
 * After every toucher has ended, wait until the handlers have read every
 * queued event and served it, then stop them: a second fault on a page that
 * a sibling's event already resolved may still sit in the queue when
 * settle() sees no event in service, and a stop ends the retries of an
 * event still in service (a CI run saw faults one above result_done). A
 * handler counts itself in service before it reads, so the queue seen empty
 * and then no handler in service means all is served (mmu.h, in_flight):
 * the counters are final afterwards. Twice, 1 ms apart, costs nothing.
 */
static void quiesce(void)
{
	struct pollfd p = {.fd = mmu.uffd, .events = POLLIN};
	int i, idle = 0;

	for (i = 0; i < 2000 && idle < 2; i++) {
		bool busy = poll(&p, 1, 0) > 0 || __atomic_load_n(&mmu.in_flight, __ATOMIC_ACQUIRE);

		idle = busy ? 0 : idle + 1;
		usleep(1000);
	}
	ck_assert_msg(idle == 2, "fault events still queued or in service after 2 s");
	mmu__stop(&mmu);
}

static void touch(struct toucher *t)
{
	touch_start(t);
	pthread_join(t->thread, NULL);
	settle();
	ck_assert_int_eq(t->sigbus_code, 0);
	ck_assert_int_eq(t->bad, 0);
}

/* A backing file of @size random-looking bytes; returns its path, fills *data. */
static const char *make_file(uint64_t size, uint8_t **data)
{
	static char path[64];
	uint64_t i, x = 0x9e3779b97f4a7c15ULL;
	int fd;

	snprintf(path, sizeof(path), "/tmp/faultline-mmu-%d", getpid());
	*data = calloc(1, size + 64 * PAGE);
	ck_assert_ptr_nonnull(*data);
	for (i = 0; i < size; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		(*data)[i] = (uint8_t)x;
	}
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, *data, size), (ssize_t)size);
	close(fd);
	return path;
}

static void mmu_teardown(void)
{
	char path[64];

	mmu__exit(&mmu);
	snprintf(path, sizeof(path), "/tmp/faultline-mmu-%d", getpid());
	unlink(path);
	ck_assert_int_eq(inject__init(NULL), 0);
}

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
		ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), -EINVAL);
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
	ck_assert(bit_test(mmu.dirty, 2));
	ck_assert_int_eq(mmu__discard(&mmu, 2 * PAGE, PAGE, &dropped, &kept), 0);
	ck_assert_uint_eq(dropped, 1);
	ck_assert(!bit_test(mmu.dirty, 2));
	touch(&rd);
	ck_assert(!bit_test(mmu.dirty, 2));
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
	tcase_add_test(tc, reclaim_keeps_file_reads_within_budget);
	tcase_add_test(tc, dirty_pages_are_never_reclaimed);
	tcase_add_test(tc, write_fault_installs_dirty);
	tcase_add_test(tc, monitor_access_pins);
	tcase_add_test(tc, no_reclaim_without_write_protect);
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
	return s;
}
