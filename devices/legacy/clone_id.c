#include <errno.h>
#include <string.h>

#include "devices/legacy/clone_id.h"

static int clone_id_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	const struct clone_id *c = opaque;
	uint64_t v = offset < 4 ? (uint64_t)c->number >> (8 * offset) : 0;
	uint8_t *out = data;
	unsigned i;

	if (len != 1 && len != 2 && len != 4)
		return -EINVAL;
	for (i = 0; i < len; i++) /* little-endian, whatever the host's order */
		out[i] = (uint8_t)(v >> (8 * i));
	return 0;
}

static int clone_id_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	(void)opaque;
	(void)offset;
	(void)data;
	(void)len;
	return -EINVAL;
}

const struct bus_device_ops clone_id_ops = {
	.read = clone_id_read,
	.write = clone_id_write,
};
