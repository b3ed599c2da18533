/*
 * What the files of mmu/ share and nobody else sees: shorthands for the
 * page bits (page_bits.h), the budget's arithmetic, and the
 * steps of the fault path that fault-ahead, the monitor's accessor and
 * reclaim reuse. Only the files of mmu/ include it.
 */
#ifndef FAULTLINE_MMU_INT_H
#define FAULTLINE_MMU_INT_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/bitmap.h"
#include "mmu/mmu.h"

static inline bool page_resident(const struct mmu *mmu, uint64_t pi)
{
	return page_bits__resident(&mmu->bits, pi);
}

static inline void pages_mark_resident(struct mmu *mmu, uint64_t first, uint64_t n)
{
	uint64_t pi;

	for (pi = first; pi < first + n; pi++)
		bit_set(mmu->bits.resident, pi);
}

static inline void budget_uncharge(struct mmu *mmu, uint64_t n)
{
	__atomic_sub_fetch(&mmu->resident_pages, n, __ATOMIC_ACQ_REL);
}

static inline uint64_t mmu__limit(const struct mmu *mmu)
{
	return __atomic_load_n(&mmu->limit_pages, __ATOMIC_RELAXED);
}

/*
 * Charge @n pages that nobody asked for yet (fault-ahead, prefetch): only
 * when @spare pages of the budget stay free after them, so that installing
 * ahead never takes the room a fault needs. No reclaim, no fault injection.
 */
static inline bool mmu__charge_spare(struct mmu *mmu, uint64_t n, uint64_t spare)
{
	uint64_t cur = __atomic_load_n(&mmu->resident_pages, __ATOMIC_RELAXED);

	do {
		if (cur + n + spare > mmu__limit(mmu))
			return false;
	} while (!__atomic_compare_exchange_n(&mmu->resident_pages, &cur, cur + n, 0,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	return true;
}

/* Whether an event waits on the userfaultfd: a vCPU's fault goes first. */
static inline bool mmu__event_waiting(const struct mmu *mmu)
{
	struct pollfd p = {.fd = mmu->uffd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

static inline bool mmu__stopping(struct mmu *mmu)
{
	return __atomic_load_n(&mmu->stopping, __ATOMIC_ACQUIRE);
}

/*
 * Install @n pages at host page @first from the backing, for the fault
 * on page @pi (its window). Returns the bytes installed or -errno.
 */
int64_t mmu__install(struct fault_ctx *ctx, uint64_t first, uint64_t n, uint64_t pi);

/* Count a fault by its source (stats: faults, faults_uffd, ...). */
void mmu__count_source(struct mmu *mmu, enum fault_source src);

/*
 * Count how a fault ended (stats: result_*) and, when it ended without its
 * page, say why to the owner (mmu_ops.fault_failed).
 */
void mmu__report(struct fault_ctx *ctx, fault_t r, uint64_t elapsed_ns);

/*
 * Drop up to @want clean file pages, mmu->reclaim_lock held (reclaim.c).
 * Returns the pages dropped.
 */
uint64_t mmu__reclaim_locked(struct mmu *mmu, uint64_t want);

/*
 * A fault on page @pi, not resident. Faults on pages reclaim dropped within
 * the last budget's worth of drops, less the other faults, reached
 * mmu__thrash_faults() (mmu.h, thrashing)? Then the budget cannot hold what
 * the guest uses: out of memory. Counts refaults_reclaimed.
 */
bool mmu__thrashing(struct mmu *mmu, uint64_t pi);

/*
 * --record-ws: pages [first, first + n) were installed for the fault on
 * page @pi (first recorded); record those not recorded yet (prefetch.c).
 */
void mmu__record_installed(struct mmu *mmu, uint64_t first, uint64_t n, uint64_t pi);

/*
 * --prefetch: a fault on page @pi, not resident (@resident false) or
 * resident: count it against the plan (prefetch_late, prefetch_used).
 */
void mmu__prefetch_fault(struct mmu *mmu, uint64_t pi, bool resident);

/*
 * --prefetch: a fault installed the window [first, first + n); its pages
 * the recording saw written go writable (dirty) now, as the prefetch
 * would have installed them. Caller holds nothing.
 */
void mmu__prefetch_window(struct mmu *mmu, uint64_t first, uint64_t n);

struct uffd_msg;

/* Serve one userfaultfd event through the engine, then fault-ahead (uffd.c). */
void mmu__serve(struct mmu *mmu, const struct uffd_msg *msg);

#endif
