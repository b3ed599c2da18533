/*
 * Guest RAM set-up (memfd, guest view, alias, userfaultfd registration)
 * and the userfaultfd handler threads, which turn page-fault events into
 * calls of mmu__handle_fault().
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
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/mmu.h"
#include "mmu/uffd_compat.h"

#define UFFD_MSGS_PER_READ 16

#ifndef MFD_HUGE_2MB /* linux/memfd.h's, which clashes with sys/mman.h */
#define MFD_HUGE_2MB (21U << 26)
#endif

static int mmu__fail(const char *what, int err)
{
	pr_err("cannot set up guest RAM: %s failed: %s", what, strerror(err));
	return -err;
}

/*
 * Map guest RAM's memfd. Huge pages are reserved by the guest view's
 * mapping (@reserve), so that a host without enough of them fails here,
 * at start, and not at some fault of the guest's.
 */
static void *mmu__map(struct mmu *mmu, const char *site, bool reserve)
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
static int mmu__init_anonymous(struct mmu *mmu)
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

static int mmu__init_memory(struct mmu *mmu)
{
	void *p;
	int err;

	if (mmu->cfg.handler == MMU_HANDLER_KERNEL) {
		err = mmu__init_anonymous(mmu);
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
		return mmu__fail(mmu->cfg.huge ? "memfd_create of 2 MiB huge pages (hugetlbfs)"
					       : "memfd_create",
				 err ? err : errno);
	if (ftruncate(mmu->memfd, (off_t)mmu->ram.size) < 0)
		return mmu__fail("ftruncate of the RAM memfd", errno);
	p = mmu__map(mmu, "mmap.guest_ram", mmu->cfg.huge);
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
			return mmu__fail("mmap of a huge page of zeros", errno);
		mmu->huge_zero = p;
	}
	p = mmu__map(mmu, "mmap.alias", false);
	if (p == MAP_FAILED)
		return mmu__fail("mmap of the RAM alias", errno);
	mmu->alias = p;
bitmaps:
	mmu->resident = calloc((mmu->nr_pages + 63) / 64, sizeof(unsigned long));
	mmu->dirty = calloc((mmu->nr_pages + 63) / 64, sizeof(unsigned long));
	mmu->poisoned = calloc((mmu->nr_pages + 63) / 64, sizeof(unsigned long));
	mmu->zeroed = calloc((mmu->nr_pages + 63) / 64, sizeof(unsigned long));
	if (!mmu->resident || !mmu->dirty || !mmu->poisoned || !mmu->zeroed)
		return mmu__fail("allocation of the page bitmaps", ENOMEM);
	return 0;
}

/*
 * The features this kernel's userfaultfd offers: UFFDIO_API on a probe
 * descriptor, since the handshake can be done only once per descriptor.
 */
static uint64_t mmu__uffd_probe(void)
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
	/* hugetlbfs has no UFFDIO_ZEROPAGE: huge pages are copied from huge_zero */
	uint64_t need = 1ULL << _UFFDIO_COPY | (mmu->cfg.huge ? 0 : 1ULL << _UFFDIO_ZEROPAGE);
	int err = inject__check("userfaultfd");

	mmu->uffd = err ? -1 : (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (mmu->uffd < 0) {
		err = err ? err : errno;
		pr_err("cannot set up guest RAM: userfaultfd failed: %s%s", strerror(err),
		       err == EPERM ? "; run as root or set vm.unprivileged_userfaultfd=1" : "");
		return -err;
	}
	mmu->uffd_features = mmu__uffd_probe();
	/*
	 * Optional: poisoning (--on-oom mce) and write-protect (reclaim of
	 * file pages; dedup, which cannot go without it).
	 */
	api.features |= mmu->uffd_features & UFFD_FEATURE_POISON;
	if ((mmu->backing_fd >= 0 || mmu->cfg.dedup) && !inject__check("uffd.wp") &&
	    mmu->uffd_features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM) {
		api.features |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
		need |= 1ULL << _UFFDIO_WRITEPROTECT;
		mmu->wp = mmu->backing_fd >= 0;
		mmu->uffd_wp = true;
	}
	mmu->uffd_features &= api.features;
	if (ioctl(mmu->uffd, UFFDIO_API, &api) < 0)
		return mmu__fail("UFFDIO_API (shared-memory faults need Linux 4.11)", errno);
	if (ioctl(mmu->uffd, UFFDIO_REGISTER, &reg) < 0)
		return mmu__fail("UFFDIO_REGISTER", errno);
	if ((reg.ioctls & need) != need)
		return mmu__fail("UFFDIO_REGISTER (no UFFDIO_COPY/ZEROPAGE on shmem)", ENOTSUP);
	return 0;
}

static int mmu__open_backing(struct mmu *mmu, const char *path)
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
		return -EINVAL;
	}
	mmu->backing_size = (uint64_t)st.st_size;
	return 0;
}

/* Enter the RAM banks into the guest-physical map. */
static int mmu__map_ram(struct mmu *mmu, const struct mmu_config *cfg)
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
			.ops = &mmu_ram_ops,
			.priv = mmu,
		};
		int ret = gpa_map__add(&mmu->map, &r);

		if (ret)
			return mmu__fail("adding RAM to the guest-physical map", -ret);
	}
	return 0;
}

int mmu__init(struct mmu *mmu, const struct mmu_config *cfg, const struct mmu_ops *ops)
{
	int ret;

	memset(mmu, 0, sizeof(*mmu));
	mmu->memfd = mmu->uffd = mmu->backing_fd = mmu->stop_fd = -1;
	mmu->cfg = *cfg;
	mmu->ops = *ops;
	pthread_mutex_init(&mmu->reclaim_lock, NULL);
	ret = guest_ram__layout(&mmu->ram, cfg->ram_size);
	if (ret)
		return ret;
	mmu->nr_pages = cfg->ram_size / MMU_PAGE_SIZE;
	mmu->limit_pages = cfg->mem_limit ? cfg->mem_limit / MMU_PAGE_SIZE : mmu->nr_pages;
	if (cfg->backing_file) {
		ret = mmu__open_backing(mmu, cfg->backing_file);
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
	ret = mmu__init_memory(mmu);
	if (!ret && cfg->handler != MMU_HANDLER_KERNEL)
		ret = mmu__uffd_init(mmu);
	ret = ret ?: mmu__map_ram(mmu, cfg);
	if (ret)
		return ret;
	mmu->stop_fd = inject__fail("eventfd.fault") ?: eventfd(0, EFD_CLOEXEC);
	return mmu->stop_fd < 0 ? mmu__fail("eventfd", errno) : 0;
}

static void mmu__serve(struct mmu *mmu, const struct uffd_msg *msg)
{
	uint8_t *hva = (uint8_t *)(uintptr_t)(msg->arg.pagefault.address & ~(MMU_PAGE_SIZE - 1));
	uint64_t off = (uint64_t)(hva - mmu->ram.host);
	struct fault_ctx ctx = {
		.mmu = mmu,
		.hva = hva,
		.access = msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE ? FAULT_WRITE
									       : FAULT_READ,
		.vcpu = -1,
		.flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_INTERRUPTIBLE |
			 (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP ? FAULT_FLAG_WP : 0),
		.source = FAULT_SRC_UFFD,
	};
	struct pollfd stop = {.fd = mmu->stop_fd, .events = POLLIN};

	if (msg->event != UFFD_EVENT_PAGEFAULT || off >= mmu->ram.size)
		return;
	ctx.gpa = guest_ram__gpa(&mmu->ram, off);
	if (mmu->ops.vcpu_of_tid)
		ctx.vcpu = mmu->ops.vcpu_of_tid(mmu->ops.owner, (int)msg->arg.pagefault.feat.ptid);
	/* Test-only: a resolver that never answers, until the MMU stops. */
	if (inject__check("resolver.stall")) {
		poll(&stop, 1, -1);
		return;
	}
	if (mmu__handle_fault(&ctx) == FAULT_DONE && ctx.win_pages)
		mmu__fault_ahead(&ctx);
}

/*
 * Spin-then-poll: after serving events, read the userfaultfd without
 * sleeping for up to spin_us, so that a vCPU faulting again soon does not
 * pay for a wake-up of this thread. Returns the bytes read, or 0.
 */
static ssize_t mmu__spin_read(struct mmu *mmu, struct uffd_msg *msgs, size_t len)
{
	uint64_t end;

	if (!mmu->cfg.spin_us)
		return 0;
	end = mmu__now_ns() + mmu->cfg.spin_us * 1000ULL;
	do {
		ssize_t n = read(mmu->uffd, msgs, len);

		if (n > 0) {
			MMU_STAT_INC(&mmu->stats, spin_hits);
			return n;
		}
		__builtin_ia32_pause();
	} while (mmu__now_ns() < end && !__atomic_load_n(&mmu->stopping, __ATOMIC_ACQUIRE));
	return 0;
}

void *mmu__uffd_handler(void *arg)
{
	struct mmu *mmu = arg;
	struct uffd_msg msgs[UFFD_MSGS_PER_READ];
	struct pollfd fds[2] = {
		{.fd = mmu->uffd, .events = POLLIN},
		{.fd = mmu->stop_fd, .events = POLLIN},
	};

	while (!__atomic_load_n(&mmu->stopping, __ATOMIC_ACQUIRE)) {
		ssize_t n;
		size_t i;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		/*
		 * In service from before the read: an event leaves the queue
		 * only into a count that is already up (mmu.h, in_flight).
		 */
		__atomic_add_fetch(&mmu->in_flight, 1, __ATOMIC_ACQ_REL);
		n = read(mmu->uffd, msgs, sizeof(msgs));
		while (n > 0) {
			unsigned nr = (unsigned)((size_t)n / sizeof(msgs[0]));

			for (i = 0; i < nr; i++)
				mmu__serve(mmu, &msgs[i]);
			n = mmu__spin_read(mmu, msgs, sizeof(msgs));
		}
		/* n < 0 is EAGAIN: another handler took the events */
		__atomic_sub_fetch(&mmu->in_flight, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* One event of the naive baseline: a page of zeros, or the engine when that fails. */
static void mmu__naive_serve(struct mmu *mmu, struct uffd_msg *msg)
{
	static const uint8_t zeros[MMU_PAGE_SIZE] __attribute__((aligned(MMU_PAGE_SIZE)));
	uint64_t start = mmu__now_ns(), off;
	struct uffdio_copy c = {
		.dst = msg->arg.pagefault.address & ~(MMU_PAGE_SIZE - 1),
		.src = (uint64_t)(uintptr_t)zeros,
		.len = MMU_PAGE_SIZE,
	};

	off = c.dst - (uint64_t)(uintptr_t)mmu->ram.host;
	if (off >= mmu->ram.size)
		return;
	MMU_STAT_INC(&mmu->stats, uffdio_copy);
	errno = inject__check("naive.copy");
	if (!errno && ioctl(mmu->uffd, UFFDIO_COPY, &c) == 0) {
		if (!bit_test(mmu->resident, off / MMU_PAGE_SIZE)) {
			bit_set(mmu->resident, off / MMU_PAGE_SIZE);
			__atomic_add_fetch(&mmu->resident_pages, 1, __ATOMIC_ACQ_REL);
		}
		MMU_STAT_INC(&mmu->stats, faults);
		MMU_STAT_INC(&mmu->stats, faults_uffd);
		MMU_STAT_INC(&mmu->stats, result_done);
		MMU_STAT_INC(&mmu->stats, pages_installed);
		mmu_stats__record(&mmu->stats, -1, mmu__now_ns() - start);
		return;
	}
	if (errno == EEXIST) {
		struct uffdio_range r = {.start = c.dst, .len = MMU_PAGE_SIZE};

		MMU_STAT_INC(&mmu->stats, uffdio_eexist);
		if (ioctl(mmu->uffd, UFFDIO_WAKE, &r) == 0)
			MMU_STAT_INC(&mmu->stats, uffdio_wake);
		return;
	}
	mmu__serve(mmu, msg);
}

/*
 * The naive baseline, the shape of the example handler userfaultfd users
 * start from: one thread sleeps in poll(), reads one event, copies one page
 * of zeros and sleeps again. No fault-around, no spinning, no budget. An
 * install that fails for any reason but a sibling's (EEXIST) goes through
 * the engine, which reports it.
 */
void *mmu__naive_handler(void *arg)
{
	struct mmu *mmu = arg;
	struct uffd_msg msg;
	struct pollfd fds[2] = {
		{.fd = mmu->uffd, .events = POLLIN},
		{.fd = mmu->stop_fd, .events = POLLIN},
	};

	while (!__atomic_load_n(&mmu->stopping, __ATOMIC_ACQUIRE)) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		__atomic_add_fetch(&mmu->in_flight, 1, __ATOMIC_ACQ_REL); /* from before the read */
		if (read(mmu->uffd, &msg, sizeof(msg)) == (ssize_t)sizeof(msg) &&
		    msg.event == UFFD_EVENT_PAGEFAULT)
			mmu__naive_serve(mmu, &msg);
		__atomic_sub_fetch(&mmu->in_flight, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

int mmu__start(struct mmu *mmu)
{
	unsigned i, n = mmu->cfg.nr_handlers;
	void *(*body)(void *) = mmu__uffd_handler;

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
		mmu->alias = NULL; /* the kernel baseline has one view */
	if (mmu->ram.host)
		munmap(mmu->ram.host, mmu->ram.size);
	if (mmu->alias && mmu->alias != mmu->ram.host)
		munmap(mmu->alias, mmu->ram.size);
	mmu->ram.host = mmu->alias = NULL;
	free(mmu->resident);
	free(mmu->dirty);
	free(mmu->poisoned);
	free(mmu->zeroed);
	free(mmu->holds);
	if (mmu->huge_zero)
		munmap(mmu->huge_zero, MMU_HUGE_SIZE);
	mmu->huge_zero = NULL;
	mmu->resident = mmu->dirty = mmu->poisoned = mmu->zeroed = NULL;
	if (mmu->uffd >= 0)
		close(mmu->uffd);
	if (mmu->memfd >= 0)
		close(mmu->memfd);
	if (mmu->backing_fd >= 0)
		close(mmu->backing_fd);
	if (mmu->stop_fd >= 0)
		close(mmu->stop_fd);
	mmu->uffd = mmu->memfd = mmu->backing_fd = mmu->stop_fd = -1;
	pthread_mutex_destroy(&mmu->reclaim_lock);
}
