#include <errno.h>
#include <string.h>

#include "devices/legacy/pvpanic.h"

void pvpanic__init(struct pvpanic *p, void (*on_panic)(void *ctx), void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->on_panic = on_panic;
	p->ctx = ctx;
}

static int pvpanic_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	(void)opaque;
	if (offset || len != 1)
		return -EINVAL;
	*(uint8_t *)data = PVPANIC_PANICKED;
	return 0;
}

static int pvpanic_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct pvpanic *p = opaque;

	if (offset || len != 1)
		return -EINVAL;
	if ((*(const uint8_t *)data & PVPANIC_PANICKED) &&
	    __atomic_add_fetch(&p->panics, 1, __ATOMIC_RELAXED) == 1)
		p->on_panic(p->ctx);
	return 0;
}

const struct bus_device_ops pvpanic_ops = {
	.read = pvpanic_read,
	.write = pvpanic_write,
};

#define PVPANIC_STATE_VERSION 1

void pvpanic__save(struct pvpanic *p, struct blob *b)
{
	size_t at = blob__section(b, "pvpanic", PVPANIC_STATE_VERSION);

	blob__u32(b, __atomic_load_n(&p->panics, __ATOMIC_RELAXED));
	blob__section_end(b, at);
}

int pvpanic__restore(struct pvpanic *p, struct blob_reader *r)
{
	struct blob_reader sub;
	uint16_t version;
	uint32_t panics;

	if (blob__enter(r, "pvpanic", PVPANIC_STATE_VERSION, &version, &sub))
		return -EINVAL;
	panics = blob__get_u32(&sub);
	if (blob_reader__done(&sub))
		return blob__fail(r, "pvpanic: %s", sub.why);
	__atomic_store_n(&p->panics, panics, __ATOMIC_RELAXED);
	return 0;
}
