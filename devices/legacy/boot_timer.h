/*
 * The boot timer: one port the guest writes when it has booted (the Linux
 * guest's init does, through /dev/port). The first write records the time
 * since the monitor started; --stats reports it as boot_time_us. Later
 * writes are counted and otherwise ignored; reads return 0. Whoever set
 * written hears of every write.
 */
#ifndef FAULTLINE_BOOT_TIMER_H
#define FAULTLINE_BOOT_TIMER_H

#include <stdint.h>

#include "devices/bus.h"
#include "lib/blob.h"

#define BOOT_TIMER_PORT 0x510

struct boot_timer {
	uint64_t start_ns; /* CLOCK_MONOTONIC when the monitor started */
	uint64_t boot_ns;  /* atomic: 0 until the guest writes */
	uint64_t writes;   /* atomic */
	/* atomic: called after each write (--record-ws=port); NULL: none */
	void (*written)(void *ctx);
	void *written_ctx;
};

extern const struct bus_device_ops boot_timer_ops;

/* When the guest wrote it and how often, as blob section "boot-timer" (version 1), and back. */
void boot_timer__save(struct boot_timer *t, struct blob *b);
int boot_timer__restore(struct boot_timer *t, struct blob_reader *r);

#endif
