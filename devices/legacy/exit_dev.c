#include <errno.h>
#include <string.h>

#include "devices/legacy/exit_dev.h"

static int exit_dev_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	uint32_t v = offset == 0 ? EXIT_DEV_MAGIC : 0;

	(void)opaque;
	if (len != 1 && len != 2 && len != 4)
		return -EINVAL;
	memcpy(data, &v, len);
	return 0;
}

static int exit_dev_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct exit_dev *dev = opaque;
	uint32_t v = 0;

	if (offset != 0 || (len != 1 && len != 2 && len != 4))
		return -EINVAL;
	memcpy(&v, data, len);
	dev->on_exit(dev->ctx, v);
	return 0;
}

const struct bus_device_ops exit_dev_ops = {
	.read = exit_dev_read,
	.write = exit_dev_write,
};
