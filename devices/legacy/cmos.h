/*
 * The CMOS RTC's index/data ports (0x70, 0x71), enough for a Linux guest
 * to read the time once at boot: the host's UTC time in BCD, 24-hour
 * mode, never "update in progress" (so no guest spins on it), the battery
 * good. The rest of CMOS memory reads 0 and ignores writes. No alarm, no
 * periodic interrupt.
 */
#ifndef FAULTLINE_CMOS_H
#define FAULTLINE_CMOS_H

#include <pthread.h>
#include <stdint.h>

#include "devices/bus.h"
#include "lib/blob.h"

#define CMOS_PORT     0x70
#define CMOS_NR_PORTS 2

struct cmos {
	pthread_mutex_t lock;
	uint8_t index;
};

extern const struct bus_device_ops cmos_ops;

int cmos__init(struct cmos *c) __attribute__((warn_unused_result));
void cmos__exit(struct cmos *c);

/* Register @reg (0x00-0x7f) at time @t (seconds since the epoch, UTC). */
uint8_t cmos__register(uint8_t reg, int64_t t);

/* The selected register, as blob section "cmos" (version 1), and back. */
void cmos__save(struct cmos *c, struct blob *b);
int cmos__restore(struct cmos *c, struct blob_reader *r);

#endif
