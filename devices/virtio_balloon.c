#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio_balloon.h"

#define VIRTIO_ID_BALLOON 5

static uint64_t virtio_balloon__features(void *dev)
{
	(void)dev;
	return 1ULL << VIRTIO_BALLOON_F_REPORTING | 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
}

/* num_pages and actual, little-endian; nothing after them is offered. */
static int virtio_balloon__config_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	uint32_t cfg[2] = {b->num_pages, b->actual};

	if (offset + len > sizeof(cfg))
		return -EINVAL;
	memcpy(data, (uint8_t *)cfg + offset, len);
	return 0;
}

/* The driver says how many pages the balloon holds (actual); nothing else is writable. */
static int virtio_balloon__config_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct virtio_balloon *b = dev;

	if (offset != 4 || len != 4)
		return 0;
	memcpy(&b->actual, data, 4);
	return 0;
}

void virtio_balloon__set_target(struct virtio_balloon *b, uint32_t pages)
{
	pthread_mutex_lock(&b->mmio.lock);
	b->num_pages = pages;
	virtio_mmio__config_changed(&b->mmio);
	pthread_mutex_unlock(&b->mmio.lock);
}

void virtio_balloon__sizes(struct virtio_balloon *b, uint32_t *target, uint32_t *actual)
{
	pthread_mutex_lock(&b->mmio.lock);
	*target = b->num_pages;
	*actual = b->actual;
	pthread_mutex_unlock(&b->mmio.lock);
}

/* Drop one range the guest gave; false when it is not guest RAM (the chain is malformed). */
static bool virtio_balloon__drop(struct virtio_balloon *b, uint64_t gpa, uint64_t len)
{
	uint64_t dropped = 0, kept = 0;
	int ret = b->discard(b->discard_ctx, gpa, len, &dropped, &kept);

	if (ret == -EFAULT)
		return false;
	if (ret)
		__atomic_add_fetch(&b->errors, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->pages_dropped, dropped, __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->pages_kept, kept, __ATOMIC_RELAXED);
	return true;
}

/* A free page report: every buffer is a free range, device-writable, unmapped. */
static int virtio_balloon__report(struct virtio_balloon *b, const struct virtio_chain *c, char *why)
{
	unsigned i;

	for (i = 0; i < c->n; i++) {
		if (!c->buf[i].device_writes) {
			snprintf(why, VIRTIO_WHY_LEN, "a free page report in a read-only buffer");
			return -1;
		}
		if (!virtio_balloon__drop(b, c->buf[i].gpa, c->buf[i].len)) {
			snprintf(why, VIRTIO_WHY_LEN,
				 "a free page report outside guest RAM (GPA 0x%llx, %u bytes)",
				 (unsigned long long)c->buf[i].gpa, c->buf[i].len);
			return -1;
		}
		__atomic_add_fetch(&b->reported_bytes, c->buf[i].len, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&b->reports, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Drop the run of @n pages from PFN @first; false when it is not guest RAM. */
static bool virtio_balloon__drop_pfns(struct virtio_balloon *b, uint32_t first, uint32_t n,
				      char *why)
{
	if (virtio_balloon__drop(b, (uint64_t)first << VIRTIO_BALLOON_PFN_SHIFT,
				 (uint64_t)n << VIRTIO_BALLOON_PFN_SHIFT)) {
		__atomic_add_fetch(&b->inflated, n, __ATOMIC_RELAXED);
		return true;
	}
	snprintf(why, VIRTIO_WHY_LEN, "an inflated page outside guest RAM (PFNs 0x%x..0x%x)", first,
		 first + n - 1);
	return false;
}

/* Pages the driver put in the balloon: arrays of 32-bit PFNs, dropped in runs. */
static int virtio_balloon__inflate(struct virtio_balloon *b, const struct virtio_chain *c,
				   char *why)
{
	uint32_t first = 0, n = 0;
	unsigned i, k;

	for (i = 0; i < c->n; i++) {
		const uint8_t *p = c->buf[i].host;

		if (c->buf[i].device_writes || c->buf[i].len % 4) {
			snprintf(why, VIRTIO_WHY_LEN,
				 "an inflate buffer that is not a read-only array of PFNs");
			return -1;
		}
		for (k = 0; k < c->buf[i].len; k += 4) {
			uint32_t pfn;

			memcpy(&pfn, p + k, 4);
			if (n && pfn == first + n && n < (1U << 20)) {
				n++;
				continue;
			}
			if (n && !virtio_balloon__drop_pfns(b, first, n, why))
				return -1;
			first = pfn;
			n = 1;
		}
	}
	return n && !virtio_balloon__drop_pfns(b, first, n, why) ? -1 : 0;
}

static void virtio_balloon__notify(void *dev, struct virtio_mmio *vm, unsigned queue)
{
	struct virtio_balloon *b = dev;
	char why[VIRTIO_WHY_LEN];
	struct virtio_chain c;

	while (virtio_mmio__pop(vm, queue, &c) == 1) {
		int ret = 0;

		if (queue == VIRTIO_BALLOON_Q_REPORTING)
			ret = virtio_balloon__report(b, &c, why);
		else if (queue == VIRTIO_BALLOON_Q_INFLATE)
			ret = virtio_balloon__inflate(b, &c, why);
		if (ret) {
			virtio_mmio__break(vm, why);
			return;
		}
		virtio_mmio__push(vm, queue, c.head, 0);
	}
}

const struct virtio_dev_ops virtio_balloon_ops = {
	.name = "virtio-balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.nr_queues = 3,
	.unmapped_queues = 1U << VIRTIO_BALLOON_Q_REPORTING,
	.features = virtio_balloon__features,
	.config_read = virtio_balloon__config_read,
	.config_write = virtio_balloon__config_write,
	.notify = virtio_balloon__notify,
};
