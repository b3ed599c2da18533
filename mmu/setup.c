/*
 * Guest RAM set-up (memfd, guest view, alias, userfaultfd registration),
 * and the start and stop of the handler threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/mmu.h"
#include "mmu/mmu_int.h"
#include "mmu/uffd_compat.h"

#ifndef MFD_HUGE_2MB /* linux/memfd.h's, which clashes with sys/mman.h */
#define MFD_HUGE_2MB (21U << 26)
#endif

static int mmu_fail(const char *what, int err)
{
	pr_err("cannot set up guest RAM: %s failed: %s", what, strerror(err));
	return -err;
}

/*
 * Map guest RAM's memfd. Huge pages are reserved by the guest view's
 * mapping (@reserve), so that a host without enough of them fails here,
 * at start, and not at some fault of the guest's.
 */
static void *mmu_map(struct mmu *mmu, const char *site, bool reserve)
{
	int err = inject__check(site);
	void *p;

	if (err) {
		errno = err;
		return MAP_FAILED;
	}
	p = mmap(NULL, mmu->ram.size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | (reserve ? 0 : MAP_NORESERVE), mmu->memfd, 0);
	return p;
}

/*
 * The kernel baseline: private anonymous memory that nobody watches; the
 * monitor writes through the guest view itself.
 */
static int mmu_init_anonymous(struct mmu *mmu)
{
	int err = inject__check("mmap.guest_ram");
	void *p = err ? MAP_FAILED
		      : mmap(NULL, mmu->ram.size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		err = err ? err : errno;
		pr_err("cannot map guest RAM: %s (size: %llu bytes)", strerror(err),
		       (unsigned long long)mmu->ram.size);
		return -err;
	}
	mmu->ram.host = mmu->alias = p;
	return 0;
}

static uint64_t mmu_uffd_probe(void);

/*
 * Whether the backing file can be the guest view itself (cfg.share): of
 * RAM's size, on tmpfs (UFFDIO_CONTINUE works on shared memory only), with
 * no dedup (it merges within one memfd), no huge pages, and a kernel whose
 * userfaultfd has MINOR faults and write-protect on shared memory.
 */
static bool mmu_can_share(struct mmu *mmu)
{
	const uint64_t need = UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	struct statfs fs;

	if (!mmu->cfg.share || mmu->backing_fd < 0 || mmu->backing_size != mmu->ram.size ||
	    mmu->cfg.dedup || mmu->cfg.huge || mmu->cfg.handler != MMU_HANDLER_FAULTLINE ||
	    inject__check("share"))
		return false;
	if (fstatfs(mmu->backing_fd, &fs) < 0 || fs.f_type != TMPFS_MAGIC)
		return false;
	return (mmu_uffd_probe() & need) == need;
}

/* The backing file, mapped copy-on-write, is guest RAM (mmu.shared). */
static int mmu_init_shared(struct mmu *mmu)
{
	void *p = mmap(NULL, mmu->ram.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
		       mmu->backing_fd, 0);

	if (p == MAP_FAILED)
		return mmu_fail("mmap of the shared memory file", errno);
	mmu->ram.host = mmu->alias = p;
	mmu->shared = true;
	/* The file's holes are copied from it: reads map the zero page, nothing is held. */
	p = mmap(NULL, MMU_HUGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return mmu_fail("mmap of 2 MiB of zeros", errno);
	mmu->zero_src = p;
	if (page_bits__init(&mmu->bits, mmu->nr_pages))
		return mmu_fail("allocation of the page bitmaps", ENOMEM);
	return 0;
}

static int mmu_init_memory(struct mmu *mmu)
{
	void *p;
	int err;

	if (mmu_can_share(mmu))
		return mmu_init_shared(mmu);
	if (mmu->cfg.handler == MMU_HANDLER_KERNEL) {
		err = mmu_init_anonymous(mmu);
		if (err)
			return err;
		goto bitmaps;
	}
	err = inject__check("memfd_create");
	mmu->memfd =
		err ? -1
		    : memfd_create("faultline-ram",
				   MFD_CLOEXEC | (mmu->cfg.huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
	if (mmu->memfd < 0)
		return mmu_fail(mmu->cfg.huge ? "memfd_create of 2 MiB huge pages (hugetlbfs)"
					      : "memfd_create",
				err ? err : errno);
	if (ftruncate(mmu->memfd, (off_t)mmu->ram.size) < 0)
		return mmu_fail("ftruncate of the RAM memfd", errno);
	p = mmu_map(mmu, "mmap.guest_ram", mmu->cfg.huge);
	if (p == MAP_FAILED && mmu->cfg.huge) {
		err = errno;
		pr_err("cannot map guest RAM on huge pages: %s (%llu huge page%s of 2 MiB needed; "
		       "reserve them with sysctl vm.nr_hugepages)",
		       strerror(err), (unsigned long long)(mmu->ram.size >> 21),
		       mmu->ram.size >> 21 == 1 ? "" : "s");
		return -err;
	}
	if (p == MAP_FAILED) {
		err = errno;
		pr_err("cannot map guest RAM: %s (size: %llu bytes)", strerror(err),
		       (unsigned long long)mmu->ram.size);
		return -err;
	}
	mmu->ram.host = p;
	if (mmu->cfg.huge) {
		/* Never written: every read of it maps the kernel's zero page, nothing held. */
		p = mmap(NULL, MMU_HUGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return mmu_fail("mmap of a huge page of zeros", errno);
		mmu->zero_src = p;
	}
	p = mmu_map(mmu, "mmap.alias", false);
	if (p == MAP_FAILED)
		return mmu_fail("mmap of the RAM alias", errno);
	mmu->alias = p;
bitmaps:
	if (page_bits__init(&mmu->bits, mmu->nr_pages))
		return mmu_fail("allocation of the page bitmaps", ENOMEM);
	return 0;
}

/*
 * The features this kernel's userfaultfd offers: UFFDIO_API on a probe
 * descriptor, since the handshake can be done only once per descriptor.
 */
static uint64_t mmu_uffd_probe(void)
{
	struct uffdio_api api = {.api = UFFD_API};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	uint64_t features = 0;

	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0)
		features = api.features;
	if (fd >= 0)
		close(fd);
	return features;
}

int mmu__uffd_init(struct mmu *mmu)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = (mmu->cfg.huge ? UFFD_FEATURE_MISSING_HUGETLBFS
					   : UFFD_FEATURE_MISSING_SHMEM) |
			    UFFD_FEATURE_THREAD_ID,
	};
	struct uffdio_register reg = {
		.range = {.start = (uint64_t)(uintptr_t)mmu->ram.host, .len = mmu->ram.size},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	/* hugetlbfs has no UFFDIO_ZEROPAGE: huge pages are copied from zero_src */
	uint64_t need = 1ULL << _UFFDIO_COPY | (mmu->cfg.huge ? 0 : 1ULL << _UFFDIO_ZEROPAGE);
	int err = inject__check("userfaultfd");

	mmu->uffd = err ? -1 : (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (mmu->uffd < 0) {
		err = err ? err : errno;
		pr_err("cannot set up guest RAM: userfaultfd failed: %s%s", strerror(err),
		       err == EPERM ? "; run as root or set vm.unprivileged_userfaultfd=1" : "");
		return -err;
	}
	mmu->uffd_features = mmu_uffd_probe();
	/*
	 * Optional: poisoning (--on-oom mce) and write-protect (reclaim of
	 * file pages; dedup, which cannot go without it).
	 */
	api.features |= mmu->uffd_features & UFFD_FEATURE_POISON;
	if ((mmu->backing_fd >= 0 || mmu->cfg.dedup || mmu->cfg.track_writes) &&
	    !inject__check("uffd.wp") && mmu->uffd_features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM) {
		api.features |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
		need |= 1ULL << _UFFDIO_WRITEPROTECT;
		/* Installed protected: the first write to each page is seen. */
		mmu->wp = mmu->backing_fd >= 0 || mmu->cfg.track_writes;
		mmu->uffd_wp = true;
	}
	/* Reclaim can happen: stamp what it drops, to see refaults that never end. */
	if (mmu->wp && !(mmu->evicted_at = calloc(mmu->nr_pages, sizeof(*mmu->evicted_at))))
		return mmu_fail("allocation of the reclaim stamps", ENOMEM);
	if (mmu->shared) {
		api.features |= UFFD_FEATURE_MINOR_SHMEM;
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
		need |= 1ULL << _UFFDIO_CONTINUE;
		if (!mmu->uffd_wp) /* mmu_can_share() saw it: only an injected failure */
			return mmu_fail(
				"UFFDIO_REGISTER (a shared memory file needs write-protect)",
				ENOTSUP);
	}
	if (mmu->cfg.track_writes && !mmu->uffd_wp) {
		pr_err("cannot set up guest RAM: --diff-snapshots needs userfaultfd write-protect "
		       "on shared memory (Linux 5.19)");
		return -ENOTSUP;
	}
	mmu->uffd_features &= api.features;
	if (ioctl(mmu->uffd, UFFDIO_API, &api) < 0)
		return mmu_fail("UFFDIO_API (shared-memory faults need Linux 4.11)", errno);
	if (ioctl(mmu->uffd, UFFDIO_REGISTER, &reg) < 0)
		return mmu_fail("UFFDIO_REGISTER", errno);
	if ((reg.ioctls & need) != need)
		return mmu_fail("UFFDIO_REGISTER (no UFFDIO_COPY/ZEROPAGE on shmem)", ENOTSUP);
	return 0;
}

static int mmu_open_backing(struct mmu *mmu, const char *path)
{
	struct stat st;

	mmu->backing_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mmu->backing_fd < 0 || fstat(mmu->backing_fd, &st) < 0) {
		int err = errno;

		pr_err("cannot open the backing file: %s (file: %s)", strerror(err), path);
		return -err;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("cannot use the backing file: not a regular file (file: %s)", path);
		return -EMEDIUMTYPE;
	}
	mmu->backing_size = (uint64_t)st.st_size;
	return 0;
}

/* Enter the RAM banks into the guest-physical map. */
static int mmu_map_ram(struct mmu *mmu, const struct mmu_config *cfg)
{
	unsigned i;

	for (i = 0; i < mmu->ram.nr_banks; i++) {
		const struct guest_ram_bank *b = &mmu->ram.banks[i];
		const struct gpa_region r = {
			.kind = GPA_RAM,
			.name = i ? "ram-high" : "ram",
			.gpa = b->gpa,
			.size = b->size,
			.host = mmu->ram.host + b->host_offset,
			.backing = cfg->backing_file ? cfg->backing_file : "zero",
			.priv = mmu,
		};
		int ret = gpa_map__add(&mmu->map, &r);

		if (ret)
			return mmu_fail("adding RAM to the guest-physical map", -ret);
	}
	return 0;
}

int mmu__init(struct mmu *mmu, const struct mmu_config *cfg, const struct mmu_ops *ops)
{
	int ret;

	memset(mmu, 0, sizeof(*mmu));
	mmu->memfd = mmu->uffd = mmu->backing_fd = mmu->stop_fd = mmu->ws.full_fd = -1;
	mmu->cfg = *cfg;
	mmu->ops = *ops;
	pthread_mutex_init(&mmu->reclaim_lock, NULL);
	ret = guest_ram__layout(&mmu->ram, cfg->ram_size);
	if (ret)
		return ret;
	mmu->nr_pages = cfg->ram_size / MMU_PAGE_SIZE;
	mmu->limit_pages = cfg->mem_limit ? cfg->mem_limit / MMU_PAGE_SIZE : mmu->nr_pages;
	if (cfg->backing_file) {
		ret = mmu_open_backing(mmu, cfg->backing_file);
		if (ret)
			return ret;
	}
	if (cfg->handler != MMU_HANDLER_FAULTLINE &&
	    (cfg->backing_file || cfg->dedup || mmu->limit_pages < mmu->nr_pages)) {
		pr_err("cannot set up guest RAM: the %s handler has no budget, backing file or "
		       "dedup",
		       cfg->handler == MMU_HANDLER_NAIVE ? "naive" : "kernel");
		return -EINVAL;
	}
	ret = mmu_init_memory(mmu);
	if (!ret && cfg->handler != MMU_HANDLER_KERNEL)
		ret = mmu__uffd_init(mmu);
	ret = ret ?: mmu_map_ram(mmu, cfg);
	if (ret)
		return ret;
	mmu->stop_fd = inject__fail("eventfd.fault") ?: eventfd(0, EFD_CLOEXEC);
	return mmu->stop_fd < 0 ? mmu_fail("eventfd", errno) : 0;
}

int mmu__start(struct mmu *mmu)
{
	unsigned i, n = mmu->cfg.nr_handlers;
	void *(*body)(void *) = mmu__uffd_handler;

	if (__atomic_load_n(&mmu->running, __ATOMIC_ACQUIRE))
		return 0; /* started early (a restore) */
	if (mmu->cfg.handler == MMU_HANDLER_KERNEL)
		n = 0;
	if (mmu->cfg.handler == MMU_HANDLER_NAIVE) {
		n = 1;
		body = mmu__naive_handler;
	}
	for (i = 0; i < n && i < MMU_MAX_HANDLERS; i++) {
		int err = inject__check("pthread_create.fault");

		err = err ?: pthread_create(&mmu->handlers[i], NULL, body, mmu);
		if (err) {
			pr_err("cannot start fault handler thread %u: %s", i, strerror(err));
			return -err;
		}
		mmu->nr_handlers_started++;
	}
	__atomic_store_n(&mmu->running, true, __ATOMIC_RELEASE);
	return 0;
}

void mmu__waiting(struct mmu *mmu, bool *queued, unsigned *in_service)
{
	struct pollfd p = {.fd = mmu->uffd, .events = POLLIN};

	*queued = mmu->uffd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
	*in_service = __atomic_load_n(&mmu->in_flight, __ATOMIC_ACQUIRE);
}

void mmu__stop(struct mmu *mmu)
{
	uint64_t one = 1;
	unsigned i;

	__atomic_store_n(&mmu->stopping, true, __ATOMIC_RELEASE);
	if (mmu->stop_fd >= 0 && write(mmu->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd counter cannot overflow from these writes */
	}
	for (i = 0; i < mmu->nr_handlers_started; i++)
		pthread_join(mmu->handlers[i], NULL);
	mmu->nr_handlers_started = 0;
}

void mmu__exit(struct mmu *mmu)
{
	mmu__stop(mmu);
	if (mmu->alias == mmu->ram.host)
		mmu->alias = NULL; /* the kernel baseline and a shared file have one view */
	if (mmu->ram.host)
		munmap(mmu->ram.host, mmu->ram.size);
	if (mmu->alias && mmu->alias != mmu->ram.host)
		munmap(mmu->alias, mmu->ram.size);
	mmu->ram.host = mmu->alias = NULL;
	page_bits__exit(&mmu->bits);
	free(mmu->holds);
	free(mmu->evicted_at);
	mmu->evicted_at = NULL;
	if (mmu->zero_src)
		munmap(mmu->zero_src, MMU_HUGE_SIZE);
	mmu->zero_src = NULL;
	if (mmu->uffd >= 0)
		close(mmu->uffd);
	if (mmu->memfd >= 0)
		close(mmu->memfd);
	if (mmu->backing_fd >= 0)
		close(mmu->backing_fd);
	while (mmu->nr_layers)
		close(mmu->layer_fds[--mmu->nr_layers]);
	free(mmu->layer_of);
	mmu->layer_of = NULL;
	free(mmu->ws.order);
	free(mmu->ws.runs);
	mmu->ws.order = NULL;
	mmu->ws.runs = NULL;
	if (mmu->stop_fd >= 0)
		close(mmu->stop_fd);
	mmu->uffd = mmu->memfd = mmu->backing_fd = mmu->stop_fd = -1;
	pthread_mutex_destroy(&mmu->reclaim_lock);
}
