/*
 * An 8250/16550-compatible UART, output only: what the guest writes to the
 * transmit register goes to an output file descriptor, a line at a time.
 * Reads see an always-empty transmitter and no received data. Registers
 * the guest programs (divisor, LCR, IER, MCR, scratch) read back.
 */
#ifndef FAULTLINE_SERIAL_H
#define FAULTLINE_SERIAL_H

#include <pthread.h>
#include <stdint.h>

#include "devices/bus.h"

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_NR_PORTS	 8
#define SERIAL_LINE_MAX	 256

struct serial {
	pthread_mutex_t lock;
	int out_fd;
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	size_t len;
	char line[SERIAL_LINE_MAX];
};

extern const struct bus_device_ops serial_ops;

/* @out_fd receives guest output (not closed by serial__exit). */
int serial__init(struct serial *s, int out_fd) __attribute__((warn_unused_result));

/* Write out a partial line; called when the VM stops. */
void serial__flush(struct serial *s);
void serial__exit(struct serial *s);

#endif
