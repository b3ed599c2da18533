#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "mmu/mmu.h"
#include "mmu/mmu_int.h"
#include "mmu/uffd_compat.h"

uint64_t mmu__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void fault_ctx__init(struct fault_ctx *ctx, struct mmu *mmu, uint64_t gpa, enum fault_access access,
		     enum fault_source source, int vcpu, unsigned flags)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->mmu = mmu;
	ctx->gpa = gpa & ~(MMU_PAGE_SIZE - 1);
	ctx->hva = guest_ram__ptr(&mmu->ram, ctx->gpa, MMU_PAGE_SIZE);
	ctx->access = access;
	ctx->source = source;
	ctx->vcpu = vcpu;
	ctx->flags = flags;
}

/*
 * The fault-injection scope of a fault: "guest" for the guest's; for the
 * monitor's own, "load" before the VM runs and "device" after.
 */
static const char *inject_scope(const struct fault_ctx *ctx)
{
	if (ctx->source != FAULT_SRC_MONITOR)
		return "guest";
	return __atomic_load_n(&ctx->mmu->running, __ATOMIC_ACQUIRE) ? "device" : "load";
}

/* Charge @n pages to the budget; false when they do not fit. */
static bool budget_charge(struct mmu *mmu, const struct fault_ctx *ctx, uint64_t n)
{
	uint64_t cur = __atomic_load_n(&mmu->resident_pages, __ATOMIC_RELAXED);

	if (inject__check_scoped("budget.charge", inject_scope(ctx)))
		return false;
	do {
		if (cur + n > __atomic_load_n(&mmu->limit_pages, __ATOMIC_RELAXED))
			return false;
	} while (!__atomic_compare_exchange_n(&mmu->resident_pages, &cur, cur + n, 0,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	return true;
}

/*
 * The aligned window of up to fault_around pages around host page @pi, cut
 * to the run of pages neither resident nor poisoned that contains @pi. Host page indexes are
 * contiguous across RAM banks (one memfd), so only the end of RAM bounds it.
 */
static void fault_window(const struct mmu *mmu, const struct fault_ctx *ctx, uint64_t pi,
			 uint64_t *first, uint64_t *count)
{
	/* A huge page is installed whole, or not at all. */
	uint64_t n =
		ctx->flags & FAULT_FLAG_NO_AROUND && !mmu->cfg.huge ? 1 : mmu->cfg.fault_around;
	uint64_t wlo = pi & ~(n - 1), whi = wlo + n, lo = pi, hi = pi + 1;

	if (whi > mmu->nr_pages)
		whi = mmu->nr_pages;
	while (lo > wlo && !page_resident(mmu, lo - 1) && !bit_test(mmu->bits.poisoned, lo - 1))
		lo--;
	while (hi < whi && !page_resident(mmu, hi) && !bit_test(mmu->bits.poisoned, hi))
		hi++;
	*first = lo;
	*count = hi - lo;
}

/*
 * Fill @buf with @n pages of backing content starting at host page @first.
 * Returns 0, or -EIO / -errno when the file cannot be read.
 */
/* The file page @pi is read from: the backing file's, or its layer's. */
static int backing_fd_of(const struct mmu *mmu, uint64_t pi)
{
	return mmu->layer_of && mmu->layer_of[pi] ? mmu->layer_fds[mmu->layer_of[pi] - 1]
						  : mmu->backing_fd;
}

static int backing_fill(struct mmu *mmu, const struct fault_ctx *ctx, uint8_t *buf, uint64_t first,
			uint64_t n)
{
	uint64_t off = first * MMU_PAGE_SIZE, len = n * MMU_PAGE_SIZE, done = 0;
	int err;

	memset(buf, 0, len);
	if (mmu->backing_fd < 0 || off >= mmu->backing_size)
		return 0;
	if (len > mmu->backing_size - off)
		len = mmu->backing_size - off;
	MMU_STAT_INC(&mmu->stats, backing_reads);
	err = inject__check_scoped("backing.read", inject_scope(ctx));
	if (err)
		return -err;
	while (done < len) {
		int fd = backing_fd_of(mmu, (off + done) / MMU_PAGE_SIZE);
		uint64_t run = MMU_PAGE_SIZE - (off + done) % MMU_PAGE_SIZE;
		ssize_t r;

		/* The pages that follow in the same file go in the same read. */
		while (done + run < len &&
		       backing_fd_of(mmu, (off + done + run) / MMU_PAGE_SIZE) == fd)
			run += MMU_PAGE_SIZE;
		if (run > len - done)
			run = len - done;
		r = pread(fd, buf + done, run, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* the file shrank under us */
		done += (uint64_t)r;
	}
	return 0;
}

int mmu__read_page(struct mmu *mmu, uint64_t pi, uint8_t *buf)
{
	const struct fault_ctx ctx = {.mmu = mmu, .source = FAULT_SRC_MONITOR};

	if (bit_test(mmu->bits.zeroed, pi)) {
		memset(buf, 0, MMU_PAGE_SIZE);
		return 0;
	}
	return backing_fill(mmu, &ctx, buf, pi, 1);
}

int mmu__add_layer(struct mmu *mmu, int fd, const unsigned long *pages)
{
	uint64_t pi;

	if (mmu->backing_fd < 0 || mmu->shared)
		return -EINVAL;
	if (mmu->nr_layers == MMU_MAX_LAYERS)
		return -E2BIG;
	if (!mmu->layer_of && !(mmu->layer_of = calloc(mmu->nr_pages, 1)))
		return -ENOMEM;
	mmu->layer_fds[mmu->nr_layers++] = fd;
	for (pi = 0; pi < mmu->nr_pages; pi++)
		if (bit_test(pages, pi))
			mmu->layer_of[pi] = (uint8_t)mmu->nr_layers;
	return 0;
}

int mmu__writes_reset_locked(struct mmu *mmu)
{
	uint64_t pi, first = 0, n = 0;
	int err = 0;

	/*
	 * Protect first, then forget: a write between the two faults, and its
	 * fault waits for the lock held here, so it marks the page after us.
	 */
	for (pi = 0; pi <= mmu->nr_pages && !err; pi++) {
		bool protect = pi < mmu->nr_pages && page_resident(mmu, pi) &&
			       !page_bits__merged(&mmu->bits, pi);

		if (pi < mmu->nr_pages)
			page_bits__wait(&mmu->bits, pi, &mmu->reclaim_lock);
		if (protect && n && first + n == pi) {
			n++;
			continue;
		}
		if (n) {
			struct uffdio_writeprotect wp = {
				.range = {.start = (uint64_t)(uintptr_t)(mmu->ram.host +
									 first * MMU_PAGE_SIZE),
					  .len = n * MMU_PAGE_SIZE},
				.mode = UFFDIO_WRITEPROTECT_MODE_WP,
			};

			MMU_STAT_INC(&mmu->stats, uffdio_writeprotect);
			err = inject__check("UFFDIO_WRITEPROTECT.reset");
			if (!err && ioctl(mmu->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
				err = errno;
		}
		first = pi;
		n = protect;
	}
	for (pi = 0; !err && pi < mmu->nr_pages; pi++) {
		/* A device holding a pointer into the page may write it any time. */
		if (mmu->holds && mmu->holds[pi])
			bit_set(mmu->bits.written, pi);
		else
			bit_test_clear(mmu->bits.written, pi);
	}
	return -err;
}

/*
 * Each thread that fills pages from a file has its own bounce buffer, one
 * fault-around window large, freed when the thread exits.
 */
static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;

#define BOUNCE_SIZE (MMU_FAULT_AROUND_MAX * MMU_PAGE_SIZE)
_Static_assert(BOUNCE_SIZE <= MMU_HUGE_SIZE, "zero_src covers an install of a whole window");

static void bounce_free(void *b)
{
	munmap(b, BOUNCE_SIZE);
}

static void bounce_key_init(void)
{
	if (pthread_key_create(&bounce_key, bounce_free))
		abort(); /* only when the process is out of keys: a bug of ours */
}

/*
 * Mapped without transparent huge pages: a window of a few pages holds a
 * few pages, not 2 MiB, in each of many clones' handler threads.
 */
static uint8_t *bounce_buffer(void)
{
	void *b;

	pthread_once(&bounce_once, bounce_key_init);
	b = pthread_getspecific(bounce_key);
	if (!b) {
		b = mmap(NULL, BOUNCE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);
		if (b == MAP_FAILED)
			return NULL;
		madvise(b, BOUNCE_SIZE, MADV_NOHUGEPAGE); /* a hint: without THP it fails */
		if (pthread_setspecific(bounce_key, b)) {
			bounce_free(b);
			b = NULL;
		}
	}
	return b;
}

/* Zero-fill pages: UFFDIO_ZEROPAGE. Returns bytes installed or -errno. */
static int64_t install_zero(struct mmu *mmu, const struct fault_ctx *ctx, uint8_t *dst,
			    uint64_t len)
{
	struct uffdio_zeropage z = {
		.range = {.start = (uint64_t)(uintptr_t)dst, .len = len},
	};
	int err = inject__check_scoped("UFFDIO_ZEROPAGE", inject_scope(ctx));

	MMU_STAT_INC(&mmu->stats, uffdio_zeropage);
	if (err)
		return -err;
	if (ioctl(mmu->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return (int64_t)len;
	return z.zeropage > 0 ? z.zeropage : -errno;
}

/*
 * Copy pages from @src: UFFDIO_COPY, write-protected in wp mode. Returns
 * bytes installed or -errno.
 */
static int64_t install_copy(struct mmu *mmu, const struct fault_ctx *ctx, uint8_t *dst,
			    const uint8_t *src, uint64_t len)
{
	struct uffdio_copy c = {
		.dst = (uint64_t)(uintptr_t)dst,
		.src = (uint64_t)(uintptr_t)src,
		.len = len,
		.mode = mmu->wp && !(ctx->flags & FAULT_FLAG_DIRTY) ? UFFDIO_COPY_MODE_WP : 0,
	};
	int err = inject__check_scoped("UFFDIO_COPY", inject_scope(ctx));

	MMU_STAT_INC(&mmu->stats, uffdio_copy);
	if (err)
		return -err;
	if (ioctl(mmu->uffd, UFFDIO_COPY, &c) == 0)
		return (int64_t)len;
	return c.copy > 0 ? c.copy : -errno;
}

/*
 * A shared backing file (mmu.shared): map its page-cache pages with
 * UFFDIO_CONTINUE, write-protected unless FAULT_FLAG_DIRTY; a write is
 * then the kernel's copy-on-write into this process. A hole of the file
 * (CONTINUE refuses it: EFAULT) would be a private page of zeros in each
 * clone, so the window ends at one: a hole after the faulting page @pi
 * ends it there, and the faulting page itself, when a hole, is the one
 * page copied from zero_src. Returns bytes installed from @first (a
 * prefix, which covers @pi unless holes come before it), -ENODATA when a
 * hole at @first comes before @pi (the page is served alone), or -errno.
 */
static int64_t install_shared(struct mmu *mmu, const struct fault_ctx *ctx, uint64_t first,
			      uint64_t n, uint64_t pi)
{
	uint64_t wp_mode = ctx->flags & FAULT_FLAG_DIRTY ? 0 : UFFDIO_CONTINUE_MODE_WP;
	uint64_t done = 0, h;
	int err;

	while (done < n) {
		struct uffdio_continue c = {
			.range = {.start = (uint64_t)(uintptr_t)(mmu->ram.host +
								 (first + done) * MMU_PAGE_SIZE),
				  .len = (n - done) * MMU_PAGE_SIZE},
			.mode = wp_mode,
		};
		struct uffdio_copy z = {
			.src = (uint64_t)(uintptr_t)mmu->zero_src,
			.len = MMU_PAGE_SIZE,
			.mode = wp_mode ? UFFDIO_COPY_MODE_WP : 0,
		};
		off_t data;

		MMU_STAT_INC(&mmu->stats, uffdio_continue);
		err = inject__check_scoped("UFFDIO_CONTINUE", inject_scope(ctx));
		if (!err && ioctl(mmu->uffd, UFFDIO_CONTINUE, &c) == 0)
			return (int64_t)(n * MMU_PAGE_SIZE);
		err = err ? err : errno;
		if (c.mapped > 0)
			done += (uint64_t)c.mapped / MMU_PAGE_SIZE;
		if (err != EFAULT || done >= n)
			return done ? (int64_t)(done * MMU_PAGE_SIZE) : -err;
		h = first + done; /* a hole, unless the file has data there after all */
		if (h != pi)
			return done ? (int64_t)(done * MMU_PAGE_SIZE) : h < pi ? -ENODATA : -EFAULT;
		data = lseek(mmu->backing_fd, (off_t)(h * MMU_PAGE_SIZE), SEEK_DATA);
		if (data >= 0 && (uint64_t)data / MMU_PAGE_SIZE == h)
			return done ? (int64_t)(done * MMU_PAGE_SIZE) : -EFAULT;
		z.dst = (uint64_t)(uintptr_t)(mmu->ram.host + h * MMU_PAGE_SIZE);
		MMU_STAT_INC(&mmu->stats, uffdio_copy);
		if (ioctl(mmu->uffd, UFFDIO_COPY, &z) < 0)
			return done ? (int64_t)(done * MMU_PAGE_SIZE) : -errno;
		done++;
	}
	return (int64_t)(done * MMU_PAGE_SIZE);
}

/* Wake whoever waits on page @pi (UFFDIO_WAKE). */
static void mmu_wake(struct mmu *mmu, uint64_t pi)
{
	struct uffdio_range r = {
		.start = (uint64_t)(uintptr_t)(mmu->ram.host + pi * MMU_PAGE_SIZE),
		.len = MMU_PAGE_SIZE,
	};

	MMU_STAT_INC(&mmu->stats, uffdio_wake);
	if (ioctl(mmu->uffd, UFFDIO_WAKE, &r) < 0) {
		/* nothing waits, or the page went: the waiter refaults either way */
	}
}

/*
 * Write-protect fault on page @pi: the page is dirty from now on (never
 * reclaimed); lift the protection, which wakes the writer. Under the
 * reclaim lock, so a reclaim cannot drop the page between the decision and
 * the write. A page reclaimed meanwhile is only woken: the writer refaults
 * it as missing. With dedup, a page being merged is left alone (the merge
 * wakes its writers when it ends) and a merged page gets its own copy.
 */
static fault_t mmu_unprotect(struct fault_ctx *ctx, uint64_t pi)
{
	struct mmu *mmu = ctx->mmu;
	struct uffdio_writeprotect wp = {
		.range = {.start = (uint64_t)(uintptr_t)(mmu->ram.host + pi * MMU_PAGE_SIZE),
			  .len = MMU_PAGE_SIZE},
		.mode = 0,
	};
	enum cow_charge was = mmu__charge_cow(mmu, ctx, pi), charge = was;
	fault_t r = FAULT_DONE;
	int err = 0;

	pthread_mutex_lock(&mmu->reclaim_lock);
	if (mmu->cfg.track_writes) /* before the write: set before anyone can miss it */
		bit_set(mmu->bits.written, pi);
	if (page_bits__busy(&mmu->bits, pi)) {
		if (ctx->source != FAULT_SRC_UFFD)
			page_bits__wait(&mmu->bits, pi, &mmu->reclaim_lock);
		else
			page_bits__park(&mmu->bits, pi);
	} else if (page_bits__merged(&mmu->bits, pi)) {
		r = mmu->sharer->break_cow(mmu->dedup, ctx, pi, &charge);
	} else if (page_resident(mmu, pi)) {
		bit_set(mmu->bits.dirty, pi);
		MMU_STAT_INC(&mmu->stats, uffdio_writeprotect);
		err = inject__check("UFFDIO_WRITEPROTECT");
		if (!err && ioctl(mmu->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
			err = errno;
		if (err) {
			ctx->err = err;
			ctx->failed = "the write protection could not be lifted";
		}
		r = fault__from_errno(-err);
	} else {
		mmu_wake(mmu, pi);
	}
	pthread_mutex_unlock(&mmu->reclaim_lock);
	mmu__charge_cow_end(mmu, was, charge);
	return r;
}

/*
 * A read of a page being merged that came as an exit (not a userfaultfd
 * event): wait for the merge, then the vCPU goes on.
 */
static void mmu_wait_merge(struct mmu *mmu, uint64_t pi)
{
	pthread_mutex_lock(&mmu->reclaim_lock);
	page_bits__wait(&mmu->bits, pi, &mmu->reclaim_lock);
	pthread_mutex_unlock(&mmu->reclaim_lock);
}

/*
 * The faulting page is resident already: a sibling installed it, this is
 * the first write to a clean write-protected page, or a write to a page
 * dedup protected or merged.
 */
static fault_t mmu_fault_resident(struct fault_ctx *ctx, uint64_t pi)
{
	struct mmu *mmu = ctx->mmu;

	if (ctx->flags & FAULT_FLAG_WP ||
	    (mmu->uffd_wp && ctx->access == FAULT_WRITE && ctx->source != FAULT_SRC_MONITOR &&
	     (mmu->dedup || mmu->cfg.track_writes || !bit_test(mmu->bits.dirty, pi)))) {
		MMU_STAT_INC(&mmu->stats, faults_wp);
		return mmu_unprotect(ctx, pi);
	}
	if (mmu->dedup && ctx->source != FAULT_SRC_UFFD)
		mmu_wait_merge(mmu, pi);
	/* A waiter that raced with the install may have missed its wake-up. */
	if (ctx->source == FAULT_SRC_UFFD)
		mmu_wake(mmu, pi);
	return FAULT_DONE;
}

/*
 * The budget is exhausted: for a single page, reclaim clean pages and try
 * again. A fault-around window never reclaims: it falls back to one page.
 */
static bool budget_charge_reclaim(struct mmu *mmu, const struct fault_ctx *ctx, uint64_t n)
{
	if (budget_charge(mmu, ctx, n))
		return true;
	if (n > 1 || !mmu->wp)
		return false;
	return mmu__reclaim(mmu, MMU_RECLAIM_BATCH) && budget_charge(mmu, ctx, n);
}

/*
 * The faulting page alone did not fit. Siblings may hold charges for pages
 * they are still installing, some of which they will give back: two faults
 * on one page both charge it, and only one installs it. Wait until none is
 * unsettled (they end by themselves: their install waits on nothing of
 * ours), at most the retry bound, so that the page is not called out of
 * memory for a moment's double count. Returns whether it waited, so that
 * the caller looks and charges again; false: the budget really is full.
 * Caller holds nothing.
 */
static bool budget_wait_siblings(struct mmu *mmu)
{
	uint64_t end;

	if (!__atomic_load_n(&mmu->charging, __ATOMIC_ACQUIRE))
		return false;
	end = mmu__now_ns() + (uint64_t)mmu->cfg.retry_ms * 1000000ULL;
	while (__atomic_load_n(&mmu->charging, __ATOMIC_ACQUIRE) && mmu__now_ns() < end &&
	       !__atomic_load_n(&mmu->stopping, __ATOMIC_ACQUIRE))
		usleep(20);
	return true;
}

/*
 * Pages dedup released as zeros come back as zeros, whatever the backing
 * file holds there: zero them in @buf (pages [first, first + n)).
 */
static void mmu_fill_zeroed(struct mmu *mmu, uint8_t *buf, uint64_t first, uint64_t n)
{
	uint64_t i;

	for (i = 0; mmu->dedup && i < n; i++)
		if (bit_test(mmu->bits.zeroed, first + i))
			memset(buf + i * MMU_PAGE_SIZE, 0, MMU_PAGE_SIZE);
}

/* Pages [first, first + n) are installed: they hold what the file holds again. */
static void mmu_forget_zeroed(struct mmu *mmu, uint64_t first, uint64_t n)
{
	uint64_t i;

	for (i = 0; mmu->dedup && i < n; i++)
		bit_test_clear(mmu->bits.zeroed, first + i);
}

static int64_t mmu_install(struct fault_ctx *ctx, uint64_t first, uint64_t n, uint64_t pi);

/* Install @n pages at host page @first from the backing (mmu/mmu_int.h). */
int64_t mmu__install(struct fault_ctx *ctx, uint64_t first, uint64_t n, uint64_t pi)
{
	int64_t ret = mmu_install(ctx, first, n, pi);

	if (ret > 0)
		mmu__record_installed(ctx->mmu, first, (uint64_t)ret / MMU_PAGE_SIZE, pi);
	return ret;
}

static int64_t mmu_install(struct fault_ctx *ctx, uint64_t first, uint64_t n, uint64_t pi)
{
	struct mmu *mmu = ctx->mmu;
	uint8_t *dst = mmu->ram.host + first * MMU_PAGE_SIZE, *buf;
	uint64_t i;
	int64_t ret;
	int err;

	if (mmu->cfg.huge) /* no UFFDIO_ZEROPAGE on hugetlbfs, and no backing file */
		return install_copy(mmu, ctx, dst, mmu->zero_src, n * MMU_PAGE_SIZE);
	if (!mmu->wp && (mmu->backing_fd < 0 || first * MMU_PAGE_SIZE >= mmu->backing_size))
		return install_zero(mmu, ctx, dst, n * MMU_PAGE_SIZE);
	buf = mmu->shared ? NULL
			  : bounce_buffer(); /* a shared file's pages are mapped, not copied */
	if (!mmu->shared && !buf)
		return -ENOMEM;
	err = mmu->shared ? 0 : backing_fill(mmu, ctx, buf, first, n);
	if (err) {
		ctx->err = -err;
		ctx->failed = "the backing file could not be read";
		return err == -ENOMEM ? -ENOMEM : -EIO;
	}
	/*
	 * Dedup releases zero pages under the reclaim lock (punched, then
	 * marked zeroed). Without it here, a page released between the file's
	 * read and the copy would get the file's contents back.
	 */
	if (mmu->dedup)
		pthread_mutex_lock(&mmu->reclaim_lock);
	if (buf)
		mmu_fill_zeroed(mmu, buf, first, n);
	/* A write fault dirties its page before anyone can see it clean. */
	if (mmu->wp && (ctx->access == FAULT_WRITE || ctx->source == FAULT_SRC_MONITOR))
		bit_set(mmu->bits.dirty, pi);
	if (mmu->cfg.track_writes &&
	    (ctx->access == FAULT_WRITE || ctx->source == FAULT_SRC_MONITOR))
		bit_set(mmu->bits.written, pi);
	/* A prefetch of pages written when recorded: writable, so dirty, from the start. */
	for (i = 0; ctx->flags & FAULT_FLAG_DIRTY && i < n; i++) {
		bit_set(mmu->bits.dirty, first + i);
		if (mmu->cfg.track_writes)
			bit_set(mmu->bits.written, first + i);
	}
	ret = mmu->shared ? install_shared(mmu, ctx, first, n, pi)
			  : install_copy(mmu, ctx, dst, buf, n * MMU_PAGE_SIZE);
	if (ret > 0)
		mmu_forget_zeroed(mmu, first, (uint64_t)ret / MMU_PAGE_SIZE);
	if (mmu->dedup)
		pthread_mutex_unlock(&mmu->reclaim_lock);
	/* The monitor writes through the guest view too when it is shared. */
	if (mmu->wp && ret > (int64_t)((pi - first) * MMU_PAGE_SIZE) &&
	    ctx->access == FAULT_WRITE && (ctx->source != FAULT_SRC_MONITOR || mmu->shared)) {
		pages_mark_resident(mmu, pi, 1);
		mmu_unprotect(ctx, pi);
	}
	return ret;
}

/*
 * One attempt: charge, fill and install the window around the faulting
 * page. Caller holds nothing. Returns DONE, FALLBACK (the window could not
 * be charged or a sibling installed part of it), RETRY, OOM, SIGBUS or
 * HWPOISON.
 */
/*
 * The kernel baseline has no userfaultfd: a fault that reaches the engine
 * (an MMIO exit or -EFAULT inside RAM) asks the kernel to populate the page.
 */
static fault_t mmu_fault_kernel(struct fault_ctx *ctx)
{
	uint8_t *page = ctx->hva;

	if (madvise(page, MMU_PAGE_SIZE, MADV_POPULATE_WRITE) == 0)
		return FAULT_DONE;
	ctx->err = errno;
	ctx->failed = "the kernel could not populate the page";
	return fault__from_errno(-errno);
}

static fault_t mmu_fault_once(struct fault_ctx *ctx)
{
	struct mmu *mmu = ctx->mmu;
	uint64_t pi = (uint64_t)(ctx->hva - mmu->ram.host) / MMU_PAGE_SIZE, first, n, done;
	int64_t ret;

	ctx->err = 0; /* describes this attempt, not an earlier RETRY */
	ctx->failed = NULL;
	ctx->win_pages = 0;
	if (mmu->cfg.handler == MMU_HANDLER_KERNEL)
		return mmu_fault_kernel(ctx);
	if (bit_test(mmu->bits.poisoned, pi)) {
		/* A waiter meets the poison itself once woken: SIGBUS. */
		if (ctx->source == FAULT_SRC_UFFD)
			mmu_wake(mmu, pi);
		return FAULT_HWPOISON;
	}
	if (ctx->source == FAULT_SRC_SIGBUS) {
		/* The host poisoned the page: its contents are gone. */
		ctx->err = EHWPOISON;
		bit_set(mmu->bits.poisoned, pi);
		if (bit_test_clear(mmu->bits.resident, pi))
			budget_uncharge(mmu, 1);
		return FAULT_HWPOISON;
	}
	mmu__prefetch_fault(mmu, pi, page_resident(mmu, pi));
	if (page_resident(mmu, pi))
		return mmu_fault_resident(ctx, pi);
	fault_window(mmu, ctx, pi, &first, &n);
	if (!budget_charge_reclaim(mmu, ctx, n)) {
		if (n > 1 && !mmu->cfg.huge)
			return FAULT_FALLBACK;
		/* Full, or full of siblings' charges that are not over yet? */
		if (!budget_wait_siblings(mmu))
			return FAULT_OOM;
		if (page_resident(mmu, pi))
			return mmu_fault_resident(ctx, pi);
		if (!budget_charge_reclaim(mmu, ctx, n))
			return FAULT_OOM;
	}
	__atomic_add_fetch(&mmu->charging, n, __ATOMIC_ACQ_REL);
	ret = mmu__install(ctx, first, n, pi);
	done = ret > 0 ? (uint64_t)ret / MMU_PAGE_SIZE : 0;
	pages_mark_resident(mmu, first, done);
	budget_uncharge(mmu, n - done);
	__atomic_sub_fetch(&mmu->charging, n, __ATOMIC_RELEASE);
	MMU_STAT_ADD(&mmu->stats, pages_installed, done);
	mmu__prefetch_window(mmu, first, done);
	/* A shared file's window ends at a hole (install_shared): done when it has the page. */
	if (done == n || (mmu->shared && pi >= first && pi < first + done)) {
		MMU_STAT_ADD(&mmu->stats, pages_around, done - 1);
		ctx->win_first = first;
		ctx->win_pages = done;
		return FAULT_DONE;
	}
	if (ret == -ENODATA && n > 1)
		return FAULT_FALLBACK; /* holes before the page: it alone */
	if (ret == -EEXIST || done)
		MMU_STAT_INC(&mmu->stats, uffdio_eexist);
	/* A partial window: fall back to the faulting page alone (a huge page: once). */
	if (n > 1 && !(ctx->flags & FAULT_FLAG_NO_AROUND) && (done || ret == -EEXIST))
		return FAULT_FALLBACK;
	/*
	 * The page is mapped already, and an install that fails wakes nobody.
	 * A sibling's install woke the waiter, but a page that was mapped
	 * when the waiter faulted was not installed for it: the waiter of a
	 * write-protect fault on a page dedup is releasing (not resident any
	 * more, not yet punched) would sleep on after the punch. Wake it: it
	 * goes on, or faults again and is served.
	 */
	if (ret == -EEXIST && ctx->source == FAULT_SRC_UFFD)
		mmu_wake(mmu, pi);
	if (ret < 0 && !ctx->err)
		ctx->err = (int)-ret;
	return fault__from_errno(ret < 0 ? (int)ret : -EIO);
}

void mmu__count_source(struct mmu *mmu, enum fault_source src)
{
	MMU_STAT_INC(&mmu->stats, faults);
	switch (src) {
	case FAULT_SRC_UFFD: MMU_STAT_INC(&mmu->stats, faults_uffd); break;
	case FAULT_SRC_MONITOR: MMU_STAT_INC(&mmu->stats, faults_monitor); break;
	case FAULT_SRC_MMIO_EXIT: MMU_STAT_INC(&mmu->stats, faults_mmio_exit); break;
	case FAULT_SRC_SIGBUS: MMU_STAT_INC(&mmu->stats, faults_sigbus); break;
	case FAULT_SRC_EFAULT: MMU_STAT_INC(&mmu->stats, faults_efault); break;
	}
}

void mmu__report(struct fault_ctx *ctx, fault_t r, uint64_t elapsed_ns)
{
	struct mmu *mmu = ctx->mmu;
	char why[192];

	if (r & FAULT_DONE) {
		MMU_STAT_INC(&mmu->stats, result_done);
		return;
	}
	if (r & FAULT_OOM) {
		MMU_STAT_INC(&mmu->stats, result_oom);
		if (ctx->flags & FAULT_FLAG_COW)
			snprintf(why, sizeof(why),
				 "copy-on-write break of a shared page: budget of %llu pages "
				 "exhausted",
				 (unsigned long long)mmu__limit(mmu));
		else if (ctx->thrash)
			snprintf(
				why, sizeof(why),
				"budget of %llu pages exhausted: the guest's pages do not fit, "
				"%llu more faults on pages reclaim had just dropped than on others",
				(unsigned long long)mmu__limit(mmu),
				(unsigned long long)mmu__thrash_faults(mmu));
		else if (ctx->err)
			snprintf(why, sizeof(why), "the host could not allocate the page: %s",
				 strerror(ctx->err));
		else
			snprintf(why, sizeof(why), "budget of %llu pages exhausted%s",
				 (unsigned long long)mmu__limit(mmu),
				 mmu->wp ? " and no clean page left to reclaim" : "");
	} else if (r & FAULT_HWPOISON) {
		MMU_STAT_INC(&mmu->stats, result_hwpoison);
		snprintf(why, sizeof(why), "%s",
			 ctx->err == EHWPOISON
				 ? "the host reported a memory error on the page (SIGBUS, "
				   "BUS_MCEERR_AR)"
				 : "the page is poisoned: it was touched after the budget ran out");
	} else if (r & FAULT_SIGBUS) {
		MMU_STAT_INC(&mmu->stats, result_sigbus);
		snprintf(why, sizeof(why), "%s: %s",
			 ctx->failed ? ctx->failed : "the page could not be installed",
			 strerror(ctx->err ? ctx->err : EIO));
	} else {
		MMU_STAT_INC(&mmu->stats, result_retry_exhausted);
		snprintf(why, sizeof(why), "still RETRY after %u attempts in %llu ms",
			 ctx->attempt + 1, (unsigned long long)(elapsed_ns / 1000000));
	}
	if ((ctx->source != FAULT_SRC_MONITOR ||
	     ((r & FAULT_OOM) && __atomic_load_n(&mmu->running, __ATOMIC_ACQUIRE))) &&
	    mmu->ops.fault_failed && !mmu__stopping(mmu))
		mmu->ops.fault_failed(mmu->ops.owner, ctx, r, why);
}

/* Once per fault, not per attempt: is it on a page reclaim keeps taking back? */
static bool fault_thrashes(struct fault_ctx *ctx)
{
	struct mmu *mmu = ctx->mmu;
	uint64_t pi = (uint64_t)(ctx->hva - mmu->ram.host) / MMU_PAGE_SIZE;

	return mmu->cfg.handler == MMU_HANDLER_FAULTLINE && ctx->source != FAULT_SRC_SIGBUS &&
	       !page_resident(mmu, pi) && mmu__thrashing(mmu, pi);
}

/* The attempts of one fault, RETRY and FALLBACK within the bounds. */
static fault_t mmu_fault_attempts(struct fault_ctx *ctx)
{
	struct mmu *mmu = ctx->mmu;
	uint64_t start = mmu__now_ns(), elapsed = 0;
	fault_t r;

	mmu__count_source(mmu, ctx->source);
	ctx->thrash = fault_thrashes(ctx);
	for (;;) {
		r = ctx->thrash ? FAULT_OOM : mmu_fault_once(ctx);
		if (r & FAULT_FALLBACK) {
			MMU_STAT_INC(&mmu->stats, fallbacks);
			ctx->flags |= FAULT_FLAG_NO_AROUND;
			continue;
		}
		elapsed = mmu__now_ns() - start;
		if (!(r & FAULT_RETRY) || !(ctx->flags & FAULT_FLAG_ALLOW_RETRY) ||
		    ((ctx->flags & FAULT_FLAG_INTERRUPTIBLE) && mmu__stopping(mmu)))
			break;
		if (ctx->attempt + 1 >= mmu->cfg.max_retries ||
		    elapsed >= (uint64_t)mmu->cfg.retry_ms * 1000000ULL)
			break;
		ctx->attempt++;
		ctx->flags |= FAULT_FLAG_TRIED;
		MMU_STAT_INC(&mmu->stats, retries);
		usleep(ctx->attempt < 10 ? 1U << ctx->attempt : 1000);
	}
	mmu_stats__record(&mmu->stats, ctx->vcpu, elapsed);
	mmu__report(ctx, r, elapsed);
	return r;
}

fault_t mmu__handle_fault(struct fault_ctx *ctx)
{
	struct mmu *mmu = ctx->mmu;
	fault_t r;

	for (;;) {
		ctx->refault = false;
		r = mmu_fault_attempts(ctx);
		if ((r & FAULT_DONE) || !ctx->refault || mmu__stopping(mmu))
			return r;
		/* The owner made room (--on-oom pause, resumed): a fault of its own. */
		MMU_STAT_INC(&mmu->stats, refaults);
		ctx->attempt = 0;
		ctx->flags &= ~(FAULT_FLAG_TRIED | FAULT_FLAG_NO_AROUND | FAULT_FLAG_COW);
	}
}

int mmu__set_limit(struct mmu *mmu, uint64_t pages)
{
	uint64_t resident;

	if (mmu->cfg.handler != MMU_HANDLER_FAULTLINE)
		return -EOPNOTSUPP;
	if (pages == 0 || pages > mmu->nr_pages)
		return -ERANGE;
	resident = __atomic_load_n(&mmu->resident_pages, __ATOMIC_ACQUIRE);
	if (pages < resident)
		mmu__reclaim(mmu, resident - pages);
	/*
	 * A charge racing with this store may still land under the old limit;
	 * the budget holds again from the next charge.
	 */
	if (pages < __atomic_load_n(&mmu->resident_pages, __ATOMIC_ACQUIRE))
		return -EBUSY;
	__atomic_store_n(&mmu->limit_pages, pages, __ATOMIC_RELAXED);
	return 0;
}

static bool budget_charge_waiting(struct mmu *mmu, const struct fault_ctx *ctx, uint64_t n)
{
	return budget_charge_reclaim(mmu, ctx, n) ||
	       (budget_wait_siblings(mmu) && budget_charge_reclaim(mmu, ctx, n));
}

int mmu__charge(struct mmu *mmu, uint64_t n)
{
	const struct fault_ctx ctx = {.mmu = mmu, .vcpu = -1, .source = FAULT_SRC_UFFD};

	return budget_charge_waiting(mmu, &ctx, n) ? 0 : -ENOMEM;
}

int mmu__charge_locked(struct mmu *mmu, uint64_t n)
{
	const struct fault_ctx ctx = {.mmu = mmu, .vcpu = -1, .source = FAULT_SRC_UFFD};

	if (budget_charge(mmu, &ctx, n))
		return 0;
	if (n > 1 || !mmu->wp || !mmu__reclaim_locked(mmu, MMU_RECLAIM_BATCH))
		return -ENOMEM;
	return budget_charge(mmu, &ctx, n) ? 0 : -ENOMEM;
}

enum cow_charge mmu__charge_cow(struct mmu *mmu, const struct fault_ctx *ctx, uint64_t pi)
{
	/* Without the lock: a page merged after this look is charged under it. */
	if (!page_bits__merged(&mmu->bits, pi))
		return COW_UNCHARGED;
	if (!budget_charge_waiting(mmu, ctx, 1))
		return COW_NO_ROOM;
	__atomic_add_fetch(&mmu->charging, 1, __ATOMIC_ACQ_REL);
	return COW_CHARGED;
}

void mmu__charge_cow_end(struct mmu *mmu, enum cow_charge was, enum cow_charge left)
{
	if (left == COW_CHARGED)
		budget_uncharge(mmu, 1);
	if (was == COW_CHARGED)
		__atomic_sub_fetch(&mmu->charging, 1, __ATOMIC_RELEASE);
}

void mmu__uncharge(struct mmu *mmu, uint64_t n)
{
	budget_uncharge(mmu, n);
}
