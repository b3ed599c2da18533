/*
 * Statistics of the MMU: counters (one table, MMU_COUNTERS, feeds the
 * struct, the text report and the JSON keys), per-vCPU fault counts, and a
 * log2 histogram of fault service time. Updated with relaxed atomics from
 * any thread; read at exit.
 */
#ifndef FAULTLINE_MMU_STATS_H
#define FAULTLINE_MMU_STATS_H

#include <stdint.h>
#include <stdio.h>

#define MMU_STATS_MAX_VCPUS 64
#define MMU_STATS_BUCKETS   40 /* bucket i: service time in [2^i, 2^(i+1)) ns */

/* X(name, help) */
#define MMU_COUNTERS(X)                                                                            \
	X(faults, "faults served, all sources")                                                    \
	X(faults_uffd, "faults from userfaultfd events")                                           \
	X(faults_monitor, "faults from the monitor's own accesses")                                \
	X(faults_mmio_exit, "faults reported as KVM_EXIT_MMIO inside RAM")                         \
	X(faults_efault, "faults reported as -EFAULT from KVM_RUN")                                \
	X(faults_sigbus, "faults reported as SIGBUS on a vCPU thread")                             \
	X(faults_wp, "first writes to clean write-protected pages")                                \
	X(spin_hits, "events a handler found while polling (--fault-spin)")                        \
	X(result_done, "faults that ended with the page present")                                  \
	X(result_oom, "faults that ended out of memory")                                           \
	X(result_sigbus, "faults that ended with nothing to back the page")                        \
	X(result_hwpoison, "faults on poisoned pages")                                             \
	X(result_retry_exhausted, "faults still asking to retry at the bound")                     \
	X(retries, "attempts repeated after RETRY")                                                \
	X(refaults, "failed faults served again once the VM's owner made room (--on-oom pause)")   \
	X(fallbacks, "fault-around windows that fell back to one page")                            \
	X(uffdio_copy, "UFFDIO_COPY calls")                                                        \
	X(uffdio_zeropage, "UFFDIO_ZEROPAGE calls")                                                \
	X(uffdio_continue, "UFFDIO_CONTINUE calls (a shared memory file's pages)")                 \
	X(uffdio_eexist, "installs a sibling had already done (EEXIST)")                           \
	X(uffdio_writeprotect, "UFFDIO_WRITEPROTECT calls (write-protect faults)")                 \
	X(uffdio_wake, "UFFDIO_WAKE calls (faults on pages already resident)")                     \
	X(pages_installed, "pages made resident")                                                  \
	X(pages_around, "pages installed ahead of need by fault-around")                           \
	X(pages_ahead, "pages installed ahead of a sequential stream (--fault-ahead)")             \
	X(backing_reads, "reads from the backing file")                                            \
	X(reclaims, "times the budget ran out and clean pages were looked for")                    \
	X(pages_reclaimed, "clean file-backed pages dropped to make room")                         \
	X(refaults_reclaimed, "faults on pages reclaim had just dropped (a budget's worth ago)")   \
	X(pages_discarded, "pages the guest gave back (--balloon's free page reports)")            \
	X(pages_poisoned, "pages poisoned (UFFDIO_POISON) after the budget ran out")               \
	X(machine_checks, "machine checks injected into the guest")                                \
	X(pages_recorded, "pages recorded as the working set (--record-ws)")                       \
	X(pages_prefetched, "pages installed by the prefetch (--prefetch)")                        \
	X(prefetch_used, "prefetched pages the guest then wrote or faulted on")                    \
	X(prefetch_late, "faults on pages the prefetch had not reached yet")                       \
	X(prefetch_waits, "times a fault was queued while a handler prefetched a run")

struct mmu_stats {
#define MMU_COUNTER_FIELD(name, help) uint64_t name;
	MMU_COUNTERS(MMU_COUNTER_FIELD)
#undef MMU_COUNTER_FIELD
	uint64_t vcpu_faults[MMU_STATS_MAX_VCPUS];
	uint64_t latency[MMU_STATS_BUCKETS];
	uint64_t latency_max_ns;
};

#define MMU_STAT_INC(s, name)	 __atomic_add_fetch(&(s)->name, 1, __ATOMIC_RELAXED)
#define MMU_STAT_ADD(s, name, n) __atomic_add_fetch(&(s)->name, (n), __ATOMIC_RELAXED)

/* Record one fault's service time and, for a vCPU's fault, its vCPU. */
void mmu_stats__record(struct mmu_stats *s, int vcpu, uint64_t ns);

/* The upper bound of the bucket holding the @pct-th percentile, 0 when empty. */
uint64_t mmu_stats__percentile(const struct mmu_stats *s, unsigned pct);

/* Pages known to the memory budget, for the report. */
struct mmu_pages {
	uint64_t ram;
	uint64_t budget;
	uint64_t resident;
};

/* Human-readable report. */
void mmu_stats__print_text(const struct mmu_stats *s, const struct mmu_pages *p, unsigned nr_vcpus,
			   FILE *out);

/* The report as a jansson object (the caller owns it), NULL without memory. */
typedef struct json_t json_t;
json_t *mmu_stats__json(const struct mmu_stats *s, const struct mmu_pages *p, unsigned nr_vcpus);

/* One JSON object on one line. Returns 0 or -ENOMEM. */
int mmu_stats__print_json(const struct mmu_stats *s, const struct mmu_pages *p, unsigned nr_vcpus,
			  FILE *out);

#endif
