/*
 * What the unit tests need to play a guest's virtio driver against the
 * virtio-mmio transport (devices/virtio_mmio.c): the registers, and 32-bit
 * accesses to them that must succeed.
 */
#ifndef FAULTLINE_TEST_VIRTIO_DRIVER_H
#define FAULTLINE_TEST_VIRTIO_DRIVER_H

#include <check.h>

#include "devices/virtio_mmio.h"

enum {
	R_DEVICE_ID = 0x008,
	R_DEVICE_FEATURES = 0x010,
	R_DEVICE_FEATURES_SEL = 0x014,
	R_DRIVER_FEATURES = 0x020,
	R_DRIVER_FEATURES_SEL = 0x024,
	R_QUEUE_SEL = 0x030,
	R_QUEUE_NUM = 0x038,
	R_QUEUE_READY = 0x044,
	R_QUEUE_NOTIFY = 0x050,
	R_INTERRUPT_STATUS = 0x060,
	R_STATUS = 0x070,
	R_QUEUE_DESC = 0x080,
	R_QUEUE_DRIVER = 0x090,
	R_QUEUE_DEVICE = 0x0a0,
	R_CONFIG = 0x100,
};

static inline uint32_t vreg(struct virtio_mmio *m, uint64_t off)
{
	uint32_t v;

	ck_assert_int_eq(virtio_mmio_ops.read(m, off, &v, 4), 0);
	return v;
}

static inline void set_vreg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	ck_assert_int_eq(virtio_mmio_ops.write(m, off, &v, 4), 0);
}

#endif
