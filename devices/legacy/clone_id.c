#include <errno.h>
#include <string.h>

#include "devices/legacy/clone_id.h"

static int clone_id_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	const struct clone_id *c = opaque;
	uint32_t v = offset == 0 ? c->number : 0;

	if (len != 1 && len != 2 && len != 4)
		return -EINVAL;
	memcpy(data, &v, len);
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
