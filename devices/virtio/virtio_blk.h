/*
 * virtio-blk over virtio-mmio: a raw image file as the guest's disk
 * (/dev/vda, vdb, ...), read-write or read-only. Requests are served on
 * the vCPU thread that notifies, with pread/pwrite straight into the
 * guest's buffers; FLUSH is fdatasync(). A request past the end of the
 * disk, or a write to a read-only one, completes with IOERR; a chain that
 * does not look like a request (no header, no status byte, a buffer in
 * the wrong direction) breaks the device (DEVICE_NEEDS_RESET).
 */
#ifndef FAULTLINE_VIRTIO_BLK_H
#define FAULTLINE_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtio_mmio.h"

#define VIRTIO_BLK_SECTOR  512
#define VIRTIO_BLK_ID_LEN  20
#define VIRTIO_BLK_SEG_MAX (VIRTIO_CHAIN_MAX - 2)

struct virtio_blk {
	int fd;
	const char *path;
	bool read_only;
	uint64_t capacity; /* in 512-byte sectors */
	char id[VIRTIO_BLK_ID_LEN];
	struct virtio_mmio mmio;
	/* atomic, for --stats */
	uint64_t reads, writes, flushes, bytes_read, bytes_written, io_errors, unsupported;
};

extern const struct virtio_dev_ops virtio_blk_ops;

/*
 * Open the image @path (read-only when @read_only) as disk number @index.
 * Returns 0, or -errno after reporting (naming the file; -EMEDIUMTYPE: not
 * a regular file).
 */
int virtio_blk__open(struct virtio_blk *b, const char *path, bool read_only, unsigned index)
	__attribute__((warn_unused_result));
void virtio_blk__close(struct virtio_blk *b);

#endif
