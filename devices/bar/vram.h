/*
 * vram: device memory with a small fast pool, the graphics case of
 * seed 002 (NOPAGE_REFAULT). The BAR is larger than the pool; each BAR
 * page lives either in a pool slot (then nopage answers PAGE with the slot
 * and the guest accesses it without exits) or in system memory. An access
 * to a page in system memory migrates it: nopage picks a pool slot (the
 * oldest, FIFO), zaps the page living there out of the guest's view and
 * copies it to system memory, copies the wanted page into the slot, and
 * answers REFAULT; the access looks again and finds it in the pool.
 *
 * Memory: each BAR page is charged to the VM's budget on first touch (it
 * is guest-visible memory); nopage answers OOM when the budget is spent.
 * The pool is the device's own memory. Pages start as zeros.
 */
#ifndef FAULTLINE_VRAM_H
#define FAULTLINE_VRAM_H

#include <pthread.h>
#include <stdint.h>

#include "lib/blob.h"
#include "mmu/bar.h"
#include "mmu/mmu.h"

#define VRAM_COUNTER_TO_POOL   0 /* bar.stats.dev[] */
#define VRAM_COUNTER_TO_SYSTEM 1

struct vram_dev {
	struct bar bar;
	struct mmu *mmu;   /* the budget */
	uint64_t nr_pages; /* of the BAR */
	uint64_t pool_pages;
	uint8_t *pool;	      /* pool_pages pages */
	uint8_t *sys;	      /* a page per BAR page */
	int64_t *slot_of;     /* BAR page -> pool slot, -1: in system memory */
	int64_t *page_in;     /* pool slot -> BAR page, -1: free */
	uint8_t *charged;     /* BAR page charged to the budget */
	uint64_t hand;	      /* the next slot to reuse */
	pthread_mutex_t lock; /* the tables above; taken before the BAR's */
};

/*
 * A vram BAR of @size bytes at @gpa with a pool of @pool bytes (both
 * positive multiples of 4 KiB, pool <= size). Returns 0 or -errno
 * (reported). Undo with vram__exit().
 */
int vram__init(struct vram_dev *vram, uint64_t size, uint64_t pool, uint64_t gpa, struct mmu *mmu,
	       const struct bar_mapper *mapper, unsigned max_retries, unsigned retry_ms)
	__attribute__((warn_unused_result));
void vram__exit(struct vram_dev *vram);

/*
 * Its state as blob section "vram": the BAR's size and pool, then each page
 * charged to the budget (each one the guest touched) as the guest sees it,
 * from the pool or system memory. Under vram->lock.
 */
void vram__save(struct vram_dev *vram, struct blob *b);
/*
 * Back from one, into a device of the same size and pool: the pages go to
 * system memory (the pool fills again as the guest touches them) and are
 * charged to the budget. Bad input, or a budget they do not fit: -EINVAL,
 * @r says why, and the device keeps its state.
 */
int vram__restore(struct vram_dev *vram, struct blob_reader *r) __attribute__((warn_unused_result));

#endif
