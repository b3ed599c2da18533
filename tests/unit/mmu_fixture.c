/* The fault engine's unit-test fixture (mmu_fixture.h). */
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

struct mmu mmu;
char log_buf[1024];
pthread_mutex_t failed_lock = PTHREAD_MUTEX_INITIALIZER;
struct failed_rec failed;
static struct failed_rec failed_copy;
pthread_cond_t failed_cond = PTHREAD_COND_INITIALIZER;

const struct failed_rec *failed_snapshot(void)
{
	pthread_mutex_lock(&failed_lock);
	failed_copy = failed;
	pthread_mutex_unlock(&failed_lock);
	return &failed_copy;
}

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

void mmu_setup(const struct setup *s)
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
		.track_writes = s->track,
		.share = s->share,
	};
	const struct mmu_ops ops = {.fault_failed = on_fault_failed};

	memset(&failed, 0, sizeof(failed));
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(mmu__init(&mmu, &cfg, &ops), 0);
	if (s->handlers)
		ck_assert_int_eq(mmu__start(&mmu), 0);
}

uint64_t resident(void)
{
	struct mmu_pages p;

	mmu__pages(&mmu, &p);
	return p.resident;
}

/* A fault as a vCPU's would arrive, served on this thread. */
fault_t fault_at(uint64_t gpa, enum fault_access access, enum fault_source source,
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
void install_zero_outside(uint64_t gpa)
{
	struct uffdio_zeropage z = {
		.range = {.start = (uint64_t)(uintptr_t)(mmu.ram.host + gpa), .len = PAGE},
	};

	ck_assert_int_eq(ioctl(mmu.uffd, UFFDIO_ZEROPAGE, &z), 0);
}

/* ---- host threads touching guest RAM ---------------------------------------- */

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

void touch_start(struct toucher *t)
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
void settle(void)
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
void quiesce(void)
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

void touch(struct toucher *t)
{
	touch_start(t);
	pthread_join(t->thread, NULL);
	settle();
	ck_assert_int_eq(t->sigbus_code, 0);
	ck_assert_int_eq(t->bad, 0);
}

/* A backing file of @size random-looking bytes; returns its path, fills *data. */
const char *make_file(uint64_t size, uint8_t **data)
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

void mmu_teardown(void)
{
	char path[64];

	mmu__exit(&mmu);
	snprintf(path, sizeof(path), "/tmp/faultline-mmu-%d", getpid());
	unlink(path);
	ck_assert_int_eq(inject__init(NULL), 0);
}
