#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/bus.h"

static int bus_range_cmp(const struct bus_range *a, const struct bus_range *b)
{
	return a->base < b->base ? -1 : a->base > b->base;
}

/* libbsd leaves __unused undefined (a Linux struct member has that name). */
#define __unused __attribute__((__unused__))
RB_GENERATE_STATIC(bus_tree, bus_range, node, bus_range_cmp)
#undef __unused

int bus__init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	RB_INIT(&bus->tree);
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus__put(struct bus_range *r)
{
	if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL))
		return;
	if (r->ops->release)
		r->ops->release(r->opaque);
	free(r);
}

void bus__exit(struct bus *bus)
{
	struct bus_range *r, *next;

	RB_FOREACH_SAFE(r, bus_tree, &bus->tree, next)
	{
		RB_REMOVE(bus_tree, &bus->tree, r);
		bus__put(r);
	}
	bus->nr = 0;
	pthread_rwlock_destroy(&bus->lock);
}

/* The range with the greatest base <= @addr, or NULL. Caller holds the lock. */
static struct bus_range *bus_floor(const struct bus *bus, uint64_t addr)
{
	struct bus_range *n = RB_ROOT(&bus->tree), *best = NULL;

	while (n) {
		if (n->base <= addr) {
			best = n;
			n = RB_RIGHT(n, node);
		} else {
			n = RB_LEFT(n, node);
		}
	}
	return best;
}

/* Whether [base, end] meets a registered range. Caller holds the lock. */
static bool bus_overlaps(const struct bus *bus, uint64_t base, uint64_t end)
{
	struct bus_range *r = bus_floor(bus, end);

	return r && r->base + (r->len - 1) >= base;
}

int bus__register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		  const struct bus_device_ops *ops, void *opaque)
{
	struct bus_range *r;
	uint64_t end;
	int ret = 0;

	if (len == 0 || __builtin_add_overflow(base, len - 1, &end))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct bus_range){
		.base = base, .len = len, .name = name, .ops = ops, .opaque = opaque, .refs = 1};
	pthread_rwlock_wrlock(&bus->lock);
	if (bus_overlaps(bus, base, end)) {
		ret = -EEXIST;
		free(r);
	} else {
		RB_INSERT(bus_tree, &bus->tree, r);
		bus->nr++;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus__unregister(struct bus *bus, uint64_t base)
{
	struct bus_range key = {.base = base}, *r;

	pthread_rwlock_wrlock(&bus->lock);
	r = RB_FIND(bus_tree, &bus->tree, &key);
	if (r) {
		RB_REMOVE(bus_tree, &bus->tree, r);
		bus->nr--;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!r)
		return -ENOENT;
	bus__put(r); /* the tree's reference */
	return 0;
}

struct bus_range *bus__get(struct bus *bus, uint64_t addr, uint64_t len)
{
	struct bus_range *r;
	uint64_t end;

	if (len == 0 || __builtin_add_overflow(addr, len - 1, &end))
		return NULL;
	pthread_rwlock_rdlock(&bus->lock);
	r = bus_floor(bus, addr);
	if (r && end - r->base <= r->len - 1)
		__atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
	else
		r = NULL;
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

int bus__access(struct bus *bus, uint64_t addr, void *data, unsigned len, bool is_write,
		const char **name_out)
{
	struct bus_range *r = bus__get(bus, addr, len);
	int ret;

	if (name_out)
		*name_out = r ? r->name : NULL;
	if (!r) {
		__atomic_add_fetch(&bus->unclaimed, 1, __ATOMIC_RELAXED);
		if (!is_write)
			memset(data, 0xff, len);
		return -ENOENT;
	}
	if (is_write)
		ret = r->ops->write ? r->ops->write(r->opaque, addr - r->base, data, len)
				    : -EOPNOTSUPP;
	else
		ret = r->ops->read ? r->ops->read(r->opaque, addr - r->base, data, len)
				   : -EOPNOTSUPP;
	bus__put(r);
	return ret;
}
