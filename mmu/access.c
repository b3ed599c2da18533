/*
 * The monitor's accessor of guest memory (struct guest_access): checked,
 * charged, pinned pages, and the holds devices keep on them; prefault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "mmu/mmu.h"
#include "mmu/mmu_int.h"
#include "mmu/uffd_compat.h"

/* Lift the write protection of resident page @pi (mmu.shared); reclaim lock held. */
static int mmu_lift_wp(struct mmu *mmu, uint64_t pi)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = (uint64_t)(uintptr_t)(mmu->ram.host + pi * MMU_PAGE_SIZE),
			  .len = MMU_PAGE_SIZE},
	};
	int err = inject__check("UFFDIO_WRITEPROTECT");

	MMU_STAT_INC(&mmu->stats, uffdio_writeprotect);
	if (!err && ioctl(mmu->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		err = errno;
	return -err;
}

/*
 * Pin resident page @pi for the monitor: mark it dirty under the reclaim
 * lock so that no reclaim drops it while the monitor holds a pointer into
 * it; with dedup, give a merged page its own copy and never merge it
 * again. Returns 0, -EAGAIN when it is not resident (any more), or
 * -ECANCELED when the copy could not be made (*@broke: OOM or SIGBUS).
 */
static int mmu_pin(struct mmu *mmu, uint64_t pi, struct fault_ctx *ctx, fault_t *broke, bool held)
{
	enum cow_charge was, charge;
	int ret = 0;

	if (!mmu->dedup && !mmu->discards && (!mmu->wp || bit_test(mmu->bits.dirty, pi)) &&
	    (!mmu->cfg.track_writes || bit_test(mmu->bits.written, pi)))
		return page_resident(mmu, pi) ? 0 : -EAGAIN;
	was = charge = mmu__charge_cow(mmu, ctx, pi);
	pthread_mutex_lock(&mmu->reclaim_lock);
	if (mmu->dedup)
		page_bits__wait(&mmu->bits, pi, &mmu->reclaim_lock);
	if (!page_resident(mmu, pi))
		ret = -EAGAIN;
	else if (page_bits__merged(&mmu->bits, pi) &&
		 (*broke = mmu->sharer->break_cow(mmu->dedup, ctx, pi, &charge)) != FAULT_DONE)
		ret = -ECANCELED;
	if (!ret && mmu->dedup)
		page_bits__pin(&mmu->bits, pi);
	/* A shared file's page: the monitor writes through the guest view, lift its protection. */
	if (!ret && mmu->shared && !bit_test(mmu->bits.dirty, pi) && mmu_lift_wp(mmu, pi)) {
		ctx->failed = "the write protection could not be lifted";
		*broke = FAULT_SIGBUS;
		ret = -ECANCELED;
	}
	if (!ret && mmu->wp)
		bit_set(mmu->bits.dirty, pi);
	if (!ret && mmu->cfg.track_writes) /* the monitor writes through its own view */
		bit_set(mmu->bits.written, pi);
	/* Under the lock mmu__discard() takes: it sees the mark, or we see the page gone. */
	if (!ret && mmu->discards && held && mmu->holds[pi] < MMU_HELD_FOR_GOOD)
		mmu->holds[pi]++;
	else if (!ret && mmu->discards && !held && __atomic_load_n(&mmu->running, __ATOMIC_ACQUIRE))
		mmu->holds[pi] = MMU_HELD_FOR_GOOD;
	pthread_mutex_unlock(&mmu->reclaim_lock);
	mmu__charge_cow_end(mmu, was, charge);
	return ret;
}

/* Give back what mmu_pin(held) took on pages [first, end). */
static void mmu_unhold(struct mmu *mmu, uint64_t first, uint64_t end)
{
	uint64_t pi;

	if (!mmu->discards || first >= end)
		return;
	pthread_mutex_lock(&mmu->reclaim_lock);
	for (pi = first; pi < end; pi++)
		if (mmu->holds[pi] && mmu->holds[pi] < MMU_HELD_FOR_GOOD)
			mmu->holds[pi]--;
	pthread_mutex_unlock(&mmu->reclaim_lock);
}

/*
 * The copy of a merged page the monitor accesses could not be made: a
 * fault of the monitor's with that result, which the owner hears of as of
 * any other (an OOM goes to --on-oom once the VM runs). Returns true when
 * the owner made room and the access should be tried again.
 */
static bool mmu_pin_failed(struct fault_ctx *ctx, fault_t r, uint64_t start)
{
	struct mmu *mmu = ctx->mmu;
	uint64_t elapsed = mmu__now_ns() - start;

	mmu__count_source(mmu, ctx->source);
	mmu_stats__record(&mmu->stats, ctx->vcpu, elapsed);
	ctx->refault = false;
	mmu__report(ctx, r, elapsed);
	ctx->flags &= ~FAULT_FLAG_COW;
	if (!ctx->refault || mmu__stopping(mmu))
		return false;
	MMU_STAT_INC(&mmu->stats, refaults);
	return true;
}

static int mmu_access_pin(struct mmu *mmu, uint64_t gpa, uint64_t len, void **ptr, bool held)
{
	uint8_t *host = guest_ram__ptr(&mmu->ram, gpa, len);
	uint64_t page, end, first_pi = host ? (uint64_t)(host - mmu->ram.host) / MMU_PAGE_SIZE : 0;

	if (!host)
		return -EFAULT;
	if (mmu->cfg.handler == MMU_HANDLER_KERNEL) {
		*ptr = host; /* one view, populated by the kernel on touch */
		return 0;
	}
	end = gpa + len;
	for (page = gpa & ~(MMU_PAGE_SIZE - 1); page < end; page += MMU_PAGE_SIZE) {
		struct fault_ctx ctx;
		uint64_t pi, start = mmu__now_ns();
		fault_t r = FAULT_DONE;
		int ret;

		fault_ctx__init(&ctx, mmu, page, FAULT_WRITE, FAULT_SRC_MONITOR, -1,
				FAULT_FLAG_ALLOW_RETRY);
		pi = (uint64_t)(ctx.hva - mmu->ram.host) / MMU_PAGE_SIZE;

		while ((ret = mmu_pin(mmu, pi, &ctx, &r, held)) != 0) {
			if (ret == -EAGAIN)
				r = mmu__handle_fault(&ctx);
			else if (mmu_pin_failed(&ctx, r, start))
				continue;
			if (!(r & FAULT_DONE)) {
				/* Nothing stays held: give back the pages before this one. */
				if (held)
					mmu_unhold(mmu, first_pi, pi);
				return fault__to_errno(r);
			}
			start = mmu__now_ns();
		}
	}
	*ptr = mmu->alias + (host - mmu->ram.host);
	return 0;
}

int mmu__access(struct mmu *mmu, uint64_t gpa, uint64_t len, void **ptr)
{
	return mmu_access_pin(mmu, gpa, len, ptr, false);
}

int mmu__access_held(struct mmu *mmu, uint64_t gpa, uint64_t len, void **ptr)
{
	return mmu_access_pin(mmu, gpa, len, ptr, true);
}

void mmu__release(struct mmu *mmu, uint64_t gpa, uint64_t len)
{
	uint8_t *host = len ? guest_ram__ptr(&mmu->ram, gpa, len) : NULL;
	uint64_t first, end;

	if (!host || mmu->cfg.handler == MMU_HANDLER_KERNEL)
		return;
	first = (uint64_t)(host - mmu->ram.host) / MMU_PAGE_SIZE;
	end = (uint64_t)(host + len - mmu->ram.host + MMU_PAGE_SIZE - 1) / MMU_PAGE_SIZE;
	mmu_unhold(mmu, first, end);
}

static void *mmu_access_ptr(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	void *p = NULL;

	*err = mmu__access(ctx, gpa, len, &p);
	return *err ? NULL : p;
}

static void *mmu_access_held_ptr(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	void *p = NULL;

	*err = mmu__access_held(ctx, gpa, len, &p);
	return *err ? NULL : p;
}

static void mmu_release_range(void *ctx, uint64_t gpa, uint64_t len)
{
	mmu__release(ctx, gpa, len);
}

struct guest_access mmu__guest_access(struct mmu *mmu)
{
	return (struct guest_access){mmu_access_ptr, mmu, mmu_access_held_ptr, mmu_release_range};
}

int mmu__prefault(struct mmu *mmu)
{
	unsigned i;

	if (mmu->cfg.handler == MMU_HANDLER_KERNEL)
		return madvise(mmu->ram.host, mmu->ram.size, MADV_POPULATE_WRITE) ? -errno : 0;

	for (i = 0; i < mmu->ram.nr_banks; i++) {
		const struct guest_ram_bank *b = &mmu->ram.banks[i];
		uint64_t off;
		void *p;

		for (off = 0; off < b->size; off += MMU_PAGE_SIZE) {
			int ret = mmu__access(mmu, b->gpa + off, MMU_PAGE_SIZE, &p);

			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * Charge @n pages, reclaiming; when the budget is full of siblings' charges
 * that are not over, wait for them once and try again. Caller holds nothing.
 */
