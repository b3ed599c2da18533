#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/inject.h"
#include "mmu/bar.h"
#include "mmu/mmu.h"

int bar__init(struct bar *bar, const char *name, uint64_t gpa, uint64_t size,
	      const struct bar_ops *ops, void *priv, const struct bar_mapper *mapper,
	      unsigned max_retries, unsigned retry_ms)
{
	memset(bar, 0, sizeof(*bar));
	if (!size || size > BAR_MAX_SIZE || (gpa | size) & (BAR_PAGE_SIZE - 1) ||
	    gpa + size < gpa || !max_retries || !ops->nopage)
		return -EINVAL;
	bar->pages = calloc(size / BAR_PAGE_SIZE, sizeof(*bar->pages));
	if (!bar->pages)
		return -ENOMEM;
	bar->name = name;
	bar->gpa = gpa;
	bar->size = size;
	bar->nr_pages = size / BAR_PAGE_SIZE;
	bar->ops = ops;
	bar->priv = priv;
	bar->mapper = *mapper;
	bar->max_retries = max_retries;
	bar->retry_ms = retry_ms;
	pthread_mutex_init(&bar->lock, NULL);
	return 0;
}

void bar__exit(struct bar *bar)
{
	if (!bar->pages)
		return;
	if (bar__zap(bar, 0, bar->nr_pages)) {
		/* reported by the mapper; the VM is going away with its slots */
	}
	free(bar->pages);
	bar->pages = NULL;
	pthread_mutex_destroy(&bar->lock);
}

const char *bar__result_name(fault_t r)
{
	if (r & FAULT_OOM)
		return "OOM";
	if (r & FAULT_SIGBUS)
		return "SIGBUS";
	if (r & FAULT_MMIO)
		return "NONRAM";
	if (r & FAULT_RETRY)
		return "REFAULT";
	if (r & FAULT_DONE)
		return "PAGE";
	return "nothing";
}

static void bar_count(struct bar *bar, fault_t r)
{
	if (r & FAULT_OOM)
		BAR_STAT_INC(bar, nopage_oom);
	else if (r & FAULT_SIGBUS)
		BAR_STAT_INC(bar, nopage_sigbus);
	else if (r & FAULT_MMIO)
		BAR_STAT_INC(bar, nopage_nonram);
	else if (r & FAULT_RETRY)
		BAR_STAT_INC(bar, nopage_refault);
	else if (r & FAULT_DONE)
		BAR_STAT_INC(bar, nopage_page);
}

/* Unmap page @pg, mapped. Caller holds the lock. */
static int bar_unmap_locked(struct bar *bar, uint64_t pg)
{
	struct bar_page *p = &bar->pages[pg];
	int ret = bar->mapper.unmap(bar->mapper.owner, p->handle, bar->gpa + pg * BAR_PAGE_SIZE);

	if (ret)
		return ret;
	p->state = BAR_PAGE_NONE;
	p->host = NULL;
	p->seq++;
	return 0;
}

/*
 * Out of memory slots: drop this BAR's next mapping after the clock hand,
 * other than @keep's. Caller holds the lock. True when one went.
 */
static bool bar_evict_locked(struct bar *bar, uint64_t keep)
{
	uint64_t i, pg;

	for (i = 0; i < bar->nr_pages; i++) {
		pg = (bar->evict_hand + i) % bar->nr_pages;
		if (pg == keep || bar->pages[pg].state != BAR_PAGE_MAPPED)
			continue;
		if (bar_unmap_locked(bar, pg))
			return false;
		bar->evict_hand = pg + 1;
		BAR_STAT_INC(bar, evictions);
		return true;
	}
	return false;
}

/* Map @page at page @pg, evicting a mapping if slots ran out. Caller holds the lock. */
static int bar_map_locked(struct bar *bar, uint64_t pg, uint8_t *page)
{
	uint64_t gpa = bar->gpa + pg * BAR_PAGE_SIZE;
	struct bar_page *p = &bar->pages[pg];
	int h = bar->mapper.map(bar->mapper.owner, gpa, page);

	if (h == -ENOSPC && bar_evict_locked(bar, pg))
		h = bar->mapper.map(bar->mapper.owner, gpa, page);
	if (h < 0)
		return h;
	p->state = BAR_PAGE_MAPPED;
	p->handle = h;
	p->host = page;
	BAR_STAT_INC(bar, maps);
	return 0;
}

int bar__map(struct bar *bar, uint64_t pgoff, uint8_t *page)
{
	int ret;

	if (pgoff >= bar->nr_pages)
		return -ERANGE;
	pthread_mutex_lock(&bar->lock);
	ret = bar->pages[pgoff].state == BAR_PAGE_NONE ? bar_map_locked(bar, pgoff, page) : -EEXIST;
	pthread_mutex_unlock(&bar->lock);
	return ret;
}

int bar__zap(struct bar *bar, uint64_t first, uint64_t n)
{
	uint64_t pg;
	int ret = 0, err;

	if (first > bar->nr_pages || n > bar->nr_pages - first)
		return -ERANGE;
	pthread_mutex_lock(&bar->lock);
	for (pg = first; pg < first + n; pg++) {
		struct bar_page *p = &bar->pages[pg];

		if (p->state == BAR_PAGE_MAPPED) {
			err = bar_unmap_locked(bar, pg);
			if (err) {
				ret = ret ?: err;
				continue;
			}
			BAR_STAT_INC(bar, zaps);
		} else if (p->state == BAR_PAGE_TRAP) {
			p->state = BAR_PAGE_NONE;
			BAR_STAT_INC(bar, zaps);
		}
		p->seq++; /* a nopage answer in flight for it is stale */
	}
	pthread_mutex_unlock(&bar->lock);
	return ret;
}

static void bar_copy(uint8_t *at, void *data, unsigned len, bool is_write)
{
	if (is_write)
		memcpy(at, data, len);
	else
		memcpy(data, at, len);
}

/* A register access: the device's handler. */
static fault_t bar_trap(struct bar *bar, struct fault_ctx *ctx, uint64_t offset, void *data,
			unsigned len, bool is_write, char *why, size_t why_len)
{
	int ret;

	BAR_STAT_INC(bar, traps);
	if (is_write)
		ret = bar->ops->write ? bar->ops->write(bar, offset, data, len) : -EOPNOTSUPP;
	else
		ret = bar->ops->read ? bar->ops->read(bar, offset, data, len) : -EOPNOTSUPP;
	if (!ret)
		return FAULT_DONE;
	ctx->err = -ret;
	snprintf(why, why_len, "register %s at offset 0x%llx (%u bytes) rejected by device %s: %s",
		 is_write ? "write" : "read", (unsigned long long)offset, len, bar->name,
		 strerror(-ret));
	return FAULT_MMIO;
}

/*
 * nopage answered PAGE with @page for page @pg, whose zap sequence was
 * @seq: map it and complete the access on it, unless the page was zapped
 * meanwhile (RETRY). Takes the lock.
 */
static fault_t bar_install(struct bar *bar, struct fault_ctx *ctx, uint64_t pg, uint32_t seq,
			   uint8_t *page, uint64_t in, void *data, unsigned len, bool is_write,
			   char *why, size_t why_len)
{
	struct bar_page *p = &bar->pages[pg];
	fault_t r = FAULT_DONE;
	int ret;

	pthread_mutex_lock(&bar->lock);
	if (p->seq != seq || p->state == BAR_PAGE_TRAP) {
		BAR_STAT_INC(bar, raced);
		r = FAULT_RETRY;
	} else if (p->state == BAR_PAGE_MAPPED) {
		bar_copy(p->host + in, data, len, is_write); /* a sibling mapped it */
	} else if ((ret = bar_map_locked(bar, pg, page)) == 0) {
		bar_copy(page + in, data, len, is_write);
	} else if (ret == -ENOSPC) {
		BAR_STAT_INC(bar, unmapped_accesses);
		bar_copy(page + in, data, len, is_write);
	} else {
		ctx->err = -ret;
		snprintf(why, why_len, "cannot map page 0x%llx of device %s into the guest: %s",
			 (unsigned long long)(pg * BAR_PAGE_SIZE), bar->name, strerror(-ret));
		r = FAULT_SIGBUS;
	}
	pthread_mutex_unlock(&bar->lock);
	return r;
}

/* nopage failed for good: say what, in the BAR's words. */
static fault_t bar_failed(struct bar *bar, struct fault_ctx *ctx, uint64_t pg, fault_t r,
			  uint64_t elapsed_ns, char *why, size_t why_len)
{
	unsigned long long off = (unsigned long long)(pg * BAR_PAGE_SIZE);

	if (r & FAULT_RETRY) {
		BAR_STAT_INC(bar, refault_exhausted);
		snprintf(why, why_len,
			 "device %s still answered REFAULT for offset 0x%llx after %u attempts "
			 "in %llu ms",
			 bar->name, off, ctx->attempt + 1,
			 (unsigned long long)(elapsed_ns / 1000000));
	} else {
		snprintf(why, why_len, "device %s answered %s for offset 0x%llx%s%s", bar->name,
			 bar__result_name(r), off, ctx->err ? ": " : "",
			 ctx->err ? strerror(ctx->err) : "");
	}
	return r;
}

/* nopage said NONRAM: the page traps from now on, unless it was zapped meanwhile. */
static fault_t bar_trap_first(struct bar *bar, struct fault_ctx *ctx, uint64_t pg, uint32_t seq,
			      uint64_t offset, void *data, unsigned len, bool is_write, char *why,
			      size_t why_len)
{
	struct bar_page *p = &bar->pages[pg];

	pthread_mutex_lock(&bar->lock);
	if (p->seq == seq && p->state == BAR_PAGE_NONE)
		p->state = BAR_PAGE_TRAP;
	pthread_mutex_unlock(&bar->lock);
	return bar_trap(bar, ctx, offset, data, len, is_write, why, why_len);
}

/* PAGE without a usable page, or no answer at all: a device bug, reported as SIGBUS. */
static fault_t bar_bad_answer(struct bar *bar, struct fault_ctx *ctx, uint64_t pg, char *why,
			      size_t why_len)
{
	ctx->err = EFAULT;
	snprintf(why, why_len,
		 "device %s gave no usable answer for offset 0x%llx (PAGE needs an aligned page)",
		 bar->name, (unsigned long long)(pg * BAR_PAGE_SIZE));
	return FAULT_SIGBUS;
}

/* One access within page @pg: the loop of the DOC comment. */
static fault_t bar_access_page(struct bar *bar, struct fault_ctx *ctx, uint64_t offset, void *data,
			       unsigned len, bool is_write, char *why, size_t why_len)
{
	uint64_t pg = offset / BAR_PAGE_SIZE, in = offset % BAR_PAGE_SIZE;
	uint64_t start = mmu__now_ns(), elapsed;
	struct bar_page *p = &bar->pages[pg];
	uint8_t *page;
	uint32_t seq;
	fault_t r;
	bool trap;
	int inj;

	for (;;) {
		pthread_mutex_lock(&bar->lock);
		if (p->state == BAR_PAGE_MAPPED) {
			bar_copy(p->host + in, data, len, is_write);
			pthread_mutex_unlock(&bar->lock);
			return FAULT_DONE;
		}
		trap = p->state == BAR_PAGE_TRAP;
		seq = p->seq;
		pthread_mutex_unlock(&bar->lock);
		if (trap)
			return bar_trap(bar, ctx, offset, data, len, is_write, why, why_len);
		page = NULL;
		ctx->gpa = bar->gpa + pg * BAR_PAGE_SIZE;
		ctx->err = 0;
		inj = inject__check_scoped("nopage", bar->name);
		if (inj)
			ctx->err = inj;
		r = inj ? fault__from_errno(-inj) : bar->ops->nopage(bar, pg, ctx, &page);
		bar_count(bar, r);
		if (r & FAULT_ERROR)
			return bar_failed(bar, ctx, pg, r, 0, why, why_len);
		if (r & FAULT_MMIO)
			return bar_trap_first(bar, ctx, pg, seq, offset, data, len, is_write, why,
					      why_len);
		if (r & FAULT_DONE) {
			if (!page || ((uintptr_t)page & (BAR_PAGE_SIZE - 1)))
				return bar_bad_answer(bar, ctx, pg, why, why_len);
			r = bar_install(bar, ctx, pg, seq, page, in, data, len, is_write, why,
					why_len);
			if (r != FAULT_RETRY)
				return r;
		} else if (!(r & FAULT_RETRY)) {
			return bar_bad_answer(bar, ctx, pg, why, why_len);
		}
		elapsed = mmu__now_ns() - start;
		if (ctx->attempt + 1 >= bar->max_retries ||
		    elapsed >= (uint64_t)bar->retry_ms * 1000000ULL ||
		    (bar->mapper.stopping && bar->mapper.stopping(bar->mapper.owner)))
			return bar_failed(bar, ctx, pg, FAULT_RETRY, elapsed, why, why_len);
		ctx->attempt++;
		ctx->flags |= FAULT_FLAG_TRIED;
		usleep(ctx->attempt < 10 ? 1U << ctx->attempt : 1000);
	}
}

fault_t bar__access(struct bar *bar, struct fault_ctx *ctx, uint64_t offset, void *data,
		    unsigned len, bool is_write, char *why, size_t why_len)
{
	uint8_t *bytes = data;
	unsigned first;
	fault_t r;

	why[0] = '\0';
	BAR_STAT_INC(bar, exits);
	if (!len || len > 8 || offset >= bar->size || len > bar->size - offset) {
		ctx->err = EINVAL;
		snprintf(why, why_len, "access of %u bytes at offset 0x%llx outside device %s", len,
			 (unsigned long long)offset, bar->name);
		return FAULT_SIGBUS;
	}
	first = (unsigned)(BAR_PAGE_SIZE - offset % BAR_PAGE_SIZE);
	if (first >= len)
		return bar_access_page(bar, ctx, offset, data, len, is_write, why, why_len);
	/* Straddling two pages: each half on its own page. */
	r = bar_access_page(bar, ctx, offset, bytes, first, is_write, why, why_len);
	if (r != FAULT_DONE)
		return r;
	ctx->attempt = 0;
	ctx->flags &= ~FAULT_FLAG_TRIED;
	return bar_access_page(bar, ctx, offset + first, bytes + first, len - first, is_write, why,
			       why_len);
}
