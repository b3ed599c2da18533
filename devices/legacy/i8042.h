/*
 * Just enough of the PC keyboard controller (ports 0x60 and 0x64) for a
 * Linux guest: the controller answers its self-tests and keeps its
 * command byte, there is no keyboard behind it (so nothing stalls waiting
 * on one), and the reset command 0xfe, which `reboot` ends with, calls
 * @on_reset: the VM ends.
 */
#ifndef FAULTLINE_I8042_H
#define FAULTLINE_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "lib/blob.h"

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64

struct i8042 {
	pthread_mutex_t lock;
	uint8_t ctr;	     /* the controller's command byte */
	uint8_t out;	     /* the byte waiting in the output buffer */
	bool out_full;	     /* status bit 0 */
	uint8_t pending_cmd; /* a command whose argument comes on the data port; 0: none */
	void (*on_reset)(void *ctx);
	void *ctx;
};

/* The data port (0x60) and the status/command port (0x64). */
extern const struct bus_device_ops i8042_data_ops, i8042_command_ops;

int i8042__init(struct i8042 *k, void (*on_reset)(void *ctx), void *ctx)
	__attribute__((warn_unused_result));
void i8042__exit(struct i8042 *k);

/* The command byte and output buffer, as blob section "i8042" (version 1), and back. */
void i8042__save(struct i8042 *k, struct blob *b);
int i8042__restore(struct i8042 *k, struct blob_reader *r);

#endif
