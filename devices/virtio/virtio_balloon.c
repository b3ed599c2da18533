#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/virtio_balloon.h"
#include "mmu/mmu.h"

#define VIRTIO_ID_BALLOON 5
#define STAT_ENTRY	  10 /* le16 tag, le64 value, packed */

/* What a queue is for, once the features are known (see VIRTIO_BALLOON_Q_STATS). */
enum balloon_queue { BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORTING, BQ_NONE };

static uint64_t virtio_balloon_features(void *dev)
{
	(void)dev;
	return 1ULL << VIRTIO_BALLOON_F_REPORTING | 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM |
	       1ULL << VIRTIO_BALLOON_F_STATS_VQ;
}

static enum balloon_queue virtio_balloon_queue(const struct virtio_mmio *vm, unsigned q)
{
	bool stats = vm->drv_features & 1ULL << VIRTIO_BALLOON_F_STATS_VQ;

	if (q == VIRTIO_BALLOON_Q_INFLATE)
		return BQ_INFLATE;
	if (q == VIRTIO_BALLOON_Q_DEFLATE)
		return BQ_DEFLATE;
	if (stats && q == VIRTIO_BALLOON_Q_STATS)
		return BQ_STATS;
	if (q == (stats ? VIRTIO_BALLOON_Q_STATS + 1U : VIRTIO_BALLOON_Q_STATS) &&
	    vm->drv_features & 1ULL << VIRTIO_BALLOON_F_REPORTING)
		return BQ_REPORTING;
	return BQ_NONE;
}

static const char *const stat_names[] = {
	"swap_in",
	"swap_out",
	"major_faults",
	"minor_faults",
	"free_memory",
	"total_memory",
	"available_memory",
	"disk_caches",
	"hugetlb_allocations",
	"hugetlb_failures",
	/* Linux 6.12 and later */
	"oom_kills",
	"alloc_stalls",
	"async_scans",
	"direct_scans",
	"async_reclaims",
	"direct_reclaims",
};

const char *virtio_balloon__stat_name(unsigned tag)
{
	return tag < sizeof(stat_names) / sizeof(stat_names[0]) ? stat_names[tag] : NULL;
}

/*
 * The host's calls take the transport's lock for at most this long: a vCPU
 * may hold it for as long as the VM is paused (a buffer it maps that the
 * budget cannot back, --on-oom pause), and the control socket must go on.
 */
#define HOST_LOCK_MS 100

static int host_lock(struct virtio_balloon *b)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += HOST_LOCK_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return -pthread_mutex_timedlock(&b->mmio.lock, &until);
}

/* num_pages and actual, little-endian; nothing after them is offered. */
static int virtio_balloon_config_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	uint32_t cfg[2] = {__atomic_load_n(&b->num_pages, __ATOMIC_RELAXED),
			   __atomic_load_n(&b->actual, __ATOMIC_RELAXED)};

	if (offset + len > sizeof(cfg))
		return -EINVAL;
	memcpy(data, (uint8_t *)cfg + offset, len);
	return 0;
}

/* The driver says how many pages the balloon holds (actual); nothing else is writable. */
static int virtio_balloon_config_write(void *dev, uint64_t offset, const void *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	uint32_t was = b->actual, now;

	if (offset != 4 || len != 4)
		return 0;
	memcpy(&now, data, 4);
	__atomic_store_n(&b->actual, now, __ATOMIC_RELAXED);
	if (now != was && b->changed)
		b->changed(b->changed_ctx, b->num_pages, now);
	return 0;
}

int virtio_balloon__set_target(struct virtio_balloon *b, uint32_t pages)
{
	int ret = host_lock(b);

	if (ret)
		return ret == -ETIMEDOUT ? -EBUSY : ret;
	if (b->num_pages != pages && b->changed)
		b->changed(b->changed_ctx, pages, b->actual);
	__atomic_store_n(&b->num_pages, pages, __ATOMIC_RELAXED);
	virtio_mmio__config_changed(&b->mmio);
	pthread_mutex_unlock(&b->mmio.lock);
	return 0;
}

void virtio_balloon__sizes(struct virtio_balloon *b, uint32_t *target, uint32_t *actual)
{
	*target = __atomic_load_n(&b->num_pages, __ATOMIC_RELAXED);
	*actual = __atomic_load_n(&b->actual, __ATOMIC_RELAXED);
}

/* Drop one range the guest gave; false when it is not guest RAM (the chain is malformed). */
static bool virtio_balloon_drop(struct virtio_balloon *b, uint64_t gpa, uint64_t len)
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
static int virtio_balloon_report(struct virtio_balloon *b, const struct virtio_chain *c, char *why)
{
	unsigned i;

	for (i = 0; i < c->n; i++) {
		if (!c->buf[i].device_writes) {
			snprintf(why, VIRTIO_WHY_LEN, "a free page report in a read-only buffer");
			return -1;
		}
		if (!virtio_balloon_drop(b, c->buf[i].gpa, c->buf[i].len)) {
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
static bool virtio_balloon_drop_pfns(struct virtio_balloon *b, uint32_t first, uint32_t n,
				     char *why)
{
	if (virtio_balloon_drop(b, (uint64_t)first << VIRTIO_BALLOON_PFN_SHIFT,
				(uint64_t)n << VIRTIO_BALLOON_PFN_SHIFT)) {
		__atomic_add_fetch(&b->inflated, n, __ATOMIC_RELAXED);
		return true;
	}
	snprintf(why, VIRTIO_WHY_LEN, "an inflated page outside guest RAM (PFNs 0x%x..0x%x)", first,
		 first + n - 1);
	return false;
}

/*
 * The driver's statistics: read-only buffers of (tag, value) entries. The
 * chain is kept (not returned) until the host asks for fresh ones; one the
 * driver sends while another is kept returns the older. Tags past the ones
 * kept are skipped. Lock held.
 */
static int balloon_read_stats(struct virtio_balloon *b, struct virtio_mmio *vm,
			      const struct virtio_chain *c, char *why)
{
	uint64_t val[VIRTIO_BALLOON_S_NR];
	uint32_t present = 0;
	unsigned i, k;

	for (i = 0; i < c->n; i++) {
		const uint8_t *p;
		int err = 0;

		if (c->buf[i].device_writes || c->buf[i].len % STAT_ENTRY ||
		    c->buf[i].len > VIRTIO_BALLOON_STATS_MAX) {
			snprintf(why, VIRTIO_WHY_LEN,
				 "a statistics buffer that is not a read-only array of "
				 "10-byte entries (%u bytes)",
				 c->buf[i].len);
			return -1;
		}
		p = c->buf[i].len ? virtq__hold(&vm->ga, c->buf[i].gpa, c->buf[i].len, &err) : NULL;
		if (c->buf[i].len && !p) {
			snprintf(why, VIRTIO_WHY_LEN,
				 "a statistics buffer outside guest RAM (GPA 0x%llx, %u bytes)",
				 (unsigned long long)c->buf[i].gpa, c->buf[i].len);
			return err == -ENOMEM ? -ENOMEM : -1;
		}
		for (k = 0; k < c->buf[i].len; k += STAT_ENTRY) {
			uint16_t tag;

			memcpy(&tag, p + k, 2);
			if (tag >= VIRTIO_BALLOON_S_NR)
				continue;
			memcpy(&val[tag], p + k + 2, 8);
			present |= 1U << tag;
		}
		if (p && vm->ga.release) /* read: nothing of it is kept */
			vm->ga.release(vm->ga.ctx, c->buf[i].gpa, c->buf[i].len);
	}
	for (k = 0; k < VIRTIO_BALLOON_S_NR; k++)
		if (present & 1U << k)
			b->stats[k] = val[k];
	b->stats_present = present;
	b->stats_ns = mmu__now_ns();
	if (b->stats_held)
		virtio_mmio__push(vm, VIRTIO_BALLOON_Q_STATS, b->stats_head, 0);
	b->stats_held = true;
	b->stats_head = c->head;
	__atomic_add_fetch(&b->stats_updates, 1, __ATOMIC_RELAXED);
	return 0;
}

void virtio_balloon__guest_stats(struct virtio_balloon *b, bool may_ask, unsigned max_age_ms,
				 unsigned wait_ms, struct virtio_balloon_stats *out)
{
	uint64_t before, waited = 0;

	if (host_lock(b)) {
		memset(out, 0, sizeof(*out)); /* a vCPU holds the device: none this time */
		return;
	}
	before = b->stats_updates;
	if (may_ask && b->stats_held && !b->mmio.broken[0] &&
	    (!b->stats_ns || mmu__now_ns() - b->stats_ns >= (uint64_t)max_age_ms * 1000000ULL)) {
		/* Give the buffer back: the driver answers with a fresh one. */
		b->stats_held = false;
		virtio_mmio__push(&b->mmio, VIRTIO_BALLOON_Q_STATS, b->stats_head, 0);
		while (b->stats_updates == before && waited < wait_ms) {
			pthread_mutex_unlock(&b->mmio.lock);
			usleep(5000);
			waited += 5;
			pthread_mutex_lock(&b->mmio.lock);
		}
	}
	memcpy(out->val, b->stats, sizeof(out->val));
	out->present = b->stats_present;
	out->age_ms = b->stats_ns ? (mmu__now_ns() - b->stats_ns) / 1000000ULL : 0;
	out->updates = b->stats_updates;
	pthread_mutex_unlock(&b->mmio.lock);
}

/* The driver reset the device: its queues, and the buffer kept, are gone. Lock held. */
static void virtio_balloon_reset(void *dev)
{
	struct virtio_balloon *b = dev;

	b->stats_held = false;
}

/* Pages the driver put in the balloon: arrays of 32-bit PFNs, dropped in runs. */
static int virtio_balloon_inflate(struct virtio_balloon *b, const struct virtio_chain *c, char *why)
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
			if (n && !virtio_balloon_drop_pfns(b, first, n, why))
				return -1;
			first = pfn;
			n = 1;
		}
	}
	return n && !virtio_balloon_drop_pfns(b, first, n, why) ? -1 : 0;
}

static void virtio_balloon_notify(void *dev, struct virtio_mmio *vm, unsigned queue)
{
	struct virtio_balloon *b = dev;
	char why[VIRTIO_WHY_LEN];
	struct virtio_chain c;

	enum balloon_queue kind = virtio_balloon_queue(vm, queue);

	while (virtio_mmio__pop(vm, queue, &c) == 1) {
		int ret = 0;

		if (kind == BQ_REPORTING)
			ret = virtio_balloon_report(b, &c, why);
		else if (kind == BQ_INFLATE)
			ret = virtio_balloon_inflate(b, &c, why);
		else if (kind == BQ_STATS)
			ret = balloon_read_stats(b, vm, &c, why);
		if (ret == -ENOMEM)
			return; /* stopping for the budget, as virtio_mmio__pop() does */
		if (ret) {
			virtio_mmio__break(vm, why);
			return;
		}
		if (kind != BQ_STATS)
			virtio_mmio__push_chain(vm, queue, &c, 0);
	}
}

const struct virtio_dev_ops virtio_balloon_ops = {
	.name = "virtio-balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.nr_queues = 4,
	/* 2: the stats queue (read through the accessor) or the reports; 3: the reports */
	.unmapped_queues = 1U << 2 | 1U << 3,
	.features = virtio_balloon_features,
	.config_read = virtio_balloon_config_read,
	.config_write = virtio_balloon_config_write,
	.notify = virtio_balloon_notify,
	.reset = virtio_balloon_reset,
};

void virtio_balloon__save(struct virtio_balloon *b, struct blob *blob)
{
	size_t at = blob__section(blob, "virtio-balloon", 1);
	uint64_t now = mmu__now_ns();
	unsigned i;

	pthread_mutex_lock(&b->mmio.lock);
	blob__u32(blob, b->num_pages);
	blob__u32(blob, b->actual);
	blob__u32(blob, b->stats_present);
	for (i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		blob__u64(blob, b->stats[i]);
	blob__u64(blob, b->stats_ns && now > b->stats_ns ? now - b->stats_ns : 0); /* their age */
	blob__bool(blob, b->stats_held);
	blob__u16(blob, b->stats_head);
	pthread_mutex_unlock(&b->mmio.lock);
	virtio_mmio__save(&b->mmio, blob); /* last: it is restored last */
	blob__section_end(blob, at);
}

int virtio_balloon__restore(struct virtio_balloon *b, struct blob_reader *r)
{
	uint64_t stats[VIRTIO_BALLOON_S_NR], age;
	uint32_t num_pages, actual, present;
	struct blob_reader sub;
	uint16_t version, head;
	unsigned i;
	bool held;

	if (blob__enter(r, "virtio-balloon", 1, &version, &sub))
		return -EINVAL;
	num_pages = blob__get_u32(&sub);
	actual = blob__get_u32(&sub);
	present = blob__get_u32(&sub);
	for (i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		stats[i] = blob__get_u64(&sub);
	age = blob__get_u64(&sub);
	held = blob__get_bool(&sub);
	head = blob__get_u16(&sub);
	if (!sub.err && held && head >= VIRTQ_SIZE_MAX)
		blob__fail(&sub, "virtio-balloon: a held buffer at entry %u", head);
	if (!sub.err && (present >> VIRTIO_BALLOON_S_NR))
		blob__fail(&sub, "virtio-balloon: statistics tags 0x%x", present);
	/* The transport checks all of its own before it takes any of it. */
	if (sub.err || virtio_mmio__restore(&b->mmio, &sub) || blob_reader__done(&sub))
		return blob__fail(r, "%s", sub.why);
	pthread_mutex_lock(&b->mmio.lock);
	__atomic_store_n(&b->num_pages, num_pages, __ATOMIC_RELAXED);
	__atomic_store_n(&b->actual, actual, __ATOMIC_RELAXED);
	b->stats_present = present;
	memcpy(b->stats, stats, sizeof(stats));
	b->stats_ns = age ? mmu__now_ns() - age : 0;
	b->stats_held = held;
	b->stats_head = head;
	pthread_mutex_unlock(&b->mmio.lock);
	return 0;
}
