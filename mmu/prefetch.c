/*
 * The working set: recording the pages installed for a restored VM, in
 * order (--record-ws), and installing a plan of them on handler threads
 * while no fault waits (--prefetch).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "mmu/mmu.h"
#include "mmu/mmu_int.h"

int mmu__record(struct mmu *mmu, uint64_t max, int full_fd)
{
	if (!max)
		return -EINVAL;
	if (mmu->ws.runs || mmu->ws.order)
		return -EBUSY;
	if (max > mmu->nr_pages)
		max = mmu->nr_pages;
	mmu->ws.order = inject__check("calloc.ws") ? NULL : calloc(max, sizeof(uint32_t));
	if (!mmu->ws.order)
		return -ENOMEM;
	mmu->ws.max = max;
	mmu->ws.full_fd = full_fd;
	__atomic_store_n(&mmu->ws.len, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&mmu->ws.on, true, __ATOMIC_RELEASE);
	return 0;
}

bool mmu__record_stop(struct mmu *mmu)
{
	return __atomic_exchange_n(&mmu->ws.on, false, __ATOMIC_ACQ_REL);
}

/* Record page @pi once; the slot that fills the recording ends it. */
static void record_page(struct mmu *mmu, uint64_t pi)
{
	uint64_t slot, one = 1;

	if (bit_test(mmu->bits.recorded, pi))
		return;
	/* Set the bit first: two installs of one page race for it, one wins. */
	if (__atomic_fetch_or(&mmu->bits.recorded[pi / BITS_PER_LONG], 1UL << (pi % BITS_PER_LONG),
			      __ATOMIC_ACQ_REL) &
	    (1UL << (pi % BITS_PER_LONG)))
		return;
	slot = __atomic_fetch_add(&mmu->ws.len, 1, __ATOMIC_ACQ_REL);
	if (slot >= mmu->ws.max)
		return;
	__atomic_store_n(&mmu->ws.order[slot], (uint32_t)(pi + 1), __ATOMIC_RELEASE);
	MMU_STAT_INC(&mmu->stats, pages_recorded);
	if (slot + 1 == mmu->ws.max && mmu__record_stop(mmu) && mmu->ws.full_fd >= 0 &&
	    write(mmu->ws.full_fd, &one, sizeof(one)) < 0) {
		/* The owner's poll finds the recording stopped at the VM's end instead. */
	}
}

void mmu__record_installed(struct mmu *mmu, uint64_t first, uint64_t n, uint64_t pi)
{
	uint64_t i;

	if (!__atomic_load_n(&mmu->ws.on, __ATOMIC_ACQUIRE))
		return;
	if (pi >= first && pi < first + n)
		record_page(mmu, pi);
	for (i = first; i < first + n && __atomic_load_n(&mmu->ws.on, __ATOMIC_RELAXED); i++)
		record_page(mmu, i);
}

void mmu__recorded(struct mmu *mmu, uint32_t *out, uint64_t *n)
{
	uint64_t len = __atomic_load_n(&mmu->ws.len, __ATOMIC_ACQUIRE), i, k = 0;
	uint32_t v;

	if (len > mmu->ws.max)
		len = mmu->ws.max;
	for (i = 0; i < len; i++) {
		v = __atomic_load_n(&mmu->ws.order[i], __ATOMIC_ACQUIRE);
		if (v)
			out[k++] =
				(v - 1) | (bit_test(mmu->bits.dirty, v - 1) ? MMU_WS_WRITTEN : 0);
	}
	*n = k;
}

/* By page, the written flag aside. */
static int cmp_page(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a & ~MMU_WS_WRITTEN;
	uint32_t y = *(const uint32_t *)b & ~MMU_WS_WRITTEN;

	return x < y ? -1 : x > y;
}

/* Larger runs first; equal ones in address order. */
static int cmp_run(const void *a, const void *b)
{
	const struct mmu_run *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* Append the runs of the sorted, distinct pages @p[0..n) to the plan; largest first. */
static void plan_window(struct mmu *mmu, const uint32_t *p, uint64_t n)
{
	struct mmu_run *at = mmu->ws.runs + mmu->ws.nr_runs;
	/* Pages recorded written go writable only where the protection has a point. */
	bool writable = mmu->wp && !mmu->dedup, w;
	uint64_t i, k = 0, pi;

	for (i = 0; i < n; i++) {
		pi = p[i] & ~MMU_WS_WRITTEN;
		w = writable && (p[i] & MMU_WS_WRITTEN);
		if (k && at[k - 1].first + at[k - 1].n == pi && at[k - 1].written == w &&
		    at[k - 1].n < MMU_PREFETCH_RUN_MAX)
			at[k - 1].n++;
		else
			at[k++] = (struct mmu_run){.first = pi, .n = 1, .written = w};
	}
	qsort(at, k, sizeof(*at), cmp_run);
	mmu->ws.nr_runs += k;
}

/* Mark the plan's pages planned and start it. */
static void plan_start(struct mmu *mmu)
{
	uint64_t r, i;

	for (r = 0; r < mmu->ws.nr_runs; r++)
		for (i = 0; i < mmu->ws.runs[r].n; i++) {
			bit_set(mmu->bits.planned, mmu->ws.runs[r].first + i);
			if (mmu->ws.runs[r].written)
				bit_set(mmu->bits.wswritten, mmu->ws.runs[r].first + i);
		}
	__atomic_store_n(&mmu->ws.next_run, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&mmu->ws.prefetching, mmu->ws.nr_runs > 0, __ATOMIC_RELEASE);
}

int mmu__prefetch_pages(struct mmu *mmu, const uint32_t *pages, uint64_t n)
{
	uint32_t win[MMU_PREFETCH_WINDOW];
	uint64_t i, at, k, w;

	if (mmu->ws.runs || mmu->ws.order)
		return -EBUSY;
	for (i = 0; i < n; i++)
		if ((pages[i] & ~MMU_WS_WRITTEN) >= mmu->nr_pages)
			return -EINVAL;
	mmu->ws.runs =
		inject__check("calloc.prefetch") ? NULL : calloc(n ? n : 1, sizeof(*mmu->ws.runs));
	if (!mmu->ws.runs)
		return -ENOMEM;
	mmu->ws.nr_runs = 0;
	for (at = 0; at < n; at += w) {
		w = n - at < MMU_PREFETCH_WINDOW ? n - at : MMU_PREFETCH_WINDOW;
		memcpy(win, pages + at, w * sizeof(win[0]));
		qsort(win, w, sizeof(win[0]), cmp_page);
		/* A page an earlier window holds, or this one twice, is planned once. */
		for (i = 0, k = 0; i < w; i++) {
			uint32_t pi = win[i] & ~MMU_WS_WRITTEN;

			if (!bit_test(mmu->bits.planned, pi)) {
				win[k++] = win[i];
				bit_set(mmu->bits.planned, pi);
			}
		}
		plan_window(mmu, win, k);
	}
	plan_start(mmu);
	return 0;
}

/* Whether the backing file or a layer holds data for page @pi; @data: the file's extents. */
static int seq_has_data(struct mmu *mmu, uint64_t pi, off_t *data, off_t *hole)
{
	off_t off = (off_t)(pi * MMU_PAGE_SIZE);

	if (mmu->layer_of && mmu->layer_of[pi])
		return 1;
	if (off >= (off_t)mmu->backing_size)
		return 0;
	if (off >= *hole) {
		*data = lseek(mmu->backing_fd, off, SEEK_DATA);
		if (*data < 0 && errno == ENXIO) {
			*data = *hole = (off_t)mmu->backing_size;
			return 0;
		}
		if (*data < 0)
			return -errno;
		*hole = lseek(mmu->backing_fd, *data, SEEK_HOLE);
		if (*hole < 0)
			return -errno;
	}
	return off >= *data && off < *hole;
}

int mmu__prefetch_seq(struct mmu *mmu)
{
	off_t data = 0, hole = 0;
	uint64_t pi;
	int has;

	if (mmu->backing_fd < 0)
		return -EINVAL;
	if (mmu->ws.runs || mmu->ws.order)
		return -EBUSY;
	mmu->ws.runs =
		inject__check("calloc.prefetch")
			? NULL
			: calloc(mmu->nr_pages / MMU_PREFETCH_RUN_MAX + mmu->nr_pages / 2 + 1,
				 sizeof(*mmu->ws.runs));
	if (!mmu->ws.runs)
		return -ENOMEM;
	mmu->ws.nr_runs = 0;
	for (pi = 0; pi < mmu->nr_pages; pi++) {
		struct mmu_run *last = mmu->ws.nr_runs ? &mmu->ws.runs[mmu->ws.nr_runs - 1] : NULL;

		has = seq_has_data(mmu, pi, &data, &hole);
		if (has < 0)
			return has;
		if (!has)
			continue;
		if (last && last->first + last->n == pi && last->n < MMU_PREFETCH_RUN_MAX)
			last->n++;
		else
			mmu->ws.runs[mmu->ws.nr_runs++] = (struct mmu_run){.first = pi, .n = 1};
	}
	plan_start(mmu);
	return 0;
}

uint64_t mmu__prefetch_spare(const struct mmu *mmu)
{
	uint64_t eighth = mmu__limit(mmu) / 8;

	return eighth < MMU_PREFETCH_SPARE ? eighth : MMU_PREFETCH_SPARE;
}

/* Install pages [first, first + n), none resident or poisoned. Returns pages installed. */
static uint64_t prefetch_install(struct mmu *mmu, uint64_t first, uint64_t n, bool written)
{
	struct fault_ctx ctx;
	uint64_t done, i;
	int64_t ret;

	uint64_t cur = __atomic_load_n(&mmu->resident_pages, __ATOMIC_RELAXED);
	uint64_t room = mmu__limit(mmu) - mmu__prefetch_spare(mmu);
	bool last = cur + n > room;

	/* What fits of the run, and the prefetch ends there, once it is installed. */
	if (last)
		n = cur < room ? room - cur : 0;
	if (!n || !mmu__charge_spare(mmu, n, mmu__prefetch_spare(mmu))) {
		__atomic_store_n(&mmu->ws.prefetching, false, __ATOMIC_RELEASE);
		return 0;
	}
	/* Clean, reclaimable file pages; or, written when recorded, dirty ones. */
	fault_ctx__init(&ctx, mmu, guest_ram__gpa(&mmu->ram, first * MMU_PAGE_SIZE), FAULT_READ,
			FAULT_SRC_UFFD, -1, written ? FAULT_FLAG_DIRTY : 0);
	__atomic_add_fetch(&mmu->charging, n, __ATOMIC_ACQ_REL);
	ret = mmu__install(&ctx, first, n, first);
	done = ret > 0 ? (uint64_t)ret / MMU_PAGE_SIZE : 0;
	for (i = first; i < first + done; i++) {
		bit_set(mmu->bits.prefetched, i);
		bit_test_clear(mmu->bits.planned, i);
		bit_test_clear(mmu->bits.wswritten, i);
	}
	pages_mark_resident(mmu, first, done);
	budget_uncharge(mmu, n - done);
	__atomic_sub_fetch(&mmu->charging, n, __ATOMIC_RELEASE);
	MMU_STAT_ADD(&mmu->stats, pages_installed, done);
	MMU_STAT_ADD(&mmu->stats, pages_prefetched, done);
	if (last)
		__atomic_store_n(&mmu->ws.prefetching, false, __ATOMIC_RELEASE);
	return done;
}

bool mmu__prefetch_step(struct mmu *mmu)
{
	uint64_t r, i, end, lo, done;
	const struct mmu_run *run;

	if (!mmu__prefetch_pending(mmu) || mmu__stopping(mmu))
		return false;
	r = __atomic_fetch_add(&mmu->ws.next_run, 1, __ATOMIC_ACQ_REL);
	if (r >= mmu->ws.nr_runs) {
		__atomic_store_n(&mmu->ws.prefetching, false, __ATOMIC_RELEASE);
		return false;
	}
	run = &mmu->ws.runs[r];
	end = run->first + run->n;
	/* The parts of the run that faults have not installed yet. */
	for (i = run->first; i < end && mmu__prefetch_pending(mmu);) {
		if (page_resident(mmu, i) || bit_test(mmu->bits.poisoned, i)) {
			bit_test_clear(mmu->bits.planned, i);
			i++;
			continue;
		}
		for (lo = i; i < end && !page_resident(mmu, i) && !bit_test(mmu->bits.poisoned, i);)
			i++;
		done = prefetch_install(mmu, lo, i - lo, run->written);
		/* A fault got to page lo + done first: go on past it (the budget ends the loop). */
		if (done < i - lo)
			i = lo + done + 1;
	}
	return mmu__prefetch_pending(mmu);
}

void mmu__prefetch_fault(struct mmu *mmu, uint64_t pi, bool resident)
{
	if (!mmu->ws.runs)
		return;
	if (resident) {
		if (bit_test_clear(mmu->bits.prefetched, pi))
			MMU_STAT_INC(&mmu->stats, prefetch_used);
		return;
	}
	bit_test_clear(mmu->bits.prefetched, pi); /* reclaimed since: a first touch again */
	if (bit_test_clear(mmu->bits.planned, pi))
		MMU_STAT_INC(&mmu->stats, prefetch_late);
}

/* Lift the protection of [first, first + n), marked dirty first; reclaim lock held. */
static void prefetch_unprotect(struct mmu *mmu, uint64_t first, uint64_t n)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = (uint64_t)(uintptr_t)(mmu->ram.host + first * MMU_PAGE_SIZE),
			  .len = n * MMU_PAGE_SIZE},
	};
	uint64_t i;

	for (i = first; i < first + n; i++) {
		bit_set(mmu->bits.dirty, i);
		if (mmu->cfg.track_writes)
			bit_set(mmu->bits.written, i);
	}
	MMU_STAT_INC(&mmu->stats, uffdio_writeprotect);
	if (ioctl(mmu->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		/* Still protected: each write is a write-protect fault, as without a plan. */
	}
}

void mmu__prefetch_window(struct mmu *mmu, uint64_t first, uint64_t n)
{
	uint64_t i, lo;

	if (!mmu->ws.runs || !mmu->wp || mmu->dedup)
		return;
	pthread_mutex_lock(&mmu->reclaim_lock);
	for (i = first; i < first + n;) {
		if (!page_resident(mmu, i) || !bit_test_clear(mmu->bits.wswritten, i)) {
			i++;
			continue;
		}
		for (lo = i++; i < first + n && page_resident(mmu, i) &&
			       bit_test_clear(mmu->bits.wswritten, i);)
			i++;
		prefetch_unprotect(mmu, lo, i - lo);
	}
	pthread_mutex_unlock(&mmu->reclaim_lock);
}
