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
 * The guest's memory statistics (VIRTIO_BALLOON_F_STATS_VQ): the driver
 * leaves one buffer of (tag, value) pairs in the stats queue; the device
 * keeps it, and asks for fresh values by giving it back (used, an
 * interrupt), which the driver answers with a new buffer. Asked only when
 * the host wants them (virtio_balloon__guest_stats()), so an idle guest is
 * never woken for them.
 *
 * The reports are popped unmapped: the device reads their addresses, never
 * the memory they describe. Served on the vCPU thread that notifies.
 */
#ifndef FAULTLINE_VIRTIO_BALLOON_H
#define FAULTLINE_VIRTIO_BALLOON_H

#include <stdint.h>

#include "devices/virtio/virtio_mmio.h"

#define VIRTIO_BALLOON_F_STATS_VQ	1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING	5
/*
 * Queues are numbered as Linux and QEMU number them: those of features not
 * negotiated take no number. So the reporting queue is 3 after a stats
 * queue, 2 without one.
 */
#define VIRTIO_BALLOON_Q_INFLATE 0
#define VIRTIO_BALLOON_Q_DEFLATE 1
#define VIRTIO_BALLOON_Q_STATS	 2
#define VIRTIO_BALLOON_PFN_SHIFT 12   /* PFNs in the inflate queue are of 4 KiB pages */
#define VIRTIO_BALLOON_S_NR	 16   /* statistics tags kept: 0..15 */
#define VIRTIO_BALLOON_STATS_MAX 4096 /* bytes of statistics read from one buffer */

/* The guest's statistics, as the driver last gave them. */
struct virtio_balloon_stats {
	uint64_t val[VIRTIO_BALLOON_S_NR];
	uint32_t present; /* bit t: tag t was given */
	uint64_t age_ms;  /* since they were given */
	uint64_t updates; /* buffers of statistics the driver gave */
};

struct virtio_balloon {
	struct virtio_mmio mmio;
	/*
	 * Drop the whole pages of [gpa, gpa + len): mmu__discard(). Returns 0
	 * with what it dropped and kept, -EFAULT outside guest RAM, or -errno.
	 */
	int (*discard)(void *ctx, uint64_t gpa, uint64_t len, uint64_t *dropped, uint64_t *kept);
	void *discard_ctx;
	/*
	 * Optional: the target or the driver's count changed (mmio.lock held:
	 * it may only publish). The control socket's `balloon` event.
	 */
	void (*changed)(void *ctx, uint32_t target, uint32_t actual);
	void *changed_ctx;
	bool mmio_ready;    /* mmio initialised (its lock exists) */
	uint32_t num_pages; /* written under mmio.lock, read atomically: the host's target */
	uint32_t actual;    /* written under mmio.lock, read atomically: what the driver holds */
	/* mmio.lock: the statistics and the buffer they came in, held until asked again */
	uint64_t stats[VIRTIO_BALLOON_S_NR];
	uint32_t stats_present;
	uint64_t stats_ns; /* CLOCK_MONOTONIC when they came */
	bool stats_held;
	uint16_t stats_head;
	/* atomic, for --stats */
	uint64_t reports, reported_bytes, pages_dropped, pages_kept, inflated, errors,
		stats_updates;
};

extern const struct virtio_dev_ops virtio_balloon_ops;

/*
 * Ask the driver for @pages pages (4 KiB) in the balloon, and tell it so.
 * Any thread but a vCPU's. Returns 0, or -EBUSY when a vCPU held the device
 * for 100 ms (it waits in it: a buffer the budget cannot back, --on-oom
 * pause), which a host's call must not wait out.
 */
int virtio_balloon__set_target(struct virtio_balloon *b, uint32_t pages)
	__attribute__((warn_unused_result));

/* The target, and the pages in the balloon as the driver last said. Any thread; never waits. */
void virtio_balloon__sizes(struct virtio_balloon *b, uint32_t *target, uint32_t *actual);

/*
 * The guest's statistics into @out. When @may_ask and the last are older
 * than @max_age_ms (or there are none), ask the driver for fresh ones and
 * wait up to @wait_ms for them. @may_ask false (a paused VM): the device
 * touches no guest memory. Any thread but a vCPU's (the driver answers on
 * one). When a vCPU held the device for 100 ms, nothing (present 0).
 */
void virtio_balloon__guest_stats(struct virtio_balloon *b, bool may_ask, unsigned max_age_ms,
				 unsigned wait_ms, struct virtio_balloon_stats *out);

/* The name of statistics tag @tag ("free_memory"), NULL past VIRTIO_BALLOON_S_NR. */
const char *virtio_balloon__stat_name(unsigned tag);

/*
 * The balloon's state as blob section "virtio-balloon": its transport, the
 * target and the driver's count, the last statistics and the buffer they
 * came in (held until they are asked for again). The pages in the balloon
 * are the guest's to leave alone: they were dropped, and read as zeros.
 * A restore checks every value (-EINVAL, @r says why) and keeps the
 * device's state on a bad one.
 */
void virtio_balloon__save(struct virtio_balloon *b, struct blob *blob);
int virtio_balloon__restore(struct virtio_balloon *b, struct blob_reader *r)
	__attribute__((warn_unused_result));

#endif
