/*
 * virtio-balloon over virtio-mmio, for free page reporting: the guest
 * tells the host which of its pages are free (VIRTIO_BALLOON_F_REPORTING;
 * Linux reports free blocks of 2 MiB a few seconds after they are freed),
 * and faultline drops them from guest memory and from the budget, so that
 * a guest that used memory once and freed it does not keep it resident.
 * The next touch of such a page is a first touch again, served by the
 * fault engine.
 *
 * The host may also ask for memory (virtio_balloon__set_target(), `ctl
 * balloon SIZE`): the driver then allocates pages and puts their numbers in
 * the inflate queue, and they are dropped the same way; a lower target
 * deflates it (nothing to do: a page comes back when touched).
 * VIRTIO_BALLOON_F_DEFLATE_ON_OOM lets the guest take pages back rather
 * than run out of memory.
 *
 * The reports are popped unmapped: the device reads their addresses, never
 * the memory they describe. Served on the vCPU thread that notifies.
 */
#ifndef FAULTLINE_VIRTIO_BALLOON_H
#define FAULTLINE_VIRTIO_BALLOON_H

#include <stdint.h>

#include "devices/virtio_mmio.h"

#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING	5
#define VIRTIO_BALLOON_Q_INFLATE	0
#define VIRTIO_BALLOON_Q_DEFLATE	1
#define VIRTIO_BALLOON_Q_REPORTING	2
#define VIRTIO_BALLOON_PFN_SHIFT	12 /* PFNs in the inflate queue are of 4 KiB pages */

struct virtio_balloon {
	struct virtio_mmio mmio;
	/*
	 * Drop the whole pages of [gpa, gpa + len): mmu__discard(). Returns 0
	 * with what it dropped and kept, -EFAULT outside guest RAM, or -errno.
	 */
	int (*discard)(void *ctx, uint64_t gpa, uint64_t len, uint64_t *dropped, uint64_t *kept);
	void *discard_ctx;
	bool mmio_ready;    /* mmio initialised (its lock exists) */
	uint32_t num_pages; /* mmio.lock: the target the host set */
	uint32_t actual;    /* mmio.lock: pages in the balloon, as the driver says */
	/* atomic, for --stats */
	uint64_t reports, reported_bytes, pages_dropped, pages_kept, inflated, errors;
};

extern const struct virtio_dev_ops virtio_balloon_ops;

/* Ask the driver for @pages pages (4 KiB) in the balloon, and tell it so. Any thread. */
void virtio_balloon__set_target(struct virtio_balloon *b, uint32_t pages);

/* The target, and the pages in the balloon as the driver last said. Any thread. */
void virtio_balloon__sizes(struct virtio_balloon *b, uint32_t *target, uint32_t *actual);

#endif
