/*
 * The host<->guest channel: a virtio-console device with one named port
 * (VIRTIO_CONSOLE_F_MULTIPORT, port 0 named "faultline.channel", not a
 * console), carried to a Unix stream socket that faultline listens on.
 * In the guest the port is a plain character device, /dev/vportNp0
 * (guest/linux/init links it as /dev/virtio-ports/faultline.channel):
 * bytes, no terminal line discipline.
 *
 * One host program at a time is connected (`faultline channel PATH`, or
 * any program that connects to the socket); others wait in the listen
 * backlog. The guest is told whether a host program is connected
 * (PORT_OPEN): without one its reads end at once (end of file) and its
 * writes wait. Bytes from the host are held, and the socket no longer
 * read, until the guest has the port open and has given buffers: nothing
 * the host sends is lost. What the guest writes goes to the host program;
 * written while none is connected (a write racing a disconnection) it is
 * dropped and counted. When the VM ends, what the guest wrote is sent
 * before the socket closes.
 *
 * One thread per channel does all the socket I/O, non-blocking, and fills
 * the guest's receive queue; the vCPU that notifies only wakes it, except
 * for control messages, which the guest's driver waits for with its vCPU
 * spinning and are answered at once. Control messages from the guest are
 * untrusted like any descriptor chain: a short one breaks the device.
 */
#ifndef FAULTLINE_VIRTIO_CONSOLE_H
#define FAULTLINE_VIRTIO_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtio_mmio.h"

#define VIRTIO_CONSOLE_PORT_NAME "faultline.channel"
#define VIRTIO_CONSOLE_RX_BUF	 4096
#define VIRTIO_CONSOLE_CTRL_MAX	 8 /* control messages waiting for guest buffers */

struct virtio_console_ctrl {
	uint32_t id;
	uint16_t event, value;
	bool name; /* PORT_NAME: the port's name follows the header */
};

struct virtio_console {
	const char *path; /* the socket */
	int listen_fd, peer_fd, kick_fd, stop_fd;
	pthread_t thread;
	bool thread_started;
	/*
	 * Asked by the thread before it touches the guest (its buffers, its
	 * interrupt): waits while the VM is paused, false once it stops. NULL:
	 * never waits. Set before virtio_console__start().
	 */
	bool (*gate)(void *ctx);
	/*
	 * Asked again, under mmio.lock, once the gate let the thread go:
	 * whether the VM still runs (false: back to the gate). A pause that
	 * began in between stops the thread before it touches anything a
	 * snapshot saves. NULL: always.
	 */
	bool (*running)(void *ctx);
	void *gate_ctx;
	struct virtio_mmio mmio;
	bool mmio_ready; /* mmio initialised (its lock exists) */
	/* The rest: mmio.lock held. */
	bool port_added; /* DEVICE_ADD sent */
	bool port_ready; /* the guest's PORT_READY: name and host state sent */
	bool guest_open; /* the guest has the port open */
	bool host_told;	 /* the host state the guest was last told */
	struct virtio_console_ctrl ctrl[VIRTIO_CONSOLE_CTRL_MAX];
	unsigned nr_ctrl;
	uint8_t rx[VIRTIO_CONSOLE_RX_BUF]; /* from the host, not yet in the guest's buffers */
	uint32_t rx_len, rx_off;
	bool tx_busy; /* a chain of the transmit queue, partly sent */
	struct virtio_chain tx;
	unsigned tx_buf;
	uint32_t tx_off, tx_len;
	uint64_t tx_skip;  /* a restore: bytes of the next chain sent before the snapshot */
	bool tx_wait_host; /* a restore: what the guest queued waits for a host program */
	/* atomic, for --stats */
	uint64_t connections, rx_bytes, tx_bytes, tx_dropped;
};

extern const struct virtio_dev_ops virtio_console_ops;

/*
 * Listen on the Unix socket @path. A socket file nobody listens on any
 * more (a faultline that was killed) is replaced; anything else there is
 * an error. Returns 0, or -errno after reporting (naming the file).
 */
int virtio_console__open(struct virtio_console *c, const char *path)
	__attribute__((warn_unused_result));

/*
 * Start the channel's thread once c->mmio is set up, after a restore if
 * there is one (vm__run()). Returns 0 or -errno (reported).
 */
int virtio_console__start(struct virtio_console *c) __attribute__((warn_unused_result));

/*
 * Stop the thread after sending what the guest wrote (waiting at most
 * @flush_ms for a slow host program). Guest memory must still be served.
 */
void virtio_console__stop(struct virtio_console *c, int flush_ms);

/*
 * The device's state, as blob section "virtio-console" holding the
 * transport's: the port's state as the guest knows it, control messages
 * not yet taken, the host's bytes not yet in the guest's buffers, and how
 * much of a transmit chain in hand was sent (the chain is saved as not yet
 * taken, and sent from there after a restore). Under mmio.lock.
 */
void virtio_console__save(struct virtio_console *c, struct blob *b);
/*
 * Back from one, before virtio_console__start(): every value is checked
 * (-EINVAL, @r says why; the device keeps its state). The host side is
 * the new socket, with nobody connected: a guest that was told a host
 * program was connected is told it left, and sees the port open again
 * when one connects. What the guest had queued to send waits for that
 * host program instead of being dropped.
 */
int virtio_console__restore(struct virtio_console *c, struct blob_reader *r)
	__attribute__((warn_unused_result));

/* Close the sockets and remove the socket file. */
void virtio_console__close(struct virtio_console *c);

#endif
