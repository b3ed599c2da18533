/*
 * DOC: Device BARs served by nopage handlers
 *
 * A BAR is a window of guest-physical address space that belongs to a
 * device. Nothing is mapped there at first, so every guest access exits to
 * the monitor (KVM_EXIT_MMIO) and comes to bar__access(). The first access
 * to a page asks the device's nopage handler what the page is, and the
 * answer, a fault_t like every fault result in mmu/, decides:
 *
 *   DONE   (PAGE)    a RAM page backs this offset: it is mapped into the
 *                    guest (a KVM memory slot of one page, through the
 *                    owner's bar_mapper) and later accesses need no exit;
 *   MMIO   (NONRAM)  registers: this access and every later one trap to
 *                    the device's read/write handlers;
 *   RETRY  (REFAULT) the handler changed mappings itself or is moving
 *                    memory: look again, bounded in attempts and time like
 *                    every retry in the MMU;
 *   SIGBUS           nothing backs this offset;
 *   OOM              no memory for it: the VM's OOM policy applies.
 *
 * The access that exited is completed on the page itself (a read copies
 * from it, a write into it), under the BAR's lock, so that no access is
 * lost however mappings change around it.
 *
 * Revocation: bar__zap() takes pages out of the guest's view (the memory
 * slot is deleted, which KVM finishes before the ioctl returns: no vCPU can
 * reach the page afterwards) and forgets what nopage said, so the next
 * access faults into nopage again. Zapping is safe while vCPUs run; a
 * nopage answer for a page zapped while the handler ran is not used (each
 * page has a zap sequence number, checked under the lock), the access looks
 * again.
 *
 * Memory slots are finite: when the mapper has none left, the BAR drops its
 * own oldest mapping; with none of its own to drop, the access is served on
 * the page without mapping it (counted: unmapped_accesses).
 *
 * Locking: bar->lock protects the page states and is held across the
 * mapper's calls and the completion of an access; nopage and the register
 * handlers run without it, so they may call bar__zap() and bar__map().
 * No KVM headers here: the mapper is the owner's.
 */
#ifndef FAULTLINE_BAR_H
#define FAULTLINE_BAR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/fault.h"

#define BAR_PAGE_SIZE	   4096ULL
#define BAR_MAX_SIZE	   (1ULL << 30)
#define BAR_DEV_COUNTERS   4 /* counters a device adds to its BAR's */
#define BAR_NOPAGE_REPORTS 4 /* nopage failures named on stderr per BAR */

/* X(name, help): the counters of every BAR; --stats prints them per device. */
#define BAR_COUNTERS(X)                                                                            \
	X(exits, "guest accesses that exited to the BAR")                                          \
	X(nopage_page, "nopage answered PAGE: a RAM page, mapped")                                 \
	X(nopage_nonram, "nopage answered NONRAM: registers, every access traps")                  \
	X(nopage_refault, "nopage answered REFAULT: looked again")                                 \
	X(nopage_sigbus, "nopage answered SIGBUS: nothing backs the offset")                       \
	X(nopage_oom, "nopage answered OOM")                                                       \
	X(refault_exhausted, "accesses still answered REFAULT at the retry bound")                 \
	X(raced, "nopage answers dropped because the page was zapped meanwhile")                   \
	X(traps, "register accesses handled by the device")                                        \
	X(maps, "pages mapped into the guest")                                                     \
	X(zaps, "pages taken out of the guest's view")                                             \
	X(evictions, "mappings dropped for lack of memory slots")                                  \
	X(unmapped_accesses, "accesses served without a mapping (no memory slot)")

struct bar_stats {
#define BAR_COUNTER_FIELD(name, help) uint64_t name;
	BAR_COUNTERS(BAR_COUNTER_FIELD)
#undef BAR_COUNTER_FIELD
	uint64_t dev[BAR_DEV_COUNTERS]; /* the device's own, named by bar->dev_counters */
};

#define BAR_STAT_INC(bar, name) __atomic_add_fetch(&(bar)->stats.name, 1, __ATOMIC_RELAXED)

/* A device counter: name and help. */
struct bar_counter {
	const char *name;
	const char *help;
};

struct bar;

struct bar_ops {
	/*
	 * The first access to page @pgoff since it was last zapped. On DONE,
	 * *page is the host address of a page-aligned 4 KiB RAM page that
	 * backs the offset until the device zaps it. Called without the BAR's
	 * lock, on a vCPU thread; ctx->flags has FAULT_FLAG_TRIED on a retry.
	 */
	fault_t (*nopage)(struct bar *bar, uint64_t pgoff, struct fault_ctx *ctx, uint8_t **page);
	/* Register accesses (pages nopage called NONRAM). 0 or -errno. */
	int (*read)(struct bar *bar, uint64_t offset, void *data, unsigned len);
	int (*write)(struct bar *bar, uint64_t offset, const void *data, unsigned len);
};

/* How pages reach the guest: the owner's side (KVM memory slots). */
struct bar_mapper {
	/* Map @host at @gpa, one page. A handle >= 0, -ENOSPC (no slot), or -errno. */
	int (*map)(void *owner, uint64_t gpa, uint8_t *host);
	/* Undo map: when it returns, no vCPU reaches the page through it. 0 or -errno. */
	int (*unmap)(void *owner, int handle, uint64_t gpa);
	/* Whether the VM is stopping: a retrying access gives up. */
	bool (*stopping)(void *owner);
	void *owner;
};

enum bar_page_state {
	BAR_PAGE_NONE,	 /* nopage decides at the next access */
	BAR_PAGE_MAPPED, /* a RAM page, mapped into the guest */
	BAR_PAGE_TRAP,	 /* registers */
};

struct bar_page {
	uint8_t state; /* enum bar_page_state */
	int handle;    /* the mapper's, while MAPPED */
	uint8_t *host; /* while MAPPED */
	uint32_t seq;  /* bumped by every zap of this page */
};

struct bar {
	const char *name; /* the device's, for messages and stats */
	uint64_t gpa;
	uint64_t size;
	uint64_t nr_pages;
	const struct bar_ops *ops;
	void *priv; /* the device's */
	struct bar_mapper mapper;
	unsigned max_retries;			/* attempts per access while nopage says REFAULT */
	unsigned retry_ms;			/* time per access, across the attempts */
	const struct bar_counter *dev_counters; /* at most BAR_DEV_COUNTERS, NULL name ends */
	pthread_mutex_t lock;
	struct bar_page *pages;
	uint64_t evict_hand; /* where the next search for a mapping to drop starts */
	struct bar_stats stats;
};

/*
 * Set up @bar: @size bytes at @gpa, both page-aligned, size at most
 * BAR_MAX_SIZE; @max_retries >= 1. Returns 0, -EINVAL or -ENOMEM.
 */
int bar__init(struct bar *bar, const char *name, uint64_t gpa, uint64_t size,
	      const struct bar_ops *ops, void *priv, const struct bar_mapper *mapper,
	      unsigned max_retries, unsigned retry_ms) __attribute__((warn_unused_result));

/* Unmap every page and free the page table. No access in flight. */
void bar__exit(struct bar *bar);

/*
 * Serve a guest access of @len bytes (1..8) at offset @offset of the BAR,
 * which exited to the monitor; ctx describes the vCPU. Returns DONE when
 * the access is complete (a read's bytes are in @data). Otherwise the
 * access did not happen: SIGBUS or OOM from nopage, RETRY when nopage
 * still said REFAULT at the bound (or the VM is stopping), MMIO when a
 * register handler rejected the access, each with ctx->err and @why.
 * Takes the BAR's lock; calls nopage and register handlers without it.
 */
fault_t bar__access(struct bar *bar, struct fault_ctx *ctx, uint64_t offset, void *data,
		    unsigned len, bool is_write, char *why, size_t why_len);

/*
 * A handler maps page @pgoff itself (then answers REFAULT). Returns 0,
 * -EEXIST when the page is already mapped or trapping, -ERANGE, or the
 * mapper's error. Takes the BAR's lock.
 */
int bar__map(struct bar *bar, uint64_t pgoff, uint8_t *page) __attribute__((warn_unused_result));

/*
 * Take pages [first, first + n) out of the guest's view: mapped ones are
 * unmapped, trapping ones forgotten, and each page's next access calls
 * nopage again. Returns 0, -ERANGE, or the first unmap error (the VM
 * cannot go on safely: the caller stops it). Takes the BAR's lock.
 */
int bar__zap(struct bar *bar, uint64_t first, uint64_t n) __attribute__((warn_unused_result));

/* "PAGE", "NONRAM", "REFAULT", "SIGBUS", "OOM": nopage's answer, in the BAR's words. */
const char *bar__result_name(fault_t r);

#endif
