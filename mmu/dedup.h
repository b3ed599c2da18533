/*
 * DOC: dedup, KSM-style page merging inside the monitor
 *
 * A scanner thread walks guest RAM in batches of pages_to_scan pages,
 * sleeping sleep_ms between batches. A page is a candidate only when its
 * checksum (XXH3, libxxhash) is the one it had at the previous pass (the
 * checksum gate: pages that change are "volatile"). A candidate that is all
 * zeros is released: its memory is punched out and the next access is a
 * missing-page fault that serves zeros again; zero pages found in a row
 * are write-protected and punched together, a stretch a call. Any other candidate is looked
 * up in the stable index (shared pages, write-protected, keyed by checksum,
 * confirmed byte for byte); failing that, in the unstable index (this
 * pass's unique pages, rebuilt every pass). Two equal pages make a new
 * shared page.
 *
 * A shared page lives in its own memfd. Merging guest page A into it
 * write-protects A (uffd-wp on the guest view), compares every byte, then
 * moves a one-page mapping of the shared page, registered with the dedup
 * userfaultfd and write-protected, over A (mremap, atomic for the vCPUs),
 * and punches A's own page out of guest RAM. Runs are merged together:
 * pairs found in a row (a second copy of several pages) get shared pages
 * in a row; candidates found in a row that merge into shared pages share
 * one write-protect and one punch, and each stretch of them whose shared
 * pages are in a row too (a later copy) one mapping and one mremap. A guest write to a merged page
 * is a write-protect fault on the dedup userfaultfd; it reaches mmu__handle_fault(), which breaks
 * the sharing by copying: the copy is charged to the VM's budget first and fails as FAULT_OOM (the
 * VM's --on-oom policy applies and dedup stops merging); the page's own mapping comes back and the
 * writer is woken. Nothing retries a failed break.
 *
 * Every merged page costs up to two mappings of the process (a run, two in
 * all until breaks split it); merging stops (merges_skipped_map_limit)
 * before vm.max_map_count is near. run=2 undoes
 * every merge (copying, charged), one page at a time, stopping between
 * pages when asked; a later run=2 goes on where it stopped.
 *
 * Locks: page state changes happen under mmu->reclaim_lock. A page being
 * merged is "busy" while its mapping is moved without that lock (mremap
 * waits for the dedup reader thread to read its event): a write fault on a
 * busy page is left pending (marked "waiting") and woken when the merge
 * ends; the monitor's own accesses wait for it. For a batch, the scanner
 * keeps itself and the reader on one CPU, so that the two wake-ups of each
 * mremap are context switches, not interprocessor interrupts. No KVM
 * headers here.
 */
#ifndef FAULTLINE_DEDUP_H
#define FAULTLINE_DEDUP_H

#include <bsd/sys/tree.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mmu/fault.h"
#include "mmu/mmu.h"

/* Zero pages found in a row are released together, this many at most (2 MiB). */
#define DEDUP_ZERO_RUN_MAX 512
/* Pages found in a row that merge (pairs, or into shared pages): merged together, 512 at most. */
#define DEDUP_MERGE_RUN_MAX 512

enum dedup_mode {
	DEDUP_OFF,
	DEDUP_ZERO, /* release zero pages only */
	DEDUP_ON,   /* release zero pages and merge equal pages */
};

/* X(name, default, min, max, help): the knobs of --dedup on|zero,KNOB=N,... */
#define DEDUP_KNOBS(X)                                                                             \
	X(run, 1, 0, 2, "0 pauses the scanner, 1 scans and merges, 2 unmerges every page")         \
	X(pages_to_scan, 256, 1, 1048576, "pages scanned per batch")                               \
	X(sleep_ms, 20, 0, 10000, "milliseconds the scanner sleeps between batches")               \
	X(max_page_sharing, 256, 2, 65536, "guest pages at most that share one page")              \
	X(map_limit, 0, 0, 2147483647,                                                             \
	  "mappings the process may hold before merging stops (0: vm.max_map_count less a "        \
	  "reserve)")

/* X(name, help): KSM's names where the meaning matches; gauges first. */
#define DEDUP_COUNTERS(X)                                                                          \
	X(pages_shared, "shared pages in use (each backs two or more guest pages)")                \
	X(pages_sharing, "guest pages sharing a page beyond the first one: pages saved")           \
	X(pages_unshared, "unique pages in this pass's unstable index")                            \
	X(pages_volatile, "pages whose checksum changed since the previous pass")                  \
	X(full_scans, "passes over all guest RAM")                                                 \
	X(pages_scanned, "pages looked at")                                                        \
	X(zero_pages, "zero pages released, served as zeros again on access")                      \
	X(cow_breaks, "writes to shared pages that were given their own copy")                     \
	X(cow_break_failures, "copies that could not be charged or made (--on-oom applies)")       \
	X(merges_skipped_map_limit, "merges not made because vm.max_map_count was near")           \
	X(merge_errors, "merges undone because a system call failed")                              \
	X(unmerged, "pages unmerged by run=2")

struct dedup_knobs {
#define DEDUP_KNOB_FIELD(name, def, min, max, help) uint64_t name;
	DEDUP_KNOBS(DEDUP_KNOB_FIELD)
#undef DEDUP_KNOB_FIELD
};

struct dedup_stats {
#define DEDUP_COUNTER_FIELD(name, help) uint64_t name;
	DEDUP_COUNTERS(DEDUP_COUNTER_FIELD)
#undef DEDUP_COUNTER_FIELD
};

/* A shared page: a page of the stable memfd that guest pages map. */
struct dedup_node {
	RB_ENTRY(dedup_node) link;
	uint64_t checksum;
	uint64_t slot; /* page index in the stable memfd */
	uint32_t refs; /* guest pages mapping it */
	bool in_tree;
	bool charged; /* holds a page of the budget (from its first merged page) */
};

/* What the scanner knows of one guest page. */
struct dedup_rmap {
	RB_ENTRY(dedup_rmap) link; /* in the unstable index, when seq is this pass's */
	struct dedup_node *node;   /* the shared page, when merged */
	uint64_t pi;		   /* its host page index */
	uint64_t checksum;
	uint32_t seq;	  /* the pass that put it in the unstable index; 0: none */
	bool checksummed; /* checksum holds a value */
	bool is_volatile; /* its checksum changed at its last scan */
};

RB_HEAD(dedup_stable, dedup_node);
RB_HEAD(dedup_unstable, dedup_rmap);

struct dedup {
	struct mmu *mmu;
	enum dedup_mode mode;
	struct dedup_knobs knobs; /* atomic loads: run changes at any time */
	struct dedup_stats stats;
	int uffd;		 /* merged pages' write faults */
	int stable_fd;		 /* the memfd of shared pages */
	int maps_fd;		 /* /proc/self/maps, opened at init; -1: mappings not counted */
	uint8_t *stable;	 /* the monitor's mapping of it */
	unsigned long *slots;	 /* the stable memfd's slots in use, under mmu->reclaim_lock */
	uint64_t slot_hint;	 /* every slot below it is in use */
	struct dedup_rmap *rmap; /* by host page index */
	struct dedup_stable stable_tree;
	struct dedup_unstable unstable_tree;
	uint64_t refs_committed; /* guest pages merged */
	uint32_t seq;		 /* the pass, from 1 */
	uint64_t cursor;
	uint64_t unmerge_cursor;
	uint64_t zero_checksum;
	uint64_t zero_first, zero_n; /* zero pages found in a row, not released yet */
	/* Pages found in a row whose shared pages are in a row too, not merged yet; a reference
	 * each. */
	uint64_t run_first, run_n;
	struct dedup_node *run_nodes[DEDUP_MERGE_RUN_MAX];
	/* Pairs of candidates found in a row (pages pair_a + i and pair_b + i), not merged yet. */
	uint64_t pair_a, pair_b, pair_n;
	uint64_t pair_sums[DEDUP_MERGE_RUN_MAX];
	uint64_t maps;	    /* mappings of the process, estimated */
	uint64_t map_limit; /* merging stops before maps reaches it */
	pthread_mutex_t wait_lock;
	pthread_cond_t wake; /* the scanner sleeps on it */
	bool stopping;
	bool scanner_started, reader_started;
	pthread_t scanner, reader;
	cpu_set_t cpus; /* the scanner's affinity when it started: see dedup_share_cpu() */
	int stop_fd;
};

/*
 * Set up dedup for @mmu (initialised with cfg.dedup set): the stable memfd,
 * the dedup userfaultfd, the page state. @knobs may be NULL (defaults).
 * Before mmu__start(): the fault handlers read mmu->dedup unlocked.
 * Returns 0 or -errno after reporting. Undo with dedup__exit().
 */
int dedup__init(struct dedup *d, struct mmu *mmu, enum dedup_mode mode,
		const struct dedup_knobs *knobs) __attribute__((warn_unused_result));

/* Start the scanner and the dedup fault reader. 0 or -errno (reported). */
int dedup__start(struct dedup *d) __attribute__((warn_unused_result));

/* Start the fault reader only: a test then drives dedup__scan() itself. */
int dedup__start_reader(struct dedup *d) __attribute__((warn_unused_result));

/* Stop and join both threads; call before mmu__stop(). */
void dedup__stop(struct dedup *d);
void dedup__exit(struct dedup *d);

/* The defaults of every knob. */
void dedup__default_knobs(struct dedup_knobs *knobs);

/*
 * Set knob @name from @value ("run", "256"). Returns 0, -ENOENT for an
 * unknown knob, -EINVAL or -ERANGE for a bad value.
 */
int dedup__set_knob(struct dedup_knobs *knobs, const char *name, const char *value)
	__attribute__((warn_unused_result));

/* Change run (0, 1, 2) while the scanner runs; wakes it. -ERANGE otherwise. */
int dedup__set_run(struct dedup *d, uint64_t run) __attribute__((warn_unused_result));

/*
 * Scan up to @nr pages from the cursor: one batch of the scanner while
 * run=1. Returns pages looked at. The scanner's thread, or a test's with
 * the scanner not started.
 */
uint64_t dedup__scan(struct dedup *d, uint64_t nr);

/*
 * Unmerge up to @nr merged pages from the unmerge cursor, copying each
 * (charged). Stops early when the VM stops or run is no longer 2. Returns
 * pages unmerged, or -ENOMEM when a copy could not be charged (dedup stops
 * merging: run becomes 0). Scanner thread, or a test's.
 */
int64_t dedup__unmerge(struct dedup *d, uint64_t nr);

/*
 * Give merged page @pi its own copy (a guest write or the monitor's
 * access), charged to the budget: with the page *@charge holds
 * (mmu__charge_cow(), before the lock; taken over: *@charge becomes
 * COW_UNCHARGED), none when @pi is its shared page's last sharer, or one
 * charged here when the caller charged none. mmu->reclaim_lock held.
 * Returns DONE, OOM (not charged: dedup stops merging) or SIGBUS (a system
 * call failed; ctx->err says which errno). Wakes writers waiting on the
 * page.
 */
fault_t dedup__break_cow(struct dedup *d, struct fault_ctx *ctx, uint64_t pi,
			 enum cow_charge *charge);

/*
 * Forget merged page @pi's contents (it is about to be poisoned): it maps
 * an empty page of guest RAM again and is no longer resident. Waiters are
 * not woken. mmu->reclaim_lock held. 0 or -errno.
 */
int dedup__discard(struct dedup *d, uint64_t pi) __attribute__((warn_unused_result));

/* Wake writers waiting on page @pi's shared mapping. */
void dedup__wake(struct dedup *d, uint64_t pi);

/* "off", "zero" or "on". */
const char *dedup__mode_name(enum dedup_mode mode);

/* Bytes of host memory the shared pages take now. Returns 0 or -errno. */
int dedup__shared_bytes(const struct dedup *d, uint64_t *bytes) __attribute__((warn_unused_result));

/* The counters, as text lines or a jansson object (the caller owns it). */
void dedup__print_text(struct dedup *d, FILE *out);
typedef struct json_t json_t;
json_t *dedup__json(struct dedup *d);

/* A counter by its table index (the guest's register page), ~0 past the end. */
uint64_t dedup__counter(struct dedup *d, unsigned index);

#endif
