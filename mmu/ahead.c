/*
 * Fault-ahead (--fault-ahead): after a fault that continues a vCPU's
 * sequential stream, install pages past its window before it gets there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/inject.h"
#include "mmu/mmu.h"
#include "mmu/mmu_int.h"
#include "mmu/uffd_compat.h"

/* Install up to @n pages from host page @first ahead of need. Returns pages installed. */
static uint64_t mmu_ahead_chunk(const struct fault_ctx *fault, uint64_t first, uint64_t n)
{
	struct mmu *mmu = fault->mmu;
	struct fault_ctx ctx;
	uint64_t k = 0, done;
	int64_t ret;

	/* Read: nobody wrote them, so they are clean, reclaimable file pages. */
	fault_ctx__init(&ctx, mmu, guest_ram__gpa(&mmu->ram, first * MMU_PAGE_SIZE), FAULT_READ,
			FAULT_SRC_UFFD, fault->vcpu, 0);
	while (k < n && first + k < mmu->nr_pages && !page_resident(mmu, first + k) &&
	       !bit_test(mmu->bits.poisoned, first + k))
		k++;
	if (!k || !mmu__charge_spare(mmu, k, mmu->cfg.fault_ahead))
		return 0;
	__atomic_add_fetch(&mmu->charging, k, __ATOMIC_ACQ_REL);
	ret = mmu__install(&ctx, first, k, first);
	done = ret > 0 ? (uint64_t)ret / MMU_PAGE_SIZE : 0;
	pages_mark_resident(mmu, first, done);
	budget_uncharge(mmu, k - done);
	__atomic_sub_fetch(&mmu->charging, k, __ATOMIC_RELEASE);
	MMU_STAT_ADD(&mmu->stats, pages_installed, done);
	MMU_STAT_ADD(&mmu->stats, pages_ahead, done);
	return done;
}

uint64_t mmu__fault_ahead(const struct fault_ctx *ctx)
{
	struct mmu *mmu = ctx->mmu;
	unsigned slot = ctx->vcpu >= 0 && ctx->vcpu < MMU_STATS_MAX_VCPUS ? (unsigned)ctx->vcpu
									  : MMU_STATS_MAX_VCPUS;
	struct mmu_stream *s = &mmu->streams[slot];
	uint64_t pi = (uint64_t)(ctx->hva - mmu->ram.host) / MMU_PAGE_SIZE;
	uint64_t next = __atomic_load_n(&s->next, __ATOMIC_RELAXED);
	uint64_t ahead = __atomic_load_n(&s->ahead, __ATOMIC_RELAXED);
	uint64_t end = ctx->win_first + ctx->win_pages, done = 0, got;

	if (!mmu->cfg.fault_ahead || !ctx->win_pages || mmu->cfg.handler != MMU_HANDLER_FAULTLINE)
		return 0;
	/* Sequential: the fault is where the last install for this stream ended. */
	if (next && pi >= next && pi < next + mmu->cfg.fault_around)
		ahead = ahead ? ahead * 2 : mmu->cfg.fault_around;
	else
		ahead = 0; /* a new stream: nothing ahead until it proves sequential */
	if (ahead > mmu->cfg.fault_ahead)
		ahead = mmu->cfg.fault_ahead;
	__atomic_store_n(&s->ahead, ahead, __ATOMIC_RELAXED);
	while (done < ahead && !mmu__stopping(mmu) && !mmu__event_waiting(mmu)) {
		got = mmu_ahead_chunk(ctx, end + done,
				      ahead - done < MMU_AHEAD_CHUNK ? ahead - done
								     : MMU_AHEAD_CHUNK);
		done += got;
		if (!got)
			break;
	}
	__atomic_store_n(&s->next, end + done, __ATOMIC_RELAXED);
	return done;
}
