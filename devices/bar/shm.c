#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/bar/shm.h"
#include "lib/log.h"

static const struct bar_counter shm_counters[] = {
	[SHM_COUNTER_RINGS] = {"doorbells", "doorbell rings"},
	[SHM_COUNTER_DROPPED] = {"doorbells_dropped",
				 "rings not written to the doorbell path (full FIFO, error)"},
	{NULL, NULL},
};

/* Page 0: registers. Data pages: the file's page, or SIGBUS past its end. */
static fault_t shm_nopage(struct bar *bar, uint64_t pgoff, struct fault_ctx *ctx, uint8_t **page)
{
	struct shm_dev *shm = bar->priv;
	uint64_t off = (pgoff - 1) * BAR_PAGE_SIZE;
	struct stat st;

	if (pgoff == 0)
		return FAULT_MMIO;
	if (fstat(shm->fd, &st)) {
		ctx->err = errno;
		return FAULT_SIGBUS;
	}
	if (off >= (uint64_t)st.st_size) {
		ctx->err = ENXIO; /* nothing backs it: past the file's end */
		return FAULT_SIGBUS;
	}
	*page = shm->map + off;
	return FAULT_DONE;
}

static void shm_ring(struct shm_dev *shm, uint64_t value)
{
	char line[32];
	int n;

	__atomic_store_n(&shm->last_ring, value, __ATOMIC_RELAXED);
	__atomic_add_fetch(&shm->bar.stats.dev[SHM_COUNTER_RINGS], 1, __ATOMIC_RELEASE);
	if (shm->doorbell_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%" PRIu64 "\n", value);
	if (write(shm->doorbell_fd, line, (size_t)n) != n)
		__atomic_add_fetch(&shm->bar.stats.dev[SHM_COUNTER_DROPPED], 1, __ATOMIC_RELAXED);
}

static int shm_read(struct bar *bar, uint64_t offset, void *data, unsigned len)
{
	struct shm_dev *shm = bar->priv;
	uint64_t v;

	if (len != 8 && len != 4)
		return -EINVAL;
	switch (offset & ~4ULL) {
	case SHM_REG_MAGIC: v = SHM_MAGIC; break;
	case SHM_REG_SIZE: v = shm->size; break;
	case SHM_REG_DOORBELL: v = __atomic_load_n(&shm->last_ring, __ATOMIC_RELAXED); break;
	case SHM_REG_RINGS:
		v = __atomic_load_n(&bar->stats.dev[SHM_COUNTER_RINGS], __ATOMIC_ACQUIRE);
		break;
	default:
		if (offset >= BAR_PAGE_SIZE)
			return -EINVAL;
		v = 0; /* reserved: reads as zero */
	}
	if (offset & 4)
		v >>= 32;
	memcpy(data, &v, len);
	return 0;
}

static int shm_write(struct bar *bar, uint64_t offset, const void *data, unsigned len)
{
	uint64_t v = 0;

	if (offset != SHM_REG_DOORBELL || (len != 8 && len != 4))
		return -EINVAL; /* only the doorbell is writable */
	memcpy(&v, data, len);
	shm_ring(bar->priv, v);
	return 0;
}

static const struct bar_ops shm_ops = {
	.nopage = shm_nopage,
	.read = shm_read,
	.write = shm_write,
};

static int shm_open_doorbell(struct shm_dev *shm, const char *path)
{
	struct stat st;
	int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;

	if (!stat(path, &st) && S_ISFIFO(st.st_mode))
		flags = O_RDWR | O_NONBLOCK | O_CLOEXEC; /* never ENXIO, never blocks */
	shm->doorbell_fd = open(path, flags, 0644);
	if (shm->doorbell_fd < 0) {
		pr_err("cannot open the shm doorbell: %s (file: %s)", strerror(errno), path);
		return -errno;
	}
	return 0;
}

int shm__init(struct shm_dev *shm, const char *path, uint64_t size, const char *doorbell,
	      uint64_t gpa, const struct bar_mapper *mapper, unsigned max_retries,
	      unsigned retry_ms)
{
	int ret;

	memset(shm, 0, sizeof(*shm));
	shm->fd = shm->doorbell_fd = -1;
	shm->path = path;
	shm->doorbell_path = doorbell;
	shm->size = size;
	shm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (shm->fd < 0) {
		ret = -errno;
		pr_err("cannot open the shm file: %s (file: %s)", strerror(errno), path);
		return ret;
	}
	shm->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, shm->fd, 0);
	if (shm->map == MAP_FAILED) {
		ret = -errno;
		shm->map = NULL;
		pr_err("cannot map the shm file: %s (file: %s)", strerror(errno), path);
		return ret;
	}
	if (doorbell && (ret = shm_open_doorbell(shm, doorbell)))
		return ret;
	ret = bar__init(&shm->bar, "shm", gpa, size + SHM_DATA_OFFSET, &shm_ops, shm, mapper,
			max_retries, retry_ms);
	if (ret)
		pr_err("cannot set up the shm BAR: %s (GPA 0x%llx, %llu bytes)", strerror(-ret),
		       (unsigned long long)gpa, (unsigned long long)(size + SHM_DATA_OFFSET));
	shm->bar.dev_counters = shm_counters;
	return ret;
}

void shm__exit(struct shm_dev *shm)
{
	bar__exit(&shm->bar);
	if (shm->map)
		munmap(shm->map, shm->size);
	if (shm->fd >= 0)
		close(shm->fd);
	if (shm->doorbell_fd >= 0)
		close(shm->doorbell_fd);
	shm->map = NULL;
	shm->fd = shm->doorbell_fd = -1;
}

#define SHM_STATE_VERSION 1

void shm__save(struct shm_dev *shm, struct blob *b)
{
	size_t at = blob__section(b, "shm", SHM_STATE_VERSION);

	blob__u64(b, __atomic_load_n(&shm->last_ring, __ATOMIC_RELAXED));
	blob__u64(b, __atomic_load_n(&shm->bar.stats.dev[SHM_COUNTER_RINGS], __ATOMIC_ACQUIRE));
	blob__section_end(b, at);
}

int shm__restore(struct shm_dev *shm, struct blob_reader *r)
{
	struct blob_reader sub;
	uint16_t version;
	uint64_t last, rings;

	if (blob__enter(r, "shm", SHM_STATE_VERSION, &version, &sub))
		return -EINVAL;
	last = blob__get_u64(&sub);
	rings = blob__get_u64(&sub);
	if (blob_reader__done(&sub))
		return blob__fail(r, "shm: %s", sub.why);
	__atomic_store_n(&shm->last_ring, last, __ATOMIC_RELAXED);
	__atomic_store_n(&shm->bar.stats.dev[SHM_COUNTER_RINGS], rings, __ATOMIC_RELEASE);
	return 0;
}

/* fsync() writes the file's dirty pages, those the guest dirtied through the mapping too. */
int shm__sync(struct shm_dev *shm)
{
	if (fsync(shm->fd) < 0) {
		int err = errno;

		pr_err("cannot sync the shm file: %s (file: %s)", strerror(err), shm->path);
		return -err;
	}
	return 0;
}
