/*
 * DOC: the hypervisor-level MMU
 *
 * Guest RAM is a memfd mapped twice: the guest view, registered with
 * userfaultfd and given to KVM as memory slots, and an alias the monitor
 * reads and writes through. Nothing is resident at first. A page becomes
 * resident in exactly one way: mmu__handle_fault() charges it to the VM's
 * budget, fills a bounce buffer from the backing (zeros, or a file read
 * lazily), and installs it atomically into the guest view with UFFDIO_COPY
 * or UFFDIO_ZEROPAGE, waking whoever waits on it. A resident bitmap makes
 * the charge happen once per page.
 *
 * With a backing file, pages are installed write-protected (uffd-wp): a
 * page the guest has not written since it was read from the file is clean
 * and can be dropped again (mmu__reclaim) when the budget runs out; the
 * first write is a write-protect fault that marks the page dirty. Pages
 * the monitor touches through mmu__access() are pinned (counted dirty).
 *
 * Every form in which a guest access to unbacked RAM surfaces reaches
 * mmu__handle_fault(): userfaultfd events (handler threads, uffd.c), an
 * MMIO exit, -EFAULT or SIGBUS inside RAM (the vCPU thread), and the
 * monitor's own accesses (mmu__access()). RETRY is retried a bounded number
 * of times and for a bounded time; a failure that stays (OOM, SIGBUS,
 * HWPOISON, retries exhausted) goes to the owner's fault_failed() callback,
 * which applies the VM's policy: stop the VM, poison the page
 * (mmu__poison) so that the vCPU that touched it takes a machine check, or
 * pause until the budget grows and send the fault back (ctx->refault).
 * The monitor's own accesses go there only for OOM once the VM runs.
 * No KVM headers here.
 */
#ifndef FAULTLINE_MMU_H
#define FAULTLINE_MMU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mmu/fault.h"
#include "mmu/gpa_map.h"
#include "mmu/guest_ram.h"
#include "mmu/page_bits.h"
#include "mmu/stats.h"

#define MMU_PAGE_SIZE	     4096ULL
#define MMU_FAULT_AROUND_MAX 512
#define MMU_HUGE_SIZE	     (2ULL << 20) /* --hugepages: one fault, 512 pages */
#define MMU_MAX_HANDLERS     16
#define MMU_MAX_LAYERS	     32 /* diff snapshots over one full one */
#define MMU_RECLAIM_BATCH    32 /* clean pages dropped per reclaim */
/* Refaults on pages just reclaimed, net, that are out of memory: this many budgets' worth, */
#define MMU_THRASH_BUDGETS  4
#define MMU_THRASH_MIN	    1024 /* and at least this many */
#define MMU_FAULT_AHEAD_MAX 4096 /* pages a sequential stream is served ahead, at most */
#define MMU_AHEAD_CHUNK	    64	 /* pages per install of fault-ahead */
#define MMU_HELD_FOR_GOOD   255	 /* holds[]: a pointer kept for good (rings), or held that often */

/*
 * Who serves a guest's first touch of a RAM page. The two baselines exist
 * so that `faultline bench` can measure the engine against them in one
 * run; they keep no budget and have no backing file or dedup.
 */
enum mmu_handler {
	MMU_HANDLER_FAULTLINE, /* the fault engine: budget, fault-around, bounded retry */
	MMU_HANDLER_NAIVE,     /* one thread woken by poll(), one page per event (UFFDIO_COPY) */
	MMU_HANDLER_KERNEL,    /* no userfaultfd: anonymous memory, the kernel's demand paging */
};

struct dedup;

/* A run of pages to prefetch: host pages [first, first + n). */
struct mmu_run {
	uint64_t first;
	uint32_t n;
	bool written; /* the recording saw them written: install them writable, dirty */
};

/* A recorded page's flag (mmu__recorded()): it was written while recorded. */
#define MMU_WS_WRITTEN 0x80000000u

#define MMU_PREFETCH_RUN_MAX 64	 /* pages per run: a fault waits for one run at most */
#define MMU_PREFETCH_WINDOW  512 /* recorded pages sorted into runs together */
#define MMU_PREFETCH_SPARE   64	 /* budget pages the prefetch leaves to faults, at most */

/*
 * The working set (mmu/prefetch.c): a recording of the pages installed for
 * the VM, in order, and a plan of runs that handler threads install while
 * no fault waits.
 */
struct mmu_ws {
	uint32_t *order; /* page + 1 per slot, in order; 0: a slot not written yet */
	uint64_t max;	 /* slots */
	uint64_t len;	 /* atomic: slots taken */
	bool on;	 /* atomic: recording */
	int full_fd;	 /* eventfd written when the slots run out; -1: none */
	struct mmu_run *runs;
	uint64_t nr_runs;
	uint64_t next_run; /* atomic: the next run a handler takes */
	bool prefetching;  /* atomic: runs are left and the budget allowed the last */
};

struct mmu_config {
	uint64_t ram_size;
	uint64_t mem_limit;	  /* bytes resident at most; 0: ram_size */
	const char *backing_file; /* NULL: zero-filled */
	unsigned fault_around;	  /* pages per fault, a power of two, 1..512 */
	unsigned max_retries;	  /* attempts per fault, >= 1 */
	unsigned retry_ms;	  /* time bound across the attempts of one fault */
	unsigned nr_handlers;	  /* userfaultfd handler threads, 1..16 */
	unsigned spin_us;	  /* poll for the next event this long before sleeping */
	unsigned fault_ahead;	  /* pages installed ahead of a sequential stream, 0: off */
	bool dedup;		  /* write-protect guest RAM for dedup (mmu/dedup.h) */
	bool huge;		  /* RAM on 2 MiB hugetlbfs pages; fault_around is 512 */
	bool track_writes;	  /* --diff-snapshots: pages written since mmu__writes_reset() */
	/*
	 * Map the backing file's pages instead of copying them, when it can
	 * be done (mmu.shared): a file of RAM's size on tmpfs, no dedup, no
	 * huge pages, MINOR faults and write-protect on shared memory.
	 */
	bool share;
	enum mmu_handler handler;
};

struct mmu_ops {
	/*
	 * A guest fault ended without the page (OOM, SIGBUS, HWPOISON, retries
	 * exhausted); @why says what happened. The owner applies its policy:
	 * it stops the VM, or it deals with the fault (poisons the page,
	 * injects a machine check) and sets ctx->resume, or it makes room
	 * (pauses the VM until its budget is raised) and sets ctx->refault:
	 * the fault is then served again from the start, counted as a fault
	 * of its own (stats: refaults). Called on the thread that handled the
	 * fault, holding none of the engine's locks; it may block, and the
	 * VM's stop must end that. For FAULT_SRC_MONITOR only an OOM, and only
	 * once the VM runs (mmu__start): a device's access to guest memory the
	 * budget cannot hold. Before, while the VM is loaded, mmu__access()'s
	 * caller reports it.
	 */
	void (*fault_failed)(void *owner, struct fault_ctx *ctx, fault_t result, const char *why);
	/* The vCPU index of thread @tid, or -1. Any thread. */
	int (*vcpu_of_tid)(void *owner, int tid);
	void *owner;
};

/*
 * Fault-ahead: where a vCPU's (or, for slot MMU_STATS_MAX_VCPUS, an unknown
 * thread's) faults go. Relaxed atomics: a race costs a guess, not a page.
 */
struct mmu_stream {
	uint64_t next;	/* the first page past what was installed for it last */
	uint64_t ahead; /* pages to install ahead at its next sequential fault */
};

struct mmu {
	struct mmu_config cfg;
	struct mmu_ops ops;
	struct guest_ram ram; /* layout; ram.host is the guest view */
	struct gpa_map map;   /* the guest-physical map: RAM banks, then devices' regions */
	uint8_t *alias;	      /* the monitor's view of the same pages */
	uint8_t *
		zero_src; /* cfg.huge, shared: 2 MiB of zeros never written, UFFDIO_COPY's source */
	int memfd;
	int uffd;
	int backing_fd;
	uint64_t backing_size;
	/*
	 * Layers over the backing file (a diff snapshot's memory files, oldest
	 * first): page i is read from layer_fds[layer_of[i] - 1], or from the
	 * backing file when layer_of[i] is 0. NULL: the backing file only.
	 */
	uint8_t *layer_of;
	int layer_fds[MMU_MAX_LAYERS];
	unsigned nr_layers;
	uint64_t nr_pages;
	uint64_t limit_pages;	 /* the budget; atomic (mmu__set_limit) */
	uint64_t resident_pages; /* atomic */
	/*
	 * atomic: pages faults have charged and are still installing; each
	 * install ends by marking what it installed resident and giving the
	 * rest back (a page a sibling installed first is charged twice until
	 * then). A charge that fails while this is not 0 may fit once they end.
	 */
	uint64_t charging;
	struct page_bits bits;	/* every page's state (page_bits.h) */
	uint64_t uffd_features; /* what the kernel offers (UFFDIO_API) */
	uint8_t *holds;		/* mmu__allow_discard(): device pointers into the page now */
	bool discards;		/* mmu__allow_discard() was called: pins count in holds */
	bool wp;		/* file pages are installed write-protected, reclaimable */
	bool uffd_wp;		/* the guest view is registered for write-protect */
	/*
	 * cfg.share took: the guest view is the backing file mapped
	 * MAP_PRIVATE (no memfd; the alias is the guest view). A first touch
	 * of a page the file holds maps its page-cache page (UFFDIO_CONTINUE,
	 * write-protected), shared with every process mapping the file; a
	 * write is the kernel's copy-on-write into this one. Reclaim and
	 * discards drop the mapping (MADV_DONTNEED); the file is never written.
	 */
	bool shared;
	struct dedup *dedup;		     /* NULL: dedup off */
	const struct mmu_sharer_ops *sharer; /* dedup's, when dedup is set */
	pthread_mutex_t reclaim_lock; /* page state: reclaim, dedup, write-protect faults, pins */
	uint64_t reclaim_hand;	      /* where the next reclaim scan starts */
	/*
	 * Thrashing: reclaim_clock counts the pages reclaim dropped (atomic),
	 * evicted_at[pi] is its value when page pi went (0: never; NULL
	 * without reclaim), thrash_run the faults on pages dropped within the
	 * last budget's worth of drops less the other faults since (atomic).
	 * MMU_THRASH_BUDGETS budgets' worth of them (at least MMU_THRASH_MIN)
	 * is out of memory: a working set the budget cannot hold refaults for
	 * ever while clean pages are there to drop.
	 */
	uint32_t reclaim_clock;
	uint32_t *evicted_at;
	uint32_t thrash_run;
	struct mmu_stats stats;
	int stop_fd;   /* eventfd: handler threads stop */
	bool stopping; /* atomic */
	bool running;  /* atomic: mmu__start() ran; the monitor's OOM goes to the owner too */
	/*
	 * atomic: handlers reading the userfaultfd or serving what they read,
	 * counters included. A handler counts itself before its read(), so an
	 * event is always either still queued or counted here: an empty queue
	 * seen before this reads 0 means every event so far is fully served.
	 */
	unsigned in_flight;
	pthread_t handlers[MMU_MAX_HANDLERS];
	unsigned nr_handlers_started;
	struct mmu_stream streams[MMU_STATS_MAX_VCPUS + 1];
	struct mmu_ws ws;
};

/*
 * Create guest RAM (memfd, both views, userfaultfd registration) and open
 * the backing file. Returns 0 or -errno after reporting what failed (file,
 * syscall; -EMEDIUMTYPE: the backing file is not a regular file). Undo
 * with mmu__exit().
 */
int mmu__init(struct mmu *mmu, const struct mmu_config *cfg, const struct mmu_ops *ops)
	__attribute__((warn_unused_result));

/*
 * Let the guest give pages back (mmu__discard(): a balloon's free page
 * reports). From now on a page the monitor accesses while the VM runs is
 * marked, under the lock discards take, as one a device may still hold a
 * pointer into; such pages are never discarded. Before mmu__start().
 * Returns 0 or -ENOMEM.
 */
int mmu__allow_discard(struct mmu *mmu) __attribute__((warn_unused_result));

/*
 * The guest says [@gpa, @gpa + @len) is free: drop the whole pages of it
 * that are resident, as reclaim drops a clean page, and give back their
 * charge; the next touch of one is a first touch again (zeros, or the
 * backing file's page). Kept: pages a device accessed while the VM ran,
 * merged or busy dedup pages, poisoned pages. Only the faultline handler
 * drops anything. Returns 0 with *@dropped and *@kept (resident pages not
 * dropped) counted, -EFAULT when the range is not inside guest RAM, or
 * -errno of the punch (the pages stay resident).
 */
int mmu__discard(struct mmu *mmu, uint64_t gpa, uint64_t len, uint64_t *dropped, uint64_t *kept)
	__attribute__((warn_unused_result));

/*
 * Start the userfaultfd handler threads; from now on the monitor's own
 * accesses that run out of memory go to ops->fault_failed() too. Returns 0
 * or -errno (reported). A second call does nothing.
 */
int mmu__start(struct mmu *mmu) __attribute__((warn_unused_result));

/*
 * A layer over the backing file, before mmu__start(): @fd (a file of RAM's
 * size, owned by the engine from now on) holds the pages set in @pages
 * (one bit per page). Later layers cover earlier ones. 0, or -E2BIG past
 * MMU_MAX_LAYERS, -ENOMEM, or -EINVAL without a backing file.
 */
int mmu__add_layer(struct mmu *mmu, int fd, const unsigned long *pages)
	__attribute__((warn_unused_result));

/*
 * Page @pi as the guest would see it on its next touch, were it not
 * resident: zeros (dedup released it, or nothing backs it), or the backing
 * file's or its layer's page. Into @buf (a page). 0 or -errno.
 */
int mmu__read_page(struct mmu *mmu, uint64_t pi, uint8_t *buf) __attribute__((warn_unused_result));

/* --diff-snapshots: whether page @pi was written, or dropped, since the last reset. */
static inline bool mmu__written(const struct mmu *mmu, uint64_t pi)
{
	return bit_test(mmu->bits.written, pi);
}

/*
 * --diff-snapshots, reclaim lock held, no vCPU in the guest: forget what
 * was written and write-protect every resident page again, so that the
 * next write to each one is seen. 0, or -errno of UFFDIO_WRITEPROTECT
 * (what is written from then on may be missed: take a full snapshot).
 */
int mmu__writes_reset_locked(struct mmu *mmu) __attribute__((warn_unused_result));

/*
 * --record-ws, before mmu__start(): from mmu__start() on, record every page
 * installed for the VM (its faults' windows, fault-ahead, the monitor's
 * accesses), each once, in the order installed, up to @max pages; then
 * stop and write 1 to @full_fd (an eventfd, or -1). 0, -EINVAL (@max is 0),
 * -EBUSY (a plan is set) or -ENOMEM.
 */
int mmu__record(struct mmu *mmu, uint64_t max, int full_fd) __attribute__((warn_unused_result));

/* Stop recording; any thread. True when it was recording. */
bool mmu__record_stop(struct mmu *mmu);

/*
 * The recording: *@n pages, in order, into @out (room for mmu->ws.max),
 * each with MMU_WS_WRITTEN when it is dirty now (written or pinned); slots
 * taken but not written yet (a racing install when it stopped) are left
 * out. After mmu__record_stop().
 */
void mmu__recorded(struct mmu *mmu, uint32_t *out, uint64_t *n);

/*
 * --prefetch ws, before mmu__start(): prefetch the @n pages of @pages
 * (host page indexes below nr_pages, as recorded, MMU_WS_WRITTEN on those
 * to install writable) in their order: each MMU_PREFETCH_WINDOW of them
 * sorted into runs of at most MMU_PREFETCH_RUN_MAX pages, largest first.
 * Without a backing file's write protection, or with dedup, every page is
 * installed as read. 0, -EINVAL (a page out of range), -EBUSY (recording,
 * or a plan is set) or -ENOMEM.
 */
int mmu__prefetch_pages(struct mmu *mmu, const uint32_t *pages, uint64_t n)
	__attribute__((warn_unused_result));

/*
 * --prefetch seq, before mmu__start(): prefetch every page the backing
 * file or its layers hold data for, in address order. 0, -EINVAL (no
 * backing file), -EBUSY or -ENOMEM; -errno of lseek().
 */
int mmu__prefetch_seq(struct mmu *mmu) __attribute__((warn_unused_result));

/* Budget pages the prefetch leaves to faults: an eighth of it, MMU_PREFETCH_SPARE at most. */
uint64_t mmu__prefetch_spare(const struct mmu *mmu);

/*
 * A handler thread with no event waiting: install the next run of the
 * plan, within the budget less mmu__prefetch_spare() (the prefetch ends
 * when it does not fit: no reclaim, no OOM). Returns false when nothing is
 * left to prefetch.
 */
bool mmu__prefetch_step(struct mmu *mmu);

static inline bool mmu__prefetch_pending(const struct mmu *mmu)
{
	return __atomic_load_n(&mmu->ws.prefetching, __ATOMIC_RELAXED);
}

/*
 * What waits for the handlers now, for a report on a VM that hangs:
 * whether guest faults are queued on the userfaultfd, and how many
 * handlers are reading or serving faults (in_flight). Any thread.
 */
void mmu__waiting(struct mmu *mmu, bool *queued, unsigned *in_service);

/* Stop and join the handler threads; pending faults stay pending. */
void mmu__stop(struct mmu *mmu);
void mmu__exit(struct mmu *mmu);

/*
 * The one entry point for a fault on guest RAM: resolve ctx->gpa, retrying
 * RETRY within the bounds and falling back to one page when a fault-around
 * window cannot be served. Returns the final result; a guest fault that
 * does not end FAULT_DONE has been passed to ops->fault_failed(). Any
 * thread except while holding locks of the caller's that a handler takes.
 */
fault_t mmu__handle_fault(struct fault_ctx *ctx);

/*
 * The monitor's checked accessor: make [gpa, gpa + len) resident through
 * the fault path and return its alias address in *ptr. The range must lie
 * in one RAM bank. Returns 0, -EFAULT (not RAM, or nothing can back it) or
 * -ENOMEM (the budget is exhausted).
 */
int mmu__access(struct mmu *mmu, uint64_t gpa, uint64_t len, void **ptr)
	__attribute__((warn_unused_result));

/*
 * As mmu__access(), for a pointer the caller gives back with
 * mmu__release() once done with it (a device's buffer, until its request
 * is done): while held, the pages are not discarded; afterwards they may
 * be. A page held 255 times at once stays held for good. Without
 * mmu__allow_discard() the same as mmu__access(). On failure nothing is
 * held.
 */
int mmu__access_held(struct mmu *mmu, uint64_t gpa, uint64_t len, void **ptr)
	__attribute__((warn_unused_result));
void mmu__release(struct mmu *mmu, uint64_t gpa, uint64_t len);

/* The monitor's guest_access: mmu__access() and the held pair behind the common interface. */
struct guest_access mmu__guest_access(struct mmu *mmu);

/* Make every page resident (--prefault). Returns 0 or as mmu__access(). */
int mmu__prefault(struct mmu *mmu) __attribute__((warn_unused_result));

/*
 * Poison guest page @gpa (UFFDIO_POISON, Linux 6.6): whoever touches it
 * from now on gets SIGBUS with BUS_MCEERR_AR, a vCPU through KVM. Waiters
 * are woken. Returns 0, -EOPNOTSUPP when the kernel cannot poison, -EEXIST
 * when the page is resident, -EFAULT outside RAM, or -errno.
 */
int mmu__poison(struct mmu *mmu, uint64_t gpa) __attribute__((warn_unused_result));

/* Whether mmu__poison() can work on this kernel. */
bool mmu__can_poison(const struct mmu *mmu);

/*
 * Drop up to @want clean file-backed pages (written by nobody since they
 * were read from the backing file) and uncharge them; the next access reads
 * them again. Returns the number dropped; 0 without a backing file or
 * write-protect support. Any thread.
 */
uint64_t mmu__reclaim(struct mmu *mmu, uint64_t want);

/*
 * The net refaults on pages reclaim had just dropped that are out of
 * memory (thrashing, above): MMU_THRASH_BUDGETS times the budget, at
 * least MMU_THRASH_MIN.
 */
uint64_t mmu__thrash_faults(const struct mmu *mmu);

/*
 * Lookup by host address: the GPA of guest-view address @hva, false when
 * @hva is not guest RAM (gpa_map__find_host() on mmu->map).
 */
bool mmu__gpa_of_hva(const struct mmu *mmu, const void *hva, uint64_t *gpa);

/*
 * Charge @n pages of device memory that backs guest-visible pages (a
 * BAR's) to the VM's budget, reclaiming clean RAM pages if that helps, and
 * waiting (up to the retry bound) for faults' charges that are not over
 * (mmu.charging). Returns 0 or -ENOMEM. Undo with mmu__uncharge(). Any
 * thread holding no lock that a fault's install takes.
 */
int mmu__charge(struct mmu *mmu, uint64_t n) __attribute__((warn_unused_result));
void mmu__uncharge(struct mmu *mmu, uint64_t n);

/*
 * As mmu__charge(), with mmu->reclaim_lock held (dedup): reclaims, but
 * cannot wait for siblings' charges. Only for a page that became merged
 * after mmu__charge_cow() looked.
 */
int mmu__charge_locked(struct mmu *mmu, uint64_t n) __attribute__((warn_unused_result));

/* What was charged for a copy-on-write break before the reclaim lock was taken. */
enum cow_charge {
	COW_UNCHARGED, /* nothing: the page did not look merged, or the charge was taken over */
	COW_CHARGED,   /* one page, counted in mmu.charging until mmu__charge_cow_end() */
	COW_NO_ROOM,   /* none fits: the budget is full, siblings' charges and reclaim included */
};

/*
 * The page sharer's side of the seam (mmu/dedup.c plugs in; nothing else
 * of it is known here). The sharer keeps its page state in mmu->bits
 * (merged, busy, nomerge, waiting), where the MMU reads it. These are the
 * steps only the sharer can take, each called with mmu->reclaim_lock held
 * for a resident page @pi: break_cow gives a merged page its own copy
 * with the page *@charge holds (mmu__charge_cow()), discard forgets a
 * merged page's contents before a poison, and wake wakes the writers
 * waiting on its shared mapping. mmu/dedup.h says more of each.
 */
struct mmu_sharer_ops {
	fault_t (*break_cow)(struct dedup *d, struct fault_ctx *ctx, uint64_t pi,
			     enum cow_charge *charge);
	int (*discard)(struct dedup *d, uint64_t pi);
	void (*wake)(struct dedup *d, uint64_t pi);
};

/*
 * The page a copy-on-write break of merged page @pi needs, charged before
 * mmu->reclaim_lock is taken: there a full budget can still wait for
 * siblings' charges that are not over and reclaim, as a missing page's
 * fault does (the kernel's wp_page_copy() allocates its page before it
 * takes the page-table lock, for the same reason). dedup__break_cow()
 * takes a COW_CHARGED page over, or leaves it for mmu__charge_cow_end() to
 * give back: the page may be unmerged by then, or its last sharer.
 */
enum cow_charge mmu__charge_cow(struct mmu *mmu, const struct fault_ctx *ctx, uint64_t pi);

/*
 * After the reclaim lock is dropped: @was is what mmu__charge_cow()
 * returned, @left what dedup__break_cow() left of it.
 */
void mmu__charge_cow_end(struct mmu *mmu, enum cow_charge was, enum cow_charge left);

/*
 * Set the budget to @pages (the control API's mem-limit). Lowering it first
 * reclaims clean pages down to @pages. Returns 0; -ERANGE when @pages is 0
 * or more than guest RAM; -EBUSY when more than @pages stay resident;
 * -EOPNOTSUPP for the baselines, which keep no budget. Any thread.
 */
int mmu__set_limit(struct mmu *mmu, uint64_t pages) __attribute__((warn_unused_result));

/* Pages of RAM, of budget and resident now. */
void mmu__pages(struct mmu *mmu, struct mmu_pages *pages);

/*
 * Bytes of host memory that hold guest RAM now, into *bytes: the pages the
 * RAM's memfd holds, mapped or not. Returns 0, -EOPNOTSUPP for the kernel
 * baseline's anonymous RAM (the process's smaps entry of ram.host says
 * it), or -errno.
 */
int mmu__host_bytes(struct mmu *mmu, uint64_t *bytes) __attribute__((warn_unused_result));

/* CLOCK_MONOTONIC in nanoseconds: fault service time, retry and spin bounds. */
uint64_t mmu__now_ns(void);

/*
 * A fault of @source at @gpa (page-aligned here) on @mmu, everything else
 * zero: the guest-view address of the page when it is RAM (NULL for a
 * BAR), @access, @vcpu (-1: none or the monitor) and FAULT_FLAG_* @flags.
 */
void fault_ctx__init(struct fault_ctx *ctx, struct mmu *mmu, uint64_t gpa, enum fault_access access,
		     enum fault_source source, int vcpu, unsigned flags);

/* uffd.c: the handler threads' bodies. */
void *mmu__uffd_handler(void *arg);

/*
 * Fault-ahead, on a handler thread after it served @ctx (a userfaultfd
 * event that installed ctx->win_pages pages from ctx->win_first, its
 * waiter already woken): when the fault continues its vCPU's sequential
 * stream, install the pages after the window before the vCPU reaches
 * them, up to cfg.fault_ahead pages (doubling from fault_around at each
 * sequential fault), in chunks, stopping at a resident page, at an event
 * waiting on the userfaultfd, or where the charge would leave less than
 * fault_ahead pages of the budget free. Never fails a fault: what cannot
 * be installed is left to the vCPU's own fault. Returns pages installed.
 */
uint64_t mmu__fault_ahead(const struct fault_ctx *ctx);
void *mmu__naive_handler(void *arg);
int mmu__uffd_init(struct mmu *mmu) __attribute__((warn_unused_result));

#endif
