/*
 * Fuzz target: a guest's virtio driver, as hostile as it likes, against
 * the virtio-mmio transport and the three devices behind it (virtio-blk,
 * virtio-balloon, the virtio-console channel's control queues).
 *
 * The input is a script: its first byte picks the device, the rest is a
 * list of operations a guest can make (register reads and writes of any
 * width at any offset, bytes written anywhere in its RAM, descriptors,
 * available-ring entries, notifications) plus what the host does beside it
 * (balloon targets and statistics requests, a memory budget that refuses a
 * buffer). A few operations are shortcuts that set a queue up the way a
 * Linux driver does, so that the fuzzer spends its time in the chains.
 *
 * Guest RAM is 64 KiB at GPA 0, served by a checked accessor like the
 * MMU's. Invariants, beyond "no crash, no sanitizer report": every buffer
 * a device gives back was one it held, a device gives back no more chains
 * than it took, and no message it prints has a "(null)" in it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/virtio/virtio_balloon.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "tests/virtio_regs.h"

#define RAM_SIZE     0x10000ULL
#define DISK_SECTORS 64
#define HOLDS_MAX    1024
#define DEV_GPA	     0xc0000000ULL

enum { DEV_BLK, DEV_BLK_RO, DEV_BALLOON, DEV_CONSOLE, NR_DEVS };

enum {
	OP_WRITE,  /* a register write of 1, 2, 4 or 8 bytes */
	OP_READ,   /* a register read */
	OP_MEM,	   /* bytes into guest RAM */
	OP_SETUP,  /* shortcut: features, then every queue at its usual place */
	OP_DESC,   /* shortcut: one descriptor of a queue's table */
	OP_AVAIL,  /* shortcut: a head into a queue's available ring */
	OP_NOTIFY, /* shortcut: QueueNotify */
	OP_HOST,   /* the host: a balloon target, statistics asked for */
	OP_NOMEM,  /* the budget refuses the next buffer (-ENOMEM) */
	OP_CHAIN,  /* shortcut: a whole chain of N descriptors, made available */
	NR_OPS,
};

static uint8_t ram[RAM_SIZE];

static struct {
	uint64_t gpa, len;
} holds[HOLDS_MAX];
static unsigned nr_holds;
static bool nomem;
static char log_buf[4096];

static struct virtio_blk blk_rw, blk_ro;
static struct virtio_balloon balloon;
static struct virtio_console console;
static struct virtio_console console_pristine;

static void *ram_ptr(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	(void)ctx;
	if (nomem) {
		nomem = false;
		*err = -ENOMEM;
		return NULL;
	}
	if (!len || gpa >= RAM_SIZE || len > RAM_SIZE - gpa) {
		*err = -EFAULT;
		return NULL;
	}
	return ram + gpa;
}

static void *ram_hold(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	void *p = ram_ptr(ctx, gpa, len, err);

	if (p) {
		fuzz__check(nr_holds < HOLDS_MAX, "more than %u buffers held", HOLDS_MAX);
		holds[nr_holds].gpa = gpa;
		holds[nr_holds++].len = len;
	}
	return p;
}

static void ram_release(void *ctx, uint64_t gpa, uint64_t len)
{
	unsigned i;

	(void)ctx;
	for (i = 0; i < nr_holds; i++)
		if (holds[i].gpa == gpa && holds[i].len == len) {
			holds[i] = holds[--nr_holds];
			return;
		}
	fuzz__check(false, "released GPA 0x%llx (%llu bytes), which was never held",
		    (unsigned long long)gpa, (unsigned long long)len);
}

static const struct guest_access ram_access = {
	.ptr = ram_ptr, .hold = ram_hold, .release = ram_release};

static int set_irq(void *ctx, unsigned irq, int level)
{
	(void)ctx;
	(void)irq;
	(void)level;
	return 0;
}

static int discard(void *ctx, uint64_t gpa, uint64_t len, uint64_t *dropped, uint64_t *kept)
{
	(void)ctx;
	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return -EFAULT;
	memset(ram + gpa, 0, len);
	*dropped = len / 4096;
	*kept = 0;
	return 0;
}

/* A disk of DISK_SECTORS sectors in a memfd, opened through its /proc path as a file is. */
static void open_disk(struct virtio_blk *b, bool ro, unsigned index)
{
	static char path[64];
	int fd = memfd_create("fuzz-disk", 0);

	fuzz__check(fd >= 0 && ftruncate(fd, DISK_SECTORS * 512) == 0, "memfd: %s",
		    strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fuzz__check(virtio_blk__open(b, path, ro, index) == 0, "cannot open %s", path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[64];

	(void)argc;
	(void)argv;
	log__capture(log_buf, sizeof(log_buf));
	open_disk(&blk_rw, false, 0);
	open_disk(&blk_ro, true, 1);
	snprintf(path, sizeof(path), "/tmp/faultline-fuzz-channel.%d", (int)getpid());
	fuzz__check(virtio_console__open(&console, path) == 0, "cannot listen on %s", path);
	console_pristine = console;
	return 0;
}

/* The device the script drives, set up afresh. */
static struct virtio_mmio *start(unsigned dev)
{
	struct virtio_mmio *m;
	void *opaque;
	const struct virtio_dev_ops *ops;

	switch (dev) {
	case DEV_BLK: m = &blk_rw.mmio, opaque = &blk_rw, ops = &virtio_blk_ops; break;
	case DEV_BLK_RO: m = &blk_ro.mmio, opaque = &blk_ro, ops = &virtio_blk_ops; break;
	case DEV_BALLOON:
		memset(&balloon, 0, sizeof(balloon));
		balloon.discard = discard;
		m = &balloon.mmio, opaque = &balloon, ops = &virtio_balloon_ops;
		break;
	default:
		console = console_pristine;
		m = &console.mmio, opaque = &console, ops = &virtio_console_ops;
		break;
	}
	fuzz__check(virtio_mmio__init(m, ops, opaque, ram_access, DEV_GPA, 5, set_irq, NULL) == 0,
		    "virtio_mmio__init");
	if (dev == DEV_BALLOON)
		balloon.mmio_ready = true;
	if (dev == DEV_CONSOLE)
		console.mmio_ready = true;
	return m;
}

static void reg_write(struct virtio_mmio *m, uint64_t off, uint64_t v, unsigned len)
{
	(void)virtio_mmio_ops.write(m, off, &v, len);
}

/* Where the shortcuts put queue @q: its table, its available ring, its used ring. */
static uint64_t q_desc(unsigned q)
{
	return 0x1000ULL * q;
}
static uint64_t q_avail(unsigned q)
{
	return 0x4000 + 0x400ULL * q;
}
static uint64_t q_used(unsigned q)
{
	return 0x5000 + 0x800ULL * q;
}

static void op_setup(struct virtio_mmio *m, struct fuzz_in *in)
{
	unsigned q, nq = m->ops->nr_queues;

	reg_write(m, R_STATUS, 0, 4); /* reset */
	reg_write(m, R_STATUS, 3, 4); /* ACKNOWLEDGE | DRIVER */
	reg_write(m, R_DRIVER_FEATURES_SEL, 0, 4);
	reg_write(m, R_DRIVER_FEATURES, fuzz__u32(in), 4);
	reg_write(m, R_DRIVER_FEATURES_SEL, 1, 4);
	reg_write(m, R_DRIVER_FEATURES, 1, 4); /* VERSION_1 */
	reg_write(m, R_STATUS, 0x0b, 4);
	for (q = 0; q < nq; q++) {
		reg_write(m, R_QUEUE_SEL, q, 4);
		reg_write(m, R_QUEUE_NUM, 1U << (fuzz__u8(in) % 9), 4);
		reg_write(m, R_QUEUE_DESC, q_desc(q), 4);
		reg_write(m, R_QUEUE_DRIVER, q_avail(q), 4);
		reg_write(m, R_QUEUE_DEVICE, q_used(q), 4);
		reg_write(m, R_QUEUE_READY, 1, 4);
	}
	reg_write(m, R_STATUS, 0x0f, 4);
}

/* A descriptor's address: mostly inside RAM, sometimes anywhere. */
static uint64_t some_gpa(struct fuzz_in *in)
{
	uint8_t how = fuzz__u8(in);

	return how < 224 ? 0x8000 + fuzz__u16(in) % 0x8000 : fuzz__u64(in);
}

static void put_desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = ram + q_desc(q) + 16 * (i % 256);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void put_avail(struct virtio_mmio *m, unsigned q, uint16_t head)
{
	uint16_t idx, num = m->q[q].num ? m->q[q].num : 1;
	uint8_t *a = ram + q_avail(q);

	memcpy(&idx, a + 2, 2);
	memcpy(a + 4 + 2 * (idx % num), &head, 2);
	idx++;
	memcpy(a + 2, &idx, 2);
}

static void op_chain(struct virtio_mmio *m, struct fuzz_in *in, unsigned q)
{
	unsigned n = 1 + fuzz__u8(in) % 8, first = fuzz__u8(in), i;
	uint16_t num = m->q[q].num ? m->q[q].num : 1;

	for (i = 0; i < n; i++) {
		uint8_t f = fuzz__u8(in);
		uint16_t flags = (i + 1 < n ? 1 : 0) | (f & 1 ? 2 : 0) | (f == 0xff ? 4 : 0);

		uint64_t gpa = some_gpa(in);
		uint32_t len = fuzz__u16(in) % 0x2000;

		/* What a driver puts in a buffer the device reads: a header, a message. */
		if (!(flags & 2) && gpa < RAM_SIZE)
			fuzz__bytes(in, ram + gpa,
				    len < 16 && len < RAM_SIZE - gpa ? len
				    : 16 < RAM_SIZE - gpa	     ? 16
								     : RAM_SIZE - gpa);
		put_desc(q, (first + i) % num, gpa, len, flags, (uint16_t)((first + i + 1) % num));
	}
	put_avail(m, q, (uint16_t)(first % num));
}

static void op_host(struct fuzz_in *in, unsigned dev)
{
	struct virtio_balloon_stats st;
	uint8_t what = fuzz__u8(in);

	if (dev != DEV_BALLOON)
		return;
	if (what & 1) {
		fuzz__check(virtio_balloon__set_target(&balloon, fuzz__u32(in) % 64) == 0,
			    "set_target without a vCPU in the device");
	} else {
		virtio_balloon__guest_stats(&balloon, what & 2, 0, 0, &st);
		fuzz__check(!(st.present >> VIRTIO_BALLOON_S_NR), "statistics tag past %u",
			    VIRTIO_BALLOON_S_NR);
	}
}

/*
 * Count the chains the device gave back during one operation from the used
 * indexes before (@was) and after; a queue set up again starts from 0.
 */
static uint64_t pushed(const struct virtio_mmio *m, const uint16_t *was)
{
	uint64_t n = 0;
	unsigned q;

	for (q = 0; q < VIRTIO_MAX_QUEUES; q++)
		n += m->q[q].used_idx >= was[q] ? m->q[q].used_idx - was[q] : m->q[q].used_idx;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned dev = fuzz__u8(&in) % NR_DEVS, ops = 0;
	uint64_t pushes = 0;
	struct virtio_mmio *m;

	memset(ram, 0, sizeof(ram));
	nr_holds = 0;
	nomem = false;
	m = start(dev);
	while (in.n && ops++ < 512) {
		uint8_t op = fuzz__u8(&in) % NR_OPS;
		uint16_t was[VIRTIO_MAX_QUEUES];
		uint64_t v = 0;
		unsigned q, len;

		for (q = 0; q < VIRTIO_MAX_QUEUES; q++)
			was[q] = m->q[q].used_idx;
		switch (op) {
		case OP_WRITE:
		case OP_READ: {
			uint64_t off = fuzz__u16(&in) % (VIRTIO_MMIO_SIZE + 8);

			len = 1U << (fuzz__u8(&in) % 4);
			if (op == OP_WRITE)
				reg_write(m, off, fuzz__u64(&in), len);
			else
				(void)virtio_mmio_ops.read(m, off, &v, len);
			break;
		}
		case OP_MEM: {
			uint64_t gpa = fuzz__u16(&in) % RAM_SIZE;

			len = fuzz__u8(&in);
			fuzz__bytes(&in, ram + gpa, len < RAM_SIZE - gpa ? len : RAM_SIZE - gpa);
			break;
		}
		case OP_SETUP: op_setup(m, &in); break;
		case OP_DESC:
			q = fuzz__u8(&in) % VIRTIO_MAX_QUEUES;
			put_desc(q, fuzz__u8(&in), some_gpa(&in), fuzz__u32(&in), fuzz__u16(&in),
				 fuzz__u16(&in));
			break;
		case OP_AVAIL:
			q = fuzz__u8(&in) % VIRTIO_MAX_QUEUES;
			put_avail(m, q, fuzz__u16(&in));
			break;
		case OP_NOTIFY: reg_write(m, R_QUEUE_NOTIFY, fuzz__u8(&in) % 5, 4); break;
		case OP_HOST: op_host(&in, dev); break;
		case OP_NOMEM: nomem = true; break;
		case OP_CHAIN:
			q = fuzz__u8(&in) % VIRTIO_MAX_QUEUES;
			op_chain(m, &in, q);
			reg_write(m, R_QUEUE_NOTIFY, q, 4);
			break;
		}
		pushes += pushed(m, was);
		fuzz__check(pushes <= m->chains, "%llu chains given back, %llu taken",
			    (unsigned long long)pushes, (unsigned long long)m->chains);
		fuzz__check(!strstr(log_buf, "(null)"), "a message printed (null): %s", log_buf);
		log_buf[0] = '\0';
	}
	virtio_mmio__exit(m);
	return 0;
}
