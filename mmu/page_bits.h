/*
 * The state of each page of guest RAM, one bit per host page index, owned
 * by the MMU. The fault path, reclaim, the monitor's accessor and the page
 * sharer (dedup) all read and write a page's state here, and nowhere else.
 *
 * Bits are read and written with atomics from any thread. A decision that
 * reads more than one bit, or that waits, takes mmu->reclaim_lock.
 *
 * The MMU's own bits:
 *   resident  installed and charged to the budget.
 *   dirty     written or pinned since installed: not reclaimable.
 *   poisoned  UFFDIO_POISON'ed, or reported poisoned by the host.
 *   zeroed    released by dedup as zeros: the next install is zeros.
 *   written   --diff-snapshots: written, or made a first touch again,
 *             since the last snapshot (mmu__writes_reset()).
 *   recorded  --record-ws: in the recording already.
 *   planned   --prefetch: in the plan, not installed yet.
 *   prefetched --prefetch: installed by the prefetch, not faulted on since.
 *   wswritten --prefetch: planned, and written when recorded: a fault's
 *             window that installs it makes it writable.
 * The page sharer's bits (all clear without dedup):
 *   merged    maps a shared page: a write breaks copy-on-write.
 *   busy      a merge owns the page now: a writer parks or waits.
 *   nomerge   pinned: the monitor holds pointers into it; never merged.
 *   waiting   parked: a write fault was left pending while it was busy.
 */
#ifndef FAULTLINE_PAGE_BITS_H
#define FAULTLINE_PAGE_BITS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/bitmap.h"

struct page_bits {
	unsigned long *resident;
	unsigned long *dirty;
	unsigned long *poisoned;
	unsigned long *zeroed;
	unsigned long *merged;
	unsigned long *busy;
	unsigned long *nomerge;
	unsigned long *waiting;
	unsigned long *written;
	unsigned long *recorded;
	unsigned long *planned;
	unsigned long *prefetched;
	unsigned long *wswritten;
	pthread_cond_t idle; /* broadcast, under the lock, when a page stops being busy */
	bool ready;	     /* page_bits__init() ran: idle is initialised */
};

/*
 * Allocate every bit, all clear, for @nr_pages pages. 0 or -ENOMEM. Undo
 * with page_bits__exit(), also after a failure or on zeroed bits.
 */
int page_bits__init(struct page_bits *pb, uint64_t nr_pages) __attribute__((warn_unused_result));
void page_bits__exit(struct page_bits *pb);

static inline bool page_bits__resident(const struct page_bits *pb, uint64_t pi)
{
	return bit_test(pb->resident, pi);
}

static inline bool page_bits__dirty(const struct page_bits *pb, uint64_t pi)
{
	return bit_test(pb->dirty, pi);
}

static inline bool page_bits__poisoned(const struct page_bits *pb, uint64_t pi)
{
	return bit_test(pb->poisoned, pi);
}

static inline bool page_bits__merged(const struct page_bits *pb, uint64_t pi)
{
	return bit_test(pb->merged, pi);
}

static inline bool page_bits__busy(const struct page_bits *pb, uint64_t pi)
{
	return bit_test(pb->busy, pi);
}

/* Whether the page sharer may look at page @pi: resident, whole, not shared, busy or pinned. */
static inline bool page_bits__mergeable(const struct page_bits *pb, uint64_t pi)
{
	return bit_test(pb->resident, pi) && !bit_test(pb->poisoned, pi) &&
	       !bit_test(pb->merged, pi) && !bit_test(pb->busy, pi) && !bit_test(pb->nomerge, pi);
}

/* A write fault on busy page @pi is left pending: page_bits__unbusy() says so. */
static inline void page_bits__park(struct page_bits *pb, uint64_t pi)
{
	bit_set(pb->waiting, pi);
}

/* The monitor keeps pointers into page @pi: it is never merged from now on. */
static inline void page_bits__pin(struct page_bits *pb, uint64_t pi)
{
	bit_set(pb->nomerge, pi);
}

/* Wait, with @lock (mmu->reclaim_lock) held, until page @pi is not busy. */
void page_bits__wait(struct page_bits *pb, uint64_t pi, pthread_mutex_t *lock);

/*
 * Page @pi stops being busy, lock held: the waiters of page_bits__wait()
 * go on. Returns true when a write fault was parked on it meanwhile: the
 * caller wakes it on the userfaultfds.
 */
bool page_bits__unbusy(struct page_bits *pb, uint64_t pi);

#endif
