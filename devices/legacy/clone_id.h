/*
 * The clone number: four ports from which the guest reads which clone of
 * a snapshot it is (faultline run --clone, by default the monitor's PID on
 * a restore, 0 on a boot), as a little-endian 32-bit number. A read of 1,
 * 2 or 4 bytes at offset K gets the number's bytes from byte K on (0
 * past its fourth), so a byte at a time (Linux's /dev/port) reads it too.
 * Writes are refused. The number is not part of a snapshot: each restore
 * sets its own.
 */
#ifndef FAULTLINE_CLONE_ID_H
#define FAULTLINE_CLONE_ID_H

#include <stdint.h>

#include "devices/bus.h"

#define CLONE_ID_PORT	  0x514
#define CLONE_ID_NR_PORTS 4

struct clone_id {
	uint32_t number;
};

extern const struct bus_device_ops clone_id_ops;

#endif
