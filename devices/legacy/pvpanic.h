/*
 * pvpanic: one port through which a Linux guest says that its kernel
 * panicked (the pvpanic and pvpanic-mmio drivers, found through the DSDT
 * as ACPI device QEMU0001). Without it a panicking kernel reboots
 * (panic=1), which ends the VM like a `reboot` would: with status 0. A
 * read returns the events the device offers (PANICKED only); a write with
 * PANICKED set calls @on_panic once. Other bits are ignored.
 */
#ifndef FAULTLINE_PVPANIC_H
#define FAULTLINE_PVPANIC_H

#include <stdint.h>

#include "devices/bus.h"
#include "lib/blob.h"

#define PVPANIC_PORT	 0x505
#define PVPANIC_PANICKED 0x1

struct pvpanic {
	void (*on_panic)(void *ctx);
	void *ctx;
	uint32_t panics; /* atomic */
};

extern const struct bus_device_ops pvpanic_ops;

void pvpanic__init(struct pvpanic *p, void (*on_panic)(void *ctx), void *ctx);

/* The panics reported so far, as blob section "pvpanic" (version 1), and back. */
void pvpanic__save(struct pvpanic *p, struct blob *b);
int pvpanic__restore(struct pvpanic *p, struct blob_reader *r);

#endif
