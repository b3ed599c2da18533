/*
 * The channel (devices/virtio/virtio_console.c) without KVM: a test plays the
 * guest's virtio-console driver on plain guest RAM through the virtio-mmio
 * transport, and the host program on the Unix socket. The handshake
 * (DEVICE_READY, DEVICE_ADD, PORT_READY, PORT_NAME, PORT_OPEN both ways),
 * bytes held until the guest opens the port, bytes both ways, a host that
 * leaves, the flush at stop, and the failures: malformed control messages,
 * sockets that cannot be listened on, a thread that cannot start, a reset.
 * The guest side in a real VM: tests/kvm/run (t_linux_channel_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/virtio_console.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/guest_ram.h"
#include "tests/unit/unit.h"
#include "tests/unit/virtio_driver.h"

#define QSIZE	   8
#define Q_RX	   0
#define Q_TX	   1
#define Q_CTRL_RX  2
#define Q_CTRL_TX  3
#define BUF_GPA	   0x80000ULL /* 256 bytes per descriptor slot */
#define DEVICE_GPA 0xc0000000ULL

struct chan_fixture {
	struct guest_ram ram;
	struct virtio_console c;
	char path[64];
	uint16_t avail_idx[4];
	uint16_t used_seen[4];
	int irqs; /* atomic: the thread raises them too */
};

static char log_buf[1024];

/* The VM's pause, as the channel's thread sees it (vm__device_may_run()). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static enum { GATE_RUNNING, GATE_PAUSED, GATE_STOPPING } gate_state;
static int gate_waits;	/* times the thread found the VM paused */
static int gate_passes; /* times the gate lets the thread go while paused: a pause just after */

static bool test_gate(void *ctx)
{
	bool run;

	(void)ctx;
	pthread_mutex_lock(&gate_lock);
	if (gate_passes > 0) {
		gate_passes--;
		pthread_mutex_unlock(&gate_lock);
		return true;
	}
	if (gate_state == GATE_PAUSED)
		gate_waits++;
	while (gate_state == GATE_PAUSED)
		pthread_cond_wait(&gate_cond, &gate_lock);
	run = gate_state == GATE_RUNNING;
	pthread_mutex_unlock(&gate_lock);
	return run;
}

/* vm__device_running(): the same state, without waiting. */
static bool test_running(void *ctx)
{
	bool run;

	(void)ctx;
	pthread_mutex_lock(&gate_lock);
	run = gate_state == GATE_RUNNING;
	pthread_mutex_unlock(&gate_lock);
	return run;
}

static void set_gate(int state)
{
	pthread_mutex_lock(&gate_lock);
	gate_state = state;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static int gate_waited(void)
{
	int n;

	pthread_mutex_lock(&gate_lock);
	n = gate_waits;
	pthread_mutex_unlock(&gate_lock);
	return n;
}

static int chan_irq(void *ctx, unsigned irq, int level)
{
	struct chan_fixture *f = ctx;

	ck_assert_uint_eq(irq, 6);
	__atomic_add_fetch(&f->irqs, level, __ATOMIC_RELAXED);
	return 0;
}

static uint64_t q_desc(unsigned q)
{
	return 0x10000 + q * 0x4000ULL;
}

/* The device on its socket (@n tells two apart), its thread not started. */
static void chan_prepare(struct chan_fixture *f, int n)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "/tmp/faultline-chan-%d-%d.sock", getpid(), n);
	unlink(f->path);
	ck_assert_int_eq(guest_ram__init(&f->ram, 4 << 20), 0);
	ck_assert_int_eq(virtio_console__open(&f->c, f->path), 0);
	ck_assert_int_eq(virtio_mmio__init(&f->c.mmio, &virtio_console_ops, &f->c,
					   guest_ram__direct(&f->ram), DEVICE_GPA, 6, chan_irq, f),
			 0);
	f->c.mmio_ready = true;
	f->c.gate = test_gate;
	f->c.running = test_running;
}

/* What the Linux driver does: MULTIPORT, four queues of 8, DRIVER_OK; then the thread. */
static void chan_setup(struct chan_fixture *f)
{
	uint32_t ports;
	unsigned q;

	chan_prepare(f, 0);
	ck_assert_uint_eq(vreg(&f->c.mmio, R_DEVICE_ID), 3);
	set_vreg(&f->c.mmio, R_STATUS, 0x03);
	ck_assert_uint_eq(vreg(&f->c.mmio, R_DEVICE_FEATURES), 1U << 1); /* MULTIPORT */
	ck_assert_int_eq(virtio_mmio_ops.read(&f->c.mmio, R_CONFIG + 4, &ports, 4), 0);
	ck_assert_uint_eq(ports, 1);
	set_vreg(&f->c.mmio, R_DRIVER_FEATURES, 1U << 1);
	set_vreg(&f->c.mmio, R_DRIVER_FEATURES_SEL, 1);
	set_vreg(&f->c.mmio, R_DRIVER_FEATURES, 1);
	set_vreg(&f->c.mmio, R_STATUS, 0x0b);
	ck_assert_uint_eq(vreg(&f->c.mmio, R_STATUS), 0x0b);
	for (q = 0; q < 4; q++) {
		set_vreg(&f->c.mmio, R_QUEUE_SEL, q);
		set_vreg(&f->c.mmio, R_QUEUE_NUM, QSIZE);
		set_vreg(&f->c.mmio, R_QUEUE_DESC, (uint32_t)q_desc(q));
		set_vreg(&f->c.mmio, R_QUEUE_DRIVER, (uint32_t)(q_desc(q) + 0x1000));
		set_vreg(&f->c.mmio, R_QUEUE_DEVICE, (uint32_t)(q_desc(q) + 0x2000));
		set_vreg(&f->c.mmio, R_QUEUE_READY, 1);
	}
	set_vreg(&f->c.mmio, R_STATUS, 0x0f);
	set_gate(GATE_RUNNING);
	gate_waits = gate_passes = 0;
	ck_assert_int_eq(virtio_console__start(&f->c), 0);
}

static void chan_teardown(struct chan_fixture *f)
{
	virtio_console__stop(&f->c, 0);
	virtio_console__close(&f->c);
	virtio_mmio__exit(&f->c.mmio);
	guest_ram__exit(&f->ram);
	ck_assert_int_eq(access(f->path, F_OK), -1); /* the socket file is removed */
	ck_assert_int_eq(inject__init(NULL), 0);
}

/* A buffer in slot @slot (256 bytes each) of guest RAM. */
static uint8_t *slot_ptr(struct chan_fixture *f, unsigned slot)
{
	return guest_ram__ptr(&f->ram, BUF_GPA + 256ULL * slot, 256);
}

/*
 * Make one one-descriptor chain available on queue @q: @len bytes of slot
 * @slot (@data copied in when not NULL), device-writable or not. Notifies
 * unless @quiet.
 */
static void add_buf(struct chan_fixture *f, unsigned q, unsigned slot, const void *data,
		    uint32_t len, bool writable, bool quiet)
{
	uint16_t i = f->avail_idx[q] % QSIZE, flags = writable ? 2 : 0;
	uint8_t *d = guest_ram__ptr(&f->ram, q_desc(q) + 16 * i, 16);
	uint16_t *avail = guest_ram__ptr(&f->ram, q_desc(q) + 0x1000, 4 + 2 * QSIZE);
	uint64_t gpa = BUF_GPA + 256ULL * slot;

	if (data)
		memcpy(slot_ptr(f, slot), data, len);
	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memset(d + 14, 0, 2);
	avail[2 + i] = i;
	__atomic_store_n(&avail[1], ++f->avail_idx[q], __ATOMIC_SEQ_CST);
	if (!quiet)
		set_vreg(&f->c.mmio, R_QUEUE_NOTIFY, q);
}

static uint16_t used_idx(struct chan_fixture *f, unsigned q)
{
	uint16_t *used = guest_ram__ptr(&f->ram, q_desc(q) + 0x2000, 4 + 8 * QSIZE);

	return __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);
}

/*
 * Wait (2 s at most) for the next used element of queue @q and return its
 * length; the buffer it names is copied to @out (@max bytes at most).
 */
static uint32_t next_used(struct chan_fixture *f, unsigned q, void *out, size_t max)
{
	uint32_t *used = guest_ram__ptr(&f->ram, q_desc(q) + 0x2000, 4 + 8 * QSIZE);
	uint32_t id, len;
	uint64_t gpa;
	int i;

	for (i = 0; i < 2000 && used_idx(f, q) == f->used_seen[q]; i++)
		usleep(1000);
	ck_assert_msg(used_idx(f, q) != f->used_seen[q], "nothing used on queue %u after 2 s", q);
	id = used[1 + 2 * (f->used_seen[q] % QSIZE)];
	len = used[1 + 2 * (f->used_seen[q] % QSIZE) + 1];
	f->used_seen[q]++;
	memcpy(&gpa, guest_ram__ptr(&f->ram, q_desc(q) + 16 * id, 8), 8);
	if (out)
		memcpy(out, guest_ram__ptr(&f->ram, gpa, 256), len < max ? len : max);
	return len;
}

/* A control message from the guest: id, event, value. */
static void guest_ctrl(struct chan_fixture *f, unsigned slot, uint32_t id, uint16_t event,
		       uint16_t value)
{
	uint8_t msg[8];

	memcpy(msg, &id, 4);
	memcpy(msg + 4, &event, 2);
	memcpy(msg + 6, &value, 2);
	add_buf(f, Q_CTRL_TX, slot, msg, sizeof(msg), false, false);
	/* answered before the notify returns: the guest's vCPU spins on it */
	ck_assert_uint_eq(used_idx(f, Q_CTRL_TX), f->avail_idx[Q_CTRL_TX]);
	f->used_seen[Q_CTRL_TX] = used_idx(f, Q_CTRL_TX);
}

/* The next control message to the guest: checks its header, returns its length. */
static uint32_t expect_ctrl(struct chan_fixture *f, uint16_t event, uint16_t value, char *rest)
{
	uint8_t msg[64] = {0};
	uint32_t len = next_used(f, Q_CTRL_RX, msg, sizeof(msg)), id;
	uint16_t e, v;

	ck_assert_uint_ge(len, 8);
	memcpy(&id, msg, 4);
	memcpy(&e, msg + 4, 2);
	memcpy(&v, msg + 6, 2);
	ck_assert_uint_eq(id, 0);
	ck_assert_uint_eq(e, event);
	ck_assert_uint_eq(v, value);
	if (rest) {
		memcpy(rest, msg + 8, len - 8);
		rest[len - 8] = '\0';
	}
	return len;
}

static int connect_host(struct chan_fixture *f)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(addr.sun_path, f->path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

/* DEVICE_READY .. PORT_NAME, with four control buffers given first. */
static void handshake(struct chan_fixture *f)
{
	char name[64];
	unsigned i;

	for (i = 0; i < 4; i++)
		add_buf(f, Q_CTRL_RX, 10 + i, NULL, 64, true, false);
	guest_ctrl(f, 0, 0xffffffff, 0 /* DEVICE_READY */, 1);
	ck_assert_uint_eq(expect_ctrl(f, 1 /* DEVICE_ADD */, 0, NULL), 8);
	guest_ctrl(f, 1, 0, 3 /* PORT_READY */, 1);
	ck_assert_uint_eq(expect_ctrl(f, 7 /* PORT_NAME */, 1, name), 8 + 17);
	ck_assert_str_eq(name, "faultline.channel");
}

static uint64_t counter(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

START_TEST(channel_bytes_both_ways)
{
	struct chan_fixture f;
	char buf[64];
	int host, i;

	chan_setup(&f);
	handshake(&f);
	usleep(20 * 1000);
	ck_assert_uint_eq(used_idx(&f, Q_CTRL_RX), 2); /* no host yet: no PORT_OPEN */

	host = connect_host(&f);
	expect_ctrl(&f, 6 /* PORT_OPEN */, 1, NULL);
	ck_assert_uint_eq(counter(&f.c.connections), 1);

	/* Held until the guest has the port open, then delivered. */
	add_buf(&f, Q_RX, 20, NULL, 256, true, false);
	ck_assert_int_eq(send(host, "hello", 5, 0), 5);
	usleep(50 * 1000);
	ck_assert_uint_eq(used_idx(&f, Q_RX), 0);
	ck_assert_uint_eq(counter(&f.c.rx_bytes), 0);
	guest_ctrl(&f, 2, 0, 6 /* PORT_OPEN */, 1);
	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(next_used(&f, Q_RX, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "hello");
	ck_assert_uint_eq(counter(&f.c.rx_bytes), 5);

	/* The guest's bytes reach the host. */
	add_buf(&f, Q_TX, 21, "world", 5, false, false);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(recv(host, buf, sizeof(buf), 0), 5);
	ck_assert_str_eq(buf, "world");
	ck_assert_uint_eq(next_used(&f, Q_TX, NULL, 0), 0);
	ck_assert_uint_eq(counter(&f.c.tx_bytes), 5);

	/* The host leaves: the guest is told, and what it writes then is dropped and counted. */
	close(host);
	expect_ctrl(&f, 6 /* PORT_OPEN */, 0, NULL);
	add_buf(&f, Q_TX, 22, "lost", 4, false, false);
	next_used(&f, Q_TX, NULL, 0);
	ck_assert_uint_eq(counter(&f.c.tx_dropped), 4);
	ck_assert_uint_eq(counter(&f.c.tx_bytes), 5);

	/* A second host program is told about as well. */
	host = connect_host(&f);
	add_buf(&f, Q_CTRL_RX, 14, NULL, 64, true, false);
	expect_ctrl(&f, 6 /* PORT_OPEN */, 1, NULL);
	ck_assert_uint_eq(counter(&f.c.connections), 2);
	for (i = 0; i < 2000 && !__atomic_load_n(&f.irqs, __ATOMIC_RELAXED); i++)
		usleep(1000);
	ck_assert_int_gt(__atomic_load_n(&f.irqs, __ATOMIC_RELAXED), 0);
	close(host);
	ck_assert_uint_eq(counter(&f.c.mmio.malformed), 0);
	chan_teardown(&f);
}
END_TEST

/*
 * While the VM is paused the thread touches nothing of the guest's: what
 * the host sends waits in the socket and arrives after the resume; a stop
 * during the pause ends the thread.
 */
START_TEST(channel_waits_while_paused)
{
	struct chan_fixture f;
	char buf[64] = "";
	int host, i;

	chan_setup(&f);
	handshake(&f);
	host = connect_host(&f);
	expect_ctrl(&f, 6 /* PORT_OPEN */, 1, NULL);
	guest_ctrl(&f, 2, 0, 6 /* PORT_OPEN */, 1);
	add_buf(&f, Q_RX, 20, NULL, 256, true, false);
	usleep(50 * 1000);
	set_gate(GATE_PAUSED);
	ck_assert_int_eq(send(host, "paused", 6, 0), 6);
	for (i = 0; i < 2000 && !gate_waited(); i++)
		usleep(1000);
	ck_assert_int_eq(gate_waited(), 1);
	usleep(50 * 1000);
	ck_assert_uint_eq(used_idx(&f, Q_RX), 0);
	ck_assert_uint_eq(counter(&f.c.rx_bytes), 0);
	set_gate(GATE_RUNNING);
	ck_assert_uint_eq(next_used(&f, Q_RX, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "paused");
	ck_assert_uint_eq(counter(&f.c.rx_bytes), 6);
	/* Stopped while paused: the thread ends; the stop still closes everything. */
	set_gate(GATE_PAUSED);
	ck_assert_int_eq(send(host, "x", 1, 0), 1);
	for (i = 0; i < 2000 && gate_waited() < 2; i++)
		usleep(1000);
	set_gate(GATE_STOPPING);
	close(host);
	chan_teardown(&f);
	ck_assert_uint_eq(counter(&f.c.rx_bytes), 6);
}
END_TEST

/*
 * A pause that begins after the gate let the thread go: the thread asks
 * again under the device's lock, touches nothing, and waits at the gate.
 */
START_TEST(channel_pause_after_the_gate)
{
	struct chan_fixture f;
	char buf[64] = "";
	int host, i;

	chan_setup(&f);
	handshake(&f);
	host = connect_host(&f);
	expect_ctrl(&f, 6 /* PORT_OPEN */, 1, NULL);
	guest_ctrl(&f, 2, 0, 6 /* PORT_OPEN */, 1);
	add_buf(&f, Q_RX, 20, NULL, 256, true, false);
	usleep(50 * 1000);
	pthread_mutex_lock(&gate_lock);
	gate_state = GATE_PAUSED;
	gate_passes = 1;
	pthread_mutex_unlock(&gate_lock);
	ck_assert_int_eq(send(host, "late", 4, 0), 4);
	for (i = 0; i < 2000 && !gate_waited(); i++)
		usleep(1000);
	ck_assert_int_eq(gate_waited(), 1);
	usleep(20 * 1000);
	ck_assert_int_eq(gate_passes, 0);
	ck_assert_uint_eq(used_idx(&f, Q_RX), 0);
	ck_assert_uint_eq(f.c.rx_len, 0); /* not even read off the socket */
	set_gate(GATE_RUNNING);
	ck_assert_uint_eq(next_used(&f, Q_RX, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "late");
	close(host);
	chan_teardown(&f);
}
END_TEST

/*
 * A snapshot of the channel restored on a new socket (the memory copied as
 * a snapshot's would be): the guest is told its host program left, gets
 * the bytes the old one sent that it had not taken, and sees the port open
 * again when a host program connects. A transmit chain half sent before
 * the snapshot is taken again and sent from where it stopped.
 */
START_TEST(channel_restored_on_a_new_socket)
{
	struct chan_fixture f, g;
	char buf[64] = "";
	struct blob_reader r;
	struct blob b;
	int host;

	chan_setup(&f);
	handshake(&f);
	host = connect_host(&f);
	expect_ctrl(&f, 6 /* PORT_OPEN */, 1, NULL);
	guest_ctrl(&f, 2, 0, 6 /* PORT_OPEN */, 1);
	ck_assert_int_eq(send(host, "held", 4, 0), 4); /* no receive buffer: held */
	usleep(50 * 1000);
	set_gate(GATE_PAUSED);
	add_buf(&f, Q_TX, 21, "abcdef", 6, false, true);
	pthread_mutex_lock(&f.c.mmio.lock);
	ck_assert_uint_eq(f.c.rx_len, 4);
	ck_assert_int_eq(virtio_mmio__pop(&f.c.mmio, Q_TX, &f.c.tx), 1);
	f.c.tx_busy = true; /* "ab" went out; the socket took no more */
	f.c.tx_buf = 0;
	f.c.tx_off = 2;
	pthread_mutex_unlock(&f.c.mmio.lock);
	blob__init(&b);
	virtio_console__save(&f.c, &b);
	ck_assert_int_eq(blob__end(&b), 0);

	chan_prepare(&g, 1);
	memcpy(guest_ram__ptr(&g.ram, 0, 4 << 20), guest_ram__ptr(&f.ram, 0, 4 << 20), 4 << 20);
	memcpy(g.avail_idx, f.avail_idx, sizeof(g.avail_idx));
	memcpy(g.used_seen, f.used_seen, sizeof(g.used_seen));
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(virtio_console__restore(&g.c, &r), 0);
	ck_assert_int_eq(blob_reader__done(&r), 0);
	ck_assert(g.c.port_ready && g.c.guest_open && g.c.host_told && !g.c.tx_busy);
	ck_assert_uint_eq(g.c.tx_skip, 2);
	ck_assert_uint_eq(g.c.mmio.q[Q_TX].last_avail, 0); /* the chain in hand: not taken */
	set_gate(GATE_RUNNING);
	ck_assert_int_eq(virtio_console__start(&g.c), 0);
	expect_ctrl(&g, 6 /* PORT_OPEN */, 0, NULL); /* the old host program is gone */
	add_buf(&g, Q_RX, 20, NULL, 256, true, false);
	ck_assert_uint_eq(next_used(&g, Q_RX, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "held");

	close(host);
	host = connect_host(&g);
	add_buf(&g, Q_CTRL_RX, 14, NULL, 64, true, false);
	expect_ctrl(&g, 6 /* PORT_OPEN */, 1, NULL);
	set_vreg(&g.c.mmio, R_QUEUE_NOTIFY, Q_TX);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(recv(host, buf, sizeof(buf), 0), 4);
	ck_assert_str_eq(buf, "cdef");
	ck_assert_uint_eq(next_used(&g, Q_TX, NULL, 0), 0);
	ck_assert_uint_eq(counter(&g.c.tx_dropped), 0);
	close(host);
	blob__free(&b);
	chan_teardown(&g);
	chan_teardown(&f);
}
END_TEST

/*
 * A state the device could not have saved is refused, naming what, and
 * the device keeps its own: a control message only the driver sends, more
 * held bytes than the buffer holds.
 */
START_TEST(channel_bad_state_refused)
{
	struct chan_fixture f;
	struct blob_reader r;
	struct blob b;

	chan_setup(&f);
	handshake(&f);
	pthread_mutex_lock(&f.c.mmio.lock);
	f.c.nr_ctrl = 1;
	f.c.ctrl[0] = (struct virtio_console_ctrl){.id = 0, .event = 3, .value = 1};
	pthread_mutex_unlock(&f.c.mmio.lock);
	blob__init(&b);
	virtio_console__save(&f.c, &b);
	pthread_mutex_lock(&f.c.mmio.lock);
	f.c.nr_ctrl = 0;
	f.c.port_ready = false;
	pthread_mutex_unlock(&f.c.mmio.lock);
	blob_reader__init(&r, b.buf, b.len);
	ck_assert_int_eq(virtio_console__restore(&f.c, &r), -EINVAL);
	ck_assert_str_eq(r.why, "virtio-console: control message 0 (event 3) is not one the "
				"device sends");
	ck_assert(!f.c.port_ready);
	ck_assert_uint_eq(f.c.nr_ctrl, 0);
	blob__free(&b);
	chan_teardown(&f);
}
END_TEST

/* What the guest queued but never notified still reaches the host when the VM stops. */
START_TEST(channel_flush_at_stop)
{
	struct chan_fixture f;
	char buf[16] = "";
	int host;

	chan_setup(&f);
	handshake(&f);
	host = connect_host(&f);
	expect_ctrl(&f, 6 /* PORT_OPEN */, 1, NULL);
	add_buf(&f, Q_TX, 21, "bye", 3, false, true);
	virtio_console__stop(&f.c, 1000);
	ck_assert_int_eq(recv(host, buf, sizeof(buf), MSG_DONTWAIT), 3);
	ck_assert_str_eq(buf, "bye");
	ck_assert_uint_eq(counter(&f.c.tx_bytes), 3);
	close(host);
	chan_teardown(&f);
}
END_TEST

START_TEST(channel_malformed_and_reset)
{
	struct chan_fixture f;

	chan_setup(&f);
	handshake(&f);
	ck_assert(f.c.port_ready);
	log__capture(log_buf, sizeof(log_buf));
	add_buf(&f, Q_CTRL_TX, 3, "\1\0\0\0", 4, false, false);
	log__capture(NULL, 0);
	ck_assert_log(log_buf, "faultline: virtio-console at GPA 0xc0000000: control message "
			       "shorter than 8 bytes; the device stops until the guest resets "
			       "it\n");
	ck_assert_uint_eq(counter(&f.c.mmio.malformed), 1);
	ck_assert_uint_eq(vreg(&f.c.mmio, R_STATUS) & 0x40, 0x40);
	set_vreg(&f.c.mmio, R_STATUS, 0); /* the driver resets the device: the port is forgotten */
	ck_assert(!f.c.port_ready && !f.c.port_added && !f.c.guest_open);
	chan_teardown(&f);
}
END_TEST

START_TEST(channel_socket_errors)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct virtio_console c;
	char path[64], want[512], longp[200];
	FILE *file;
	int fd;

	snprintf(path, sizeof(path), "/tmp/faultline-chan-%d.sock", getpid());
	unlink(path);

	/* A regular file is never replaced. */
	file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fclose(file);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_console__open(&c, path), -EADDRINUSE);
	log__capture(NULL, 0);
	snprintf(want, sizeof(want),
		 "faultline: cannot listen on the channel socket: the file exists and is not a "
		 "socket left without a listener (file: %s)\n",
		 path);
	ck_assert_log(log_buf, want);
	ck_assert_int_eq(access(path, F_OK), 0);
	unlink(path);

	/* A socket file nobody listens on (a killed faultline's) is. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(addr.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	ck_assert_int_eq(virtio_console__open(&c, path), 0);
	virtio_console__close(&c);
	ck_assert_int_eq(access(path, F_OK), -1);

	/* A listening one is not. */
	ck_assert_int_eq(virtio_console__open(&c, path), 0);
	log__capture(log_buf, sizeof(log_buf));
	{
		struct virtio_console second;

		ck_assert_int_eq(virtio_console__open(&second, path), -EADDRINUSE);
	}
	log__capture(NULL, 0);
	ck_assert_log(log_buf, want);
	virtio_console__close(&c);

	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_console__open(&c, longp), -ENAMETOOLONG);
	log__capture(NULL, 0);
	snprintf(want, sizeof(want),
		 "faultline: cannot listen on the channel socket: the path is longer than 107 "
		 "bytes (file: %s)\n",
		 longp);
	ck_assert_log(log_buf, want);

	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_console__open(&c, "/nonexistent/dir/c.sock"), -ENOENT);
	log__capture(NULL, 0);
	ck_assert_log(log_buf, "faultline: cannot listen on the channel socket: No such file or "
			       "directory (file: /nonexistent/dir/c.sock)\n");

	/* The thread that cannot start. */
	ck_assert_int_eq(virtio_console__open(&c, path), 0);
	ck_assert_int_eq(inject__init("pthread_create.channel:EAGAIN"), 0);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(virtio_console__start(&c), -EAGAIN);
	log__capture(NULL, 0);
	ck_assert_int_eq(inject__init(NULL), 0);
	snprintf(want, sizeof(want),
		 "faultline: cannot start the channel thread: Resource temporarily unavailable "
		 "(file: %s)\n",
		 path);
	ck_assert_log(log_buf, want);
	virtio_console__stop(&c, 0); /* nothing started: nothing to stop */
	virtio_console__close(&c);

	/* Its eventfds (the kick's, then the stop's): the socket is closed and removed. */
	for (fd = 0; fd < 2; fd++) {
		ck_assert_int_eq(
			inject__init(fd ? "eventfd.channel:EMFILE:1" : "eventfd.channel:ENFILE"),
			0);
		log__capture(log_buf, sizeof(log_buf));
		ck_assert_int_eq(virtio_console__open(&c, path), fd ? -EMFILE : -ENFILE);
		log__capture(NULL, 0);
		ck_assert_int_eq(inject__init(NULL), 0);
		snprintf(want, sizeof(want),
			 "faultline: cannot set up the channel: eventfd failed: %s (file: %s)\n",
			 strerror(fd ? EMFILE : ENFILE), path);
		ck_assert_log(log_buf, want);
		ck_assert_int_eq(access(path, F_OK), -1);
	}
}
END_TEST

Suite *channel_suite(void)
{
	Suite *s = suite_create("channel");
	TCase *tc = tcase_create("virtio_console");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, channel_bytes_both_ways);
	tcase_add_test(tc, channel_flush_at_stop);
	tcase_add_test(tc, channel_waits_while_paused);
	tcase_add_test(tc, channel_pause_after_the_gate);
	tcase_add_test(tc, channel_restored_on_a_new_socket);
	tcase_add_test(tc, channel_bad_state_refused);
	tcase_add_test(tc, channel_malformed_and_reset);
	tcase_add_test(tc, channel_socket_errors);
	suite_add_tcase(s, tc);
	return s;
}
