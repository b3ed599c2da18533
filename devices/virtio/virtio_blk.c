#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/virtio/virtio_blk.h"
#include "lib/inject.h"
#include "lib/log.h"

#define VIRTIO_ID_BLOCK	     2
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO	     5
#define VIRTIO_BLK_F_FLUSH   9
#define VIRTIO_BLK_T_IN	     0
#define VIRTIO_BLK_T_OUT     1
#define VIRTIO_BLK_T_FLUSH   4
#define VIRTIO_BLK_T_GET_ID  8
#define VIRTIO_BLK_S_OK	     0
#define VIRTIO_BLK_S_IOERR   1
#define VIRTIO_BLK_S_UNSUPP  2
#define REQ_HEADER_LEN	     16

int virtio_blk__open(struct virtio_blk *b, const char *path, bool read_only, unsigned index)
{
	struct stat st;
	int err;

	memset(b, 0, sizeof(*b));
	b->path = path;
	b->read_only = read_only;
	b->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		err = errno;
		pr_err("cannot open the disk image: %s (file: %s)", strerror(err), path);
		return -err;
	}
	err = fstat(b->fd, &st) < 0 ? errno : S_ISREG(st.st_mode) ? 0 : EMEDIUMTYPE;
	if (err) {
		pr_err("cannot use the disk image: %s (file: %s)",
		       err == EMEDIUMTYPE ? "not a regular file" : strerror(err), path);
		close(b->fd);
		b->fd = -1;
		return -err;
	}
	if (st.st_size % VIRTIO_BLK_SECTOR)
		pr_err("disk image size %lld is not a multiple of 512; the last %lld bytes are "
		       "not seen by the guest (file: %s)",
		       (long long)st.st_size, (long long)(st.st_size % VIRTIO_BLK_SECTOR), path);
	b->capacity = (uint64_t)st.st_size / VIRTIO_BLK_SECTOR;
	snprintf(b->id, sizeof(b->id), "faultline-vd%c", 'a' + (int)(index % 26));
	return 0;
}

void virtio_blk__close(struct virtio_blk *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

static uint64_t virtio_blk_features(void *dev)
{
	struct virtio_blk *b = dev;

	return 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_FLUSH |
	       (b->read_only ? 1ULL << VIRTIO_BLK_F_RO : 0);
}

static int virtio_blk_config_read(void *dev, uint64_t offset, void *data, unsigned len)
{
	struct virtio_blk *b = dev;
	uint8_t cfg[24] = {0};
	uint32_t seg_max = VIRTIO_BLK_SEG_MAX;

	memcpy(cfg, &b->capacity, 8);  /* capacity */
	memcpy(cfg + 12, &seg_max, 4); /* seg_max; size_max (8) is 0: no limit */
	if (offset >= sizeof(cfg) || len > sizeof(cfg) - offset) {
		memset(data, 0, len); /* fields of features not offered */
		return 0;
	}
	memcpy(data, cfg + offset, len);
	return 0;
}

/* One data buffer of IN or OUT at byte @pos of the disk; 0 or -errno. */
static int virtio_blk_rw(struct virtio_blk *b, const struct virtio_buf *buf, uint64_t pos,
			 bool write)
{
	uint32_t done = 0;
	int ret = inject__check(write ? "virtio_blk.pwrite" : "virtio_blk.pread");

	if (ret)
		return -ret;
	while (done < buf->len) {
		ssize_t n = write ? pwrite(b->fd, buf->host + done, buf->len - done,
					   (off_t)(pos + done))
				  : pread(b->fd, buf->host + done, buf->len - done,
					  (off_t)(pos + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the image shrank under us */
		done += (uint32_t)n;
	}
	return 0;
}

/* Serve one request; the status byte to return, or -1 for a malformed chain (broken). */
static int virtio_blk_request(struct virtio_blk *b, struct virtio_mmio *vm,
			      const struct virtio_chain *c, uint32_t *written)
{
	const struct virtio_buf *hdr = &c->buf[0], *status = &c->buf[c->n - 1];
	uint32_t type;
	uint64_t sector, pos, total = 0;
	bool write;
	unsigned i;

	if (c->n < 2 || hdr->device_writes || hdr->len < REQ_HEADER_LEN || !status->device_writes ||
	    status->len < 1) {
		virtio_mmio__break(vm, "virtio-blk request without a 16-byte header and a "
				       "writable status byte");
		return -1;
	}
	memcpy(&type, hdr->host, 4);
	memcpy(&sector, hdr->host + 8, 8);
	*written = 0;
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		write = type == VIRTIO_BLK_T_OUT;
		for (i = 1; i + 1 < c->n; i++) {
			if (c->buf[i].device_writes == write) {
				virtio_mmio__break(vm, write ? "virtio-blk write from a "
							       "device-writable buffer"
							     : "virtio-blk read into a read-only "
							       "buffer");
				return -1;
			}
			total += c->buf[i].len;
		}
		if (write && b->read_only)
			return VIRTIO_BLK_S_IOERR;
		if (sector > b->capacity || total > (b->capacity - sector) * VIRTIO_BLK_SECTOR)
			return __atomic_add_fetch(&b->io_errors, 1, __ATOMIC_RELAXED),
			       VIRTIO_BLK_S_IOERR;
		pos = sector * VIRTIO_BLK_SECTOR;
		for (i = 1; i + 1 < c->n; i++) {
			if (virtio_blk_rw(b, &c->buf[i], pos, write))
				return __atomic_add_fetch(&b->io_errors, 1, __ATOMIC_RELAXED),
				       VIRTIO_BLK_S_IOERR;
			pos += c->buf[i].len;
		}
		__atomic_add_fetch(write ? &b->writes : &b->reads, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(write ? &b->bytes_written : &b->bytes_read, total,
				   __ATOMIC_RELAXED);
		if (!write)
			*written = (uint32_t)total;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_FLUSH:
		__atomic_add_fetch(&b->flushes, 1, __ATOMIC_RELAXED);
		if (inject__check("virtio_blk.fdatasync") || fdatasync(b->fd) < 0)
			return __atomic_add_fetch(&b->io_errors, 1, __ATOMIC_RELAXED),
			       VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		if (c->n < 3 || !c->buf[1].device_writes)
			return VIRTIO_BLK_S_IOERR;
		*written = c->buf[1].len < VIRTIO_BLK_ID_LEN ? c->buf[1].len : VIRTIO_BLK_ID_LEN;
		if (*written) /* a buffer of 0 bytes is not mapped: host is NULL */
			memcpy(c->buf[1].host, b->id, *written);
		return VIRTIO_BLK_S_OK;
	default:
		__atomic_add_fetch(&b->unsupported, 1, __ATOMIC_RELAXED);
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static void virtio_blk_notify(void *dev, struct virtio_mmio *vm, unsigned queue)
{
	struct virtio_blk *b = dev;
	struct virtio_chain c;

	while (virtio_mmio__pop(vm, queue, &c) == 1) {
		uint32_t written = 0;
		int status = virtio_blk_request(b, vm, &c, &written);
		const struct virtio_buf *s = &c.buf[c.n - 1];

		if (status < 0)
			return;
		s->host[s->len - 1] = (uint8_t)status;
		virtio_mmio__push_chain(vm, queue, &c, written + 1);
	}
}

const struct virtio_dev_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
	.features = virtio_blk_features,
	.config_read = virtio_blk_config_read,
	.notify = virtio_blk_notify,
};
