/*
 * Port-I/O and MMIO buses: non-overlapping address ranges, each claimed by
 * one device. Lookup is a binary search over ranges sorted by base.
 *
 * Locking: bus__access() holds the bus's read lock across the device
 * callback; bus__register()/bus__unregister() take the write lock, so a
 * range is never removed while a vCPU is inside its handler. Callbacks
 * must not register or unregister ranges on the same bus.
 */
#ifndef FAULTLINE_BUS_H
#define FAULTLINE_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_device_ops {
	/*
	 * @offset is relative to the range's base; @len is 1, 2, 4 or 8.
	 * Return 0 or -errno; an error stops the VM with the device's name.
	 */
	int (*read)(void *opaque, uint64_t offset, void *data, unsigned len);
	int (*write)(void *opaque, uint64_t offset, const void *data, unsigned len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const char *name;
	const struct bus_device_ops *ops;
	void *opaque;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base, never overlapping */
	size_t nr, cap;
};

int bus__init(struct bus *bus, const char *name) __attribute__((warn_unused_result));
void bus__exit(struct bus *bus);

/*
 * Claim [base, base + len) for a device. Returns 0, -EINVAL (len 0 or the
 * range wraps), -EEXIST (overlaps a claimed range) or -ENOMEM.
 */
int bus__register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		  const struct bus_device_ops *ops, void *opaque)
	__attribute__((warn_unused_result));

/* Release the range starting at @base. Returns 0 or -ENOENT. */
int bus__unregister(struct bus *bus, uint64_t base);

/*
 * Dispatch an access of @len bytes at @addr. Returns the device's result,
 * -ENOENT when no range contains the whole access (an unclaimed access),
 * or -EOPNOTSUPP when the device has no handler for that direction.
 * On -ENOENT a read leaves all ones in @data. @name_out, when not NULL,
 * receives the claiming device's name.
 */
int bus__access(struct bus *bus, uint64_t addr, void *data, unsigned len, bool is_write,
		const char **name_out);

#endif
