/*
 * The VM's entries for its virtio-mmio devices (devices/virtio/), on the
 * Linux board: the disks (--disk), the channel (--channel) and the balloon
 * (--balloon), each on the next of the board's virtio-mmio windows, in
 * that order, told to the guest by the ACPI DSDT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/vm/vm.h"

static int vm_virtio_irq(void *ctx, unsigned irq, int level)
{
	struct vm *vm = ctx;

	return kvm__irq_line(&vm->kvm, irq, level);
}

static const unsigned vm_virtio_irqs[VM_VIRTIO_MAX] = VM_VIRTIO_IRQS;

/*
 * Put device @dev (@ops) on the next virtio-mmio window: its transport set
 * up (*@ready, when given, says so for the undo) and registered on the
 * bus. Returns 0, or -errno after reporting.
 */
static int vm_add_virtio(struct vm *vm, struct virtio_mmio *mmio, const struct virtio_dev_ops *ops,
			 void *dev, bool *ready)
{
	unsigned slot = vm->nr_virtio;
	uint64_t gpa = VM_VIRTIO_GPA + slot * VIRTIO_MMIO_SIZE;
	int ret;

	if (slot == VM_VIRTIO_MAX) {
		pr_err("cannot add %s: all %d virtio-mmio windows are taken", ops->name,
		       VM_VIRTIO_MAX);
		return -ENOSPC;
	}
	ret = virtio_mmio__init(mmio, ops, dev, mmu__guest_access(&vm->mmu), gpa,
				vm_virtio_irqs[slot], vm_virtio_irq, vm);
	if (ret) {
		pr_err("cannot set up the transport of %s: %s", ops->name, strerror(-ret));
		return ret;
	}
	if (ready)
		*ready = true;
	vm->nr_virtio++;
	ret = bus__register(&vm->mmio_bus, gpa, VIRTIO_MMIO_SIZE, ops->name, &virtio_mmio_ops,
			    mmio);
	if (ret) {
		pr_err("cannot register %s at GPA 0x%llx: %s", ops->name, (unsigned long long)gpa,
		       strerror(-ret));
		return ret;
	}
	return 0;
}

/* virtio-blk counters, X(name, help). */
#define VM_DISK_COUNTERS(X)                                                                        \
	X(reads, "read requests served")                                                           \
	X(writes, "write requests served")                                                         \
	X(flushes, "flush requests (fdatasync)")                                                   \
	X(bytes_read, "bytes read from the image")                                                 \
	X(bytes_written, "bytes written to the image")                                             \
	X(io_errors, "requests completed with IOERR")                                              \
	X(unsupported, "requests of a type not offered")

#define VM_CHANNEL_COUNTERS(X)                                                                     \
	X(connections, "host programs that connected")                                             \
	X(rx_bytes, "bytes from the host program to the guest")                                    \
	X(tx_bytes, "bytes from the guest to the host program")                                    \
	X(tx_dropped, "bytes the guest wrote while no host program was connected")

#define VM_BALLOON_COUNTERS(X)                                                                     \
	X(reports, "free page reports from the guest")                                             \
	X(reported_bytes, "bytes they described")                                                  \
	X(pages_dropped, "pages dropped from guest memory and the budget")                         \
	X(pages_kept, "resident pages reported free but kept (a device touched them, or merged)")  \
	X(inflated, "pages the guest put in the balloon unasked (dropped too)")                    \
	X(errors, "reports whose pages could not be dropped (they stay resident)")                 \
	X(stats_updates, "buffers of memory statistics the guest gave (ctl status; the last "      \
			 "below)")

/* Over VM_DISK_COUNTERS or VM_CHANNEL_COUNTERS of the device at `dev`. */
#define VM_COUNTER_TEXT(name, help) vm__counter_text(out, #name, &dev->name, help);
#define VM_COUNTER_JSON(name, help) vm__counter_json(o, #name, &dev->name);
#define VM_MALFORMED_HELP	    "malformed descriptor chains (the device stopped)"

/* A device's window in the DSDT. */
static void vm_acpi_window(struct vm_guest_desc *d, const struct virtio_mmio *mmio)
{
	d->acpi[d->nr_acpi++] = (struct acpi_mmio_device){mmio->gpa, VIRTIO_MMIO_SIZE, mmio->irq};
}

/* ---- the disks ---- */

/* The virtio-blk disks of --disk, in order: /dev/vda, vdb, ... */
static int vm_disks_create(struct vm *vm, const struct run_config *cfg)
{
	unsigned i;
	int ret;

	if (!cfg->nr_disks)
		return 0;
	vm->disks = calloc(cfg->nr_disks, sizeof(*vm->disks));
	if (!vm->disks)
		return -ENOMEM;
	for (i = 0; i < cfg->nr_disks; i++) {
		struct virtio_blk *b = &vm->disks[i];

		b->fd = -1;
		ret = virtio_blk__open(b, cfg->disks[i].path, cfg->disks[i].read_only, i);
		if (ret)
			return ret;
		vm->nr_disks++;
		ret = vm_add_virtio(vm, &b->mmio, &virtio_blk_ops, b, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static void vm_disks_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	unsigned i;

	for (i = 0; i < vm->nr_disks; i++)
		vm_acpi_window(d, &vm->disks[i].mmio);
}

static void vm_disks_stats_text(const struct vm *vm, FILE *out)
{
	unsigned i;

	for (i = 0; i < vm->nr_disks; i++) {
		const struct virtio_blk *dev = &vm->disks[i];

		fprintf(out, "disk vd%c (virtio-blk at GPA 0x%llx, %s%s):\n", 'a' + i,
			(unsigned long long)dev->mmio.gpa, dev->path,
			dev->read_only ? ", read-only" : "");
		VM_DISK_COUNTERS(VM_COUNTER_TEXT)
		vm__counter_text(out, "malformed", &dev->mmio.malformed, VM_MALFORMED_HELP);
	}
}

static void vm_disks_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	json_t *disks = json_array();
	unsigned i;

	(void)devices;
	for (i = 0; disks && i < vm->nr_disks; i++) {
		const struct virtio_blk *dev = &vm->disks[i];
		json_t *o = json_pack("{s:s,s:b}", "path", dev->path, "read_only", dev->read_only);

		if (o) {
			VM_DISK_COUNTERS(VM_COUNTER_JSON)
			vm__counter_json(o, "malformed", &dev->mmio.malformed);
			json_array_append_new(disks, o);
		}
	}
	json_object_set_new(root, "disks", disks);
}

static void vm_disks_exit(struct vm *vm)
{
	unsigned i;

	for (i = 0; i < vm->nr_disks; i++) {
		virtio_blk__close(&vm->disks[i]);
		virtio_mmio__exit(&vm->disks[i].mmio);
	}
	free(vm->disks);
	vm->disks = NULL;
	vm->nr_disks = 0;
}

/*
 * Each disk's transport: virtio-blk serves every request on the vCPU that
 * notified it, so nothing is in flight once the vCPUs are out. Its size and
 * mode go too, for a restore to check against the image it opens.
 */
static int vm_disks_save(struct vm *vm, struct blob *b)
{
	size_t at = blob__section(b, "virtio-blk", 1);
	unsigned i;

	blob__u8(b, (uint8_t)vm->nr_disks);
	for (i = 0; i < vm->nr_disks; i++) {
		blob__u64(b, vm->disks[i].capacity);
		blob__bool(b, vm->disks[i].read_only);
		virtio_mmio__save(&vm->disks[i].mmio, b);
	}
	blob__section_end(b, at);
	return 0;
}

static int vm_disks_restore(struct vm *vm, struct blob_reader *r)
{
	struct blob_reader sub;
	uint16_t version;
	unsigned i, n;

	if (blob__enter(r, "virtio-blk", 1, &version, &sub))
		return -EINVAL;
	n = blob__get_u8(&sub);
	if (!sub.err && n != vm->nr_disks)
		blob__fail(&sub, "%u disks, this VM has %u", n, vm->nr_disks);
	for (i = 0; !sub.err && i < n; i++) {
		struct virtio_blk *d = &vm->disks[i];
		uint64_t sectors = blob__get_u64(&sub);
		bool ro = blob__get_bool(&sub);

		if (!sub.err && sectors != d->capacity)
			blob__fail(&sub, "disk %u (%s) has %llu sectors, the snapshot's had %llu",
				   i, d->path, (unsigned long long)d->capacity,
				   (unsigned long long)sectors);
		else if (!sub.err && ro != d->read_only)
			blob__fail(&sub, "disk %u (%s) is %s, the snapshot's was %s", i, d->path,
				   d->read_only ? "read-only" : "read-write",
				   ro ? "read-only" : "read-write");
		else if (!sub.err && virtio_mmio__restore(&d->mmio, &sub))
			break; /* sub says why */
	}
	if (blob_reader__done(&sub))
		return blob__fail(r, "virtio-blk: %s", sub.why);
	return 0;
}

const struct vm_device_ops vm_disks_dev = {
	.name = "virtio-blk",
	.create = vm_disks_create,
	.describe = vm_disks_describe,
	.stats_text = vm_disks_stats_text,
	.stats_json = vm_disks_stats_json,
	.exit = vm_disks_exit,
	.save = vm_disks_save,
	.restore = vm_disks_restore,
};

/* ---- the channel ---- */

/* The channel (--channel): the virtio-mmio window after the disks'. */
static int vm_channel_create(struct vm *vm, const struct run_config *cfg)
{
	struct virtio_console *c;
	int ret;

	if (!cfg->channel)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = virtio_console__open(c, cfg->channel);
	if (ret) {
		free(c);
		return ret;
	}
	vm->channel = c;
	ret = vm_add_virtio(vm, &c->mmio, &virtio_console_ops, c, &c->mmio_ready);
	if (ret)
		return ret;
	c->gate = vm__device_may_run;
	c->running = vm__device_running;
	c->gate_ctx = vm;
	return 0;
}

/* Its thread starts once a restore, if any, gave the device its state. */
static int vm_channel_start(struct vm *vm)
{
	return vm->channel ? virtio_console__start(vm->channel) : 0;
}

static void vm_channel_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	if (vm->channel)
		vm_acpi_window(d, &vm->channel->mmio);
}

static void vm_channel_stats_text(const struct vm *vm, FILE *out)
{
	const struct virtio_console *dev = vm->channel;

	if (!dev)
		return;
	fprintf(out, "channel (virtio-console at GPA 0x%llx, socket %s):\n",
		(unsigned long long)dev->mmio.gpa, dev->path);
	VM_CHANNEL_COUNTERS(VM_COUNTER_TEXT)
	vm__counter_text(out, "malformed", &dev->mmio.malformed, VM_MALFORMED_HELP);
}

static void vm_channel_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	const struct virtio_console *dev = vm->channel;
	json_t *o;

	(void)devices;
	if (!dev)
		return;
	o = json_pack("{s:s}", "socket", dev->path);
	if (o) {
		VM_CHANNEL_COUNTERS(VM_COUNTER_JSON)
		vm__counter_json(o, "malformed", &dev->mmio.malformed);
	}
	json_object_set_new(root, "channel", o);
}

/* After the vCPUs, before the MMU's handlers stop: what the guest wrote goes out. */
static void vm_channel_stop(struct vm *vm)
{
	if (vm->channel)
		virtio_console__stop(vm->channel, VM_CHANNEL_FLUSH_MS);
}

static void vm_channel_exit(struct vm *vm)
{
	if (!vm->channel)
		return;
	virtio_console__stop(vm->channel, 0);
	virtio_console__close(vm->channel);
	if (vm->channel->mmio_ready)
		virtio_mmio__exit(&vm->channel->mmio);
	free(vm->channel);
	vm->channel = NULL;
}

/* Whether there is a channel, then its state. */
static int vm_channel_save(struct vm *vm, struct blob *b)
{
	size_t at = vm__save_present(b, "channel", vm->channel != NULL);

	if (vm->channel)
		virtio_console__save(vm->channel, b);
	blob__section_end(b, at);
	return 0;
}

static int vm_channel_restore(struct vm *vm, struct blob_reader *r)
{
	struct blob_reader sub;
	bool had;

	if (vm__restore_present(r, "channel", "virtio-console", "has a channel", "has no channel",
				vm->channel != NULL, &sub, &had))
		return -EINVAL;
	if (had && virtio_console__restore(vm->channel, &sub))
		return blob__fail(r, "%s", sub.why);
	return vm__restore_present_end(r, "virtio-console", &sub);
}

const struct vm_device_ops vm_channel_dev = {
	.name = "virtio-console",
	.create = vm_channel_create,
	.describe = vm_channel_describe,
	.stats_text = vm_channel_stats_text,
	.stats_json = vm_channel_stats_json,
	.stop = vm_channel_stop,
	.exit = vm_channel_exit,
	.save = vm_channel_save,
	.restore = vm_channel_restore,
	.start = vm_channel_start,
};

/* ---- the balloon ---- */

static int vm_balloon_discard(void *ctx, uint64_t gpa, uint64_t len, uint64_t *dropped,
			      uint64_t *kept)
{
	struct vm *vm = ctx;

	return mmu__discard(&vm->mmu, gpa, len, dropped, kept);
}

/*
 * The balloon's target or size changed: the `balloon` event. Under the
 * device's lock, which is taken before vm->lock (a vCPU that waits in the
 * device for memory pauses the VM), never after it.
 */
static void vm_balloon_changed(void *ctx, uint32_t target, uint32_t actual)
{
	vm__event(ctx, "balloon",
		  json_pack("{s:i,s:i}", "target_pages", (int)target, "actual_pages", (int)actual));
}

/* The balloon (--balloon): the virtio-mmio window after the channel's. */
static int vm_balloon_create(struct vm *vm, const struct run_config *cfg)
{
	struct virtio_balloon *b;

	if (!cfg->balloon)
		return 0;
	b = calloc(1, sizeof(*b));
	if (!b || mmu__allow_discard(&vm->mmu)) {
		free(b);
		pr_err("cannot set up the balloon: out of memory");
		return -ENOMEM;
	}
	b->discard = vm_balloon_discard;
	b->discard_ctx = vm;
	b->changed = vm_balloon_changed;
	b->changed_ctx = vm;
	vm->balloon = b;
	return vm_add_virtio(vm, &b->mmio, &virtio_balloon_ops, b, &b->mmio_ready);
}

json_t *vm__balloon_json(const struct vm *vm, bool may_ask)
{
	struct virtio_balloon_stats st;
	uint32_t target, actual;
	json_t *o, *g;
	unsigned t;

	virtio_balloon__sizes(vm->balloon, &target, &actual);
	o = json_pack("{s:i,s:i}", "target_pages", (int)target, "actual_pages", (int)actual);
	virtio_balloon__guest_stats(vm->balloon, may_ask, 1000, 100, &st);
	if (!o || !st.present)
		return o;
	g = json_object();
	for (t = 0; g && t < VIRTIO_BALLOON_S_NR; t++)
		if (st.present & 1U << t)
			json_object_set_new(g, virtio_balloon__stat_name(t),
					    json_integer((json_int_t)st.val[t]));
	if (g)
		json_object_set_new(g, "age_ms", json_integer((json_int_t)st.age_ms));
	json_object_set_new(o, "guest_stats", g);
	return o;
}

static void vm_balloon_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	if (vm->balloon)
		vm_acpi_window(d, &vm->balloon->mmio);
}

/* The balloon's sizes and the guest's last statistics, as text. */
static void vm_balloon_stats_text(const struct vm *vm, FILE *out)
{
	const struct virtio_balloon *dev = vm->balloon;
	struct virtio_balloon_stats st;
	uint32_t target, actual;
	unsigned t;

	if (!dev)
		return;
	fprintf(out, "balloon (virtio-balloon at GPA 0x%llx, free page reporting):\n",
		(unsigned long long)dev->mmio.gpa);
	VM_BALLOON_COUNTERS(VM_COUNTER_TEXT)
	vm__counter_text(out, "malformed", &dev->mmio.malformed, VM_MALFORMED_HELP);
	virtio_balloon__sizes(vm->balloon, &target, &actual);
	fprintf(out, "  %-24s %12u  pages the host asked the guest for (ctl balloon)\n",
		"target_pages", target);
	fprintf(out, "  %-24s %12u  pages in the balloon, as the guest's driver last said\n",
		"actual_pages", actual);
	virtio_balloon__guest_stats(vm->balloon, false, 0, 0, &st);
	if (!st.present)
		return;
	fprintf(out, "guest memory statistics (its balloon driver's, %llu ms old):\n",
		(unsigned long long)st.age_ms);
	for (t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		if (st.present & 1U << t)
			fprintf(out, "  %-24s %12llu\n", virtio_balloon__stat_name(t),
				(unsigned long long)st.val[t]);
}

static void vm_balloon_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	const struct virtio_balloon *dev = vm->balloon;
	json_t *o, *sizes;

	(void)devices;
	if (!dev)
		return;
	o = json_object();
	sizes = vm__balloon_json(vm, false);
	if (o) {
		VM_BALLOON_COUNTERS(VM_COUNTER_JSON)
		vm__counter_json(o, "malformed", &dev->mmio.malformed);
		if (sizes)
			json_object_update(o, sizes); /* guest_stats, an object, last */
	}
	json_decref(sizes);
	json_object_set_new(root, "balloon", o);
}

static void vm_balloon_exit(struct vm *vm)
{
	if (!vm->balloon)
		return;
	if (vm->balloon->mmio_ready)
		virtio_mmio__exit(&vm->balloon->mmio);
	free(vm->balloon);
	vm->balloon = NULL;
}

/* Whether there is a balloon, then its state. */
static int vm_balloon_save(struct vm *vm, struct blob *b)
{
	size_t at = vm__save_present(b, "balloon", vm->balloon != NULL);

	if (vm->balloon)
		virtio_balloon__save(vm->balloon, b);
	blob__section_end(b, at);
	return 0;
}

static int vm_balloon_restore(struct vm *vm, struct blob_reader *r)
{
	struct blob_reader sub;
	bool had;

	if (vm__restore_present(r, "balloon", "virtio-balloon", "has a balloon", "has no balloon",
				vm->balloon != NULL, &sub, &had))
		return -EINVAL;
	if (had && virtio_balloon__restore(vm->balloon, &sub))
		return blob__fail(r, "%s", sub.why);
	return vm__restore_present_end(r, "virtio-balloon", &sub);
}

const struct vm_device_ops vm_balloon_dev = {
	.name = "virtio-balloon",
	.create = vm_balloon_create,
	.describe = vm_balloon_describe,
	.stats_text = vm_balloon_stats_text,
	.stats_json = vm_balloon_stats_json,
	.exit = vm_balloon_exit,
	.save = vm_balloon_save,
	.restore = vm_balloon_restore,
};
