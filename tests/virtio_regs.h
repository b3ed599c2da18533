/*
 * The virtio-mmio registers (version 2) a guest's driver programs, for the
 * tests that play one: the unit tests (tests/unit/virtio_driver.h) and the
 * fuzz target (tests/fuzz/fuzz_virtio.c).
 */
#ifndef FAULTLINE_TEST_VIRTIO_REGS_H
#define FAULTLINE_TEST_VIRTIO_REGS_H

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

#endif
