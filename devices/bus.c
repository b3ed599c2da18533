#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"

int bus__init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus__exit(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
	pthread_rwlock_destroy(&bus->lock);
}

/* Index of the first range whose base is > @addr. Caller holds the lock. */
static size_t bus__upper(const struct bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bus->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The range containing [addr, addr + len), or NULL. Caller holds the lock. */
static const struct bus_range *bus__find(const struct bus *bus, uint64_t addr, uint64_t len)
{
	size_t i = bus__upper(bus, addr);
	const struct bus_range *r;
	uint64_t end;

	if (i == 0 || __builtin_add_overflow(addr, len, &end))
		return NULL;
	r = &bus->ranges[i - 1];
	return end <= r->base + r->len ? r : NULL;
}

int bus__register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		  const struct bus_device_ops *ops, void *opaque)
{
	struct bus_range *r;
	uint64_t end;
	size_t i;
	int ret = 0;

	if (len == 0 || __builtin_add_overflow(base, len - 1, &end))
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = bus__upper(bus, base);
	if ((i > 0 && bus->ranges[i - 1].base + bus->ranges[i - 1].len - 1 >= base) ||
	    (i < bus->nr && bus->ranges[i].base <= end)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	if (bus->nr == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 8;

		r = realloc(bus->ranges, cap * sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
			goto out_unlock;
		}
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(*r));
	bus->ranges[i] = (struct bus_range){base, len, name, ops, opaque};
	bus->nr++;
out_unlock:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus__unregister(struct bus *bus, uint64_t base)
{
	size_t i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus__upper(bus, base);
	if (i > 0 && bus->ranges[i - 1].base == base) {
		memmove(&bus->ranges[i - 1], &bus->ranges[i],
			(bus->nr - i) * sizeof(bus->ranges[0]));
		bus->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus__access(struct bus *bus, uint64_t addr, void *data, unsigned len, bool is_write,
		const char **name_out)
{
	const struct bus_range *r;
	int ret;

	pthread_rwlock_rdlock(&bus->lock);
	r = bus__find(bus, addr, len);
	if (!r) {
		if (!is_write)
			memset(data, 0xff, len);
		ret = -ENOENT;
	} else if (is_write) {
		ret = r->ops->write ? r->ops->write(r->opaque, addr - r->base, data, len)
				    : -EOPNOTSUPP;
	} else {
		ret = r->ops->read ? r->ops->read(r->opaque, addr - r->base, data, len)
				   : -EOPNOTSUPP;
	}
	if (name_out)
		*name_out = r ? r->name : NULL;
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}
