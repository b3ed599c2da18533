/*
 * The exit device: one port through which the guest ends the VM with a
 * status. A write of 1, 2 or 4 bytes calls the owner's callback with the
 * value (zero-extended); reads return EXIT_DEV_MAGIC so a guest can probe.
 */
#ifndef FAULTLINE_EXIT_DEV_H
#define FAULTLINE_EXIT_DEV_H

#include <stdint.h>

#include "devices/bus.h"

#define EXIT_DEV_PORT	  0x501
#define EXIT_DEV_NR_PORTS 4
#define EXIT_DEV_MAGIC	  0x464c /* "FL" */

struct exit_dev {
	void (*on_exit)(void *ctx, uint32_t status);
	void *ctx;
};

extern const struct bus_device_ops exit_dev_ops;

#endif
