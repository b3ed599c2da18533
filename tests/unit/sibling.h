/*
 * A sibling fault's charge that is not over, for the unit tests of the
 * budget: a page charged for an install in progress, as two faults on one
 * page both charge it until the one that lost gives its charge back.
 */
#ifndef FAULTLINE_TESTS_SIBLING_H
#define FAULTLINE_TESTS_SIBLING_H

#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
#include "mmu/mmu.h"
#include "tests/unit/unit.h"

struct sibling {
	struct mmu *mmu;
	unsigned ms; /* how long the charge lasts once started */
	pthread_t thread;
	bool started;
};

/* Pages charged by installs that are not over (mmu.charging). */
static inline uint64_t charging(const struct mmu *mmu)
{
	return __atomic_load_n(&mmu->charging, __ATOMIC_ACQUIRE);
}

/* Charge one page as a sibling's install in progress would. */
static inline void sibling_charges(struct sibling *s, struct mmu *mmu)
{
	s->mmu = mmu;
	s->started = false;
	__atomic_add_fetch(&mmu->resident_pages, 1, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&mmu->charging, 1, __ATOMIC_ACQ_REL);
}

/* The install ends: the charge goes back. */
static inline void sibling_ends(struct sibling *s)
{
	__atomic_sub_fetch(&s->mmu->resident_pages, 1, __ATOMIC_ACQ_REL);
	__atomic_sub_fetch(&s->mmu->charging, 1, __ATOMIC_RELEASE);
}

static inline void *sibling__thread(void *arg)
{
	struct sibling *s = arg;

	usleep(s->ms * 1000);
	sibling_ends(s);
	return NULL;
}

/* The install ends @ms from now, on a thread of its own; sibling_join() waits for it. */
static inline void sibling_ends_after(struct sibling *s, unsigned ms)
{
	s->ms = ms;
	ck_assert_int_eq(pthread_create(&s->thread, NULL, sibling__thread, s), 0);
	s->started = true;
}

static inline void sibling_join(struct sibling *s)
{
	if (s->started)
		pthread_join(s->thread, NULL);
	s->started = false;
}

#endif
