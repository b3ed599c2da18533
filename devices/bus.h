/*
 * Port-I/O and MMIO buses: non-overlapping address ranges, each claimed by
 * one device, kept in a red-black tree keyed by base (libbsd's
 * <bsd/sys/tree.h>). Ranges never overlap, so the range holding an address
 * is the one with the greatest base at or below it: a plain ordered tree
 * answers the interval query without augmenting nodes with a max end.
 *
 * References: a lookup (bus__get) takes a reference on the range under the
 * bus's read lock and drops the lock before the device runs; the caller
 * puts the reference when done. bus__unregister() takes the range out of
 * the tree at once and drops the tree's reference; the range lives until
 * the last access in flight puts its own, and then the device's release()
 * runs. So a range can be removed while a vCPU is inside it, and a device
 * callback may register or unregister ranges, its own included.
 *
 * Accesses no device claims are counted (bus->unclaimed); reads of them
 * return all ones. Reporting them is the caller's job (it knows the RIP).
 */
#ifndef FAULTLINE_BUS_H
#define FAULTLINE_BUS_H

#include <bsd/sys/tree.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_device_ops {
	/*
	 * @offset is relative to the range's base; @len is 1, 2, 4 or 8.
	 * Return 0 or -errno; an error stops the VM with the device's name.
	 * Called without bus locks, on a vCPU thread.
	 */
	int (*read)(void *opaque, uint64_t offset, void *data, unsigned len);
	int (*write)(void *opaque, uint64_t offset, const void *data, unsigned len);
	/* Optional: the range was unregistered and no access is in flight. */
	void (*release)(void *opaque);
};

struct bus_range {
	RB_ENTRY(bus_range) node;
	uint64_t base;
	uint64_t len;
	const char *name;
	const struct bus_device_ops *ops;
	void *opaque;
	unsigned refs; /* atomic: the tree's, plus one per access in flight */
};

RB_HEAD(bus_tree, bus_range);

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	struct bus_tree tree;
	size_t nr;
	uint64_t unclaimed; /* atomic: accesses no range contains */
};

int bus__init(struct bus *bus, const char *name) __attribute__((warn_unused_result));

/* Drop every range still registered (release() runs for each). No access in flight. */
void bus__exit(struct bus *bus);

/*
 * Claim [base, base + len) for a device. Returns 0, -EINVAL (len 0 or the
 * range wraps), -EEXIST (overlaps a claimed range) or -ENOMEM. Any thread.
 */
int bus__register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		  const struct bus_device_ops *ops, void *opaque)
	__attribute__((warn_unused_result));

/*
 * Take the range starting at @base off the bus: later lookups miss it;
 * accesses in flight finish, and the last one runs its release(). Returns
 * 0 or -ENOENT. Any thread, device callbacks included.
 */
int bus__unregister(struct bus *bus, uint64_t base);

/*
 * The range holding all of [addr, addr + len), with a reference the caller
 * drops with bus__put(); NULL when no range holds it.
 */
struct bus_range *bus__get(struct bus *bus, uint64_t addr, uint64_t len);
void bus__put(struct bus_range *r);

/*
 * Dispatch an access of @len bytes at @addr: get, the device's handler,
 * put. Returns the device's result, -ENOENT for an unclaimed access
 * (counted; a read leaves all ones in @data), or -EOPNOTSUPP when the
 * device has no handler for that direction. @name_out, when not NULL,
 * receives the claiming device's name.
 */
int bus__access(struct bus *bus, uint64_t addr, void *data, unsigned len, bool is_write,
		const char **name_out);

#endif
