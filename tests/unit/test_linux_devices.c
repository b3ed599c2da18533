/*
 * The devices of a Linux boot, without KVM: the 8250's interrupts and
 * input (devices/legacy/serial.c), the keyboard controller (devices/legacy/i8042.c), the
 * CMOS clock (devices/legacy/cmos.c), the ACPI PM1 registers
 * (devices/legacy/acpi_pm.c), the boot timer (devices/legacy/boot_timer.c), pvpanic
 * (devices/legacy/pvpanic.c), and
 * virtio-blk requests through the virtio-mmio transport
 * (devices/virtio/virtio_blk.c, devices/virtio/virtio_mmio.c) on plain guest RAM. The
 * wiring into a VM (vmm/vm/vm_linux.c) is tested end to end in tests/kvm/run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/boot_timer.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pvpanic.h"
#include "devices/legacy/serial.h"
#include "devices/virtio/virtio_balloon.h"
#include "devices/virtio/virtio_blk.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "tests/unit/unit.h"
#include "tests/unit/virtio_driver.h"

static uint8_t rd8(const struct bus_device_ops *ops, void *dev, uint64_t off)
{
	uint8_t v = 0xee;

	ck_assert_int_eq(ops->read(dev, off, &v, 1), 0);
	return v;
}

static void wr8(const struct bus_device_ops *ops, void *dev, uint64_t off, uint8_t v)
{
	ck_assert_int_eq(ops->write(dev, off, &v, 1), 0);
}

struct irq_log {
	int level, edges;
};

static void serial_irq(void *ctx, int level)
{
	struct irq_log *l = ctx;

	if (level && !l->level)
		l->edges++;
	l->level = level;
}

START_TEST(serial_interrupts)
{
	struct irq_log irq = {0, 0};
	struct serial s;
	int fds[2];
	char out[16] = "";

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(serial__init(&s, fds[1]), 0);
	serial__set_irq(&s, serial_irq, &irq);
	wr8(&serial_ops, &s, 2, 0x01); /* FIFO on: IIR shows 0xc0 */
	ck_assert_uint_eq(rd8(&serial_ops, &s, 2), 0xc1);
	wr8(&serial_ops, &s, 1, 0x02); /* THRI: the empty transmitter interrupts */
	ck_assert_int_eq(irq.level, 1);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 2), 0xc2); /* ... and reading IIR acknowledges */
	ck_assert_int_eq(irq.level, 0);
	wr8(&serial_ops, &s, 0, 'p'); /* sent at once: THRE again, a new edge */
	ck_assert_int_eq(irq.edges, 2);
	wr8(&serial_ops, &s, 1, 0x00); /* IER written: the partial line goes out */
	ck_assert_int_eq(irq.level, 0);
	ck_assert_int_eq(read(fds[0], out, sizeof(out) - 1), 1);
	ck_assert_str_eq(out, "p");
	/* Received data outranks THRE, sets LSR.DR, and reading RBR clears both. */
	wr8(&serial_ops, &s, 1, 0x03);
	ck_assert_uint_eq(serial__receive(&s, "ab", 2), 2);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 2), 0xc4);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 5), 0x61);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 0), 'a');
	ck_assert_uint_eq(rd8(&serial_ops, &s, 0), 'b');
	ck_assert_uint_eq(rd8(&serial_ops, &s, 5), 0x60);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 2), 0xc2);
	/* The FIFO holds SERIAL_RX_MAX bytes; FCR bit 1 empties it. */
	{
		static char big[SERIAL_RX_MAX + 10];

		ck_assert_uint_eq(serial__receive(&s, big, sizeof(big)), SERIAL_RX_MAX);
		wr8(&serial_ops, &s, 2, 0x03);
		ck_assert_uint_eq(rd8(&serial_ops, &s, 5) & 0x01, 0);
	}
	/* Loopback: MSR follows MCR (RTS->CTS, OUT2->DCD). */
	wr8(&serial_ops, &s, 4, 0x1a);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 6), 0x90);
	serial__exit(&s);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* The input thread moves what a file descriptor yields into the FIFO and ends at EOF. */
START_TEST(serial_input_thread)
{
	struct serial s;
	int in[2], stop[2], i;
	char got[8] = "";

	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(pipe(stop), 0);
	ck_assert_int_eq(serial__init(&s, -1), 0);
	ck_assert_int_eq(serial__start_input(&s, in[0], stop[0]), 0);
	ck_assert_int_eq(write(in[1], "ls\n", 3), 3);
	close(in[1]);
	for (i = 0; i < 500 && !(rd8(&serial_ops, &s, 5) & 0x01); i++)
		usleep(2000);
	for (i = 0; i < 3; i++) {
		while (!(rd8(&serial_ops, &s, 5) & 0x01))
			usleep(1000);
		got[i] = (char)rd8(&serial_ops, &s, 0);
	}
	ck_assert_str_eq(got, "ls\n");
	serial__exit(&s); /* joins the thread, which saw end of file */
	close(in[0]);
	close(stop[0]);
	close(stop[1]);
	ck_assert_int_eq(inject__init("pthread_create.serial:EAGAIN"), 0);
	ck_assert_int_eq(serial__init(&s, -1), 0);
	ck_assert_int_eq(serial__start_input(&s, 0, -1), -EAGAIN);
	serial__exit(&s);
	ck_assert_int_eq(inject__init(NULL), 0);
}
END_TEST

/* The VM's pause as the input thread sees it (vm__device_may_run()). */
static int serial_gate_state; /* atomic: 0 running, 1 paused, 2 stopping */
static int serial_gate_calls; /* atomic */

static bool serial_gate(void *ctx)
{
	(void)ctx;
	__atomic_add_fetch(&serial_gate_calls, 1, __ATOMIC_RELAXED);
	while (__atomic_load_n(&serial_gate_state, __ATOMIC_ACQUIRE) == 1)
		usleep(1000);
	return __atomic_load_n(&serial_gate_state, __ATOMIC_ACQUIRE) == 0;
}

/*
 * Typing into a paused VM: the input stays in the host's pipe, the guest
 * sees nothing until the resume; a stop during the pause ends the thread.
 */
START_TEST(serial_input_waits_while_paused)
{
	struct serial s;
	int in[2], stop[2], i;

	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(pipe(stop), 0);
	ck_assert_int_eq(serial__init(&s, -1), 0);
	__atomic_store_n(&serial_gate_state, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&serial_gate_calls, 0, __ATOMIC_RELEASE);
	s.gate = serial_gate;
	ck_assert_int_eq(serial__start_input(&s, in[0], stop[0]), 0);
	ck_assert_int_eq(write(in[1], "a", 1), 1);
	for (i = 0; i < 2000 && !__atomic_load_n(&serial_gate_calls, __ATOMIC_RELAXED); i++)
		usleep(1000);
	usleep(20 * 1000);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 5) & 0x01, 0); /* no data ready */
	__atomic_store_n(&serial_gate_state, 0, __ATOMIC_RELEASE);
	for (i = 0; i < 2000 && !(rd8(&serial_ops, &s, 5) & 0x01); i++)
		usleep(1000);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 0), 'a');
	/* Paused again, then stopped: the thread ends without reading "b". */
	__atomic_store_n(&serial_gate_state, 1, __ATOMIC_RELEASE);
	i = __atomic_load_n(&serial_gate_calls, __ATOMIC_RELAXED);
	ck_assert_int_eq(write(in[1], "b", 1), 1);
	while (__atomic_load_n(&serial_gate_calls, __ATOMIC_RELAXED) == i)
		usleep(1000);
	__atomic_store_n(&serial_gate_state, 2, __ATOMIC_RELEASE);
	usleep(20 * 1000);
	ck_assert_uint_eq(rd8(&serial_ops, &s, 5) & 0x01, 0);
	serial__exit(&s); /* joins the thread, which ended at the gate */
	close(in[0]);
	close(in[1]);
	close(stop[0]);
	close(stop[1]);
}
END_TEST

static void count_call(void *ctx)
{
	(*(int *)ctx)++;
}

START_TEST(i8042_controller)
{
	struct i8042 k;
	int resets = 0;

	ck_assert_int_eq(i8042__init(&k, count_call, &resets), 0);
	ck_assert_uint_eq(rd8(&i8042_command_ops, &k, 0), 0x14); /* SYS, not locked, empty */
	wr8(&i8042_command_ops, &k, 0, 0xaa);			 /* self test */
	ck_assert_uint_eq(rd8(&i8042_command_ops, &k, 0), 0x15);
	ck_assert_uint_eq(rd8(&i8042_data_ops, &k, 0), 0x55);
	wr8(&i8042_command_ops, &k, 0, 0x60); /* write the command byte */
	ck_assert_uint_eq(rd8(&i8042_command_ops, &k, 0), 0x1c);
	wr8(&i8042_data_ops, &k, 0, 0x47);
	wr8(&i8042_command_ops, &k, 0, 0x20);
	ck_assert_uint_eq(rd8(&i8042_data_ops, &k, 0), 0x47);
	wr8(&i8042_data_ops, &k, 0, 0xff); /* to a keyboard that is not there: dropped */
	ck_assert_uint_eq(rd8(&i8042_command_ops, &k, 0), 0x14);
	ck_assert_int_eq(resets, 0);
	wr8(&i8042_command_ops, &k, 0, 0xd1); /* output port with bit 0 low: reset */
	wr8(&i8042_data_ops, &k, 0, 0x00);
	ck_assert_int_eq(resets, 1);
	wr8(&i8042_command_ops, &k, 0, 0xfe); /* pulse reset */
	ck_assert_int_eq(resets, 2);
	ck_assert_int_eq(i8042_command_ops.write(&k, 0, "\xfe\xfe", 2), -EINVAL);
	i8042__exit(&k);
}
END_TEST

START_TEST(cmos_clock)
{
	struct cmos c;
	int64_t t = 1795413144; /* 2026-11-23 05:52:24 UTC, a Monday */

	ck_assert_uint_eq(cmos__register(0x00, t), 0x24);
	ck_assert_uint_eq(cmos__register(0x02, t), 0x52);
	ck_assert_uint_eq(cmos__register(0x04, t), 0x05);
	ck_assert_uint_eq(cmos__register(0x06, t), 0x02);
	ck_assert_uint_eq(cmos__register(0x07, t), 0x23);
	ck_assert_uint_eq(cmos__register(0x08, t), 0x11);
	ck_assert_uint_eq(cmos__register(0x09, t), 0x26);
	ck_assert_uint_eq(cmos__register(0x32, t), 0x20);
	ck_assert_uint_eq(cmos__register(0x0a, t) & 0x80, 0); /* never "update in progress" */
	ck_assert_uint_eq(cmos__register(0x0b, t), 0x02);
	ck_assert_uint_eq(cmos__register(0x0d, t), 0x80);
	ck_assert_uint_eq(cmos__register(0x40, t), 0);
	ck_assert_int_eq(cmos__init(&c), 0);
	wr8(&cmos_ops, &c, 0, 0x8b); /* bit 7 (NMI mask) is not part of the index */
	ck_assert_uint_eq(rd8(&cmos_ops, &c, 1), 0x02);
	cmos__exit(&c);
}
END_TEST

START_TEST(acpi_pm1)
{
	struct acpi_pm pm;
	int offs = 0;
	uint16_t v;

	ck_assert_int_eq(acpi_pm__init(&pm, count_call, &offs), 0);
	ck_assert_int_eq(acpi_pm_ops.read(&pm, 4, &v, 2), 0);
	ck_assert_uint_eq(v, 0x0001); /* SCI_EN: always in ACPI mode */
	v = 0x0120;
	ck_assert_int_eq(acpi_pm_ops.write(&pm, 2, &v, 2), 0);
	ck_assert_int_eq(acpi_pm_ops.read(&pm, 2, &v, 2), 0);
	ck_assert_uint_eq(v, 0x0120);
	v = 3 << 10 | 0x2000; /* SLP_EN with sleep type 3: not offered, nothing happens */
	ck_assert_int_eq(acpi_pm_ops.write(&pm, 4, &v, 2), 0);
	ck_assert_int_eq(offs, 0);
	v = 5 << 10 | 0x2000; /* S5: soft off */
	ck_assert_int_eq(acpi_pm_ops.write(&pm, 4, &v, 2), 0);
	ck_assert_int_eq(offs, 1);
	ck_assert_int_eq(acpi_pm_ops.read(&pm, 4, &v, 4), -EINVAL); /* past the 6 ports */
	acpi_pm__exit(&pm);
}
END_TEST

START_TEST(boot_timer_first_write)
{
	struct boot_timer t = {.start_ns = 1};
	uint64_t first;
	uint32_t v = 0xffffffff;

	ck_assert_int_eq(boot_timer_ops.read(&t, 0, &v, 4), 0);
	ck_assert_uint_eq(v, 0);
	wr8(&boot_timer_ops, &t, 0, 1);
	first = t.boot_ns;
	ck_assert_uint_gt(first, 0);
	wr8(&boot_timer_ops, &t, 0, 1);
	ck_assert_uint_eq(t.boot_ns, first); /* later writes are only counted */
	ck_assert_uint_eq(t.writes, 2);
}
END_TEST

START_TEST(pvpanic_reports_once)
{
	struct pvpanic p;
	int panics = 0;
	uint16_t wide = 1;

	pvpanic__init(&p, count_call, &panics);
	ck_assert_uint_eq(rd8(&pvpanic_ops, &p, 0), PVPANIC_PANICKED); /* the events offered */
	wr8(&pvpanic_ops, &p, 0, 0x2);				       /* crash loaded: ignored */
	ck_assert_int_eq(panics, 0);
	wr8(&pvpanic_ops, &p, 0, PVPANIC_PANICKED);
	ck_assert_int_eq(panics, 1);
	wr8(&pvpanic_ops, &p, 0, PVPANIC_PANICKED | 0x2); /* a second panic: reported once */
	ck_assert_int_eq(panics, 1);
	ck_assert_uint_eq(p.panics, 2);
	ck_assert_int_eq(pvpanic_ops.write(&p, 0, &wide, 2), -EINVAL);
	ck_assert_int_eq(pvpanic_ops.read(&p, 0, &wide, 2), -EINVAL);
	ck_assert_int_eq(panics, 1);
}
END_TEST

#define DISK_SECTORS 16
#define HDR_GPA	     0x10000ULL
#define DATA_GPA     0x11000ULL
#define STATUS_GPA   0x12000ULL

struct blk_fixture {
	struct guest_ram ram;
	struct virtio_blk b;
	char path[64];
	int irqs;
	uint16_t avail_idx;
};

static int blk_irq(void *ctx, unsigned irq, int level)
{
	struct blk_fixture *f = ctx;

	ck_assert_uint_eq(irq, 5);
	f->irqs += level;
	return 0;
}

static void blk_setup(struct blk_fixture *f, bool ro)
{
	uint8_t sector[512];
	int fd, i;

	memset(f, 0, sizeof(*f));
	strcpy(f->path, "/tmp/faultline-blk.XXXXXX");
	fd = mkstemp(f->path);
	ck_assert_int_ge(fd, 0);
	for (i = 0; i < DISK_SECTORS; i++) {
		memset(sector, 'A' + i, sizeof(sector));
		ck_assert_int_eq(write(fd, sector, sizeof(sector)), sizeof(sector));
	}
	close(fd);
	ck_assert_int_eq(guest_ram__init(&f->ram, 4 << 20), 0);
	ck_assert_int_eq(virtio_blk__open(&f->b, f->path, ro, 0), 0);
	ck_assert_int_eq(virtio_mmio__init(&f->b.mmio, &virtio_blk_ops, &f->b,
					   guest_ram__direct(&f->ram), 0xc0000000, 5, blk_irq, f),
			 0);
	/* What the Linux driver does: features, one queue of 8 at 0x1000/0x2000/0x3000. */
	ck_assert_uint_eq(vreg(&f->b.mmio, R_DEVICE_ID), 2);
	set_vreg(&f->b.mmio, R_STATUS, 0x03);
	set_vreg(&f->b.mmio, R_DEVICE_FEATURES_SEL, 1);
	ck_assert_uint_eq(vreg(&f->b.mmio, R_DEVICE_FEATURES), 1); /* VERSION_1 */
	set_vreg(&f->b.mmio, R_DRIVER_FEATURES_SEL, 1);
	set_vreg(&f->b.mmio, R_DRIVER_FEATURES, 1);
	set_vreg(&f->b.mmio, R_STATUS, 0x0b);
	ck_assert_uint_eq(vreg(&f->b.mmio, R_STATUS), 0x0b); /* FEATURES_OK accepted */
	set_vreg(&f->b.mmio, R_QUEUE_NUM, 8);
	set_vreg(&f->b.mmio, R_QUEUE_DESC, 0x1000);
	set_vreg(&f->b.mmio, R_QUEUE_DRIVER, 0x2000);
	set_vreg(&f->b.mmio, R_QUEUE_DEVICE, 0x3000);
	set_vreg(&f->b.mmio, R_QUEUE_READY, 1);
	set_vreg(&f->b.mmio, R_STATUS, 0x0f);
}

static void blk_teardown(struct blk_fixture *f)
{
	virtio_blk__close(&f->b);
	virtio_mmio__exit(&f->b.mmio);
	guest_ram__exit(&f->ram);
	unlink(f->path);
}

static void put_desc(struct blk_fixture *f, unsigned i, uint64_t gpa, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = guest_ram__ptr(&f->ram, 0x1000 + 16 * i, 16);

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/*
 * One request: header, one data buffer of @len bytes when @data, status.
 * Returns the status byte; the used length goes to *@used.
 */
static int blk_submit(struct blk_fixture *f, uint32_t type, uint64_t sector, bool data,
		      uint32_t len, bool device_writes, uint32_t *used)
{
	uint8_t *hdr = guest_ram__ptr(&f->ram, HDR_GPA, 16);
	uint8_t *st = guest_ram__ptr(&f->ram, STATUS_GPA, 1);
	uint16_t *avail = guest_ram__ptr(&f->ram, 0x2000, 4 + 2 * 8);
	uint32_t *used_ring = guest_ram__ptr(&f->ram, 0x3000, 4 + 8 * 8);
	unsigned n = 0;

	memset(hdr, 0, 16);
	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	*st = 0xee;
	put_desc(f, n, HDR_GPA, 16, 1, (uint16_t)(n + 1));
	n++;
	if (data) {
		put_desc(f, n, DATA_GPA, len, 1 | (device_writes ? 2 : 0), (uint16_t)(n + 1));
		n++;
	}
	put_desc(f, n, STATUS_GPA, 1, 2, 0);
	avail[2 + f->avail_idx % 8] = 0;
	avail[1] = ++f->avail_idx;
	set_vreg(&f->b.mmio, R_QUEUE_NOTIFY, 0);
	*used = used_ring[1 + 2 * ((f->avail_idx - 1) % 8) + 1];
	return *st;
}

/* One request with a data buffer of @len bytes, or none when @len is 0. */
static int blk_request(struct blk_fixture *f, uint32_t type, uint64_t sector, uint32_t len,
		       bool device_writes, uint32_t *used)
{
	return blk_submit(f, type, sector, len != 0, len, device_writes, used);
}

/* ---- virtio-balloon: free page reports -------------------------------------------------- */

#define BAL_QUEUE(q) (0x1000ULL + (q)*0x4000ULL) /* desc; +0x1000 avail; +0x2000 used */
#define BAL_PFNS     0x20000ULL

struct bal_fixture {
	struct guest_ram ram;
	struct virtio_balloon b;
	uint16_t avail_idx[4];
	uint64_t ranges[8][2]; /* what the device asked to drop */
	unsigned nr_ranges;
	int discard_ret;
	uint64_t highest_mapped; /* the highest GPA the device mapped */
	int block;		 /* atomic: the device's accesses wait while set */
	uint32_t changes[4][2];	 /* what the changed callback said */
	unsigned nr_changes;
};

static void *bal_ptr(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	struct bal_fixture *f = ctx;
	void *p = guest_ram__ptr(&f->ram, gpa, len);

	while (__atomic_load_n(&f->block, __ATOMIC_ACQUIRE))
		usleep(1000); /* as a vCPU parked by --on-oom pause in the device */

	if (gpa + len > f->highest_mapped)
		f->highest_mapped = gpa + len;
	*err = p ? 0 : -EFAULT;
	return p;
}

static int bal_discard(void *ctx, uint64_t gpa, uint64_t len, uint64_t *dropped, uint64_t *kept)
{
	struct bal_fixture *f = ctx;

	if (gpa + len > 4 << 20)
		return -EFAULT;
	if (f->nr_ranges < 8) {
		f->ranges[f->nr_ranges][0] = gpa;
		f->ranges[f->nr_ranges++][1] = len;
	}
	*dropped = len / 4096;
	*kept = 1;
	return f->discard_ret;
}

static int bal_irqs;

static int bal_irq(void *ctx, unsigned irq, int level)
{
	(void)ctx;
	(void)irq;
	bal_irqs += level;
	return 0;
}

/* The driver takes features @drv (REPORTING and DEFLATE_ON_OOM, with or without STATS_VQ). */
static void bal_setup_features(struct bal_fixture *f, uint32_t drv)
{
	unsigned q, nq = drv & 1U << 1 ? 4 : 3;

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(guest_ram__init(&f->ram, 4 << 20), 0);
	f->b.discard = bal_discard;
	f->b.discard_ctx = f;
	ck_assert_int_eq(virtio_mmio__init(&f->b.mmio, &virtio_balloon_ops, &f->b,
					   (struct guest_access){.ptr = bal_ptr, .ctx = f},
					   0xc0000000, 7, bal_irq, f),
			 0);
	ck_assert_uint_eq(vreg(&f->b.mmio, R_DEVICE_ID), 5);
	set_vreg(&f->b.mmio, R_STATUS, 0x03);
	/* REPORTING, DEFLATE_ON_OOM, STATS_VQ */
	ck_assert_uint_eq(vreg(&f->b.mmio, R_DEVICE_FEATURES), 1U << 5 | 1U << 2 | 1U << 1);
	set_vreg(&f->b.mmio, R_DRIVER_FEATURES, drv);
	set_vreg(&f->b.mmio, R_DRIVER_FEATURES_SEL, 1);
	set_vreg(&f->b.mmio, R_DRIVER_FEATURES, 1);
	set_vreg(&f->b.mmio, R_STATUS, 0x0b);
	for (q = 0; q < nq; q++) {
		set_vreg(&f->b.mmio, R_QUEUE_SEL, q);
		set_vreg(&f->b.mmio, R_QUEUE_NUM, 8);
		set_vreg(&f->b.mmio, R_QUEUE_DESC, (uint32_t)BAL_QUEUE(q));
		set_vreg(&f->b.mmio, R_QUEUE_DRIVER, (uint32_t)(BAL_QUEUE(q) + 0x1000));
		set_vreg(&f->b.mmio, R_QUEUE_DEVICE, (uint32_t)(BAL_QUEUE(q) + 0x2000));
		set_vreg(&f->b.mmio, R_QUEUE_READY, 1);
	}
	set_vreg(&f->b.mmio, R_STATUS, 0x0f);
	f->highest_mapped = 0;
}

/* Without the statistics queue: the reports are queue 2. */
static void bal_setup(struct bal_fixture *f)
{
	bal_setup_features(f, 1U << 5 | 1U << 2);
}

/* A chain of @n buffers (gpa, len, flags) on queue @q, notified; the used index after. */
static uint16_t bal_chain(struct bal_fixture *f, unsigned q, unsigned n, const uint64_t (*bufs)[3])
{
	uint16_t *avail = guest_ram__ptr(&f->ram, BAL_QUEUE(q) + 0x1000, 4 + 2 * 8);
	uint16_t *used = guest_ram__ptr(&f->ram, BAL_QUEUE(q) + 0x2000, 4 + 8 * 8);
	unsigned i;

	for (i = 0; i < n; i++) {
		uint8_t *d = guest_ram__ptr(&f->ram, BAL_QUEUE(q) + 16 * i, 16);
		uint32_t len = (uint32_t)bufs[i][1];
		uint16_t flags = (uint16_t)(bufs[i][2] | (i + 1 < n ? 1 : 0)),
			 next = (uint16_t)(i + 1);

		memcpy(d, &bufs[i][0], 8);
		memcpy(d + 8, &len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
	}
	avail[2 + f->avail_idx[q] % 8] = 0;
	avail[1] = ++f->avail_idx[q];
	set_vreg(&f->b.mmio, R_QUEUE_NOTIFY, q);
	return used[1];
}

/* The device's @i-th drop was of @len bytes at @gpa. */
static void expect_range(const struct bal_fixture *f, unsigned i, uint64_t gpa, uint64_t len)
{
	ck_assert_uint_gt(f->nr_ranges, i);
	ck_assert_uint_eq(f->ranges[i][0], gpa);
	ck_assert_uint_eq(f->ranges[i][1], len);
}

START_TEST(virtio_balloon_reports)
{
	static const uint64_t report[2][3] = {{0x200000, 0x100000, 2}, {0x300000, 0x80000, 2}};
	static const uint64_t inflate[1][3] = {{BAL_PFNS, 12, 0}};
	static const uint64_t deflate[1][3] = {{BAL_PFNS, 8, 0}};
	uint64_t cfg = 7;
	struct bal_fixture f;
	uint32_t pfns[3] = {0x250, 0x251, 0x300}, target, actual, v = 3;

	bal_setup(&f);
	ck_assert_int_eq(virtio_mmio_ops.read(&f.b.mmio, R_CONFIG, &cfg, 8), 0);
	ck_assert_uint_eq(cfg, 0); /* num_pages and actual: nothing asked for */
	/* The host asks for 3 pages: the driver is told (config change), says it holds them. */
	bal_irqs = 0;
	ck_assert_int_eq(virtio_balloon__set_target(&f.b, 3), 0);
	ck_assert_int_eq(bal_irqs, 1);
	ck_assert_uint_eq(vreg(&f.b.mmio, R_INTERRUPT_STATUS), 2);
	ck_assert_int_eq(virtio_mmio_ops.read(&f.b.mmio, R_CONFIG, &v, 4), 0);
	ck_assert_uint_eq(v, 3);
	ck_assert_int_eq(virtio_mmio_ops.write(&f.b.mmio, R_CONFIG + 4, &v, 4), 0);
	ck_assert_int_eq(virtio_mmio_ops.write(&f.b.mmio, R_CONFIG, &cfg, 4), 0); /* ignored */
	virtio_balloon__sizes(&f.b, &target, &actual);
	ck_assert_uint_eq(target, 3);
	ck_assert_uint_eq(actual, 3);
	ck_assert_int_eq(virtio_mmio_ops.read(&f.b.mmio, R_CONFIG + 8, &v, 4), -EINVAL);
	/* A report of two ranges: both dropped, neither mapped, the chain returned. */
	ck_assert_uint_eq(bal_chain(&f, 2, 2, report), 1);
	ck_assert_uint_eq(f.nr_ranges, 2);
	expect_range(&f, 0, 0x200000, 0x100000);
	expect_range(&f, 1, 0x300000, 0x80000);
	ck_assert_uint_lt(f.highest_mapped, 0x20000); /* the rings only */
	ck_assert_uint_eq(f.b.reports, 1);
	ck_assert_uint_eq(f.b.reported_bytes, 0x180000);
	ck_assert_uint_eq(f.b.pages_dropped, 0x180);
	ck_assert_uint_eq(f.b.pages_kept, 2);
	/* Pages put in the balloon (PFNs): dropped in runs of consecutive pages. */
	memcpy(guest_ram__ptr(&f.ram, BAL_PFNS, 12), pfns, 12);
	ck_assert_uint_eq(bal_chain(&f, 0, 1, inflate), 1);
	ck_assert_uint_eq(f.nr_ranges, 4);
	expect_range(&f, 2, 0x250000, 8192);
	expect_range(&f, 3, 0x300000, 4096);
	ck_assert_uint_eq(f.b.inflated, 3);
	/* Deflating needs nothing: the chain comes back. */
	ck_assert_uint_eq(bal_chain(&f, 1, 1, deflate), 1);
	ck_assert_uint_eq(f.nr_ranges, 4);
	/* A drop that fails is counted; the guest goes on. */
	f.discard_ret = -EIO;
	ck_assert_uint_eq(bal_chain(&f, 2, 1, report), 2);
	ck_assert_uint_eq(f.b.errors, 1);
	ck_assert_uint_eq(f.b.mmio.malformed, 0);
	virtio_mmio__exit(&f.b.mmio);
	guest_ram__exit(&f.ram);
}
END_TEST

#define BAL_STATS 0x21000ULL

/* The driver's statistics buffer at BAL_STATS: @n (tag, value) entries. */
static void bal_stats_buffer(struct bal_fixture *f, unsigned n, const uint64_t (*entries)[2])
{
	uint8_t *p = guest_ram__ptr(&f->ram, BAL_STATS, 10 * n);
	unsigned i;

	for (i = 0; i < n; i++) {
		uint16_t tag = (uint16_t)entries[i][0];

		memcpy(p + 10 * i, &tag, 2);
		memcpy(p + 10 * i + 2, &entries[i][1], 8);
	}
}

/*
 * STATS_VQ: the driver's buffer of statistics is read and kept (not
 * returned); asking gives it back (used, an interrupt), and the next one
 * the driver sends holds fresh values. Tags past those kept are skipped.
 * The reports move to queue 3.
 */
START_TEST(virtio_balloon_guest_stats)
{
	static const uint64_t first[4][2] = {{4, 100 << 20}, {5, 256 << 20}, {99, 1}, {2, 7}};
	static const uint64_t second[2][2] = {{4, 60 << 20}, {5, 256 << 20}};
	static const uint64_t buf4[1][3] = {{BAL_STATS, 40, 0}}, buf2[1][3] = {{BAL_STATS, 20, 0}};
	static const uint64_t report[1][3] = {{0x200000, 0x100000, 2}};
	struct virtio_balloon_stats st;
	struct bal_fixture f;

	bal_setup_features(&f, 1U << 5 | 1U << 2 | 1U << 1);
	/* Nothing yet: nothing to ask with, nothing given. */
	virtio_balloon__guest_stats(&f.b, true, 0, 0, &st);
	ck_assert_uint_eq(st.present, 0);
	ck_assert_uint_eq(st.updates, 0);
	bal_stats_buffer(&f, 4, first);
	ck_assert_uint_eq(bal_chain(&f, 2, 1, buf4), 0); /* kept, not used */
	virtio_balloon__guest_stats(&f.b, false, 0, 0, &st);
	ck_assert_uint_eq(st.present, 1U << 4 | 1U << 5 | 1U << 2);
	ck_assert_uint_eq(st.val[4], 100 << 20);
	ck_assert_uint_eq(st.val[5], 256 << 20);
	ck_assert_uint_eq(st.val[2], 7);
	ck_assert_uint_eq(st.updates, 1);
	ck_assert_str_eq(virtio_balloon__stat_name(4), "free_memory");
	ck_assert_str_eq(virtio_balloon__stat_name(15), "direct_reclaims");
	ck_assert_ptr_null(virtio_balloon__stat_name(16));
	/* Fresh enough: not asked again. */
	bal_irqs = 0;
	virtio_balloon__guest_stats(&f.b, true, 60000, 0, &st);
	ck_assert_int_eq(bal_irqs, 0);
	/* Asked: the buffer comes back to the driver, with an interrupt. */
	virtio_balloon__guest_stats(&f.b, true, 0, 0, &st);
	ck_assert_int_eq(bal_irqs, 1);
	ck_assert_uint_eq(*(uint16_t *)guest_ram__ptr(&f.ram, BAL_QUEUE(2) + 0x2002, 2), 1);
	ck_assert_uint_eq(st.val[4], 100 << 20); /* no wait: the old values */
	/* The driver's answer. */
	bal_stats_buffer(&f, 2, second);
	ck_assert_uint_eq(bal_chain(&f, 2, 1, buf2), 1);
	virtio_balloon__guest_stats(&f.b, false, 0, 0, &st);
	ck_assert_uint_eq(st.present, 1U << 4 | 1U << 5);
	ck_assert_uint_eq(st.val[4], 60 << 20);
	ck_assert_uint_eq(st.updates, 2);
	ck_assert_uint_eq(f.b.stats_updates, 2);
	/* A second buffer while one is kept: the older goes back. */
	ck_assert_uint_eq(bal_chain(&f, 2, 1, buf2), 2);
	/* The reports are queue 3 now. */
	ck_assert_uint_eq(bal_chain(&f, 3, 1, report), 1);
	expect_range(&f, 0, 0x200000, 0x100000);
	/* A reset forgets the buffer kept: asking then does nothing. */
	set_vreg(&f.b.mmio, R_STATUS, 0);
	bal_irqs = 0;
	virtio_balloon__guest_stats(&f.b, true, 0, 0, &st);
	ck_assert_int_eq(bal_irqs, 0);
	ck_assert_uint_eq(f.b.mmio.malformed, 0);
	virtio_mmio__exit(&f.b.mmio);
	guest_ram__exit(&f.ram);
}
END_TEST

static void bal_changed(void *ctx, uint32_t target, uint32_t actual)
{
	struct bal_fixture *f = ctx;

	if (f->nr_changes < 4) {
		f->changes[f->nr_changes][0] = target;
		f->changes[f->nr_changes++][1] = actual;
	}
}

static void *bal_notify_thread(void *arg)
{
	struct bal_fixture *f = arg;

	set_vreg(&f->b.mmio, R_QUEUE_NOTIFY, 0);
	return NULL;
}

/*
 * The host's calls never wait out a vCPU that waits in the device (the
 * budget cannot back a buffer it maps, --on-oom pause): the sizes come at
 * once, the statistics come back empty and a new target is refused
 * (-EBUSY), each within the 100 ms bound; once the vCPU goes on, they work.
 * The target and the driver's count changing call the changed callback.
 */
START_TEST(virtio_balloon_host_calls_never_wait_for_a_vcpu)
{
	struct virtio_balloon_stats st;
	struct bal_fixture f;
	uint32_t target, actual, v = 5;
	struct timespec t0, t1;
	pthread_t vcpu;
	double ms;

	bal_setup_features(&f, 1U << 5 | 1U << 2 | 1U << 1);
	f.b.changed = bal_changed;
	f.b.changed_ctx = &f;
	ck_assert_int_eq(virtio_balloon__set_target(&f.b, 5), 0);
	ck_assert_int_eq(virtio_mmio_ops.write(&f.b.mmio, R_CONFIG + 4, &v, 4), 0);
	ck_assert_int_eq(virtio_mmio_ops.write(&f.b.mmio, R_CONFIG + 4, &v, 4), 0); /* same */
	ck_assert_uint_eq(f.nr_changes, 2);
	ck_assert_uint_eq(f.changes[0][0], 5);
	ck_assert_uint_eq(f.changes[0][1], 0);
	ck_assert_uint_eq(f.changes[1][0], 5);
	ck_assert_uint_eq(f.changes[1][1], 5);
	__atomic_store_n(&f.block, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_create(&vcpu, NULL, bal_notify_thread, &f), 0);
	usleep(20000); /* the "vCPU" holds the device now */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	virtio_balloon__sizes(&f.b, &target, &actual);
	ck_assert_uint_eq(target, 5);
	ck_assert_uint_eq(actual, 5);
	virtio_balloon__guest_stats(&f.b, true, 0, 0, &st);
	ck_assert_uint_eq(st.present, 0);
	ck_assert_int_eq(virtio_balloon__set_target(&f.b, 9), -EBUSY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	ck_assert_msg(ms < 2000, "the host's calls took %.0f ms", ms);
	__atomic_store_n(&f.block, 0, __ATOMIC_RELEASE);
	pthread_join(vcpu, NULL);
	ck_assert_int_eq(virtio_balloon__set_target(&f.b, 9), 0);
	virtio_balloon__sizes(&f.b, &target, &actual);
	ck_assert_uint_eq(target, 9);
	ck_assert_uint_eq(f.nr_changes, 3);
	virtio_mmio__exit(&f.b.mmio);
	guest_ram__exit(&f.ram);
}
END_TEST

/* One malformed chain of @n buffers on queue @q: the device stops, saying @why once. */
static void bal_malformed(unsigned q, unsigned n, const uint64_t (*bufs)[3], const char *why)
{
	static char log_buf[512];
	struct bal_fixture f;

	log__capture(log_buf, sizeof(log_buf));
	bal_setup(&f);
	ck_assert_uint_eq(bal_chain(&f, q, n, bufs), 0);
	ck_assert_uint_eq(f.b.mmio.malformed, 1);
	ck_assert_uint_eq(vreg(&f.b.mmio, R_STATUS) & 0x40, 0x40); /* NEEDS_RESET */
	ck_assert_msg(strstr(log_buf, why), "log: %s", log_buf);
	ck_assert_uint_eq(f.nr_ranges, 0);
	virtio_mmio__exit(&f.b.mmio);
	guest_ram__exit(&f.ram);
	log__capture(NULL, 0);
}

/* A report the device cannot take: read-only, or outside RAM; an inflate buffer not of PFNs. */
START_TEST(virtio_balloon_malformed)
{
	static const uint64_t ro[1][3] = {{0x200000, 0x1000, 0}};
	static const uint64_t outside[1][3] = {{0x3ff000, 0x2000, 2}};
	static const uint64_t odd[1][3] = {{BAL_PFNS, 6, 0}};

	bal_malformed(2, 1, ro,
		      "faultline: virtio-balloon at GPA 0xc0000000: a free page report in a "
		      "read-only buffer; the device stops until the guest resets it\n");
	bal_malformed(2, 1, outside,
		      "a free page report outside guest RAM (GPA 0x3ff000, 8192 bytes)");
	bal_malformed(0, 1, odd, "an inflate buffer that is not a read-only array of PFNs");
}
END_TEST

/* A statistics buffer the device cannot read: writable, not of 10-byte entries, outside RAM. */
START_TEST(virtio_balloon_stats_malformed)
{
	static const uint64_t bufs[3][1][3] = {
		{{BAL_STATS, 20, 2}}, {{BAL_STATS, 12, 0}}, {{0x3ffff0, 40, 0}}};
	static const char *const why[3] = {
		"a statistics buffer that is not a read-only array of 10-byte entries (20 bytes)",
		"a statistics buffer that is not a read-only array of 10-byte entries (12 bytes)",
		"a statistics buffer outside guest RAM (GPA 0x3ffff0, 40 bytes)"};
	static char log_buf[512];
	struct virtio_balloon_stats st;
	unsigned i;

	for (i = 0; i < 3; i++) {
		struct bal_fixture f;

		log__capture(log_buf, sizeof(log_buf));
		bal_setup_features(&f, 1U << 5 | 1U << 2 | 1U << 1);
		ck_assert_uint_eq(bal_chain(&f, 2, 1, bufs[i]), 0);
		ck_assert_uint_eq(f.b.mmio.malformed, 1);
		ck_assert_msg(strstr(log_buf, why[i]), "log: %s", log_buf);
		virtio_balloon__guest_stats(&f.b, true, 0, 0, &st);
		ck_assert_uint_eq(st.updates, 0);
		virtio_mmio__exit(&f.b.mmio);
		guest_ram__exit(&f.ram);
		log__capture(NULL, 0);
	}
}
END_TEST

START_TEST(virtio_blk_requests)
{
	struct blk_fixture f;
	uint8_t *data, sector[512], id[21] = "";
	uint32_t used;
	uint64_t capacity;
	int fd;

	blk_setup(&f, false);
	ck_assert_int_eq(virtio_mmio_ops.read(&f.b.mmio, R_CONFIG, &capacity, 8), 0);
	ck_assert_uint_eq(capacity, DISK_SECTORS);
	data = guest_ram__ptr(&f.ram, DATA_GPA, 1024);
	/* IN: sectors 2 and 3. */
	ck_assert_int_eq(blk_request(&f, 0, 2, 1024, true, &used), 0);
	ck_assert_uint_eq(used, 1025);
	ck_assert_uint_eq(data[0], 'C');
	ck_assert_uint_eq(data[1023], 'D');
	ck_assert_uint_eq(f.irqs, 1);
	ck_assert_uint_eq(vreg(&f.b.mmio, R_INTERRUPT_STATUS), 1);
	/* OUT to sector 5, then FLUSH: the file has it. */
	memset(data, 'z', 512);
	ck_assert_int_eq(blk_request(&f, 1, 5, 512, false, &used), 0);
	ck_assert_uint_eq(used, 1);
	ck_assert_int_eq(blk_request(&f, 4, 0, 0, false, &used), 0);
	fd = open(f.path, O_RDONLY);
	ck_assert_int_eq(pread(fd, sector, 512, 5 * 512), 512);
	close(fd);
	ck_assert_uint_eq(sector[0], 'z');
	ck_assert_uint_eq(sector[511], 'z');
	/* GET_ID. */
	ck_assert_int_eq(blk_request(&f, 8, 0, 20, true, &used), 0);
	memcpy(id, data, 20);
	ck_assert_str_eq((char *)id, "faultline-vda");
	/* GET_ID into a buffer of 0 bytes: nothing to write, and nothing written (found by
	 * fuzzing). */
	ck_assert_int_eq(blk_submit(&f, 8, 0, true, 0, true, &used), 0);
	ck_assert_uint_eq(used, 1);
	/* Past the end of the disk, an unknown type, an injected read error. */
	ck_assert_int_eq(blk_request(&f, 0, DISK_SECTORS - 1, 1024, true, &used), 1);
	ck_assert_int_eq(blk_request(&f, 99, 0, 0, false, &used), 2);
	ck_assert_int_eq(inject__init("virtio_blk.pread:EIO"), 0);
	ck_assert_int_eq(blk_request(&f, 0, 0, 512, true, &used), 1);
	ck_assert_int_eq(inject__init("virtio_blk.fdatasync:EIO"), 0);
	ck_assert_int_eq(blk_request(&f, 4, 0, 0, false, &used), 1);
	ck_assert_int_eq(inject__init(NULL), 0);
	ck_assert_uint_eq(f.b.reads, 1); /* requests that failed are io_errors */
	ck_assert_uint_eq(f.b.writes, 1);
	ck_assert_uint_eq(f.b.flushes, 2);
	ck_assert_uint_eq(f.b.bytes_read, 1024);
	ck_assert_uint_eq(f.b.bytes_written, 512);
	ck_assert_uint_eq(f.b.io_errors, 3);
	ck_assert_uint_eq(f.b.unsupported, 1);
	ck_assert_uint_eq(f.b.mmio.malformed, 0);
	blk_teardown(&f);
}
END_TEST

/*
 * Images that cannot be disks: a missing file, a directory (read-only, so
 * that open() succeeds); one whose size is not whole sectors is used, its
 * tail unseen, and says so.
 */
START_TEST(virtio_blk_image_errors)
{
	static char log_buf[512];
	char path[] = "/tmp/faultline-blk-odd.XXXXXX", want[256];
	struct virtio_blk b;
	int fd;

	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_blk__open(&b, "/nonexistent/disk.img", false, 0), -ENOENT);
	ck_assert_str_eq(log_buf, "faultline: cannot open the disk image: No such file or "
				  "directory (file: /nonexistent/disk.img)\n");
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_blk__open(&b, "/tmp", true, 0), -EMEDIUMTYPE);
	ck_assert_str_eq(log_buf,
			 "faultline: cannot use the disk image: not a regular file (file: /tmp)\n");
	ck_assert_int_eq(b.fd, -1);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 3 * 512 + 100), 0);
	close(fd);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_blk__open(&b, path, false, 1), 0);
	ck_assert_uint_eq(b.capacity, 3);
	ck_assert_str_eq(b.id, "faultline-vdb");
	snprintf(want, sizeof(want),
		 "faultline: disk image size 1636 is not a multiple of 512; the last 100 bytes "
		 "are not seen by the guest (file: %s)\n",
		 path);
	ck_assert_str_eq(log_buf, want);
	virtio_blk__close(&b);
	unlink(path);
	log__capture(NULL, 0);
}
END_TEST

START_TEST(virtio_blk_read_only_and_malformed)
{
	static char log_buf[512];
	struct blk_fixture f;
	uint32_t used;

	blk_setup(&f, true);
	set_vreg(&f.b.mmio, R_DEVICE_FEATURES_SEL, 0);
	ck_assert_uint_eq(vreg(&f.b.mmio, R_DEVICE_FEATURES) & (1 << 5),
			  1 << 5);				       /* VIRTIO_BLK_F_RO */
	ck_assert_int_eq(blk_request(&f, 1, 0, 512, false, &used), 1); /* write: IOERR */
	/* A read into a buffer the device may not write breaks the device, once. */
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(blk_request(&f, 0, 0, 512, false, &used), 0xee);
	log__capture(NULL, 0);
	ck_assert_log(log_buf,
		      "faultline: virtio-blk at GPA 0xc0000000: virtio-blk read into a read-only "
		      "buffer; the device stops until the guest resets it\n");
	ck_assert_uint_eq(vreg(&f.b.mmio, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET,
			  VIRTIO_STATUS_NEEDS_RESET);
	ck_assert_uint_eq(vreg(&f.b.mmio, R_INTERRUPT_STATUS) & 2, 2); /* configuration change */
	ck_assert_uint_eq(f.b.mmio.malformed, 1);
	/* Stopped: a good request is not served until a reset. */
	ck_assert_int_eq(blk_request(&f, 0, 0, 512, true, &used), 0xee);
	set_vreg(&f.b.mmio, R_STATUS, 0);
	ck_assert_uint_eq(vreg(&f.b.mmio, R_STATUS), 0);
	/* Registers take 32-bit accesses only. */
	ck_assert_int_eq(virtio_mmio_ops.write(&f.b.mmio, R_STATUS, "\x01", 1), -EINVAL);
	blk_teardown(&f);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_blk__open(&f.b, "/nonexistent/disk.img", false, 0), -ENOENT);
	log__capture(NULL, 0);
	ck_assert_log(log_buf, "faultline: cannot open the disk image: No such file or directory "
			       "(file: /nonexistent/disk.img)\n");
}
END_TEST

Suite *linux_devices_suite(void)
{
	Suite *s = suite_create("linux_devices");
	TCase *tc = tcase_create("devices");

	tcase_add_test(tc, serial_interrupts);
	tcase_add_test(tc, serial_input_thread);
	tcase_add_test(tc, serial_input_waits_while_paused);
	tcase_add_test(tc, i8042_controller);
	tcase_add_test(tc, cmos_clock);
	tcase_add_test(tc, acpi_pm1);
	tcase_add_test(tc, boot_timer_first_write);
	tcase_add_test(tc, pvpanic_reports_once);
	tcase_add_test(tc, virtio_blk_requests);
	tcase_add_test(tc, virtio_blk_read_only_and_malformed);
	tcase_add_test(tc, virtio_blk_image_errors);
	tcase_add_test(tc, virtio_balloon_reports);
	tcase_add_test(tc, virtio_balloon_malformed);
	tcase_add_test(tc, virtio_balloon_guest_stats);
	tcase_add_test(tc, virtio_balloon_stats_malformed);
	tcase_add_test(tc, virtio_balloon_host_calls_never_wait_for_a_vcpu);
	suite_add_tcase(s, tc);
	return s;
}
