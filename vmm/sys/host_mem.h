/*
 * What a VM costs its host in memory, for the density of sandboxes on one
 * host: guest RAM as the host holds it, the monitor's own memory and the
 * page tables, as the kernel accounts the process (/proc/self/status).
 * KVM's own kernel allocations (vCPU state, EPT/NPT or shadow page tables)
 * are not the process's and are not in it; a memory cgroup around the VM
 * counts them (docs/benchmarks.md).
 */
#ifndef FAULTLINE_HOST_MEM_H
#define FAULTLINE_HOST_MEM_H

#include <stdint.h>

struct host_mem {
	uint64_t guest_kib;	  /* guest RAM the host holds (and dedup's shared pages) */
	uint64_t monitor_kib;	  /* the monitor's anonymous memory: RssAnon less guest RAM in it */
	uint64_t page_tables_kib; /* VmPTE: the process's page tables, guest RAM's included */
	uint64_t program_kib;	  /* RssFile: the program's file pages, shared between VMs */
};

/* The fields of /proc/self/status that host_mem is made of, in kB. */
struct host_mem_status {
	uint64_t rss_anon, rss_file, pte;
};

/*
 * Parse the text of /proc/PID/status. Returns 0, or -EINVAL when RssAnon,
 * RssFile or VmPTE is missing or not a number of kB.
 */
int host_mem__parse_status(const char *text, struct host_mem_status *s)
	__attribute__((warn_unused_result));

/*
 * The anonymous memory of the mapping that starts at @start, from the text
 * of /proc/PID/smaps: its "Anonymous:" kB, which leaves out the zero page
 * that reads of never-written anonymous memory map. Returns 0, or -EINVAL
 * when there is no such mapping or field.
 */
int host_mem__parse_smaps_anon(const char *text, uintptr_t start, uint64_t *kib)
	__attribute__((warn_unused_result));

/*
 * Combine @s with the guest RAM the host holds, @guest_kib, of which
 * @guest_anon_kib are anonymous memory (the kernel baseline's RAM, part
 * of RssAnon; 0 for RAM in a memfd).
 */
void host_mem__combine(const struct host_mem_status *s, uint64_t guest_kib, uint64_t guest_anon_kib,
		       struct host_mem *m);

#endif
