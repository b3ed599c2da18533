#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/virtio_console.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "lib/usock.h"

#define VIRTIO_ID_CONSOLE	   3
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define Q_RX			   0 /* port 0: to the guest */
#define Q_TX			   1 /* port 0: from the guest */
#define Q_CTRL_RX		   2 /* control messages to the guest */
#define Q_CTRL_TX		   3 /* control messages from the guest */
#define CTRL_HDR_LEN		   8 /* le32 id, le16 event, le16 value */
#define PORT_ID			   0

enum {
	CTRL_DEVICE_READY = 0,
	CTRL_DEVICE_ADD = 1,
	CTRL_PORT_READY = 3,
	CTRL_PORT_OPEN = 6,
	CTRL_PORT_NAME = 7,
};

/* ---- the socket --------------------------------------------------------------------- */

int virtio_console__open(struct virtio_console *c, const char *path)
{
	int fd, err;

	memset(c, 0, sizeof(*c));
	c->path = path;
	c->listen_fd = c->peer_fd = c->kick_fd = c->stop_fd = -1;
	fd = usock__listen(path, "channel socket", SOCK_NONBLOCK, 4);
	if (fd < 0)
		return fd;
	c->listen_fd = fd;
	c->kick_fd = inject__fail("eventfd.channel") ?: eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->stop_fd = c->kick_fd < 0 ? -1
				    : inject__fail("eventfd.channel") ?: eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd < 0) {
		err = errno;
		pr_err("cannot set up the channel: eventfd failed: %s (file: %s)", strerror(err),
		       path);
		virtio_console__close(c);
		return -err;
	}
	return 0;
}

void virtio_console__close(struct virtio_console *c)
{
	if (c->peer_fd >= 0)
		close(c->peer_fd);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path); /* ours: bound by virtio_console__open() */
	}
	if (c->kick_fd >= 0)
		close(c->kick_fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	c->peer_fd = c->listen_fd = c->kick_fd = c->stop_fd = -1;
}

static void console_kick(struct virtio_console *c)
{
	uint64_t one = 1;

	if (write(c->kick_fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow from these writes */
	}
}

/* ---- chains --------------------------------------------------------------------------- */

/* The next chain of queue @q, or 0 while the driver has not set the queue up. Lock held. */
static int console_pop(struct virtio_console *c, unsigned q, struct virtio_chain *ch)
{
	return c->mmio.q[q].ready ? virtio_mmio__pop(&c->mmio, q, ch) : 0;
}

/* Copy up to @len bytes into @ch's buffers; -1 when one of them is not the device's to write. */
static int64_t console_fill(const struct virtio_chain *ch, const uint8_t *src, size_t len)
{
	size_t done = 0;
	unsigned i;

	for (i = 0; i < ch->n; i++) {
		size_t n = ch->buf[i].len < len - done ? ch->buf[i].len : len - done;

		if (!ch->buf[i].device_writes)
			return -1;
		if (n)
			memcpy(ch->buf[i].host, src + done, n);
		done += n;
	}
	return (int64_t)done;
}

/* Copy up to @len bytes out of @ch's buffers; -1 when one of them is device-writable. */
static int64_t console_gather(const struct virtio_chain *ch, uint8_t *dst, size_t len)
{
	size_t done = 0;
	unsigned i;

	for (i = 0; i < ch->n; i++) {
		size_t n = ch->buf[i].len < len - done ? ch->buf[i].len : len - done;

		if (ch->buf[i].device_writes)
			return -1;
		if (n)
			memcpy(dst + done, ch->buf[i].host, n);
		done += n;
	}
	return (int64_t)done;
}

/* Whether every buffer of @ch is the device's to read. */
static bool console_readable(const struct virtio_chain *ch)
{
	unsigned i;

	for (i = 0; i < ch->n; i++)
		if (ch->buf[i].device_writes)
			return false;
	return true;
}

/* ---- control messages ----------------------------------------------------------------- */

/* Hand the guest the control messages waiting, while it has buffers for them. Lock held. */
static void console_ctrl_flush(struct virtio_console *c)
{
	struct virtio_chain ch;

	while (c->nr_ctrl && console_pop(c, Q_CTRL_RX, &ch) > 0) {
		const struct virtio_console_ctrl *m = &c->ctrl[0];
		uint8_t msg[CTRL_HDR_LEN + sizeof(VIRTIO_CONSOLE_PORT_NAME)];
		size_t len = CTRL_HDR_LEN;
		int64_t n;

		memcpy(msg, &m->id, 4);
		memcpy(msg + 4, &m->event, 2);
		memcpy(msg + 6, &m->value, 2);
		if (m->name) {
			memcpy(msg + len, VIRTIO_CONSOLE_PORT_NAME,
			       sizeof(VIRTIO_CONSOLE_PORT_NAME) - 1);
			len += sizeof(VIRTIO_CONSOLE_PORT_NAME) - 1;
		}
		n = console_fill(&ch, msg, len);
		if (n != (int64_t)len) {
			virtio_mmio__break(&c->mmio,
					   n < 0 ? "control receive buffer is not writable"
						 : "control receive buffer too small");
			return;
		}
		virtio_mmio__push_chain(&c->mmio, Q_CTRL_RX, &ch, (uint32_t)len);
		memmove(c->ctrl, c->ctrl + 1, --c->nr_ctrl * sizeof(c->ctrl[0]));
	}
}

/* Send a control message about port 0; a PORT_OPEN not yet taken is updated instead. */
static void console_ctrl(struct virtio_console *c, uint16_t event, uint16_t value, bool name)
{
	unsigned i;

	for (i = 0; event == CTRL_PORT_OPEN && i < c->nr_ctrl; i++)
		if (c->ctrl[i].event == CTRL_PORT_OPEN) {
			c->ctrl[i].value = value;
			return;
		}
	if (c->nr_ctrl == VIRTIO_CONSOLE_CTRL_MAX)
		return; /* not reached: DEVICE_ADD, PORT_NAME and one PORT_OPEN at most */
	c->ctrl[c->nr_ctrl++] = (struct virtio_console_ctrl){
		.id = PORT_ID, .event = event, .value = value, .name = name};
	console_ctrl_flush(c);
}

/* Tell the guest whether a host program is connected, if that changed. Lock held. */
static void console_tell_host(struct virtio_console *c)
{
	bool connected = c->peer_fd >= 0;

	if (!c->port_ready || c->host_told == connected)
		return;
	c->host_told = connected;
	console_ctrl(c, CTRL_PORT_OPEN, connected, false);
}

static void console_ctrl_event(struct virtio_console *c, uint32_t id, uint16_t event,
			       uint16_t value)
{
	switch (event) {
	case CTRL_DEVICE_READY:
		if (value == 1 && !c->port_added) {
			c->port_added = true;
			console_ctrl(c, CTRL_DEVICE_ADD, 0, false);
		}
		break;
	case CTRL_PORT_READY:
		if (id != PORT_ID || value != 1 || c->port_ready)
			break;
		c->port_ready = true;
		console_ctrl(c, CTRL_PORT_NAME, 1, true);
		console_tell_host(c);
		break;
	case CTRL_PORT_OPEN:
		if (id != PORT_ID)
			break;
		c->guest_open = value;
		console_kick(c); /* held bytes may go now */
		break;
	default: break; /* others are the device's to send, or not about port 0 */
	}
}

/* Control messages from the guest, answered at once: its vCPU spins until they are used. */
static void console_ctrl_tx(struct virtio_console *c)
{
	struct virtio_chain ch;

	while (console_pop(c, Q_CTRL_TX, &ch) > 0) {
		uint8_t msg[CTRL_HDR_LEN];
		uint16_t event, value;
		uint32_t id;
		int64_t n = console_gather(&ch, msg, sizeof(msg));

		if (n != CTRL_HDR_LEN) {
			virtio_mmio__break(&c->mmio,
					   n < 0 ? "control message in a writable buffer"
						 : "control message shorter than 8 bytes");
			return;
		}
		memcpy(&id, msg, 4);
		memcpy(&event, msg + 4, 2);
		memcpy(&value, msg + 6, 2);
		virtio_mmio__push_chain(&c->mmio, Q_CTRL_TX, &ch, 0);
		console_ctrl_event(c, id, event, value);
	}
}

/* ---- data ----------------------------------------------------------------------------- */

static void console_disconnect(struct virtio_console *c)
{
	close(c->peer_fd);
	c->peer_fd = -1;
	console_tell_host(c);
}

static void console_accept(struct virtio_console *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return; /* gone before we took it */
	c->peer_fd = fd;
	c->tx_wait_host = false;
	__atomic_add_fetch(&c->connections, 1, __ATOMIC_RELAXED);
	console_tell_host(c);
}

static void console_read(struct virtio_console *c)
{
	ssize_t n = recv(c->peer_fd, c->rx, sizeof(c->rx), MSG_DONTWAIT);

	if (n > 0) {
		c->rx_len = (uint32_t)n;
		c->rx_off = 0;
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		console_disconnect(c);
	}
}

/* Bytes from the host into the guest's receive buffers, once it has the port open. */
static void console_rx(struct virtio_console *c)
{
	struct virtio_chain ch;

	while (c->rx_off < c->rx_len && c->guest_open && console_pop(c, Q_RX, &ch) > 0) {
		int64_t n = console_fill(&ch, c->rx + c->rx_off, c->rx_len - c->rx_off);

		if (n < 0) {
			virtio_mmio__break(&c->mmio, "receive buffer is not writable");
			return;
		}
		c->rx_off += (uint32_t)n;
		__atomic_add_fetch(&c->rx_bytes, (uint64_t)n, __ATOMIC_RELAXED);
		virtio_mmio__push_chain(&c->mmio, Q_RX, &ch, (uint32_t)n);
	}
	if (c->rx_off == c->rx_len)
		c->rx_off = c->rx_len = 0;
}

/* What is left of the chain in hand, from the current buffer and offset. */
static uint64_t console_tx_left(const struct virtio_console *c)
{
	uint64_t left = 0;
	unsigned i;

	for (i = c->tx_buf; i < c->tx.n; i++)
		left += c->tx.buf[i].len;
	return left - c->tx_off;
}

/* A restored chain: past what went to the host program before the snapshot. */
static void console_tx_skip(struct virtio_console *c)
{
	while (c->tx_skip && c->tx_buf < c->tx.n) {
		uint32_t n = c->tx.buf[c->tx_buf].len;

		if (c->tx_skip < n) {
			c->tx_off = (uint32_t)c->tx_skip;
			c->tx_skip = 0;
			break;
		}
		c->tx_skip -= n;
		c->tx_buf++;
	}
	c->tx_skip = 0;
}

/*
 * The guest's bytes to the host program, without blocking: a chain only
 * partly sent stays in hand until the socket takes more (POLLOUT).
 */
static void console_tx(struct virtio_console *c)
{
	for (;;) {
		if (!c->tx_busy) {
			if (c->tx_wait_host && c->peer_fd < 0)
				return; /* queued before a snapshot: for the next host program */
			if (console_pop(c, Q_TX, &c->tx) <= 0)
				return;
			if (!console_readable(&c->tx)) {
				virtio_mmio__break(&c->mmio, "transmit buffer is device-writable");
				return;
			}
			c->tx_busy = true;
			c->tx_buf = c->tx_off = 0;
			console_tx_skip(c);
		}
		if (c->peer_fd < 0) {
			__atomic_add_fetch(&c->tx_dropped, console_tx_left(c), __ATOMIC_RELAXED);
			c->tx_buf = c->tx.n;
		}
		while (c->tx_buf < c->tx.n) {
			const struct virtio_buf *b = &c->tx.buf[c->tx_buf];
			ssize_t n = 0;

			if (b->len > c->tx_off)
				n = send(c->peer_fd, b->host + c->tx_off, b->len - c->tx_off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n < 0) {
				console_disconnect(c); /* the rest is dropped above */
				break;
			}
			c->tx_off += (uint32_t)n;
			__atomic_add_fetch(&c->tx_bytes, (uint64_t)n, __ATOMIC_RELAXED);
			if (c->tx_off == b->len) {
				c->tx_buf++;
				c->tx_off = 0;
			}
		}
		if (c->tx_buf == c->tx.n) {
			virtio_mmio__push_chain(&c->mmio, Q_TX, &c->tx, 0);
			c->tx_busy = false;
		}
	}
}

/*
 * Wait for the gate, then take the lock while the VM still runs. False:
 * the VM stops.
 */
static bool console_enter(struct virtio_console *c)
{
	for (;;) {
		if (c->gate && !c->gate(c->gate_ctx))
			return false;
		pthread_mutex_lock(&c->mmio.lock);
		if (!c->running || c->running(c->gate_ctx))
			return true;
		pthread_mutex_unlock(&c->mmio.lock);
	}
}

static void *console_thread(void *arg)
{
	struct virtio_console *c = arg;

	for (;;) {
		struct pollfd fds[3] = {
			{.fd = c->stop_fd, .events = POLLIN},
			{.fd = c->kick_fd, .events = POLLIN},
			{.fd = -1},
		};
		uint64_t kicks;

		pthread_mutex_lock(&c->mmio.lock);
		if (c->peer_fd < 0) {
			fds[2] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
		} else {
			/* A full buffer: the socket is not read, and not polled (POLLHUP would
			 * spin). */
			fds[2].events =
				(short)((c->rx_len ? 0 : POLLIN) | (c->tx_busy ? POLLOUT : 0));
			fds[2].fd = fds[2].events ? c->peer_fd : -1;
		}
		pthread_mutex_unlock(&c->mmio.lock);
		if (poll(fds, 3, -1) < 0 && errno != EINTR) {
			pr_err("channel: poll failed: %s; the channel stops (file: %s)",
			       strerror(errno), c->path);
			break;
		}
		if (fds[0].revents)
			break;
		if ((fds[1].revents & POLLIN) && read(c->kick_fd, &kicks, sizeof(kicks)) < 0) {
			/* EAGAIN: another wake-up took it */
		}
		/* Paused: what the host sends waits in the socket, the guest's in its ring. */
		if (!console_enter(c))
			break;
		if (c->peer_fd < 0 && (fds[2].revents & POLLIN))
			console_accept(c);
		else if (c->peer_fd >= 0 && fds[2].revents && !c->rx_len)
			console_read(c);
		console_tell_host(c); /* a restore: the host program left */
		console_rx(c);
		console_tx(c);
		pthread_mutex_unlock(&c->mmio.lock);
	}
	return NULL;
}

/*
 * The thread is created with every signal blocked, whoever starts it: a
 * SIGTERM for the process taken by it would kill faultline without its
 * stop message, its stats or the socket file's removal.
 */
int virtio_console__start(struct virtio_console *c)
{
	int err = inject__check("pthread_create.channel");
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = err ?: pthread_create(&c->thread, NULL, console_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pr_err("cannot start the channel thread: %s (file: %s)", strerror(err), c->path);
		return -err;
	}
	c->thread_started = true;
	return 0;
}

static uint64_t console_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void virtio_console__stop(struct virtio_console *c, int flush_ms)
{
	uint64_t one = 1, end = console_now_ms() + (uint64_t)flush_ms;

	if (!c->thread_started)
		return;
	if (write(c->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd counter cannot overflow from one write */
	}
	pthread_join(c->thread, NULL);
	c->thread_started = false;
	/* What the guest wrote goes out before the socket closes. */
	pthread_mutex_lock(&c->mmio.lock);
	for (;;) {
		struct pollfd p = {.fd = c->peer_fd, .events = POLLOUT};
		uint64_t now = console_now_ms();

		console_tx(c);
		if (!c->tx_busy || c->peer_fd < 0 || now >= end)
			break;
		pthread_mutex_unlock(&c->mmio.lock);
		poll(&p, 1, (int)(end - now));
		pthread_mutex_lock(&c->mmio.lock);
	}
	if (c->tx_busy) {
		__atomic_add_fetch(&c->tx_dropped, console_tx_left(c), __ATOMIC_RELAXED);
		c->tx_busy = false;
	}
	pthread_mutex_unlock(&c->mmio.lock);
}

/* ---- snapshots ------------------------------------------------------------------------ */

#define CONSOLE_STATE_VERSION 1

void virtio_console__save(struct virtio_console *c, struct blob *b)
{
	size_t at = blob__section(b, "virtio-console", CONSOLE_STATE_VERSION);
	uint64_t sent = 0;
	unsigned i;

	pthread_mutex_lock(&c->mmio.lock);
	blob__bool(b, c->port_added);
	blob__bool(b, c->port_ready);
	blob__bool(b, c->guest_open);
	blob__bool(b, c->host_told);
	blob__u8(b, (uint8_t)c->nr_ctrl);
	for (i = 0; i < c->nr_ctrl; i++) {
		blob__u32(b, c->ctrl[i].id);
		blob__u16(b, c->ctrl[i].event);
		blob__u16(b, c->ctrl[i].value);
		blob__bool(b, c->ctrl[i].name);
	}
	blob__u32(b, c->rx_len - c->rx_off);
	blob__bytes(b, c->rx + c->rx_off, c->rx_len - c->rx_off);
	for (i = 0; c->tx_busy && i < c->tx_buf; i++)
		sent += c->tx.buf[i].len;
	blob__u64(b, c->tx_busy ? sent + c->tx_off : c->tx_skip);
	virtio_mmio__save_locked(&c->mmio, b, c->tx_busy ? 1U << Q_TX : 0);
	pthread_mutex_unlock(&c->mmio.lock);
	blob__section_end(b, at);
}

/* A control message only the device sends, about port 0. */
static bool console_ctrl_valid(const struct virtio_console_ctrl *m)
{
	return m->id == PORT_ID && m->value <= 1 &&
	       (m->event == CTRL_DEVICE_ADD || m->event == CTRL_PORT_OPEN ||
		m->event == CTRL_PORT_NAME) &&
	       m->name == (m->event == CTRL_PORT_NAME);
}

int virtio_console__restore(struct virtio_console *c, struct blob_reader *r)
{
	struct virtio_console_ctrl ctrl[VIRTIO_CONSOLE_CTRL_MAX];
	uint8_t rx[VIRTIO_CONSOLE_RX_BUF];
	bool added, ready, open, told;
	struct blob_reader sub;
	uint32_t rx_len = 0;
	uint16_t version;
	uint64_t skip;
	unsigned i, nr;

	if (blob__enter(r, "virtio-console", CONSOLE_STATE_VERSION, &version, &sub))
		return -EINVAL;
	added = blob__get_bool(&sub);
	ready = blob__get_bool(&sub);
	open = blob__get_bool(&sub);
	told = blob__get_bool(&sub);
	nr = blob__get_u8(&sub);
	if (!sub.err && nr > VIRTIO_CONSOLE_CTRL_MAX)
		blob__fail(&sub, "virtio-console: %u control messages waiting, at most %d", nr,
			   VIRTIO_CONSOLE_CTRL_MAX);
	for (i = 0; !sub.err && i < nr; i++) {
		ctrl[i].id = blob__get_u32(&sub);
		ctrl[i].event = blob__get_u16(&sub);
		ctrl[i].value = blob__get_u16(&sub);
		ctrl[i].name = blob__get_bool(&sub);
		if (!sub.err && !console_ctrl_valid(&ctrl[i]))
			blob__fail(&sub,
				   "virtio-console: control message %u (event %u) is not one "
				   "the device sends",
				   i, ctrl[i].event);
	}
	if (!sub.err)
		rx_len = blob__get_u32(&sub);
	if (!sub.err && rx_len > sizeof(rx))
		blob__fail(&sub, "virtio-console: %u bytes from the host held, at most %zu", rx_len,
			   sizeof(rx));
	if (!sub.err)
		blob__get_bytes(&sub, rx, rx_len);
	skip = blob__get_u64(&sub);
	if (sub.err || virtio_mmio__restore(&c->mmio, &sub) || blob_reader__done(&sub))
		return blob__fail(r, "%s", sub.why);
	pthread_mutex_lock(&c->mmio.lock);
	c->port_added = added;
	c->port_ready = ready;
	c->guest_open = open;
	c->host_told = told;
	memcpy(c->ctrl, ctrl, nr * sizeof(ctrl[0]));
	c->nr_ctrl = nr;
	memcpy(c->rx, rx, rx_len);
	c->rx_len = rx_len;
	c->rx_off = 0;
	c->tx_busy = false;
	c->tx_skip = skip;
	c->tx_wait_host = true;
	pthread_mutex_unlock(&c->mmio.lock);
	console_kick(c); /* the thread tells the guest the host program left */
	return 0;
}

/* ---- the transport's operations ---------------------------------------------------------- */

static uint64_t console_features(void *dev)
{
	(void)dev;
	return 1ULL << VIRTIO_CONSOLE_F_MULTIPORT;
}

static int console_config_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	uint8_t cfg[12] = {0}; /* cols, rows (no size offered), max_nr_ports, emerg_wr */
	uint32_t ports = 1;

	(void)dev;
	memcpy(cfg + 4, &ports, 4);
	if (offset >= sizeof(cfg) || len > sizeof(cfg) - offset) {
		memset(data, 0, len);
		return 0;
	}
	memcpy(data, cfg + offset, len);
	return 0;
}

static void console_notify(void *dev, struct virtio_mmio *vm, unsigned queue)
{
	struct virtio_console *c = dev;

	(void)vm;
	if (queue == Q_CTRL_TX)
		console_ctrl_tx(c);
	else if (queue == Q_CTRL_RX)
		console_ctrl_flush(c);
	else
		console_kick(c); /* receive buffers, or bytes to send: the thread's */
}

static void console_reset(void *dev)
{
	struct virtio_console *c = dev;

	c->port_added = c->port_ready = c->guest_open = c->host_told = false;
	c->nr_ctrl = 0;
	c->tx_busy = false;
	c->tx_skip = 0;
	c->tx_wait_host = false;
}

const struct virtio_dev_ops virtio_console_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.nr_queues = 4,
	.features = console_features,
	.config_read = console_config_read,
	.notify = console_notify,
	.reset = console_reset,
};
