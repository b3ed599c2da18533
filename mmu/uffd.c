/*
 * The userfaultfd handler threads: each turns page-fault events into
 * calls of mmu__handle_fault(), then fault-ahead.
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
#include "mmu/mmu_int.h"
#include "mmu/uffd_compat.h"

#define UFFD_MSGS_PER_READ 16

void mmu__serve(struct mmu *mmu, const struct uffd_msg *msg)
{
	uint8_t *hva = (uint8_t *)(uintptr_t)(msg->arg.pagefault.address & ~(MMU_PAGE_SIZE - 1));
	uint64_t off = (uint64_t)(hva - mmu->ram.host);
	uint64_t flags = msg->arg.pagefault.flags;
	struct pollfd stop = {.fd = mmu->stop_fd, .events = POLLIN};
	struct fault_ctx ctx;

	if (msg->event != UFFD_EVENT_PAGEFAULT || off >= mmu->ram.size)
		return;
	fault_ctx__init(&ctx, mmu, guest_ram__gpa(&mmu->ram, off),
			flags & UFFD_PAGEFAULT_FLAG_WRITE ? FAULT_WRITE : FAULT_READ,
			FAULT_SRC_UFFD, -1,
			FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_INTERRUPTIBLE |
				(flags & UFFD_PAGEFAULT_FLAG_WP ? FAULT_FLAG_WP : 0));
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
static ssize_t mmu_spin_read(struct mmu *mmu, struct uffd_msg *msgs, size_t len)
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

	bool prefetched = false;

	while (!__atomic_load_n(&mmu->stopping, __ATOMIC_ACQUIRE)) {
		ssize_t n;
		size_t i;
		int ready = poll(fds, 2, mmu__prefetch_pending(mmu) ? 0 : -1);

		if (ready < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		/* No event waits: prefetch one run (--prefetch), then look again. */
		if (ready == 0) {
			mmu__prefetch_step(mmu);
			prefetched = true;
			continue;
		}
		/* An event that came while a run was installed waited for it. */
		if (prefetched && fds[0].revents)
			MMU_STAT_INC(&mmu->stats, prefetch_waits);
		prefetched = false;
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
			n = mmu_spin_read(mmu, msgs, sizeof(msgs));
		}
		/* n < 0 is EAGAIN: another handler took the events */
		__atomic_sub_fetch(&mmu->in_flight, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}
