/*
 * The BAR engine (mmu/bar.c) with a fake mapper and fake devices: each
 * nopage answer, zap and its race with faulting threads, the REFAULT
 * bound, running out of memory slots, and the two devices (shm, vram).
 * The counters are the oracle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "devices/bar/shm.h"
#include "devices/bar/vram.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/bar.h"
#include "tests/unit/unit.h"

#define PG     BAR_PAGE_SIZE
#define NPAGES 8

/* ---- the fake mapper: a bounded number of slots ---------------------------------- */

struct fake_mapper {
	int slots;   /* slots it has; -1: unlimited */
	int map_err; /* when set, map fails with it */
	int used;    /* atomic */
	int maps;    /* atomic */
	int unmaps;  /* atomic */
	bool stopping;
};

static int fake_map(void *owner, uint64_t gpa, uint8_t *host)
{
	struct fake_mapper *m = owner;

	(void)gpa, (void)host;
	if (m->map_err)
		return -m->map_err;
	if (m->slots >= 0 && __atomic_load_n(&m->used, __ATOMIC_ACQUIRE) >= m->slots)
		return -ENOSPC;
	__atomic_add_fetch(&m->used, 1, __ATOMIC_ACQ_REL);
	return __atomic_add_fetch(&m->maps, 1, __ATOMIC_ACQ_REL);
}

static int fake_unmap(void *owner, int handle, uint64_t gpa)
{
	struct fake_mapper *m = owner;

	(void)handle, (void)gpa;
	__atomic_sub_fetch(&m->used, 1, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&m->unmaps, 1, __ATOMIC_ACQ_REL);
	return 0;
}

static bool fake_stopping(void *owner)
{
	return ((struct fake_mapper *)owner)->stopping;
}

/* ---- the fake device: a scripted answer per page ---------------------------------- */

struct fake_dev {
	uint8_t *mem;		   /* NPAGES pages */
	fault_t answer[NPAGES];	   /* what nopage says */
	unsigned refaults[NPAGES]; /* REFAULT this many times first */
	int nopage_calls;	   /* atomic */
	int tried_seen;
	int err;	 /* ctx->err to report with SIGBUS/OOM */
	bool map_itself; /* map the page with bar__map(), then REFAULT */
	uint32_t reg;
	int reg_err;
};

static struct fake_mapper mapper;
static struct fake_dev dev;
static struct bar bar;
static char why[256];

static fault_t fake_nopage(struct bar *b, uint64_t pg, struct fault_ctx *ctx, uint8_t **page)
{
	struct fake_dev *d = b->priv;

	__atomic_add_fetch(&d->nopage_calls, 1, __ATOMIC_ACQ_REL);
	if (ctx->flags & FAULT_FLAG_TRIED)
		d->tried_seen++;
	if (d->refaults[pg]) {
		d->refaults[pg]--;
		return FAULT_RETRY;
	}
	if (d->map_itself) {
		ck_assert_int_eq(bar__map(b, pg, d->mem + pg * PG), 0);
		ck_assert_int_eq(bar__map(b, pg, d->mem + pg * PG), -EEXIST);
		d->map_itself = false;
		return FAULT_RETRY;
	}
	if (d->answer[pg] & (FAULT_SIGBUS | FAULT_OOM))
		ctx->err = d->err;
	*page = d->mem + pg * PG;
	return d->answer[pg];
}

static int fake_reg_read(struct bar *b, uint64_t off, void *data, unsigned len)
{
	struct fake_dev *d = b->priv;

	(void)off;
	memcpy(data, &d->reg, len < 4 ? len : 4);
	return -d->reg_err;
}

static int fake_reg_write(struct bar *b, uint64_t off, const void *data, unsigned len)
{
	struct fake_dev *d = b->priv;

	(void)off;
	if (d->reg_err)
		return -d->reg_err;
	d->reg = 0;
	memcpy(&d->reg, data, len < 4 ? len : 4);
	return 0;
}

static const struct bar_ops fake_ops = {fake_nopage, fake_reg_read, fake_reg_write};

static void setup(int slots, unsigned retries, unsigned retry_ms)
{
	const struct bar_mapper m = {fake_map, fake_unmap, fake_stopping, &mapper};
	unsigned i;

	memset(&mapper, 0, sizeof(mapper));
	mapper.slots = slots;
	memset(&dev, 0, sizeof(dev));
	dev.mem =
		mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(dev.mem, MAP_FAILED);
	for (i = 0; i < NPAGES; i++)
		dev.answer[i] = FAULT_DONE;
	ck_assert_int_eq(bar__init(&bar, "fake", 0xd0000000, NPAGES * PG, &fake_ops, &dev, &m,
				   retries, retry_ms),
			 0);
}

static void teardown(void)
{
	bar__exit(&bar);
	munmap(dev.mem, NPAGES * PG);
	ck_assert_int_eq(inject__init(NULL), 0);
}

static fault_t bar_rw(uint64_t off, void *data, unsigned len, bool write, struct fault_ctx *ctx)
{
	struct fault_ctx local = {.vcpu = 0, .flags = FAULT_FLAG_ALLOW_RETRY};

	return bar__access(&bar, ctx ? ctx : &local, off, data, len, write, why, sizeof(why));
}

#define BSTAT(name) __atomic_load_n(&bar.stats.name, __ATOMIC_RELAXED)

/* ---- nopage answers ---------------------------------------------------------------- */

START_TEST(page_is_mapped_once)
{
	uint64_t v = 0x1122334455667788ULL, r = 0;

	setup(-1, 8, 1000);
	ck_assert_uint_eq(bar_rw(2 * PG + 8, &v, 8, true, NULL), FAULT_DONE);
	ck_assert_uint_eq(*(uint64_t *)(dev.mem + 2 * PG + 8), v);
	ck_assert_uint_eq(bar_rw(2 * PG + 8, &r, 8, false, NULL), FAULT_DONE);
	ck_assert_uint_eq(r, v);
	ck_assert_int_eq(dev.nopage_calls, 1);
	ck_assert_uint_eq(BSTAT(nopage_page), 1);
	ck_assert_uint_eq(BSTAT(maps), 1);
	ck_assert_uint_eq(BSTAT(exits), 2);
	ck_assert_int_eq(mapper.used, 1);
	teardown();
	ck_assert_int_eq(mapper.used, 0); /* bar__exit unmapped it */
}
END_TEST

START_TEST(nonram_traps_every_access)
{
	uint32_t v = 7, r = 0;

	setup(-1, 8, 1000);
	dev.answer[0] = FAULT_MMIO;
	ck_assert_uint_eq(bar_rw(0x10, &v, 4, true, NULL), FAULT_DONE);
	ck_assert_uint_eq(bar_rw(0x10, &r, 4, false, NULL), FAULT_DONE);
	ck_assert_uint_eq(r, 7);
	ck_assert_int_eq(dev.nopage_calls, 1);
	ck_assert_uint_eq(BSTAT(nopage_nonram), 1);
	ck_assert_uint_eq(BSTAT(traps), 2);
	ck_assert_uint_eq(BSTAT(maps), 0);
	/* A register the device rejects: MMIO, with the reason. */
	dev.reg_err = EINVAL;
	ck_assert_uint_eq(bar_rw(0x10, &v, 4, true, NULL), FAULT_MMIO);
	ck_assert_str_eq(why, "register write at offset 0x10 (4 bytes) rejected by device fake: "
			      "Invalid argument");
	teardown();
}
END_TEST

START_TEST(refault_then_page)
{
	struct fault_ctx ctx = {.flags = FAULT_FLAG_ALLOW_RETRY};
	uint8_t v = 0x5a;

	setup(-1, 8, 1000);
	dev.refaults[3] = 2;
	ck_assert_uint_eq(bar_rw(3 * PG + 1, &v, 1, true, &ctx), FAULT_DONE);
	ck_assert_uint_eq(dev.mem[3 * PG + 1], 0x5a);
	ck_assert_int_eq(dev.nopage_calls, 3);
	ck_assert_int_eq(dev.tried_seen, 2);
	ck_assert_uint_eq(ctx.attempt, 2);
	ck_assert_uint_eq(BSTAT(nopage_refault), 2);
	ck_assert_uint_eq(BSTAT(nopage_page), 1);
	teardown();
}
END_TEST

/* A handler that answers REFAULT forever: bounded in attempts, with the reason. */
START_TEST(refault_forever_is_bounded)
{
	char want[128];
	uint8_t v;

	setup(-1, 5, 60000);
	dev.refaults[1] = ~0u;
	ck_assert_uint_eq(bar_rw(PG, &v, 1, false, NULL), FAULT_RETRY);
	ck_assert_int_eq(dev.nopage_calls, 5);
	ck_assert_uint_eq(BSTAT(refault_exhausted), 1);
	snprintf(want, sizeof(want),
		 "device fake still answered REFAULT for offset 0x1000 after 5 attempts in ");
	ck_assert_int_eq(strncmp(why, want, strlen(want)), 0);
	teardown();
}
END_TEST

/* ... and in time. */
START_TEST(refault_time_bound)
{
	struct timespec a, b;
	uint8_t v;
	long ms;

	setup(-1, 1000000, 30);
	dev.refaults[1] = ~0u;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_uint_eq(bar_rw(PG, &v, 1, false, NULL), FAULT_RETRY);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 30);
	ck_assert_int_lt(ms, 5000);
	ck_assert_int_lt(dev.nopage_calls, 1000000);
	teardown();
}
END_TEST

/* ... and it ends at once when the VM is stopping. */
START_TEST(refault_ends_when_stopping)
{
	uint8_t v;

	setup(-1, 1000, 60000);
	dev.refaults[1] = ~0u;
	mapper.stopping = true;
	ck_assert_uint_eq(bar_rw(PG, &v, 1, false, NULL), FAULT_RETRY);
	ck_assert_int_eq(dev.nopage_calls, 1);
	teardown();
}
END_TEST

START_TEST(sigbus_and_oom)
{
	struct fault_ctx ctx = {.flags = FAULT_FLAG_ALLOW_RETRY};
	uint8_t v = 0;

	setup(-1, 8, 1000);
	dev.answer[2] = FAULT_SIGBUS;
	dev.answer[4] = FAULT_OOM;
	dev.err = ENXIO;
	ck_assert_uint_eq(bar_rw(2 * PG, &v, 1, false, &ctx), FAULT_SIGBUS);
	ck_assert_str_eq(why, "device fake answered SIGBUS for offset 0x2000: No such device or "
			      "address");
	ck_assert_uint_eq(ctx.gpa, 0xd0002000);
	dev.err = ENOMEM;
	ck_assert_uint_eq(bar_rw(4 * PG + 5, &v, 1, true, &ctx), FAULT_OOM);
	ck_assert_int_eq(ctx.err, ENOMEM);
	ck_assert_str_eq(why, "device fake answered OOM for offset 0x4000: Cannot allocate memory");
	ck_assert_uint_eq(BSTAT(nopage_sigbus), 1);
	ck_assert_uint_eq(BSTAT(nopage_oom), 1);
	ck_assert_uint_eq(BSTAT(maps), 0);
	/* Nothing stuck: the next access asks again. */
	dev.answer[2] = FAULT_DONE;
	ck_assert_uint_eq(bar_rw(2 * PG, &v, 1, false, &ctx), FAULT_DONE);
	teardown();
}
END_TEST

/* PAGE without a page is a device bug, not a crash. */
START_TEST(page_without_a_page)
{
	uint8_t v;

	setup(-1, 8, 1000);
	dev.answer[0] = FAULT_DONE;
	dev.mem += 1; /* unaligned */
	ck_assert_uint_eq(bar_rw(0, &v, 1, false, NULL), FAULT_SIGBUS);
	ck_assert_str_eq(why, "device fake gave no usable answer for offset 0x0 (PAGE needs an "
			      "aligned page)");
	dev.mem -= 1;
	dev.answer[1] = 0; /* no answer at all */
	ck_assert_uint_eq(bar_rw(PG, &v, 1, false, NULL), FAULT_SIGBUS);
	teardown();
}
END_TEST

/* The handler maps the page itself and answers REFAULT: the next look finds it mapped. */
START_TEST(handler_maps_itself)
{
	uint16_t v = 0xbeef;

	setup(-1, 8, 1000);
	dev.map_itself = true;
	ck_assert_uint_eq(bar_rw(5 * PG + 2, &v, 2, true, NULL), FAULT_DONE);
	ck_assert_int_eq(dev.nopage_calls, 1);
	ck_assert_uint_eq(*(uint16_t *)(dev.mem + 5 * PG + 2), 0xbeef);
	ck_assert_uint_eq(BSTAT(maps), 1);
	ck_assert_int_eq(bar__map(&bar, NPAGES, dev.mem), -ERANGE);
	teardown();
}
END_TEST

START_TEST(access_checks)
{
	uint64_t v = 0x0102030405060708ULL;

	setup(-1, 8, 1000);
	/* Straddling two pages: each half lands on its own page. */
	ck_assert_uint_eq(bar_rw(PG - 4, &v, 8, true, NULL), FAULT_DONE);
	ck_assert_uint_eq(*(uint32_t *)(dev.mem + PG - 4), 0x05060708);
	ck_assert_uint_eq(*(uint32_t *)(dev.mem + PG), 0x01020304);
	ck_assert_uint_eq(BSTAT(maps), 2);
	/* Outside the BAR, or a bad length. */
	ck_assert_uint_eq(bar_rw(NPAGES * PG - 4, &v, 8, false, NULL), FAULT_SIGBUS);
	ck_assert_str_eq(why, "access of 8 bytes at offset 0x7ffc outside device fake");
	ck_assert_uint_eq(bar_rw(0, &v, 0, false, NULL), FAULT_SIGBUS);
	ck_assert_uint_eq(bar_rw(0, &v, 16, false, NULL), FAULT_SIGBUS);
	teardown();
}
END_TEST

START_TEST(bad_init)
{
	const struct bar_mapper m = {fake_map, fake_unmap, NULL, &mapper};
	struct bar b;

	ck_assert_int_eq(bar__init(&b, "x", 0x1000, 0, &fake_ops, NULL, &m, 1, 1), -EINVAL);
	ck_assert_int_eq(bar__init(&b, "x", 0x1001, PG, &fake_ops, NULL, &m, 1, 1), -EINVAL);
	ck_assert_int_eq(bar__init(&b, "x", 0x1000, PG + 1, &fake_ops, NULL, &m, 1, 1), -EINVAL);
	ck_assert_int_eq(bar__init(&b, "x", 0x1000, PG, &fake_ops, NULL, &m, 0, 1), -EINVAL);
	ck_assert_int_eq(bar__init(&b, "x", 0x1000, BAR_MAX_SIZE + PG, &fake_ops, NULL, &m, 1, 1),
			 -EINVAL);
	ck_assert_int_eq(bar__init(&b, "x", ~0ULL & ~(PG - 1), 2 * PG, &fake_ops, NULL, &m, 1, 1),
			 -EINVAL);
}
END_TEST

/* ---- zap ----------------------------------------------------------------------------- */

START_TEST(zap_refaults_into_nopage)
{
	uint32_t v = 1;

	setup(-1, 8, 1000);
	dev.answer[7] = FAULT_MMIO;
	ck_assert_uint_eq(bar_rw(0, &v, 4, true, NULL), FAULT_DONE);
	ck_assert_uint_eq(bar_rw(7 * PG, &v, 4, true, NULL), FAULT_DONE);
	ck_assert_int_eq(dev.nopage_calls, 2);
	ck_assert_int_eq(bar__zap(&bar, 0, NPAGES), 0);
	ck_assert_int_eq(mapper.unmaps, 1);
	ck_assert_int_eq(mapper.used, 0);
	ck_assert_uint_eq(BSTAT(zaps), 2);
	ck_assert_uint_eq(bar_rw(0, &v, 4, false, NULL), FAULT_DONE);
	ck_assert_uint_eq(bar_rw(7 * PG, &v, 4, false, NULL), FAULT_DONE);
	ck_assert_int_eq(dev.nopage_calls, 4);
	ck_assert_int_eq(bar__zap(&bar, 1, NPAGES), -ERANGE);
	ck_assert_int_eq(bar__zap(&bar, NPAGES + 1, 0), -ERANGE);
	teardown();
}
END_TEST

/*
 * Zap while other threads fault: a device that moves each page between two
 * buffers (zap, copy, switch) while writers keep storing counters through
 * the BAR. No store may be lost: at the end every word holds its writer's
 * last value, in the buffer the page lives in now.
 */
static pthread_mutex_t mover_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *bufs[2];
static int cur[NPAGES];
static volatile int movers_done;

static fault_t mover_nopage(struct bar *b, uint64_t pg, struct fault_ctx *ctx, uint8_t **page)
{
	(void)b, (void)ctx;
	pthread_mutex_lock(&mover_lock);
	*page = bufs[cur[pg]] + pg * PG;
	pthread_mutex_unlock(&mover_lock);
	return FAULT_DONE;
}

static const struct bar_ops mover_ops = {.nopage = mover_nopage};

static void *mover_thread(void *arg)
{
	int i, pg;

	(void)arg;
	for (i = 0; i < 3000; i++) {
		pg = i % NPAGES;
		pthread_mutex_lock(&mover_lock);
		ck_assert_int_eq(bar__zap(&bar, (uint64_t)pg, 1), 0);
		memcpy(bufs[!cur[pg]] + pg * PG, bufs[cur[pg]] + pg * PG, PG);
		memset(bufs[cur[pg]] + pg * PG, 0xee, PG); /* a stale answer would show */
		cur[pg] = !cur[pg];
		pthread_mutex_unlock(&mover_lock);
	}
	__atomic_store_n(&movers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *writer_thread(void *arg)
{
	uint64_t id = (uintptr_t)arg, n, off;
	unsigned pg;
	struct fault_ctx ctx;
	char msg[256];

	for (n = 1; !__atomic_load_n(&movers_done, __ATOMIC_ACQUIRE) || n < 2000; n++)
		for (pg = 0; pg < NPAGES; pg++) {
			off = pg * PG + id * 8;
			ctx = (struct fault_ctx){.flags = FAULT_FLAG_ALLOW_RETRY};
			ck_assert_msg(bar__access(&bar, &ctx, off, &n, 8, true, msg, sizeof(msg)) ==
					      FAULT_DONE,
				      "writer %llu: %s", (unsigned long long)id, msg);
		}
	return (void *)(uintptr_t)(n - 1);
}

START_TEST(zap_while_threads_fault)
{
	const struct bar_mapper m = {fake_map, fake_unmap, NULL, &mapper};
	pthread_t mover, writers[4];
	uint64_t last[4], w;
	void *ret;
	unsigned i, pg;

	memset(&mapper, 0, sizeof(mapper));
	mapper.slots = -1;
	movers_done = 0;
	memset(cur, 0, sizeof(cur));
	for (i = 0; i < 2; i++)
		bufs[i] = aligned_alloc(PG, NPAGES * PG), memset(bufs[i], 0, NPAGES * PG);
	ck_assert_int_eq(bar__init(&bar, "mover", 0xe0000000, NPAGES * PG, &mover_ops, NULL, &m,
				   1000, 10000),
			 0);
	for (i = 0; i < 4; i++)
		pthread_create(&writers[i], NULL, writer_thread, (void *)(uintptr_t)i);
	pthread_create(&mover, NULL, mover_thread, NULL);
	pthread_join(mover, NULL);
	for (i = 0; i < 4; i++) {
		pthread_join(writers[i], &ret);
		last[i] = (uintptr_t)ret;
	}
	for (pg = 0; pg < NPAGES; pg++)
		for (i = 0; i < 4; i++) {
			memcpy(&w, bufs[cur[pg]] + pg * PG + i * 8, 8);
			ck_assert_uint_eq(w, last[i]);
		}
	ck_assert_uint_ge(BSTAT(zaps), 1);
	bar__exit(&bar);
	ck_assert_int_eq(mapper.used, 0);
	free(bufs[0]);
	free(bufs[1]);
}
END_TEST

/* ---- memory slots ---------------------------------------------------------------- */

START_TEST(out_of_slots_evicts_own_mapping)
{
	uint64_t v, pg;

	setup(2, 8, 1000);
	for (pg = 0; pg < 4; pg++) {
		v = pg + 100;
		ck_assert_uint_eq(bar_rw(pg * PG, &v, 8, true, NULL), FAULT_DONE);
	}
	ck_assert_uint_eq(BSTAT(maps), 4);
	ck_assert_uint_eq(BSTAT(evictions), 2);
	ck_assert_int_eq(mapper.used, 2);
	for (pg = 0; pg < 4; pg++) {
		ck_assert_uint_eq(bar_rw(pg * PG, &v, 8, false, NULL), FAULT_DONE);
		ck_assert_uint_eq(v, pg + 100);
	}
	teardown();
}
END_TEST

START_TEST(no_slot_at_all_still_serves)
{
	uint64_t v = 42;

	setup(0, 8, 1000);
	ck_assert_uint_eq(bar_rw(PG, &v, 8, true, NULL), FAULT_DONE);
	ck_assert_uint_eq(bar_rw(PG, &v, 8, false, NULL), FAULT_DONE);
	ck_assert_uint_eq(v, 42);
	ck_assert_uint_eq(*(uint64_t *)(dev.mem + PG), 42);
	ck_assert_uint_eq(BSTAT(unmapped_accesses), 2);
	ck_assert_uint_eq(BSTAT(maps), 0);
	ck_assert_int_eq(dev.nopage_calls, 2);
	teardown();
}
END_TEST

START_TEST(map_error_is_sigbus)
{
	uint8_t v;

	setup(-1, 8, 1000);
	mapper.map_err = EIO;
	ck_assert_uint_eq(bar_rw(3 * PG, &v, 1, false, NULL), FAULT_SIGBUS);
	ck_assert_str_eq(why, "cannot map page 0x3000 of device fake into the guest: Input/output "
			      "error");
	teardown();
}
END_TEST

/* Injected nopage failures: EAGAIN is REFAULT (bounded), ENOMEM is OOM. */
START_TEST(injected_nopage)
{
	uint8_t v;

	setup(-1, 4, 1000);
	ck_assert_int_eq(inject__init("nopage@fake:EAGAIN:0:0"), 0);
	ck_assert_uint_eq(bar_rw(0, &v, 1, false, NULL), FAULT_RETRY);
	ck_assert_uint_eq(BSTAT(nopage_refault), 4);
	ck_assert_int_eq(dev.nopage_calls, 0);
	ck_assert_int_eq(inject__init("nopage@other:EAGAIN:0:0,nopage@fake:ENOMEM"), 0);
	ck_assert_uint_eq(bar_rw(0, &v, 1, false, NULL), FAULT_OOM);
	ck_assert_uint_eq(bar_rw(0, &v, 1, false, NULL), FAULT_DONE);
	teardown();
}
END_TEST

/* ---- the devices ----------------------------------------------------------------- */

static const struct bar_mapper dev_mapper = {fake_map, fake_unmap, fake_stopping, &mapper};

START_TEST(shm_registers_and_file)
{
	char path[] = "/tmp/faultline-shm-XXXXXX", bell[64], line[32];
	uint64_t v, magic;
	struct shm_dev shm;
	FILE *f;
	int fd;

	memset(&mapper, 0, sizeof(mapper));
	mapper.slots = -1;
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 2 * PG), 0); /* a 4-page window over a 2-page file */
	snprintf(bell, sizeof(bell), "%s.bell", path);
	ck_assert_int_eq(shm__init(&shm, path, 4 * PG, bell, 0xd0000000, &dev_mapper, 8, 1000), 0);
	ck_assert_uint_eq(shm.bar.size, 5 * PG);
	struct fault_ctx ctx = {.flags = FAULT_FLAG_ALLOW_RETRY};
	ck_assert_uint_eq(bar__access(&shm.bar, &ctx, SHM_REG_MAGIC, &magic, 8, false, why, 256),
			  FAULT_DONE);
	ck_assert_uint_eq(magic, SHM_MAGIC);
	v = 4 * PG;
	ck_assert_uint_eq(bar__access(&shm.bar, &ctx, SHM_REG_SIZE, &v, 8, false, why, 256),
			  FAULT_DONE);
	ck_assert_uint_eq(v, 4 * PG);
	v = 77;
	ck_assert_uint_eq(bar__access(&shm.bar, &ctx, SHM_REG_DOORBELL, &v, 8, true, why, 256),
			  FAULT_DONE);
	ck_assert_uint_eq(bar__access(&shm.bar, &ctx, SHM_REG_RINGS, &v, 8, false, why, 256),
			  FAULT_DONE);
	ck_assert_uint_eq(v, 1);
	/* Registers other than the doorbell are read-only. */
	ck_assert_uint_eq(bar__access(&shm.bar, &ctx, SHM_REG_SIZE, &v, 8, true, why, 256),
			  FAULT_MMIO);
	/* Data: the guest's write is in the file. */
	v = 0x6c696e65746c7561ULL;
	ck_assert_uint_eq(
		bar__access(&shm.bar, &ctx, SHM_DATA_OFFSET + PG + 8, &v, 8, true, why, 256),
		FAULT_DONE);
	ck_assert_int_eq(pread(fd, &magic, 8, PG + 8), 8);
	ck_assert_uint_eq(magic, v);
	/* Past the file's end: SIGBUS. */
	ck_assert_uint_eq(
		bar__access(&shm.bar, &ctx, SHM_DATA_OFFSET + 2 * PG, &v, 8, false, why, 256),
		FAULT_SIGBUS);
	ck_assert_str_eq(why, "device shm answered SIGBUS for offset 0x3000: No such device or "
			      "address");
	ck_assert_uint_eq(shm.bar.stats.dev[SHM_COUNTER_RINGS], 1);
	shm__exit(&shm);
	f = fopen(bell, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_str_eq(line, "77\n");
	fclose(f);
	unlink(bell);
	unlink(path);
	close(fd);
}
END_TEST

START_TEST(shm_missing_file)
{
	struct shm_dev shm;
	char buf[256];

	log__capture(buf, sizeof(buf));
	ck_assert_int_eq(
		shm__init(&shm, "/nonexistent/shm", PG, NULL, 0xd0000000, &dev_mapper, 8, 1000),
		-ENOENT);
	log__capture(NULL, 0);
	ck_assert_str_eq(buf, "faultline: cannot open the shm file: No such file or directory "
			      "(file: /nonexistent/shm)\n");
	shm__exit(&shm);
}
END_TEST

/* shm's state: the doorbell's last value and the rings come back; a cut one is refused. */
START_TEST(shm_state_round_trip)
{
	char path[] = "/tmp/faultline-shm-XXXXXX";
	struct fault_ctx ctx = {.flags = FAULT_FLAG_ALLOW_RETRY};
	struct shm_dev a, c;
	struct blob_reader r;
	struct blob b;
	uint64_t v;
	int fd;

	memset(&mapper, 0, sizeof(mapper));
	mapper.slots = -1;
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, PG), 0);
	ck_assert_int_eq(shm__init(&a, path, PG, NULL, 0xd0000000, &dev_mapper, 8, 1000), 0);
	ck_assert_int_eq(shm__init(&c, path, PG, NULL, 0xd0000000, &dev_mapper, 8, 1000), 0);
	for (v = 41; v <= 42; v++)
		ck_assert_uint_eq(
			bar__access(&a.bar, &ctx, SHM_REG_DOORBELL, &v, 8, true, why, 256),
			FAULT_DONE);
	ck_assert_int_eq(shm__sync(&a), 0);
	blob__init(&b);
	shm__save(&a, &b);
	ck_assert_int_eq(blob__end(&b), 0);
	blob_reader__init(&r, b.buf, b.len - 1);
	ck_assert_int_eq(shm__restore(&c, &r), -EINVAL);
	ck_assert_uint_eq(bar__access(&c.bar, &ctx, SHM_REG_RINGS, &v, 8, false, why, 256),
			  FAULT_DONE);
	ck_assert_uint_eq(v, 0);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(shm__restore(&c, &r), 0);
	ck_assert_int_eq(blob_reader__done(&r), 0);
	ck_assert_uint_eq(bar__access(&c.bar, &ctx, SHM_REG_RINGS, &v, 8, false, why, 256),
			  FAULT_DONE);
	ck_assert_uint_eq(v, 2);
	ck_assert_uint_eq(bar__access(&c.bar, &ctx, SHM_REG_DOORBELL, &v, 8, false, why, 256),
			  FAULT_DONE);
	ck_assert_uint_eq(v, 42);
	blob__free(&b);
	shm__exit(&a);
	shm__exit(&c);
	close(fd);
	unlink(path);
}
END_TEST

static uint64_t vram_read(struct vram_dev *v, uint64_t pg)
{
	struct fault_ctx ctx = {.flags = FAULT_FLAG_ALLOW_RETRY};
	uint64_t x = 0xeeee;

	ck_assert_uint_eq(bar__access(&v->bar, &ctx, pg * PG + 16, &x, 8, false, why, sizeof(why)),
			  FAULT_DONE);
	return x;
}

/*
 * vram's state: each page the guest touched, from the pool or system
 * memory, comes back with its charge; pages never touched stay uncharged
 * zeros. A BAR of another size, pages out of order, or a budget they do
 * not fit are refused, and the device keeps its state.
 */
START_TEST(vram_state_round_trip)
{
	struct fault_ctx ctx = {.flags = FAULT_FLAG_ALLOW_RETRY};
	static const uint64_t touched[] = {0, 3, 5};
	struct vram_dev a, c, other;
	struct mmu mmu, mmu2;
	struct blob_reader r;
	struct blob b, bad;
	uint64_t v, i;

	memset(&mapper, 0, sizeof(mapper));
	mapper.slots = -1;
	memset(&mmu, 0, sizeof(mmu));
	memset(&mmu2, 0, sizeof(mmu2));
	mmu.limit_pages = 100;
	mmu2.limit_pages = 100;
	ck_assert_int_eq(vram__init(&a, 8 * PG, 2 * PG, 0xe0000000, &mmu, &dev_mapper, 8, 1000), 0);
	for (i = 0; i < 3; i++) {
		v = 1000 + touched[i];
		ck_assert_uint_eq(bar__access(&a.bar, &ctx, touched[i] * PG + 16, &v, 8, true, why,
					      sizeof(why)),
				  FAULT_DONE);
	}
	ck_assert_int_ge(a.slot_of[5], 0); /* in the pool */
	ck_assert_int_lt(a.slot_of[0], 0); /* moved out to system memory */
	blob__init(&b);
	vram__save(&a, &b);
	ck_assert_int_eq(blob__end(&b), 0);
	vram__exit(&a);

	ck_assert_int_eq(vram__init(&c, 8 * PG, 2 * PG, 0xe0000000, &mmu2, &dev_mapper, 8, 1000),
			 0);
	mmu2.limit_pages = 2;
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(vram__restore(&c, &r), -EINVAL);
	ck_assert_str_eq(r.why, "vram: its 3 pages do not fit the budget");
	ck_assert_uint_eq(mmu2.resident_pages, 0);
	mmu2.limit_pages = 100;
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(vram__restore(&c, &r), 0);
	ck_assert_int_eq(blob_reader__done(&r), 0);
	ck_assert_uint_eq(mmu2.resident_pages, 3);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(vram_read(&c, touched[i]), 1000 + touched[i]);
	ck_assert_uint_eq(vram_read(&c, 1), 0);
	ck_assert_uint_eq(mmu2.resident_pages, 4); /* page 1: charged on its first touch */

	ck_assert_int_eq(
		vram__init(&other, 16 * PG, 2 * PG, 0xe0000000, &mmu2, &dev_mapper, 8, 1000), 0);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(vram__restore(&other, &r), -EINVAL);
	ck_assert_str_eq(r.why, "vram: a BAR of 8 pages with a pool of 2, this one has 16 and 2");
	vram__exit(&other);

	blob__init(&bad);
	{
		size_t at = blob__section(&bad, "vram", 1);
		static const uint8_t page[PG];

		blob__u64(&bad, 8);
		blob__u64(&bad, 2);
		blob__u64(&bad, 2);
		blob__u64(&bad, 5);
		blob__bytes(&bad, page, PG);
		blob__u64(&bad, 3);
		blob__bytes(&bad, page, PG);
		blob__section_end(&bad, at);
	}
	blob_reader__init(&r, bad.buf, bad.len);
	ck_assert_int_eq(vram__restore(&c, &r), -EINVAL);
	ck_assert_str_eq(r.why, "vram: page 3 out of range or order");
	ck_assert_uint_eq(vram_read(&c, 3), 1003);
	ck_assert_uint_eq(mmu2.resident_pages, 4);
	blob__free(&bad);
	blob__free(&b);
	vram__exit(&c);
	ck_assert_uint_eq(mmu2.resident_pages, 0);
}
END_TEST

/* vram: a 2-page pool behind 8 pages; contents survive migrations both ways. */
START_TEST(vram_migrates_and_keeps_bytes)
{
	struct vram_dev vram;
	struct mmu mmu;
	uint64_t v, pg, pass;
	struct fault_ctx ctx;

	memset(&mapper, 0, sizeof(mapper));
	mapper.slots = -1;
	memset(&mmu, 0, sizeof(mmu));
	mmu.limit_pages = 100;
	ck_assert_int_eq(vram__init(&vram, 8 * PG, 2 * PG, 0xe0000000, &mmu, &dev_mapper, 8, 1000),
			 0);
	for (pass = 0; pass < 3; pass++)
		for (pg = 0; pg < 8; pg++) {
			ctx = (struct fault_ctx){.flags = FAULT_FLAG_ALLOW_RETRY};
			if (pass) {
				ck_assert_uint_eq(bar__access(&vram.bar, &ctx, pg * PG + 16, &v, 8,
							      false, why, sizeof(why)),
						  FAULT_DONE);
				ck_assert_uint_eq(v, pg * 1000 + pass - 1);
			}
			v = pg * 1000 + pass;
			ck_assert_uint_eq(bar__access(&vram.bar, &ctx, pg * PG + 16, &v, 8, true,
						      why, sizeof(why)),
					  FAULT_DONE);
		}
	ck_assert_uint_ge(vram.bar.stats.dev[VRAM_COUNTER_TO_POOL], 8 * 3);
	ck_assert_uint_ge(vram.bar.stats.dev[VRAM_COUNTER_TO_SYSTEM], 8 * 3 - 2);
	ck_assert_uint_eq(mmu.resident_pages, 8); /* each page charged once */
	ck_assert_int_le(mapper.used, 2);
	vram__exit(&vram);
	ck_assert_uint_eq(mmu.resident_pages, 0);
	ck_assert_int_eq(mapper.used, 0);
}
END_TEST

/* vram over budget: nopage answers OOM; pages already charged go on working. */
START_TEST(vram_over_budget_is_oom)
{
	struct vram_dev vram;
	struct mmu mmu;
	uint64_t v = 1;
	struct fault_ctx ctx = {.flags = FAULT_FLAG_ALLOW_RETRY};

	memset(&mapper, 0, sizeof(mapper));
	mapper.slots = -1;
	memset(&mmu, 0, sizeof(mmu));
	mmu.limit_pages = 2;
	ck_assert_int_eq(vram__init(&vram, 8 * PG, PG, 0xe0000000, &mmu, &dev_mapper, 8, 1000), 0);
	ck_assert_uint_eq(bar__access(&vram.bar, &ctx, 0, &v, 8, true, why, sizeof(why)),
			  FAULT_DONE);
	ck_assert_uint_eq(bar__access(&vram.bar, &ctx, PG, &v, 8, true, why, sizeof(why)),
			  FAULT_DONE);
	ck_assert_uint_eq(bar__access(&vram.bar, &ctx, 2 * PG, &v, 8, true, why, sizeof(why)),
			  FAULT_OOM);
	ck_assert_str_eq(why, "device vram answered OOM for offset 0x2000: Cannot allocate memory");
	ck_assert_uint_eq(bar__access(&vram.bar, &ctx, 0, &v, 8, false, why, sizeof(why)),
			  FAULT_DONE);
	ck_assert_uint_eq(v, 1);
	vram__exit(&vram);
	ck_assert_uint_eq(mmu.resident_pages, 0);
	ck_assert_int_eq(vram__init(&vram, 8 * PG, 16 * PG, 0, &mmu, &dev_mapper, 8, 1000),
			 -EINVAL);
	vram__exit(&vram);
}
END_TEST

Suite *bar_suite(void)
{
	Suite *s = suite_create("bar");
	TCase *tc = tcase_create("nopage");

	tcase_add_test(tc, page_is_mapped_once);
	tcase_add_test(tc, nonram_traps_every_access);
	tcase_add_test(tc, refault_then_page);
	tcase_add_test(tc, refault_forever_is_bounded);
	tcase_add_test(tc, refault_time_bound);
	tcase_add_test(tc, refault_ends_when_stopping);
	tcase_add_test(tc, sigbus_and_oom);
	tcase_add_test(tc, page_without_a_page);
	tcase_add_test(tc, handler_maps_itself);
	tcase_add_test(tc, access_checks);
	tcase_add_test(tc, bad_init);
	tcase_add_test(tc, injected_nopage);
	suite_add_tcase(s, tc);
	tc = tcase_create("zap");
	tcase_add_test(tc, zap_refaults_into_nopage);
	tcase_add_test(tc, zap_while_threads_fault);
	tcase_add_test(tc, out_of_slots_evicts_own_mapping);
	tcase_add_test(tc, no_slot_at_all_still_serves);
	tcase_add_test(tc, map_error_is_sigbus);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tc = tcase_create("devices");
	tcase_add_test(tc, shm_registers_and_file);
	tcase_add_test(tc, shm_missing_file);
	tcase_add_test(tc, vram_migrates_and_keeps_bytes);
	tcase_add_test(tc, vram_over_budget_is_oom);
	tcase_add_test(tc, shm_state_round_trip);
	tcase_add_test(tc, vram_state_round_trip);
	suite_add_tcase(s, tc);
	return s;
}
