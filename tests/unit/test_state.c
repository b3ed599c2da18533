/*
 * Device state as versioned blobs: the legacy devices' save and restore
 * (devices/legacy/), virtio-mmio's and the balloon's (devices/virtio/),
 * and the board's blob of every device through the table's entries
 * (vm__save_devices(), vmm/vm/vm_board.c; the entries in vm_legacy.c,
 * vm_virtio.c and vm_bars.c) on a VM that never opens KVM.
 * A blob read back is untrusted: every cut and every bad value is refused
 * with a reason, and the device keeps its state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/blob.h"
#include "lib/log.h"
#include "tests/unit/unit.h"
#include "vmm/vm/vm.h"

static struct vm vm;
static int panics_seen;

static void on_event(void *ctx)
{
	(void)ctx;
	panics_seen++;
}

static void wr(const struct bus_device_ops *ops, void *dev, uint64_t off, uint8_t v)
{
	ck_assert_int_eq(ops->write(dev, off, &v, 1), 0);
}

static uint8_t rd(const struct bus_device_ops *ops, void *dev, uint64_t off)
{
	uint8_t v = 0xee;

	ck_assert_int_eq(ops->read(dev, off, &v, 1), 0);
	return v;
}

/* The Linux board's first seven devices, the legacy ones, at power-on. */
static void legacy_up(void)
{
	memset(&vm, 0, sizeof(vm));
	ck_assert_int_eq(serial__init(&vm.serial, -1), 0);
	ck_assert_int_eq(i8042__init(&vm.i8042, on_event, NULL), 0);
	ck_assert_int_eq(cmos__init(&vm.cmos), 0);
	ck_assert_int_eq(acpi_pm__init(&vm.acpi_pm, on_event, NULL), 0);
	pvpanic__init(&vm.pvpanic, on_event, NULL);
	vm.boot_timer.start_ns = 1;
	vm.board = &vm_board_linux;
	vm.nr_created = 7;
	ck_assert_ptr_eq(vm.board->devices[6], &vm_pvpanic_dev);
}

static void legacy_down(void)
{
	serial__exit(&vm.serial);
	i8042__exit(&vm.i8042);
	cmos__exit(&vm.cmos);
	acpi_pm__exit(&vm.acpi_pm);
}

/* State no power-on device has: every register and buffer touched. */
static void legacy_touch(void)
{
	static const char in[] = "hi";

	wr(&serial_ops, &vm.serial, 3, 0x83); /* LCR: DLAB */
	wr(&serial_ops, &vm.serial, 0, 0x03); /* DLL: 38400 baud */
	wr(&serial_ops, &vm.serial, 3, 0x1b); /* LCR: 8E1 */
	wr(&serial_ops, &vm.serial, 1, 0x01); /* IER: receive interrupts */
	wr(&serial_ops, &vm.serial, 7, 0x5a); /* SCR */
	ck_assert_uint_eq(serial__receive(&vm.serial, in, 2), 2);
	wr(&i8042_command_ops, &vm.i8042, 0, 0x60); /* write the command byte: its argument waits */
	wr(&cmos_ops, &vm.cmos, 0, 0x0a);
	ck_assert_int_eq(acpi_pm_ops.write(&vm.acpi_pm, 2, &(uint16_t){0x0120}, 2), 0);
	wr(&boot_timer_ops, &vm.boot_timer, 0, 1);
	wr(&pvpanic_ops, &vm.pvpanic, 0, 1);
}

static void legacy_check_touched(void)
{
	ck_assert_uint_eq(rd(&serial_ops, &vm.serial, 7), 0x5a);
	ck_assert_uint_eq(rd(&serial_ops, &vm.serial, 3), 0x1b);
	ck_assert_uint_eq(rd(&serial_ops, &vm.serial, 1), 0x01);
	ck_assert_uint_eq(rd(&serial_ops, &vm.serial, 0), 'h');
	ck_assert_uint_eq(rd(&serial_ops, &vm.serial, 0), 'i');
	wr(&serial_ops, &vm.serial, 3, 0x9b);
	ck_assert_uint_eq(rd(&serial_ops, &vm.serial, 0), 0x03);
	wr(&serial_ops, &vm.serial, 3, 0x1b);
	wr(&i8042_data_ops, &vm.i8042, 0, 0x47); /* the waiting command takes it */
	wr(&i8042_command_ops, &vm.i8042, 0, 0x20);
	ck_assert_uint_eq(rd(&i8042_data_ops, &vm.i8042, 0), 0x47);
	ck_assert_uint_eq(vm.cmos.index, 0x0a);
	ck_assert_uint_eq(vm.acpi_pm.enable, 0x0120);
	ck_assert_uint_ne(vm.boot_timer.boot_ns, 0);
	ck_assert_uint_eq(vm.boot_timer.writes, 1);
	ck_assert_uint_eq(vm.pvpanic.panics, 1);
}

static void save(struct blob *b)
{
	blob__init(b);
	ck_assert_int_eq(vm__save_devices(&vm, b), 0);
}

static int restore(const struct blob *b, size_t len, char *log, size_t log_len)
{
	struct blob_reader r;

	log__capture(log, log_len);
	blob_reader__init(&r, b->buf, len);
	return vm__restore_devices(&vm, &r);
}

/* Saved, then restored into devices at power-on: each holds what it held. */
START_TEST(legacy_round_trip)
{
	char log[256];
	struct blob b;
	uint64_t boot_ns;

	legacy_up();
	legacy_touch();
	boot_ns = vm.boot_timer.boot_ns;
	save(&b);
	legacy_down();
	legacy_up();
	ck_assert_uint_eq(rd(&serial_ops, &vm.serial, 7), 0);
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), 0);
	ck_assert_str_eq(log, "");
	ck_assert_uint_eq(vm.boot_timer.boot_ns, boot_ns);
	legacy_check_touched();
	legacy_down();
	blob__free(&b);
}
END_TEST

/* Every cut of a good blob is refused, and no device takes a cut state. */
START_TEST(every_cut_refused)
{
	char log[256];
	struct blob b;
	size_t n;

	legacy_up();
	legacy_touch();
	save(&b);
	legacy_down();
	for (n = 0; n < b.len; n++) {
		legacy_up();
		ck_assert_int_eq(restore(&b, n, log, sizeof(log)), -EINVAL);
		ck_assert_msg(strstr(log, "faultline: cannot restore the devices' state: "),
			      "cut at %zu: %s", n, log);
		legacy_down();
	}
	legacy_up();
	ck_assert_int_eq(restore(&b, 7, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: it ends 1 bytes "
			      "early (at byte 6)\n");
	legacy_down();
	blob__free(&b);
}
END_TEST

/* The blob's own header, and a byte too many. */
START_TEST(header_and_trailer_refused)
{
	char log[256];
	struct blob b;

	legacy_up();
	save(&b);
	b.buf[0] ^= 1;
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: not a device state "
			      "(magic 0x56444c47)\n");
	b.buf[0] ^= 1;
	b.buf[4] = 2;
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: device state of "
			      "version 2, this faultline reads 1\n");
	b.buf[4] = 1;
	vm.nr_created = 6;
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: 7 devices, this VM "
			      "has 6\n");
	vm.nr_created = 7;
	blob__u8(&b, 0);
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: 1 bytes are left "
			      "over\n");
	ck_assert_int_eq(restore(&b, b.len - 1, log, sizeof(log)), 0);
	legacy_down();
	blob__free(&b);
}
END_TEST

/* Offset of the first byte of section @name's payload in @b. */
static size_t payload(const struct blob *b, const char *name)
{
	size_t n = strlen(name), i;

	for (i = 8; i + 1 + n + 6 <= b->len; i++)
		if (b->buf[i] == n && !memcmp(b->buf + i + 1, name, n))
			return i + 1 + n + 6;
	ck_abort_msg("no section %s", name);
	return 0;
}

/* Values no device could hold are refused, naming the device. */
START_TEST(bad_values_refused)
{
	char log[256];
	struct blob b;
	size_t at;

	legacy_up();
	save(&b);
	at = payload(&b, "serial") + 8; /* the input's length */
	b.buf[at] = 0x01;
	b.buf[at + 1] = 0x04; /* 1025 */
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: serial: 1025 bytes "
			      "of input, it holds 1024\n");
	legacy_down();
	blob__free(&b);

	legacy_up();
	save(&b);
	b.buf[payload(&b, "i8042") + 3] = 0x99;
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: i8042: command 0x99 "
			      "waits for its argument; none does\n");
	legacy_down();
	blob__free(&b);

	legacy_up();
	save(&b);
	at = payload(&b, "acpi-pm") + 4;
	b.buf[at] = 0; /* SCI_EN clear */
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: acpi-pm: control "
			      "0x0000: SCI_EN is always set, SLP_EN never\n");
	legacy_down();
	blob__free(&b);

	legacy_up();
	save(&b);
	b.buf[payload(&b, "boot-timer")] = 1; /* written at 1 ns, 0 writes */
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: boot-timer: written "
			      "at 1 ns but never written\n");
	legacy_down();
	blob__free(&b);

	legacy_up();
	save(&b);
	b.buf[payload(&b, "serial") + 7] = 2; /* thr_int: a bool */
	ck_assert_int_eq(restore(&b, b.len, log, sizeof(log)), -EINVAL);
	ck_assert(strstr(log, "serial: byte 7 is 2, expected 0 or 1"));
	legacy_down();
	blob__free(&b);
}
END_TEST

/* A board whose devices cannot all be saved yet says which, and saves nothing. */
START_TEST(save_needs_every_device)
{
	static const struct vm_device_ops unsaved = {.name = "unsaved"};
	static const struct vm_device_ops *const devices[] = {&vm_serial_dev, &unsaved};
	static const struct vm_board board = {.name = "test", .devices = devices, .nr_devices = 2};
	char log[256];
	struct blob b;

	legacy_up();
	vm.board = &board;
	vm.nr_created = 2;
	blob__init(&b);
	log__capture(log, sizeof(log));
	ck_assert_int_eq(vm__save_devices(&vm, &b), -EOPNOTSUPP);
	ck_assert_str_eq(log, "faultline: cannot save the state of device unsaved: it has no save "
			      "yet\n");
	vm.board = &vm_board_linux;
	vm.nr_created = 7;
	legacy_down();
	blob__free(&b);
}
END_TEST

/*
 * The whole Linux board without its virtio and BAR devices saves: each of
 * those is an empty section. Restored into a VM that has one, it is
 * refused, naming it.
 */
START_TEST(absent_devices_round_trip)
{
	char log[256];
	struct blob_reader r;
	struct blob b;

	legacy_up();
	vm.nr_created = vm_board_linux.nr_devices;
	blob__init(&b);
	ck_assert_int_eq(vm__save_devices(&vm, &b), 0);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(vm__restore_devices(&vm, &r), 0);
	vm.nr_disks = 1;
	blob_reader__init(&r, b.buf, b.len);
	log__capture(log, sizeof(log));
	ck_assert_int_eq(vm__restore_devices(&vm, &r), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: virtio-blk: 0 "
			      "disks, this VM has 1\n");
	vm.nr_disks = 0;
	vm.balloon = (struct virtio_balloon *)&b;
	blob_reader__init(&r, b.buf, b.len);
	log__capture(log, sizeof(log));
	ck_assert_int_eq(vm__restore_devices(&vm, &r), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: virtio-balloon: the "
			      "snapshot has no balloon, this VM has one\n");
	vm.balloon = NULL;
	vm.channel = (struct virtio_console *)&b;
	blob_reader__init(&r, b.buf, b.len);
	log__capture(log, sizeof(log));
	ck_assert_int_eq(vm__restore_devices(&vm, &r), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: virtio-console: the "
			      "snapshot has no channel, this VM has one\n");
	vm.channel = NULL;
	vm.vram = (struct vram_dev *)&b;
	blob_reader__init(&r, b.buf, b.len);
	log__capture(log, sizeof(log));
	ck_assert_int_eq(vm__restore_devices(&vm, &r), -EINVAL);
	ck_assert_str_eq(log, "faultline: cannot restore the devices' state: vram: the snapshot "
			      "has none, this VM has one\n");
	vm.vram = NULL;
	vm.nr_created = 7;
	legacy_down();
	blob__free(&b);
}
END_TEST

/*
 * The channel, shm and vram present, through the table: saved with the
 * whole Linux board, changed, and restored, each comes back as it was.
 */
START_TEST(present_devices_round_trip)
{
	static const struct bar_mapper no_mapper = {0};
	char path[] = "/tmp/faultline-state-shm-XXXXXX";
	static struct virtio_console con;
	struct shm_dev shm;
	struct vram_dev vram;
	struct mmu mmu = {.limit_pages = 100};
	struct blob_reader r;
	struct blob b;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	legacy_up();
	vm.nr_created = vm_board_linux.nr_devices;
	memset(&con, 0, sizeof(con));
	con.listen_fd = con.peer_fd = con.kick_fd = con.stop_fd = -1;
	ck_assert_int_eq(virtio_mmio__init(&con.mmio, &virtio_console_ops, &con,
					   (struct guest_access){0}, 0xc0002000, 7, NULL, NULL),
			 0);
	ck_assert_int_eq(shm__init(&shm, path, 4096, NULL, 0xd0000000, &no_mapper, 8, 1000), 0);
	ck_assert_int_eq(vram__init(&vram, 4 * 4096, 4096, 0xe0000000, &mmu, &no_mapper, 8, 1000),
			 0);
	vm.channel = &con;
	vm.shm = &shm;
	vm.vram = &vram;
	con.port_added = con.port_ready = true;
	shm.last_ring = 42;
	ck_assert_int_eq(mmu__charge(&mmu, 1), 0);
	vram.charged[2] = 1;
	memset(vram.sys + 2 * 4096, 0x5a, 4096);
	blob__init(&b);
	ck_assert_int_eq(vm__save_devices(&vm, &b), 0);
	con.port_ready = false;
	shm.last_ring = 0;
	memset(vram.sys + 2 * 4096, 0, 4096);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(vm__restore_devices(&vm, &r), 0);
	ck_assert(con.port_added && con.port_ready);
	ck_assert_uint_eq(shm.last_ring, 42);
	ck_assert_uint_eq(vram.sys[2 * 4096 + 100], 0x5a);
	ck_assert(vram.charged[2] && !vram.charged[1]);
	ck_assert_uint_eq(mmu.resident_pages, 1); /* charged again, the old charge given back */
	vm.channel = NULL;
	vm.shm = NULL;
	vm.vram = NULL;
	vram__exit(&vram);
	shm__exit(&shm);
	virtio_mmio__exit(&con.mmio);
	vm.nr_created = 7;
	legacy_down();
	blob__free(&b);
	close(fd);
	unlink(path);
}
END_TEST

/* A disk's transport with its queues set up, as a driver leaves it. */
static void blk_up(struct virtio_blk *d, const char *path)
{
	ck_assert_int_eq(virtio_blk__open(d, path, false, 0), 0);
	ck_assert_int_eq(virtio_mmio__init(&d->mmio, &virtio_blk_ops, d, (struct guest_access){0},
					   0xc0000000, 5, NULL, NULL),
			 0);
}

/*
 * virtio-mmio's state: the registers and each queue's addresses and
 * indices come back as they were; a queue size that is no power of two,
 * a feature the device does not offer or a wrong number of queues is
 * refused, and the transport keeps its state.
 */
START_TEST(virtio_mmio_round_trip)
{
	char path[] = "/tmp/faultline-state-disk-XXXXXX";
	struct virtio_blk a, c;
	struct blob_reader r;
	struct blob b;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	blk_up(&a, path);
	blk_up(&c, path);
	a.mmio.status = 0x0f;
	a.mmio.drv_features = 1ULL << VIRTIO_F_VERSION_1;
	a.mmio.queue_sel = 0;
	a.mmio.int_status = 1;
	a.mmio.q[0] = (struct virtq){.num = 128,
				     .ready = true,
				     .desc = 0x10000,
				     .avail = 0x11000,
				     .used = 0x12000,
				     .last_avail = 7,
				     .used_idx = 7};
	blob__init(&b);
	virtio_mmio__save(&a.mmio, &b);
	ck_assert_int_eq(blob__end(&b), 0);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(virtio_mmio__restore(&c.mmio, &r), 0);
	ck_assert_int_eq(blob_reader__done(&r), 0);
	ck_assert_uint_eq(c.mmio.status, 0x0f);
	ck_assert_uint_eq(c.mmio.int_status, 1);
	ck_assert(c.mmio.q[0].ready);
	ck_assert_uint_eq(c.mmio.q[0].num, 128);
	ck_assert_uint_eq(c.mmio.q[0].used, 0x12000);
	ck_assert_uint_eq(c.mmio.q[0].last_avail, 7);
	blob__free(&b);

	a.mmio.q[0].num = 96;
	blob__init(&b);
	virtio_mmio__save(&a.mmio, &b);
	blob_reader__init(&r, b.buf, b.len);
	c.mmio.q[0].num = 64;
	ck_assert_int_eq(virtio_mmio__restore(&c.mmio, &r), -EINVAL);
	ck_assert_str_eq(r.why, "virtio-blk: queue 0 of 96 entries");
	ck_assert_uint_eq(c.mmio.q[0].num, 64);
	blob__free(&b);

	a.mmio.q[0].num = 128;
	a.mmio.drv_features |= 1ULL << 60;
	blob__init(&b);
	virtio_mmio__save(&a.mmio, &b);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(virtio_mmio__restore(&c.mmio, &r), -EINVAL);
	ck_assert_str_eq(r.why,
			 "virtio-blk: features 0x1000000000000000 the device does not offer");
	blob__free(&b);
	virtio_mmio__exit(&a.mmio);
	virtio_mmio__exit(&c.mmio);
	virtio_blk__close(&a);
	virtio_blk__close(&c);
	unlink(path);
}
END_TEST

/*
 * The balloon's state: the target, the driver's count, the statistics and
 * their held buffer come back; a held buffer past any queue is refused and
 * the device keeps its state.
 */
START_TEST(balloon_round_trip)
{
	struct virtio_balloon a = {0}, c = {0};
	struct blob_reader r;
	struct blob b;

	ck_assert_int_eq(virtio_mmio__init(&a.mmio, &virtio_balloon_ops, &a,
					   (struct guest_access){0}, 0xc0001000, 6, NULL, NULL),
			 0);
	ck_assert_int_eq(virtio_mmio__init(&c.mmio, &virtio_balloon_ops, &c,
					   (struct guest_access){0}, 0xc0001000, 6, NULL, NULL),
			 0);
	a.num_pages = 8192;
	a.actual = 4096;
	a.stats[4] = 123456;
	a.stats_present = 1U << 4;
	a.stats_held = true;
	a.stats_head = 3;
	a.mmio.q[0] = (struct virtq){.num = 64, .ready = true, .desc = 0x20000};
	blob__init(&b);
	virtio_balloon__save(&a, &b);
	ck_assert_int_eq(blob__end(&b), 0);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(virtio_balloon__restore(&c, &r), 0);
	ck_assert_int_eq(blob_reader__done(&r), 0);
	ck_assert_uint_eq(c.num_pages, 8192);
	ck_assert_uint_eq(c.actual, 4096);
	ck_assert_uint_eq(c.stats[4], 123456);
	ck_assert_uint_eq(c.stats_present, 1U << 4);
	ck_assert(c.stats_held);
	ck_assert_uint_eq(c.stats_head, 3);
	ck_assert_uint_eq(c.mmio.q[0].num, 64);
	blob__free(&b);

	a.stats_head = VIRTQ_SIZE_MAX;
	a.num_pages = 1;
	blob__init(&b);
	virtio_balloon__save(&a, &b);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(virtio_balloon__restore(&c, &r), -EINVAL);
	ck_assert_str_eq(r.why, "virtio-balloon: a held buffer at entry 256");
	ck_assert_uint_eq(c.num_pages, 8192);
	blob__free(&b);
	virtio_mmio__exit(&a.mmio);
	virtio_mmio__exit(&c.mmio);
}
END_TEST

Suite *state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_test(tc, legacy_round_trip);
	tcase_add_test(tc, every_cut_refused);
	tcase_add_test(tc, header_and_trailer_refused);
	tcase_add_test(tc, bad_values_refused);
	tcase_add_test(tc, save_needs_every_device);
	tcase_add_test(tc, absent_devices_round_trip);
	tcase_add_test(tc, present_devices_round_trip);
	tcase_add_test(tc, virtio_mmio_round_trip);
	tcase_add_test(tc, balloon_round_trip);
	suite_add_tcase(s, tc);
	return s;
}
