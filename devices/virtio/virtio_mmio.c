#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio/virtio_mmio.h"
#include "lib/log.h"

/* Register offsets of the MMIO transport, version 2. */
enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
};

#define STATUS_FEATURES_OK   0x08
#define INT_USED_BUFFER	     0x01
#define INT_CONFIG_CHANGE    0x02
#define DESC_F_NEXT	     0x01
#define DESC_F_WRITE	     0x02
#define DESC_F_INDIRECT	     0x04
#define AVAIL_F_NO_INTERRUPT 0x01

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define virtq__fail(why, ...) log__why(why, VIRTIO_WHY_LEN, -EINVAL, __VA_ARGS__)

/* @gpa..+@len in the monitor's view; NULL with *@err: -ENOMEM (the budget), else outside RAM. */
static void *virtq_map(const struct guest_access *ga, uint64_t gpa, uint64_t len, int *err)
{
	*err = 0;
	return ga->ptr(ga->ctx, gpa, len, err);
}

void *virtq__hold(const struct guest_access *ga, uint64_t gpa, uint64_t len, int *err)
{
	*err = 0;
	return ga->hold ? ga->hold(ga->ctx, gpa, len, err) : ga->ptr(ga->ctx, gpa, len, err);
}

void virtq__release(const struct guest_access *ga, const struct virtio_chain *c)
{
	unsigned i;

	for (i = 0; ga->release && i < c->n; i++)
		if (c->buf[i].host)
			ga->release(ga->ctx, c->buf[i].gpa, c->buf[i].len);
}

/* Why a buffer could not be mapped, for the messages. */
static const char *virtq_unmapped(int err)
{
	return err == -ENOMEM ? "does not fit in the memory budget" : "outside guest RAM";
}

/* A buffer that could not be mapped: -ENOMEM for the budget, the guest's fault (-EINVAL) else. */
#define virtq__unmapped_fail(why, err, ...)                                                        \
	log__why(why, VIRTIO_WHY_LEN, (err) == -ENOMEM ? -ENOMEM : -EINVAL, __VA_ARGS__)

int virtq__pop(struct virtq *q, const struct guest_access *ga, struct virtio_chain *c, bool map,
	       char *why)
{
	const struct virtq_desc *table;
	const uint16_t *avail;
	uint16_t avail_idx, i;
	unsigned n;
	int err;

	if (!q->ready || !q->num)
		return virtq__fail(why, "notified queue is not ready");
	if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
		return virtq__fail(why, "misaligned ring (desc 0x%llx, avail 0x%llx, used 0x%llx)",
				   (unsigned long long)q->desc, (unsigned long long)q->avail,
				   (unsigned long long)q->used);
	avail = virtq_map(ga, q->avail, 6 + 2ULL * q->num, &err);
	table = avail ? virtq_map(ga, q->desc, 16ULL * q->num, &err) : NULL;
	if (!avail || !table)
		return virtq__unmapped_fail(why, err, "%s ring %s (GPA 0x%llx)",
					    avail ? "descriptor" : "available", virtq_unmapped(err),
					    (unsigned long long)(avail ? q->desc : q->avail));
	avail_idx = __atomic_load_n(&avail[1], __ATOMIC_ACQUIRE);
	if (avail_idx == q->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - q->last_avail) > q->num)
		return virtq__fail(why, "available index moved by %u, more than the queue's %u",
				   (uint16_t)(avail_idx - q->last_avail), q->num);
	c->head = __atomic_load_n(&avail[2 + q->last_avail % q->num], __ATOMIC_RELAXED);
	if (c->head >= q->num)
		return virtq__fail(why, "chain head %u is past the queue's %u descriptors", c->head,
				   q->num);
	q->last_avail++;
	c->n = 0;
	for (n = 0, i = c->head;; n++) {
		struct virtq_desc d;

		if (n == q->num || n == VIRTIO_CHAIN_MAX) {
			virtq__release(ga, c);
			return virtq__fail(why,
					   "descriptor chain from %u is longer than %u (a loop?)",
					   c->head, n);
		}
		memcpy(&d, &table[i], sizeof(d));
		if (d.flags & DESC_F_INDIRECT) {
			virtq__release(ga, c);
			return virtq__fail(why, "indirect descriptor %u (not offered)", i);
		}
		c->buf[n].gpa = d.addr;
		c->buf[n].len = d.len;
		c->buf[n].device_writes = d.flags & DESC_F_WRITE;
		c->buf[n].host = d.len && map ? virtq__hold(ga, d.addr, d.len, &err) : NULL;
		c->n = n + 1; /* what virtq__release() gives back if this chain fails */
		if (d.len && map && !c->buf[n].host) {
			virtq__release(ga, c);
			return virtq__unmapped_fail(
				why, err, "descriptor %u: buffer %s (GPA 0x%llx, %u bytes)", i,
				virtq_unmapped(err), (unsigned long long)d.addr, d.len);
		}
		if (!(d.flags & DESC_F_NEXT))
			break;
		if (d.next >= q->num) {
			virtq__release(ga, c);
			return virtq__fail(why, "descriptor %u: next %u is past the queue's %u", i,
					   d.next, q->num);
		}
		i = d.next;
	}
	return 1;
}

int virtq__push(struct virtq *q, const struct guest_access *ga, uint16_t head, uint32_t len,
		char *why)
{
	int err;
	uint16_t *used = virtq_map(ga, q->used, 6 + 8ULL * q->num, &err);
	uint32_t elem[2] = {head, len};

	if (!used)
		return virtq__unmapped_fail(why, err, "used ring %s (GPA 0x%llx)",
					    virtq_unmapped(err), (unsigned long long)q->used);
	memcpy((uint8_t *)used + 4 + 8 * (q->used_idx % q->num), elem, sizeof(elem));
	q->used_idx++;
	/* seq_cst: ordered before the read of the driver's flags in virtq__wants_irq(). */
	__atomic_store_n(&used[1], q->used_idx, __ATOMIC_SEQ_CST);
	return 0;
}

bool virtq__wants_irq(const struct virtq *q, const struct guest_access *ga)
{
	int err;
	const uint16_t *avail = virtq_map(ga, q->avail, 2, &err);

	return !avail || !(__atomic_load_n(&avail[0], __ATOMIC_SEQ_CST) & AVAIL_F_NO_INTERRUPT);
}

int virtio_mmio__init(struct virtio_mmio *vm, const struct virtio_dev_ops *ops, void *dev,
		      struct guest_access ga, uint64_t gpa, unsigned irq,
		      int (*set_irq)(void *ctx, unsigned irq, int level), void *irq_ctx)
{
	memset(vm, 0, sizeof(*vm));
	vm->ops = ops;
	vm->dev = dev;
	vm->ga = ga;
	vm->gpa = gpa;
	vm->irq = irq;
	vm->set_irq = set_irq;
	vm->irq_ctx = irq_ctx;
	return -pthread_mutex_init(&vm->lock, NULL);
}

void virtio_mmio__exit(struct virtio_mmio *vm)
{
	pthread_mutex_destroy(&vm->lock);
}

/* Raise an edge on the device's line for interrupt cause @cause. Lock held. */
static void virtio_mmio_interrupt(struct virtio_mmio *vm, uint32_t cause)
{
	int ret;

	vm->int_status |= cause;
	__atomic_add_fetch(&vm->irqs, 1, __ATOMIC_RELAXED);
	ret = vm->set_irq(vm->irq_ctx, vm->irq, 1);
	ret = ret ?: vm->set_irq(vm->irq_ctx, vm->irq, 0);
	if (ret)
		pr_err("%s at GPA 0x%llx: KVM_IRQ_LINE failed: %s (GSI %u)", vm->ops->name,
		       (unsigned long long)vm->gpa, strerror(-ret), vm->irq);
}

void virtio_mmio__config_changed(struct virtio_mmio *vm)
{
	virtio_mmio_interrupt(vm, INT_CONFIG_CHANGE);
}

void virtio_mmio__break(struct virtio_mmio *vm, const char *why)
{
	__atomic_add_fetch(&vm->malformed, 1, __ATOMIC_RELAXED);
	if (vm->broken[0])
		return;
	snprintf(vm->broken, sizeof(vm->broken), "%s", why);
	pr_err("%s at GPA 0x%llx: %s; the device stops until the guest resets it", vm->ops->name,
	       (unsigned long long)vm->gpa, why);
	vm->status |= VIRTIO_STATUS_NEEDS_RESET;
	virtio_mmio_interrupt(vm, INT_CONFIG_CHANGE);
}

int virtio_mmio__pop(struct virtio_mmio *vm, unsigned queue, struct virtio_chain *c)
{
	char why[VIRTIO_WHY_LEN];
	int ret;

	if (vm->broken[0])
		return 0;
	ret = virtq__pop(&vm->q[queue], &vm->ga, c, !(vm->ops->unmapped_queues & (1U << queue)),
			 why);
	/*
	 * -ENOMEM: the budget could not back a buffer. The VM's --on-oom policy
	 * has had it already (mmu__access() -> fault_failed()), and it is
	 * stopping: the guest did nothing wrong, so the device neither stops
	 * nor says so.
	 */
	if (ret == -ENOMEM)
		return 0;
	if (ret < 0) {
		virtio_mmio__break(vm, why);
		return 0;
	}
	if (ret)
		__atomic_add_fetch(&vm->chains, 1, __ATOMIC_RELAXED);
	return ret;
}

void virtio_mmio__push_chain(struct virtio_mmio *vm, unsigned queue, const struct virtio_chain *c,
			     uint32_t len)
{
	virtq__release(&vm->ga, c);
	virtio_mmio__push(vm, queue, c->head, len);
}

void virtio_mmio__push(struct virtio_mmio *vm, unsigned queue, uint16_t head, uint32_t len)
{
	char why[VIRTIO_WHY_LEN];
	int ret;

	ret = virtq__push(&vm->q[queue], &vm->ga, head, len, why);
	if (ret == -ENOMEM)
		return; /* stopping for the budget, as in virtio_mmio__pop() */
	if (ret) {
		virtio_mmio__break(vm, why);
		return;
	}
	if (virtq__wants_irq(&vm->q[queue], &vm->ga))
		virtio_mmio_interrupt(vm, INT_USED_BUFFER);
}

static void virtio_mmio_reset(struct virtio_mmio *vm)
{
	vm->status = 0;
	vm->dev_features_sel = vm->drv_features_sel = vm->queue_sel = vm->int_status = 0;
	vm->drv_features = 0;
	memset(vm->q, 0, sizeof(vm->q));
	vm->broken[0] = '\0';
	if (vm->ops->reset)
		vm->ops->reset(vm->dev);
}

static uint64_t virtio_mmio_features(struct virtio_mmio *vm)
{
	return vm->ops->features(vm->dev) | 1ULL << VIRTIO_F_VERSION_1;
}

static struct virtq *virtio_mmio_queue(struct virtio_mmio *vm)
{
	return vm->queue_sel < vm->ops->nr_queues ? &vm->q[vm->queue_sel] : NULL;
}

static uint32_t virtio_mmio_reg_read(struct virtio_mmio *vm, uint64_t offset)
{
	struct virtq *q = virtio_mmio_queue(vm);

	switch (offset) {
	case REG_MAGIC: return VIRTIO_MMIO_MAGIC;
	case REG_VERSION: return 2;
	case REG_DEVICE_ID: return vm->ops->device_id;
	case REG_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		return vm->dev_features_sel > 1 ? 0
						: (uint32_t)(virtio_mmio_features(vm) >>
							     (32 * vm->dev_features_sel));
	case REG_QUEUE_NUM_MAX: return q ? VIRTQ_SIZE_MAX : 0;
	case REG_QUEUE_READY: return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS: return vm->int_status;
	case REG_STATUS: return vm->status;
	case REG_CONFIG_GENERATION: return 0;
	default: return 0;
	}
}

static void virtio_mmio_set_addr(uint64_t *addr, bool high, uint32_t v)
{
	if (high)
		*addr = (*addr & 0xffffffffULL) | (uint64_t)v << 32;
	else
		*addr = (*addr & ~0xffffffffULL) | v;
}

/* A register write; returns -EINVAL for one the guest may not make now. Lock held. */
static int virtio_mmio_reg_write(struct virtio_mmio *vm, uint64_t offset, uint32_t v)
{
	struct virtq *q = virtio_mmio_queue(vm);

	switch (offset) {
	case REG_DEVICE_FEATURES_SEL: vm->dev_features_sel = v; return 0;
	case REG_DRIVER_FEATURES_SEL: vm->drv_features_sel = v; return 0;
	case REG_DRIVER_FEATURES:
		if (vm->drv_features_sel < 2)
			vm->drv_features = (vm->drv_features &
					    ~(0xffffffffULL << (32 * vm->drv_features_sel))) |
					   (uint64_t)v << (32 * vm->drv_features_sel);
		return 0;
	case REG_QUEUE_SEL: vm->queue_sel = v; return 0;
	case REG_INTERRUPT_ACK: vm->int_status &= ~v; return 0;
	case REG_STATUS:
		if (v == 0) {
			virtio_mmio_reset(vm);
			return 0;
		}
		/* FEATURES_OK only for a subset of ours that includes VERSION_1. */
		if ((v & STATUS_FEATURES_OK) && ((vm->drv_features & ~virtio_mmio_features(vm)) ||
						 !(vm->drv_features & 1ULL << VIRTIO_F_VERSION_1)))
			v &= ~STATUS_FEATURES_OK;
		vm->status = v | (vm->status & VIRTIO_STATUS_NEEDS_RESET);
		return 0;
	case REG_QUEUE_NOTIFY:
		__atomic_add_fetch(&vm->notifies, 1, __ATOMIC_RELAXED);
		if (v < vm->ops->nr_queues && vm->q[v].ready && !vm->broken[0])
			vm->ops->notify(vm->dev, vm, v);
		return 0;
	}
	if (!q)
		return 0; /* queue registers of a queue the device does not have */
	switch (offset) {
	case REG_QUEUE_NUM:
		if (v == 0 || v > VIRTQ_SIZE_MAX || (v & (v - 1)))
			virtio_mmio__break(vm, "queue size is not a power of two up to 256");
		else
			q->num = (uint16_t)v;
		return 0;
	case REG_QUEUE_READY:
		q->ready = v == 1 && q->num;
		q->last_avail = q->used_idx = 0;
		return 0;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		virtio_mmio_set_addr(&q->desc, offset == REG_QUEUE_DESC_HIGH, v);
		return 0;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		virtio_mmio_set_addr(&q->avail, offset == REG_QUEUE_DRIVER_HIGH, v);
		return 0;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		virtio_mmio_set_addr(&q->used, offset == REG_QUEUE_DEVICE_HIGH, v);
		return 0;
	}
	return 0; /* read-only registers: writes are ignored, as the spec allows */
}

static int virtio_mmio_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct virtio_mmio *vm = opaque;
	uint32_t v;
	int ret = 0;

	pthread_mutex_lock(&vm->lock);
	if (offset >= REG_CONFIG) {
		ret = vm->ops->config_read(vm->dev, offset - REG_CONFIG, data, len);
	} else if (len != 4 || (offset & 3)) {
		ret = -EINVAL;
	} else {
		v = virtio_mmio_reg_read(vm, offset);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

static int virtio_mmio_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct virtio_mmio *vm = opaque;
	uint32_t v;
	int ret;

	if (offset >= REG_CONFIG) {
		if (!vm->ops->config_write)
			return 0; /* nothing writable there: ignored */
		pthread_mutex_lock(&vm->lock);
		ret = vm->ops->config_write(vm->dev, offset - REG_CONFIG, data, len);
		pthread_mutex_unlock(&vm->lock);
		return ret;
	}
	if (len != 4 || (offset & 3))
		return -EINVAL;
	memcpy(&v, data, 4);
	pthread_mutex_lock(&vm->lock);
	ret = virtio_mmio_reg_write(vm, offset, v);
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

const struct bus_device_ops virtio_mmio_ops = {
	.read = virtio_mmio_read,
	.write = virtio_mmio_write,
};

#define VIRTIO_MMIO_STATE_VERSION 1

void virtio_mmio__save_locked(struct virtio_mmio *vm, struct blob *b, uint32_t in_hand)
{
	size_t at = blob__section(b, "virtio-mmio", VIRTIO_MMIO_STATE_VERSION);
	unsigned i;

	blob__u32(b, vm->status);
	blob__u32(b, vm->dev_features_sel);
	blob__u32(b, vm->drv_features_sel);
	blob__u32(b, vm->queue_sel);
	blob__u32(b, vm->int_status);
	blob__u64(b, vm->drv_features);
	blob__u8(b, (uint8_t)strnlen(vm->broken, sizeof(vm->broken) - 1));
	blob__bytes(b, vm->broken, strnlen(vm->broken, sizeof(vm->broken) - 1));
	blob__u8(b, (uint8_t)vm->ops->nr_queues);
	for (i = 0; i < vm->ops->nr_queues; i++) {
		const struct virtq *q = &vm->q[i];

		blob__u16(b, q->num);
		blob__bool(b, q->ready);
		blob__u64(b, q->desc);
		blob__u64(b, q->avail);
		blob__u64(b, q->used);
		/* Its avail entry stays: the driver reuses none before the chain is used. */
		blob__u16(b, (uint16_t)(q->last_avail - (in_hand >> i & 1)));
		blob__u16(b, q->used_idx);
	}
	blob__section_end(b, at);
}

void virtio_mmio__save(struct virtio_mmio *vm, struct blob *b)
{
	pthread_mutex_lock(&vm->lock);
	virtio_mmio__save_locked(vm, b, 0);
	pthread_mutex_unlock(&vm->lock);
}

static int virtio_mmio_read_state(struct virtio_mmio *vm, struct blob_reader *r,
				  struct virtio_mmio *t)
{
	uint8_t why_len, nr;
	unsigned i;

	t->status = blob__get_u32(r);
	t->dev_features_sel = blob__get_u32(r);
	t->drv_features_sel = blob__get_u32(r);
	t->queue_sel = blob__get_u32(r);
	t->int_status = blob__get_u32(r);
	t->drv_features = blob__get_u64(r);
	why_len = blob__get_u8(r);
	if (!r->err && why_len >= sizeof(t->broken))
		return blob__fail(r, "%s: a reason of %u bytes", vm->ops->name, why_len);
	blob__get_bytes(r, t->broken, why_len);
	t->broken[why_len] = '\0';
	nr = blob__get_u8(r);
	if (!r->err && nr != vm->ops->nr_queues)
		return blob__fail(r, "%s: %u queues, the device has %u", vm->ops->name, nr,
				  vm->ops->nr_queues);
	for (i = 0; !r->err && i < nr; i++) {
		struct virtq *q = &t->q[i];

		q->num = blob__get_u16(r);
		q->ready = blob__get_bool(r);
		q->desc = blob__get_u64(r);
		q->avail = blob__get_u64(r);
		q->used = blob__get_u64(r);
		q->last_avail = blob__get_u16(r);
		q->used_idx = blob__get_u16(r);
		if (!r->err && (q->num > VIRTQ_SIZE_MAX || (q->num & (q->num - 1))))
			return blob__fail(r, "%s: queue %u of %u entries", vm->ops->name, i,
					  q->num);
	}
	if (r->err)
		return -EINVAL;
	if (t->status > 0xff || t->int_status > 3 || t->queue_sel >= VIRTIO_MAX_QUEUES ||
	    t->dev_features_sel > 1 || t->drv_features_sel > 1)
		return blob__fail(r, "%s: a register out of range (status 0x%x)", vm->ops->name,
				  t->status);
	if (t->drv_features & ~virtio_mmio_features(vm))
		return blob__fail(
			r, "%s: features 0x%llx the device does not offer", vm->ops->name,
			(unsigned long long)(t->drv_features & ~virtio_mmio_features(vm)));
	return 0;
}

int virtio_mmio__restore(struct virtio_mmio *vm, struct blob_reader *r)
{
	struct virtio_mmio t = {0};
	struct blob_reader sub;
	uint16_t version;
	unsigned i;

	if (blob__enter(r, "virtio-mmio", VIRTIO_MMIO_STATE_VERSION, &version, &sub))
		return -EINVAL;
	if (virtio_mmio_read_state(vm, &sub, &t) || blob_reader__done(&sub))
		return blob__fail(r, "%s", sub.why);
	pthread_mutex_lock(&vm->lock);
	vm->status = t.status;
	vm->dev_features_sel = t.dev_features_sel;
	vm->drv_features_sel = t.drv_features_sel;
	vm->queue_sel = t.queue_sel;
	vm->int_status = t.int_status;
	vm->drv_features = t.drv_features;
	memcpy(vm->broken, t.broken, sizeof(vm->broken));
	for (i = 0; i < vm->ops->nr_queues; i++)
		vm->q[i] = t.q[i];
	pthread_mutex_unlock(&vm->lock);
	return 0;
}
