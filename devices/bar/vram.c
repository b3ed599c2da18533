#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "devices/bar/vram.h"
#include "lib/log.h"

static const struct bar_counter vram_counters[] = {
	[VRAM_COUNTER_TO_POOL] = {"migrations_to_pool", "pages moved into the pool"},
	[VRAM_COUNTER_TO_SYSTEM] = {"migrations_to_system", "pages moved out to system memory"},
	{NULL, NULL},
};

static uint8_t *vram_slot(const struct vram_dev *vram, uint64_t slot)
{
	return vram->pool + slot * BAR_PAGE_SIZE;
}

/*
 * Free pool slot @slot: zap its page out of the guest's view, then copy it
 * to system memory. Caller holds vram->lock. 0 or the zap's error.
 */
static int vram_evict(struct vram_dev *vram, uint64_t slot)
{
	int64_t pg = vram->page_in[slot];
	int ret;

	if (pg < 0)
		return 0;
	ret = bar__zap(&vram->bar, (uint64_t)pg, 1);
	if (ret)
		return ret;
	memcpy(vram->sys + (uint64_t)pg * BAR_PAGE_SIZE, vram_slot(vram, slot), BAR_PAGE_SIZE);
	vram->slot_of[pg] = -1;
	vram->page_in[slot] = -1;
	__atomic_add_fetch(&vram->bar.stats.dev[VRAM_COUNTER_TO_SYSTEM], 1, __ATOMIC_RELAXED);
	return 0;
}

/* Move BAR page @pg from system memory into the pool. Caller holds vram->lock. */
static int vram_migrate_in(struct vram_dev *vram, uint64_t pg)
{
	uint64_t slot = vram->hand;
	int ret = vram_evict(vram, slot);

	if (ret)
		return ret;
	vram->hand = (slot + 1) % vram->pool_pages;
	memcpy(vram_slot(vram, slot), vram->sys + pg * BAR_PAGE_SIZE, BAR_PAGE_SIZE);
	vram->slot_of[pg] = (int64_t)slot;
	vram->page_in[slot] = (int64_t)pg;
	__atomic_add_fetch(&vram->bar.stats.dev[VRAM_COUNTER_TO_POOL], 1, __ATOMIC_RELAXED);
	return 0;
}

static fault_t vram_nopage(struct bar *bar, uint64_t pgoff, struct fault_ctx *ctx, uint8_t **page)
{
	struct vram_dev *vram = bar->priv;
	fault_t r = FAULT_RETRY; /* REFAULT: the page moved, look again */
	int ret = 0;

	pthread_mutex_lock(&vram->lock);
	if (!vram->charged[pgoff]) {
		ret = mmu__charge(vram->mmu, 1);
		if (ret) {
			ctx->err = ENOMEM;
			r = FAULT_OOM;
			goto out;
		}
		vram->charged[pgoff] = 1;
	}
	if (vram->slot_of[pgoff] >= 0) {
		*page = vram_slot(vram, (uint64_t)vram->slot_of[pgoff]);
		r = FAULT_DONE;
		goto out;
	}
	ret = vram_migrate_in(vram, pgoff);
	if (ret) {
		ctx->err = -ret;
		r = FAULT_SIGBUS;
	}
out:
	pthread_mutex_unlock(&vram->lock);
	return r;
}

static const struct bar_ops vram_ops = {
	.nopage = vram_nopage,
};

static void *vram_alloc(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int vram__init(struct vram_dev *vram, uint64_t size, uint64_t pool, uint64_t gpa, struct mmu *mmu,
	       const struct bar_mapper *mapper, unsigned max_retries, unsigned retry_ms)
{
	uint64_t n = size / BAR_PAGE_SIZE, i;
	int ret;

	memset(vram, 0, sizeof(*vram));
	pthread_mutex_init(&vram->lock, NULL);
	if (!pool || pool > size || pool % BAR_PAGE_SIZE)
		return -EINVAL;
	vram->mmu = mmu;
	vram->nr_pages = n;
	vram->pool_pages = pool / BAR_PAGE_SIZE;
	vram->pool = vram_alloc(pool);
	vram->sys = vram_alloc(size);
	vram->slot_of = calloc(n, sizeof(*vram->slot_of));
	vram->page_in = calloc(vram->pool_pages, sizeof(*vram->page_in));
	vram->charged = calloc(n, 1);
	if (!vram->pool || !vram->sys || !vram->slot_of || !vram->page_in || !vram->charged) {
		pr_err("cannot allocate the vram device: out of memory (%llu bytes)",
		       (unsigned long long)size);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		vram->slot_of[i] = -1;
	for (i = 0; i < vram->pool_pages; i++)
		vram->page_in[i] = -1;
	ret = bar__init(&vram->bar, "vram", gpa, size, &vram_ops, vram, mapper, max_retries,
			retry_ms);
	if (ret)
		pr_err("cannot set up the vram BAR: %s (GPA 0x%llx, %llu bytes)", strerror(-ret),
		       (unsigned long long)gpa, (unsigned long long)size);
	vram->bar.dev_counters = vram_counters;
	return ret;
}

void vram__exit(struct vram_dev *vram)
{
	uint64_t i, charged = 0;

	bar__exit(&vram->bar);
	for (i = 0; vram->charged && i < vram->nr_pages; i++)
		charged += vram->charged[i];
	if (charged)
		mmu__uncharge(vram->mmu, charged);
	if (vram->pool)
		munmap(vram->pool, vram->pool_pages * BAR_PAGE_SIZE);
	if (vram->sys)
		munmap(vram->sys, vram->nr_pages * BAR_PAGE_SIZE);
	free(vram->slot_of);
	free(vram->page_in);
	free(vram->charged);
	pthread_mutex_destroy(&vram->lock);
	memset(vram, 0, sizeof(*vram));
}

#define VRAM_STATE_VERSION 1

/* BAR page @pg as the guest sees it. Lock held. */
static const uint8_t *vram_page(const struct vram_dev *vram, uint64_t pg)
{
	return vram->slot_of[pg] >= 0 ? vram_slot(vram, (uint64_t)vram->slot_of[pg])
				      : vram->sys + pg * BAR_PAGE_SIZE;
}

void vram__save(struct vram_dev *vram, struct blob *b)
{
	size_t at = blob__section(b, "vram", VRAM_STATE_VERSION);
	uint64_t pg, n = 0;

	pthread_mutex_lock(&vram->lock);
	for (pg = 0; pg < vram->nr_pages; pg++)
		n += vram->charged[pg];
	blob__u64(b, vram->nr_pages);
	blob__u64(b, vram->pool_pages);
	blob__u64(b, n);
	for (pg = 0; pg < vram->nr_pages; pg++)
		if (vram->charged[pg]) {
			blob__u64(b, pg);
			blob__bytes(b, vram_page(vram, pg), BAR_PAGE_SIZE);
		}
	pthread_mutex_unlock(&vram->lock);
	blob__section_end(b, at);
}

/* The pages of a state: each index in range, in order. Returns how many, or -1 (@r says why). */
static int64_t vram_check_pages(const struct vram_dev *vram, struct blob_reader *r)
{
	uint64_t nr = blob__get_u64(r), pool = blob__get_u64(r), n = blob__get_u64(r), i;
	int64_t prev = -1;

	if (!r->err && (nr != vram->nr_pages || pool != vram->pool_pages))
		blob__fail(r,
			   "vram: a BAR of %" PRIu64 " pages with a pool of %" PRIu64
			   ", this one has %" PRIu64 " and %" PRIu64,
			   nr, pool, vram->nr_pages, vram->pool_pages);
	if (!r->err && n > nr)
		blob__fail(r, "vram: %" PRIu64 " pages of %" PRIu64, n, nr);
	for (i = 0; !r->err && i < n; i++) {
		uint64_t pg = blob__get_u64(r);

		if (!r->err && (pg >= nr || (int64_t)pg <= prev))
			blob__fail(r, "vram: page %" PRIu64 " out of range or order", pg);
		prev = (int64_t)pg;
		blob__skip(r, BAR_PAGE_SIZE);
	}
	return r->err ? -1 : (int64_t)n;
}

int vram__restore(struct vram_dev *vram, struct blob_reader *r)
{
	struct blob_reader sub, pages;
	uint64_t pg, i, old = 0;
	uint16_t version;
	int64_t n;

	if (blob__enter(r, "vram", VRAM_STATE_VERSION, &version, &sub))
		return -EINVAL;
	pages = sub;
	n = vram_check_pages(vram, &pages);
	if (n < 0 || blob_reader__done(&pages))
		return blob__fail(r, "%s", pages.why);
	pthread_mutex_lock(&vram->lock);
	if (n && mmu__charge(vram->mmu, (uint64_t)n)) {
		pthread_mutex_unlock(&vram->lock);
		return blob__fail(r, "vram: its %" PRId64 " pages do not fit the budget", n);
	}
	/* Out of the guest's view first: a page the pool held is the guest's no more. */
	if (bar__zap(&vram->bar, 0, vram->nr_pages)) {
		mmu__uncharge(vram->mmu, (uint64_t)n);
		pthread_mutex_unlock(&vram->lock);
		return blob__fail(r, "vram: cannot take its pages out of the guest's view");
	}
	for (pg = 0; pg < vram->nr_pages; pg++) {
		old += vram->charged[pg];
		vram->charged[pg] = 0;
		vram->slot_of[pg] = -1;
	}
	for (i = 0; i < vram->pool_pages; i++)
		vram->page_in[i] = -1;
	vram->hand = 0;
	memset(vram->sys, 0, vram->nr_pages * BAR_PAGE_SIZE);
	(void)blob__get_u64(&sub);
	(void)blob__get_u64(&sub);
	(void)blob__get_u64(&sub);
	for (i = 0; i < (uint64_t)n; i++) {
		pg = blob__get_u64(&sub);
		blob__get_bytes(&sub, vram->sys + pg * BAR_PAGE_SIZE, BAR_PAGE_SIZE);
		vram->charged[pg] = 1;
	}
	if (old)
		mmu__uncharge(vram->mmu, old);
	pthread_mutex_unlock(&vram->lock);
	return 0;
}
