/*
 * Pages leaving guest RAM: poison, discard (the balloon's free page
 * reports), and reclaim of clean file pages when the budget is full.
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

/* The kernel baseline keeps no bitmap: ask the kernel (mincore). */
static uint64_t mmu_kernel_resident(const struct mmu *mmu)
{
	unsigned char *vec = malloc(mmu->nr_pages);
	uint64_t i, n = 0;

	if (vec && mincore(mmu->ram.host, mmu->ram.size, vec) == 0)
		for (i = 0; i < mmu->nr_pages; i++)
			n += vec[i] & 1;
	free(vec);
	return n;
}

void mmu__pages(struct mmu *mmu, struct mmu_pages *pages)
{
	pages->ram = mmu->nr_pages;
	pages->budget = mmu__limit(mmu);
	pages->resident = __atomic_load_n(&mmu->resident_pages, __ATOMIC_ACQUIRE);
	if (mmu->cfg.handler == MMU_HANDLER_KERNEL)
		pages->resident = mmu_kernel_resident(mmu);
}

int mmu__host_bytes(struct mmu *mmu, uint64_t *bytes)
{
	struct stat st;
	int err;

	if (mmu->cfg.handler == MMU_HANDLER_KERNEL || mmu->shared)
		return -EOPNOTSUPP; /* no memfd: the guest view's anonymous pages (smaps) */
	err = inject__check("fstat.guest_ram");
	if (err || fstat(mmu->memfd, &st) < 0)
		return -(err ? err : errno);
	*bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

bool mmu__can_poison(const struct mmu *mmu)
{
	return mmu->uffd_features & UFFD_FEATURE_POISON;
}

/*
 * A merged page about to be poisoned (a copy-on-write break that ran out
 * of memory, --on-oom mce) gives its shared page up: its contents are lost.
 */
static int mmu_poison_merged(struct mmu *mmu, uint64_t pi)
{
	int err = 0;

	pthread_mutex_lock(&mmu->reclaim_lock);
	page_bits__wait(&mmu->bits, pi, &mmu->reclaim_lock);
	if (page_bits__merged(&mmu->bits, pi))
		err = mmu->sharer->discard(mmu->dedup, pi);
	pthread_mutex_unlock(&mmu->reclaim_lock);
	return err;
}

/*
 * A page dropped while write-protected (reclaimed, or released by dedup as
 * zeros) may keep the kernel's write-protect marker in its empty entry,
 * which UFFDIO_POISON takes for a present page: lift it.
 */
static int mmu_clear_wp_marker(struct mmu *mmu, uint8_t *hva)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = (uint64_t)(uintptr_t)hva, .len = MMU_PAGE_SIZE},
		.mode = 0,
	};

	return ioctl(mmu->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

int mmu__poison(struct mmu *mmu, uint64_t gpa)
{
	uint8_t *hva = guest_ram__ptr(&mmu->ram, gpa & ~(MMU_PAGE_SIZE - 1), MMU_PAGE_SIZE);
	struct uffdio_poison p = {.mode = 0};
	uint64_t pi;
	int err;

	if (!hva)
		return -EFAULT;
	if (!mmu__can_poison(mmu))
		return -EOPNOTSUPP;
	pi = (uint64_t)(hva - mmu->ram.host) / MMU_PAGE_SIZE;
	if (bit_test(mmu->bits.poisoned, pi))
		return 0;
	if (mmu->dedup) {
		err = mmu_poison_merged(mmu, pi);
		if (err)
			return err;
	}
	p.range.start = (uint64_t)(uintptr_t)hva;
	p.range.len = MMU_PAGE_SIZE;
	/*
	 * Marked before the ioctl wakes the waiter: its SIGBUS must find the
	 * page poisoned by us, not take it for a host memory error.
	 */
	bit_set(mmu->bits.poisoned, pi);
	err = inject__check("UFFDIO_POISON");
	if (!err && ioctl(mmu->uffd, UFFDIO_POISON, &p) < 0)
		err = errno;
	if (err == EEXIST && mmu->uffd_wp && !page_resident(mmu, pi) &&
	    mmu_clear_wp_marker(mmu, hva) == 0) {
		err = 0;
		if (ioctl(mmu->uffd, UFFDIO_POISON, &p) < 0)
			err = errno;
	}
	if (err) {
		bit_test_clear(mmu->bits.poisoned, pi);
		return -err;
	}
	if (mmu->dedup)
		mmu->sharer->wake(mmu->dedup,
				  pi); /* a writer of the shared page meets the poison */
	MMU_STAT_INC(&mmu->stats, pages_poisoned);
	return 0;
}

static int mmu_punch(struct mmu *mmu, uint64_t first, uint64_t n);
static uint64_t mmu_reclaim_run(struct mmu *mmu, uint64_t first, uint64_t n);

int mmu__allow_discard(struct mmu *mmu)
{
	mmu->holds = calloc(mmu->nr_pages, 1);
	if (!mmu->holds)
		return -ENOMEM;
	mmu->discards = true;
	return 0;
}

/* May page @pi go? Taken out of the resident bitmap if so. Reclaim lock held. */
static bool mmu_discardable(struct mmu *mmu, uint64_t pi, uint64_t *kept)
{
	if (!page_resident(mmu, pi) || bit_test(mmu->bits.poisoned, pi))
		return false;
	if (mmu->holds[pi] ||
	    (mmu->dedup &&
	     (page_bits__busy(&mmu->bits, pi) || page_bits__merged(&mmu->bits, pi))) ||
	    !bit_test_clear(mmu->bits.resident, pi)) {
		(*kept)++;
		return false;
	}
	/*
	 * Installed again as a first touch, clean; cleared now, before the
	 * punch, so that a write fault that installs it again marks it dirty
	 * after us.
	 */
	if (mmu->wp)
		bit_test_clear(mmu->bits.dirty, pi);
	if (mmu->cfg.track_writes) /* its contents change: zeros, or the file's */
		bit_set(mmu->bits.written, pi);
	return true;
}

/*
 * --hugepages: only whole huge pages inside [@pi, @last) go, and only when
 * every page of one may; of one that may not, the pages already taken for
 * dropping are resident again and all its resident pages are kept. Caller
 * holds reclaim_lock.
 */
static int mmu_discard_huge(struct mmu *mmu, uint64_t pi, uint64_t last, uint64_t *dropped,
			    uint64_t *kept)
{
	const uint64_t n = MMU_HUGE_SIZE / MMU_PAGE_SIZE;
	uint64_t h, i, k;
	int err = 0;

	for (h = (pi + n - 1) & ~(n - 1); h + n <= last; h += n) {
		for (i = 0; i < n && mmu_discardable(mmu, h + i, kept); i++)
			;
		if (i == n) {
			if (mmu_reclaim_run(mmu, h, n) == n)
				*dropped += n;
			else
				err = -EIO; /* the huge page is resident again */
			continue;
		}
		pages_mark_resident(mmu, h, i);
		*kept += i;
		for (k = i + 1; k < n; k++)
			*kept += page_resident(mmu, h + k);
	}
	return err;
}

int mmu__discard(struct mmu *mmu, uint64_t gpa, uint64_t len, uint64_t *dropped, uint64_t *kept)
{
	uint64_t first = (gpa + MMU_PAGE_SIZE - 1) & ~(MMU_PAGE_SIZE - 1);
	uint64_t end = (gpa + len) & ~(MMU_PAGE_SIZE - 1), pi, last, run_first = 0, run_n = 0;
	uint8_t *host;
	int err = 0;

	*dropped = *kept = 0;
	if (len == 0 || gpa + len < gpa || !guest_ram__ptr(&mmu->ram, gpa, len))
		return -EFAULT;
	if (end <= first || mmu->cfg.handler != MMU_HANDLER_FAULTLINE || !mmu->discards)
		return 0;
	host = guest_ram__ptr(&mmu->ram, first, end - first);
	pi = (uint64_t)(host - mmu->ram.host) / MMU_PAGE_SIZE;
	last = pi + (end - first) / MMU_PAGE_SIZE;
	pthread_mutex_lock(&mmu->reclaim_lock);
	if (mmu->cfg.huge) {
		err = mmu_discard_huge(mmu, pi, last, dropped, kept);
		pi = last + 1; /* the loop below has nothing to do */
	}
	for (; pi <= last; pi++) {
		bool drop = pi < last && mmu_discardable(mmu, pi, kept);

		if (drop && run_n && run_first + run_n == pi) {
			run_n++;
			continue;
		}
		if (run_n) {
			uint64_t got = mmu_reclaim_run(mmu, run_first, run_n), i;

			*dropped += got;
			if (got < run_n)
				err = -EIO; /* the run is resident again */
			/* and dirty: never reclaimed on the word of a bit we cleared */
			for (i = 0; !got && mmu->wp && i < run_n; i++)
				bit_set(mmu->bits.dirty, run_first + i);
		}
		run_first = pi;
		run_n = drop;
	}
	pthread_mutex_unlock(&mmu->reclaim_lock);
	MMU_STAT_ADD(&mmu->stats, pages_discarded, *dropped);
	return err;
}

/* Punch [first, first + n) out of the memfd: both views lose the pages (mmu.h, shared). */
static int mmu_punch(struct mmu *mmu, uint64_t first, uint64_t n)
{
	int err = inject__check("reclaim.punch");

	if (err)
		return -err;
	/* A shared file stays as it is: only this process's mapping of the pages goes. */
	if (mmu->shared)
		return madvise(mmu->ram.host + first * MMU_PAGE_SIZE, n * MMU_PAGE_SIZE,
			       MADV_DONTNEED) < 0
			       ? -errno
			       : 0;
	if (fallocate(mmu->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(first * MMU_PAGE_SIZE), (off_t)(n * MMU_PAGE_SIZE)) < 0)
		return -errno;
	return 0;
}

/*
 * Drop the run [first, first + n) of clean pages, already taken out of the
 * resident bitmap. On failure they are resident again. Returns pages dropped.
 */
static uint64_t mmu_reclaim_run(struct mmu *mmu, uint64_t first, uint64_t n)
{
	if (!n)
		return 0;
	if (mmu_punch(mmu, first, n)) {
		pages_mark_resident(mmu, first, n);
		return 0;
	}
	budget_uncharge(mmu, n);
	return n;
}

/* mmu_reclaim_run() for the budget: the dropped pages are stamped (mmu.h, thrashing). */
static uint64_t mmu_reclaim_budget_run(struct mmu *mmu, uint64_t first, uint64_t n)
{
	uint64_t got = mmu_reclaim_run(mmu, first, n), i;
	uint32_t now;

	if (!mmu->evicted_at || !got)
		return got;
	/* reclaim_lock held: the clock moves here only; readers load it */
	now = __atomic_add_fetch(&mmu->reclaim_clock, (uint32_t)got, __ATOMIC_RELAXED);
	for (i = 0; i < got; i++) {
		uint32_t at = now - (uint32_t)(got - 1 - i);

		__atomic_store_n(&mmu->evicted_at[first + i], at ? at : 1, __ATOMIC_RELAXED);
	}
	return got;
}

uint64_t mmu__thrash_faults(const struct mmu *mmu)
{
	uint64_t n = mmu__limit(mmu) * MMU_THRASH_BUDGETS;

	return n > MMU_THRASH_MIN ? n : MMU_THRASH_MIN;
}

bool mmu__thrashing(struct mmu *mmu, uint64_t pi)
{
	uint32_t at, now;

	if (!mmu->evicted_at)
		return false;
	at = __atomic_load_n(&mmu->evicted_at[pi], __ATOMIC_RELAXED);
	now = __atomic_load_n(&mmu->reclaim_clock, __ATOMIC_RELAXED);
	if (!at || (uint64_t)(uint32_t)(now - at) >= mmu__limit(mmu)) {
		uint32_t run = __atomic_load_n(&mmu->thrash_run, __ATOMIC_RELAXED);

		/* another fault: one thrashing fault fewer (racy, and need not be exact) */
		if (run)
			__atomic_store_n(&mmu->thrash_run, run - 1, __ATOMIC_RELAXED);
		return false;
	}
	MMU_STAT_INC(&mmu->stats, refaults_reclaimed);
	if (__atomic_add_fetch(&mmu->thrash_run, 1, __ATOMIC_RELAXED) < mmu__thrash_faults(mmu))
		return false;
	__atomic_store_n(&mmu->thrash_run, 0, __ATOMIC_RELAXED); /* a resume starts over */
	return true;
}

uint64_t mmu__reclaim_locked(struct mmu *mmu, uint64_t want)
{
	uint64_t got = 0, scanned, pi, run_first = 0, run_n = 0;

	if (!mmu->wp || !want)
		return 0;
	MMU_STAT_INC(&mmu->stats, reclaims);
	pi = mmu->reclaim_hand % mmu->nr_pages;
	for (scanned = 0; scanned < mmu->nr_pages && got + run_n < want; scanned++) {
		/*
		 * Clean: resident and never written. Taking it out of the
		 * resident bitmap before the punch makes a fault that comes
		 * after the punch install it again rather than find it present.
		 */
		bool clean = !bit_test(mmu->bits.dirty, pi) && page_resident(mmu, pi) &&
			     !page_bits__busy(&mmu->bits, pi) &&
			     bit_test_clear(mmu->bits.resident, pi);

		if (clean && run_n && run_first + run_n == pi) {
			run_n++;
		} else {
			got += mmu_reclaim_budget_run(mmu, run_first, run_n);
			run_first = pi;
			run_n = clean;
		}
		if (++pi == mmu->nr_pages) {
			got += mmu_reclaim_budget_run(mmu, run_first, run_n);
			run_n = 0;
			pi = 0;
		}
	}
	got += mmu_reclaim_budget_run(mmu, run_first, run_n);
	mmu->reclaim_hand = pi;
	MMU_STAT_ADD(&mmu->stats, pages_reclaimed, got);
	return got;
}

uint64_t mmu__reclaim(struct mmu *mmu, uint64_t want)
{
	uint64_t got;

	pthread_mutex_lock(&mmu->reclaim_lock);
	got = mmu__reclaim_locked(mmu, want);
	pthread_mutex_unlock(&mmu->reclaim_lock);
	return got;
}

bool mmu__gpa_of_hva(const struct mmu *mmu, const void *hva, uint64_t *gpa)
{
	const struct gpa_region *r = gpa_map__find_host(&mmu->map, hva, gpa);

	return r && r->kind == GPA_RAM;
}
