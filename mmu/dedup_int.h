/*
 * What the files of dedup share and nobody else sees: the statistics
 * macros, the views of a page, the indexes' trees, and the steps one file
 * takes for another. dedup.c: knobs, mappings, shared pages, page state,
 * set-up, counters; dedup_merge.c: merging and the scan; dedup_cow.c:
 * copy-on-write break, discard, unmerge, and the threads.
 */
#ifndef FAULTLINE_DEDUP_INT_H
#define FAULTLINE_DEDUP_INT_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>

#include "mmu/dedup.h"
#include "mmu/mmu.h"

#define PAGE		      MMU_PAGE_SIZE
#define DEDUP_MAP_RESERVE_MIN 512ULL /* mappings left to the rest of the process */
#define DEDUP_MAPS_PER_MERGE  2ULL   /* a page mapped into the guest view splits it in three */

#define D_STAT_SET(d, name, v) __atomic_store_n(&(d)->stats.name, (v), __ATOMIC_RELAXED)
#define D_STAT_ADD(d, name, n) __atomic_add_fetch(&(d)->stats.name, (n), __ATOMIC_RELAXED)
#define D_STAT_INC(d, name)    D_STAT_ADD(d, name, 1)
#define D_STAT(d, name)	       __atomic_load_n(&(d)->stats.name, __ATOMIC_RELAXED)

extern const uint8_t dedup_zero_page[PAGE];

static inline int stable_cmp(const struct dedup_node *a, const struct dedup_node *b)
{
	if (a->checksum != b->checksum)
		return a->checksum < b->checksum ? -1 : 1;
	return a->slot < b->slot ? -1 : a->slot > b->slot;
}

static inline int unstable_cmp(const struct dedup_rmap *a, const struct dedup_rmap *b)
{
	if (a->checksum != b->checksum)
		return a->checksum < b->checksum ? -1 : 1;
	return a->pi < b->pi ? -1 : a->pi > b->pi;
}

/* libbsd's generator defines helpers some files do not use. */
#define __unused __attribute__((unused))
RB_PROTOTYPE(dedup_stable, dedup_node, link, stable_cmp)
RB_PROTOTYPE(dedup_unstable, dedup_rmap, link, unstable_cmp)
#undef __unused

static inline uint8_t *guest_page(const struct dedup *d, uint64_t pi)
{
	return d->mmu->ram.host + pi * PAGE;
}

static inline uint8_t *alias_page(const struct dedup *d, uint64_t pi)
{
	return d->mmu->alias + pi * PAGE;
}

static inline uint8_t *stable_page(const struct dedup *d, const struct dedup_node *node)
{
	return d->stable + node->slot * PAGE;
}

/* Free pages [@first, @first + @n) of memfd @fd (every view loses them). 0 or -errno. */
static inline int punch_pages(int fd, uint64_t first, uint64_t n)
{
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(first * PAGE),
			 (off_t)(n * PAGE)) < 0
		       ? -errno
		       : 0;
}

static inline uint64_t knob(const struct dedup *d, const uint64_t *field)
{
	(void)d;
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

/* Shared steps: where each is defined. */
struct dedup_node *dedup__stable_find(struct dedup *d, uint64_t checksum,
				      const uint8_t *page);			  /* dedup.c */
uint64_t dedup__count_maps(const struct dedup *d);				  /* dedup.c */
bool dedup__maps_allow(struct dedup *d, uint64_t n);				  /* dedup.c */
uint64_t dedup__slots_take(struct dedup *d, uint64_t want, uint64_t *slot);	  /* dedup.c */
void dedup__slot_put(struct dedup *d, uint64_t slot);				  /* dedup.c */
void dedup__update_sharing(struct dedup *d);					  /* dedup.c */
void dedup__node_put(struct dedup *d, struct dedup_node *node, bool keep_charge); /* dedup.c */
bool dedup__candidate(const struct dedup *d, uint64_t pi);			  /* dedup.c */
bool dedup__was_protected(const struct dedup *d, uint64_t pi);			  /* dedup.c */
void dedup__unprotect(struct dedup *d, uint64_t pi, bool was_protected);	  /* dedup.c */
void dedup__unbusy(struct dedup *d, uint64_t pi);				  /* dedup.c */
void dedup__sleep(struct dedup *d, uint64_t ms, bool forever);			  /* dedup_cow.c */

#endif
