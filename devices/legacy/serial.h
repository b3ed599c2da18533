/*
 * An 8250/16550A-compatible UART. What the guest writes to the transmit
 * register goes to an output file descriptor, a line at a time (or sooner:
 * when the guest reprograms IER, which Linux does after every burst, so a
 * shell prompt shows at once). Input, when started, comes from a file
 * descriptor through a receive FIFO. With an interrupt line attached
 * (serial__set_irq), the UART raises it for received data (IER.RDI) and an
 * empty transmitter (IER.THRI) with the 16550's priorities and clears it
 * as reading IIR or RBR does; the line's level is handed to the callback
 * whenever it changes. Registers the guest programs read back.
 */
#ifndef FAULTLINE_SERIAL_H
#define FAULTLINE_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "lib/blob.h"

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ	 4
#define SERIAL_NR_PORTS	 8
#define SERIAL_LINE_MAX	 256
#define SERIAL_RX_MAX	 1024

struct serial {
	pthread_mutex_t lock;
	pthread_cond_t rx_room; /* signalled when the guest reads RBR or input stops */
	int out_fd;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thr_int;	/* transmitter-empty interrupt pending */
	bool irq_level; /* what the line was last set to */
	void (*set_irq)(void *ctx, int level);
	void *irq_ctx;
	uint8_t rx[SERIAL_RX_MAX];
	unsigned rx_head, rx_len;
	int in_fd, stop_fd;
	/*
	 * Asked by the input thread before it passes input on: waits while the
	 * VM is paused, false once it stops. NULL: never waits.
	 */
	bool (*gate)(void *ctx);
	void *gate_ctx;
	bool input_started, input_stopping;
	pthread_t input;
	uint64_t rx_bytes, tx_bytes;
	size_t len;
	char line[SERIAL_LINE_MAX];
};

extern const struct bus_device_ops serial_ops;

/* @out_fd receives guest output (not closed by serial__exit). */
int serial__init(struct serial *s, int out_fd) __attribute__((warn_unused_result));

/* Attach an interrupt line: @set_irq(@ctx, level) on every change of level. */
void serial__set_irq(struct serial *s, void (*set_irq)(void *ctx, int level), void *ctx);

/*
 * Queue up to @len received bytes; returns how many fit in the FIFO.
 * Any thread.
 */
size_t serial__receive(struct serial *s, const void *buf, size_t len);

/*
 * Start a thread that feeds what @in_fd yields into the receive FIFO until
 * end of file, an error, or @stop_fd becoming readable. Returns 0 or -errno.
 */
int serial__start_input(struct serial *s, int in_fd, int stop_fd)
	__attribute__((warn_unused_result));

/* Write out a partial line and stop the input thread; called when the VM stops. */
void serial__flush(struct serial *s);
void serial__exit(struct serial *s);

/*
 * The registers and the bytes waiting for the guest, as blob section
 * "serial" (version 1), and back; a line not yet written out is not state
 * (the VM flushes it first). Restore: 0 or -EINVAL (r->why).
 */
void serial__save(struct serial *s, struct blob *b);
int serial__restore(struct serial *s, struct blob_reader *r);

#endif
