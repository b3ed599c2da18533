/*
 * virtio over MMIO (the virtio 1.x "virtio-mmio" transport, version 2) and
 * the split virtqueue, for devices a Linux guest finds through
 * "virtio_mmio.device=4K@GPA:IRQ" on its command line.
 *
 * Everything the guest puts in a queue is untrusted. virtq__pop() checks
 * every index against the queue size, follows at most as many descriptors
 * as the queue holds (a loop is an error, not a hang), refuses indirect
 * descriptors (not offered) and maps every buffer through the MMU's
 * checked accessor, which refuses anything that is not guest RAM. A
 * malformed chain puts the device in DEVICE_NEEDS_RESET: it stops
 * processing, says why once on stderr, and the VM goes on.
 */
#ifndef FAULTLINE_VIRTIO_MMIO_H
#define FAULTLINE_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "lib/blob.h"
#include "mmu/guest_ram.h"

#define VIRTIO_MMIO_SIZE	  0x1000
#define VIRTIO_MMIO_MAGIC	  0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR	  0x544c4146 /* "FALT" */
#define VIRTIO_MAX_QUEUES	  4
#define VIRTQ_SIZE_MAX		  256
#define VIRTIO_CHAIN_MAX	  130 /* descriptors in one chain: seg_max + header + status */
#define VIRTIO_WHY_LEN		  160
#define VIRTIO_F_VERSION_1	  32
#define VIRTIO_STATUS_NEEDS_RESET 0x40

/* One buffer of a descriptor chain, mapped. */
struct virtio_buf {
	uint64_t gpa;
	uint32_t len;
	bool device_writes; /* VIRTQ_DESC_F_WRITE */
	uint8_t *host;
};

struct virtio_chain {
	uint16_t head;
	unsigned n;
	struct virtio_buf buf[VIRTIO_CHAIN_MAX];
};

struct virtq {
	uint16_t num; /* QueueNum: a power of two, 1..VIRTQ_SIZE_MAX */
	bool ready;
	uint64_t desc, avail, used; /* guest-physical */
	uint16_t last_avail;	    /* next avail entry the device takes */
	uint16_t used_idx;	    /* next used entry the device writes */
};

/*
 * Take the next available chain of @q. Returns 1 and fills @c, 0 when the
 * queue is empty, or -EINVAL with the reason in @why (VIRTIO_WHY_LEN).
 * With @map false the buffers are not mapped (host NULL): a device that
 * wants only their addresses (the balloon's free page reports) does not
 * touch, or fault in, the memory they describe.
 */
int virtq__pop(struct virtq *q, const struct guest_access *ga, struct virtio_chain *c, bool map,
	       char *why) __attribute__((warn_unused_result));

/*
 * A buffer a device keeps until it is done with it (ga->hold, or ga->ptr
 * without one); give it back with ga->release. NULL with *@err as ga->ptr.
 */
void *virtq__hold(const struct guest_access *ga, uint64_t gpa, uint64_t len, int *err);

/*
 * The device is done with @c's buffers: give back what virtq__pop() held
 * (ga->release), so that a page the guest frees later can go. A chain that
 * failed to pop has given back its own.
 */
void virtq__release(const struct guest_access *ga, const struct virtio_chain *c);

/*
 * Return chain @head to the driver with @len bytes written. Returns 0, or
 * -EINVAL with the reason in @why. Whether to interrupt: virtq__wants_irq().
 */
int virtq__push(struct virtq *q, const struct guest_access *ga, uint16_t head, uint32_t len,
		char *why) __attribute__((warn_unused_result));

/* Whether the driver asked for an interrupt on used buffers (no NO_INTERRUPT flag). */
bool virtq__wants_irq(const struct virtq *q, const struct guest_access *ga);

struct virtio_mmio;

struct virtio_dev_ops {
	const char *name; /* "virtio-blk", for messages and --stats */
	uint32_t device_id;
	unsigned nr_queues;
	uint32_t unmapped_queues; /* bit q: queue q's buffers are popped unmapped (virtq__pop) */
	/* Device-specific features (VIRTIO_F_VERSION_1 is added by the transport). */
	uint64_t (*features)(void *dev);
	/* Read @len bytes at @offset of the device's configuration space; 0 or -EINVAL. Lock held.
	 */
	int (*config_read)(void *dev, uint64_t offset, void *data, unsigned len);
	/* Optional: the driver wrote there (NULL: such writes are ignored). Lock held. */
	int (*config_write)(void *dev, uint64_t offset, const void *data, unsigned len);
	/*
	 * The driver notified queue @queue: serve what it holds through
	 * virtio_mmio__pop()/push(). Called with the transport's lock held.
	 */
	void (*notify)(void *dev, struct virtio_mmio *vm, unsigned queue);
	/* Optional: the driver reset the device (queues forgotten). Lock held. */
	void (*reset)(void *dev);
};

struct virtio_mmio {
	pthread_mutex_t lock;
	const struct virtio_dev_ops *ops;
	void *dev;
	struct guest_access ga;
	uint64_t gpa;
	unsigned irq;
	int (*set_irq)(void *ctx, unsigned irq, int level); /* returns 0 or -errno */
	void *irq_ctx;
	uint32_t status, dev_features_sel, drv_features_sel, queue_sel, int_status;
	uint64_t drv_features;
	struct virtq q[VIRTIO_MAX_QUEUES];
	char broken[VIRTIO_WHY_LEN]; /* why the device needs a reset; empty when fine */
	uint64_t notifies, chains, irqs, malformed; /* atomic, for --stats */
};

extern const struct bus_device_ops virtio_mmio_ops;

/* Set up the transport for device @dev with @ops at @gpa, interrupting on @irq. */
int virtio_mmio__init(struct virtio_mmio *vm, const struct virtio_dev_ops *ops, void *dev,
		      struct guest_access ga, uint64_t gpa, unsigned irq,
		      int (*set_irq)(void *ctx, unsigned irq, int level), void *irq_ctx)
	__attribute__((warn_unused_result));
void virtio_mmio__exit(struct virtio_mmio *vm);

/* For ops->notify, lock held: virtq__pop() on queue @queue; a malformed chain breaks the device. */
int virtio_mmio__pop(struct virtio_mmio *vm, unsigned queue, struct virtio_chain *c);

/* For ops->notify, lock held: virtq__push(), then interrupt the driver if it wants. */
void virtio_mmio__push(struct virtio_mmio *vm, unsigned queue, uint16_t head, uint32_t len);

/*
 * virtio_mmio__push() of a chain the device popped, after virtq__release()
 * of its buffers: how a device returns a chain it is done with. A chain
 * never returned (a broken device) keeps its pages held.
 */
void virtio_mmio__push_chain(struct virtio_mmio *vm, unsigned queue, const struct virtio_chain *c,
			     uint32_t len);

/* The device's configuration changed: tell the driver (an interrupt). Lock held. */
void virtio_mmio__config_changed(struct virtio_mmio *vm);

/* For ops->notify, lock held: the device cannot go on (DEVICE_NEEDS_RESET); @why is reported once.
 */
void virtio_mmio__break(struct virtio_mmio *vm, const char *why);

/*
 * The transport's registers and every queue's addresses and indices, as
 * blob section "virtio-mmio". Devices that serve each request on the vCPU
 * that notified them (virtio-blk) hold nothing in flight once the vCPUs
 * are out of the guest, so this is all their state. Under the lock.
 */
void virtio_mmio__save(struct virtio_mmio *vm, struct blob *b);
/*
 * The same, lock held, for a device that saves its own state with it: each
 * queue q in bit q of @in_hand has one chain the device took and has not
 * returned, saved as not yet taken, so that a restored device takes it again.
 */
void virtio_mmio__save_locked(struct virtio_mmio *vm, struct blob *b, uint32_t in_hand);
/*
 * Back from one: every value is checked first (queue sizes, features the
 * device offers, the status); a bad one is refused (-EINVAL, @r says why)
 * and the transport keeps its state.
 */
int virtio_mmio__restore(struct virtio_mmio *vm, struct blob_reader *r)
	__attribute__((warn_unused_result));

#endif
