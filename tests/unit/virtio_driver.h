/*
 * What the unit tests need to play a guest's virtio driver against the
 * virtio-mmio transport (devices/virtio/virtio_mmio.c): 32-bit accesses to its
 * registers (tests/virtio_regs.h) that must succeed.
 */
#ifndef FAULTLINE_TEST_VIRTIO_DRIVER_H
#define FAULTLINE_TEST_VIRTIO_DRIVER_H

#include <check.h>

#include "devices/virtio/virtio_mmio.h"
#include "tests/virtio_regs.h"

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
