#include <errno.h>
#include <string.h>

#include "devices/bar/dedup_dev.h"

static fault_t dedup_dev_nopage(struct bar *bar, uint64_t pgoff, struct fault_ctx *ctx,
				uint8_t **page)
{
	(void)bar, (void)pgoff, (void)ctx, (void)page;
	return FAULT_MMIO; /* registers: every access traps */
}

static int dedup_dev_read(struct bar *bar, uint64_t offset, void *data, unsigned len)
{
	struct dedup_dev *dev = bar->priv;
	uint64_t v = 0;

	if (len != 8 && len != 4)
		return -EINVAL;
	switch (offset & ~4ULL) {
	case DEDUP_REG_MAGIC: v = DEDUP_DEV_MAGIC; break;
	case DEDUP_REG_RUN: v = __atomic_load_n(&dev->dedup->knobs.run, __ATOMIC_RELAXED); break;
	case DEDUP_REG_MODE: v = dev->dedup->mode; break;
	default:
		if (offset >= DEDUP_REG_COUNTERS) {
			v = dedup__counter(dev->dedup,
					   (unsigned)((offset - DEDUP_REG_COUNTERS) / 8));
			if (v == ~0ULL)
				v = 0; /* past the table: reads as zero */
		}
	}
	if (offset & 4)
		v >>= 32;
	memcpy(data, &v, len);
	return 0;
}

static int dedup_dev_write(struct bar *bar, uint64_t offset, const void *data, unsigned len)
{
	struct dedup_dev *dev = bar->priv;
	uint64_t v = 0;

	if (offset != DEDUP_REG_RUN || (len != 8 && len != 4))
		return -EINVAL; /* only RUN is writable */
	memcpy(&v, data, len);
	return dedup__set_run(dev->dedup, v) ? -EINVAL : 0;
}

static const struct bar_ops dedup_dev_ops = {
	.nopage = dedup_dev_nopage,
	.read = dedup_dev_read,
	.write = dedup_dev_write,
};

int dedup_dev__init(struct dedup_dev *dev, struct dedup *dedup, uint64_t gpa,
		    const struct bar_mapper *mapper)
{
	memset(dev, 0, sizeof(*dev));
	dev->dedup = dedup;
	return bar__init(&dev->bar, "dedup-regs", gpa, DEDUP_DEV_SIZE, &dedup_dev_ops, dev, mapper,
			 1, 1);
}

void dedup_dev__exit(struct dedup_dev *dev)
{
	bar__exit(&dev->bar);
}
