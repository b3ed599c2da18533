/*
 * Dedup's copy-on-write break, discard and unmerge, and its threads
 * (mmu/dedup.h, dedup_int.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "lib/log.h"
#include "mmu/dedup.h"
#include "mmu/dedup_int.h"
#include "mmu/mmu.h"
#include "mmu/uffd_compat.h"

/* ---- copy-on-write break, discard, unmerge ---------------------------------------- */

/*
 * Guest page @pi maps its own page of guest RAM again (its contents
 * already there, or a hole), registered as the rest of the guest view.
 * Lock held. 0 or -errno.
 */
static int dedup_map_own(struct dedup *d, uint64_t pi)
{
	struct mmu *mmu = d->mmu;
	struct uffdio_register reg = {
		.range = {(uint64_t)(uintptr_t)guest_page(d, pi), PAGE},
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	/*
	 * The raw system call: a writer blocked on this page is woken only
	 * after it, which the kernel orders; ThreadSanitizer's mmap() would
	 * count the new mapping as a write it cannot order with the writer's.
	 */
	if ((void *)syscall(SYS_mmap, guest_page(d, pi), PAGE, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_FIXED | MAP_NORESERVE, mmu->memfd,
			    (off_t)(pi * PAGE)) == MAP_FAILED)
		return -errno;
	if (ioctl(mmu->uffd, UFFDIO_REGISTER, &reg) < 0) {
		/* Contents are right; only its faults are lost: never merge it again. */
		page_bits__pin(&d->mmu->bits, pi);
		D_STAT_INC(d, merge_errors);
	}
	return 0;
}

/* Merged page @pi no longer uses its shared page. Lock held. */
static void dedup_unshare(struct dedup *d, uint64_t pi, bool keep_charge)
{
	struct dedup_node *node = d->rmap[pi].node;

	bit_test_clear(d->mmu->bits.merged, pi);
	d->rmap[pi].node = NULL;
	d->rmap[pi].checksummed = false;
	d->maps -= d->maps >= DEDUP_MAPS_PER_MERGE ? DEDUP_MAPS_PER_MERGE : d->maps;
	d->refs_committed--;
	dedup__update_sharing(d);
	dedup__node_put(d, node, keep_charge);
}

/* A break failed: dedup stops merging for this VM. Lock held. */
static fault_t dedup_break_failed(struct dedup *d, struct fault_ctx *ctx, int err)
{
	uint64_t was = 1;

	D_STAT_INC(d, cow_break_failures);
	ctx->flags |= FAULT_FLAG_COW;
	if (__atomic_compare_exchange_n(&d->knobs.run, &was, 0, false, __ATOMIC_ACQ_REL,
					__ATOMIC_RELAXED))
		pr_err("dedup: stopped merging: a copy-on-write break failed at GPA 0x%llx: %s",
		       (unsigned long long)ctx->gpa,
		       err == ENOMEM ? "out of memory" : strerror(err));
	if (err == ENOMEM || err == ENOSPC)
		return FAULT_OOM;
	ctx->err = err;
	ctx->failed = "the copy-on-write break of a shared page failed";
	return FAULT_SIGBUS;
}

fault_t dedup__break_cow(struct dedup *d, struct fault_ctx *ctx, uint64_t pi,
			 enum cow_charge *charge)
{
	struct mmu *mmu = d->mmu;
	struct dedup_node *node = d->rmap[pi].node;
	bool last = node->refs == 1;
	int err;

	/* The last sharer takes the shared page's charge over. */
	if (!last && *charge == COW_CHARGED)
		*charge = COW_UNCHARGED;
	else if (!last && (*charge == COW_NO_ROOM || mmu__charge_locked(mmu, 1)))
		return dedup_break_failed(d, ctx, ENOMEM);
	err = inject__check("dedup.cow");
	if (!err &&
	    pwrite(mmu->memfd, stable_page(d, node), PAGE, (off_t)(pi * PAGE)) != (ssize_t)PAGE)
		err = errno ? errno : EIO;
	err = err ?: -dedup_map_own(d, pi);
	if (err) {
		if (punch_pages(mmu->memfd, pi, 1) < 0) {
			/* a copy that stays allocated, unused, until the VM ends */
		}
		if (!last)
			mmu__uncharge(mmu, 1);
		return dedup_break_failed(d, ctx, err);
	}
	dedup_unshare(d, pi, last);
	D_STAT_INC(d, cow_breaks);
	dedup__wake(d, pi);
	return FAULT_DONE;
}

int dedup__discard(struct dedup *d, uint64_t pi)
{
	int ret = punch_pages(d->mmu->memfd, pi, 1);

	ret = ret ?: dedup_map_own(d, pi);
	if (ret)
		return ret;
	bit_test_clear(d->mmu->bits.resident, pi);
	dedup_unshare(d, pi, false);
	return 0;
}

/* The next merged page at or after the unmerge cursor; false when none. */
static bool dedup_next_merged(struct dedup *d, uint64_t *pi)
{
	uint64_t n, i = d->unmerge_cursor;

	for (n = 0; n < d->mmu->nr_pages; n++, i = (i + 1) % d->mmu->nr_pages)
		if (page_bits__merged(&d->mmu->bits, i)) {
			*pi = i;
			return true;
		}
	return false;
}

int64_t dedup__unmerge(struct dedup *d, uint64_t nr)
{
	struct mmu *mmu = d->mmu;
	int64_t done = 0;
	uint64_t pi;

	while ((uint64_t)done < nr && !__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE) &&
	       knob(d, &d->knobs.run) == 2 && dedup_next_merged(d, &pi)) {
		enum cow_charge was, charge;
		fault_t r = FAULT_DONE;
		struct fault_ctx ctx;

		fault_ctx__init(&ctx, mmu, guest_ram__gpa(&mmu->ram, pi * PAGE), FAULT_WRITE,
				FAULT_SRC_MONITOR, -1, 0);
		was = charge = mmu__charge_cow(mmu, &ctx, pi);

		pthread_mutex_lock(&mmu->reclaim_lock);
		page_bits__wait(&d->mmu->bits, pi, &d->mmu->reclaim_lock);
		if (page_bits__merged(&d->mmu->bits, pi))
			r = dedup__break_cow(d, &ctx, pi, &charge);
		pthread_mutex_unlock(&mmu->reclaim_lock);
		mmu__charge_cow_end(mmu, was, charge);
		if (r != FAULT_DONE)
			return -ENOMEM;
		d->unmerge_cursor = (pi + 1) % mmu->nr_pages;
		D_STAT_INC(d, unmerged);
		done++;
	}
	return done;
}

/* ---- threads ------------------------------------------------------------------------- */

/* Sleep @ms (forever when 0 and @forever) unless run changes or dedup stops. */
void dedup__sleep(struct dedup *d, uint64_t ms, bool forever)
{
	uint64_t run = knob(d, &d->knobs.run);
	struct timespec ts;

	pthread_mutex_lock(&d->wait_lock);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE) && knob(d, &d->knobs.run) == run) {
		int r = forever ? pthread_cond_wait(&d->wake, &d->wait_lock)
				: pthread_cond_timedwait(&d->wake, &d->wait_lock, &ts);

		if (r == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&d->wait_lock);
}

/*
 * Every merge's mremap() waits until the reader thread has read its
 * UFFD_EVENT_REMAP: the scanner wakes the reader, then the reader wakes the
 * scanner. Between two CPUs each wake-up is an interprocessor interrupt (in
 * a VM, an exit or two); on one CPU it is a context switch. So for the
 * length of a batch (@on) both threads keep to the CPU the scanner is on,
 * and between batches (!@on) both may run wherever they could before. Only
 * with merging on (zero mode moves no mapping). A failure costs speed only.
 */
static void dedup_share_cpu(struct dedup *d, bool on)
{
	const cpu_set_t *set = &d->cpus;
	cpu_set_t one;
	int cpu = on ? sched_getcpu() : 0;

	if (d->mode != DEDUP_ON || !d->reader_started || cpu < 0 || !CPU_COUNT(&d->cpus))
		return;
	if (on) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		set = &one;
	}
	if (pthread_setaffinity_np(pthread_self(), sizeof(*set), set) ||
	    pthread_setaffinity_np(d->reader, sizeof(*set), set)) {
		/* each thread keeps the affinity it had */
	}
}

static void *dedup_scanner(void *arg)
{
	struct dedup *d = arg;

	if (pthread_getaffinity_np(pthread_self(), sizeof(d->cpus), &d->cpus))
		CPU_ZERO(&d->cpus); /* never moved, then */
	while (!__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE)) {
		uint64_t run = knob(d, &d->knobs.run), batch = knob(d, &d->knobs.pages_to_scan);
		bool idle = run == 0;

		if (run == 1) {
			dedup_share_cpu(d, true);
			dedup__scan(d, batch);
			dedup_share_cpu(d, false);
		} else if (run == 2)
			idle = dedup__unmerge(d, batch) <= 0;
		dedup__sleep(d, knob(d, &d->knobs.sleep_ms), idle);
	}
	return NULL;
}

/* Write faults on merged pages, and the mremap events of merges. */
static void *dedup_reader(void *arg)
{
	struct dedup *d = arg;
	struct mmu *mmu = d->mmu;
	struct uffd_msg msgs[16];
	struct pollfd fds[2] = {{.fd = d->uffd, .events = POLLIN},
				{.fd = d->stop_fd, .events = POLLIN}};

	for (;;) {
		ssize_t n;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		n = read(d->uffd, msgs, sizeof(msgs));
		for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(msgs[0]); i++) {
			const struct uffd_msg *m = &msgs[i];
			uint8_t *hva =
				(uint8_t *)(uintptr_t)(m->arg.pagefault.address & ~(PAGE - 1));
			uint64_t off = (uint64_t)(hva - mmu->ram.host);
			struct fault_ctx ctx;

			if (m->event != UFFD_EVENT_PAGEFAULT || off >= mmu->ram.size)
				continue; /* UFFD_EVENT_REMAP: a merge, read so that it goes on */
			fault_ctx__init(&ctx, mmu, guest_ram__gpa(&mmu->ram, off), FAULT_WRITE,
					FAULT_SRC_UFFD, -1,
					FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_INTERRUPTIBLE |
						FAULT_FLAG_WP);
			if (mmu->ops.vcpu_of_tid)
				ctx.vcpu = mmu->ops.vcpu_of_tid(mmu->ops.owner,
								(int)m->arg.pagefault.feat.ptid);
			mmu__handle_fault(&ctx);
		}
	}
	return NULL;
}

int dedup__start_reader(struct dedup *d)
{
	int err = inject__check("pthread_create.dedup");

	err = err ?: pthread_create(&d->reader, NULL, dedup_reader, d);
	d->reader_started = !err;
	if (err)
		pr_err("cannot start the dedup fault reader: %s", strerror(err));
	return -err;
}

int dedup__start(struct dedup *d)
{
	int err = d->reader_started ? 0 : dedup__start_reader(d);

	if (err)
		return err;
	err = inject__check("pthread_create.dedup");
	err = err ?: pthread_create(&d->scanner, NULL, dedup_scanner, d);
	d->scanner_started = !err;
	if (err)
		pr_err("cannot start the dedup scanner: %s", strerror(err));
	return -err;
}

void dedup__stop(struct dedup *d)
{
	uint64_t one = 1;

	pthread_mutex_lock(&d->wait_lock);
	__atomic_store_n(&d->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->wait_lock);
	if (d->scanner_started)
		pthread_join(d->scanner, NULL);
	d->scanner_started = false;
	/* The reader last: a merge in flight waits for it to read its event. */
	if (d->stop_fd >= 0 && write(d->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd counter cannot overflow from these writes */
	}
	if (d->reader_started)
		pthread_join(d->reader, NULL);
	d->reader_started = false;
}
