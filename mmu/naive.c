/*
 * The naive baseline (--fault-handler naive): one thread woken by poll()
 * copying one page per fault, for faultline bench to compare against.
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

/* One event of the naive baseline: a page of zeros, or the engine when that fails. */
static void mmu_naive_serve(struct mmu *mmu, struct uffd_msg *msg)
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
		if (!bit_test(mmu->bits.resident, off / MMU_PAGE_SIZE)) {
			bit_set(mmu->bits.resident, off / MMU_PAGE_SIZE);
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
			mmu_naive_serve(mmu, &msg);
		__atomic_sub_fetch(&mmu->in_flight, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}
