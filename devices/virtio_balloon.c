#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio_balloon.h"

#define VIRTIO_ID_BALLOON 5

static uint64_t virtio_balloon__features(void *dev)
{
	(void)dev;
	return 1ULL << VIRTIO_BALLOON_F_REPORTING;
}

/* num_pages and actual (both 0: the host never asks for pages), then nothing. */
static int virtio_balloon__config_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	(void)dev;
	if (offset + len > 8)
		return -EINVAL;
	memset(data, 0, len);
	return 0;
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

/* Pages the guest put in the balloon unasked: arrays of 32-bit PFNs, dropped too. */
static int virtio_balloon__inflate(struct virtio_balloon *b, const struct virtio_chain *c,
				   char *why)
{
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
			if (!virtio_balloon__drop(b, (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT,
						  1U << VIRTIO_BALLOON_PFN_SHIFT)) {
				snprintf(why, VIRTIO_WHY_LEN,
					 "an inflated page outside guest RAM (PFN 0x%x)", pfn);
				return -1;
			}
			__atomic_add_fetch(&b->inflated, 1, __ATOMIC_RELAXED);
		}
	}
	return 0;
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
	.notify = virtio_balloon__notify,
};
