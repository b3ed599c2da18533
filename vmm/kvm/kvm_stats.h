/*
 * KVM's own counters of a VM and its vCPUs (KVM_GET_STATS_FD, Linux 5.14):
 * the exits KVM served without the monitor, and the guest page faults its
 * MMU took and fixed (pf_taken, pf_fixed: one per 4 KiB page a guest
 * touches, whoever filled the page), beside the monitor's userfaultfd
 * events. `--stats` prints them under "kvm"; `faultline bench` keeps a few
 * per result. Only single-value statistics are kept; histograms are left
 * out.
 */
#ifndef FAULTLINE_KVM_STATS_H
#define FAULTLINE_KVM_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define KVM_STATS_NAME_MAX 48	/* KVM_STATS_NAME_SIZE of today's kernels */
#define KVM_STATS_DESC_MAX 1024 /* descriptors at most: x86 has about 80 */
#define KVM_STATS_DATA_MAX (1 << 20)

struct kvm_stat {
	char name[KVM_STATS_NAME_MAX];
	uint32_t offset; /* bytes into the data block */
	bool peak;	 /* a high-water mark: the vCPUs' are combined by max, not sum */
};

/* The layout of one stats file: the VM's, or every vCPU's (they share one). */
struct kvm_stats_set {
	struct kvm_stat *stats;
	unsigned n;
	uint32_t data_offset;
	uint32_t data_len; /* bytes of the data block that hold kept values */
};

struct kvm_stats {
	struct kvm_stats_set vm, vcpu;
	int vm_fd;
	int *vcpu_fds;
	unsigned nr_vcpus;
	char why[160]; /* why there are none: "" while they can be read */
};

/*
 * Read the header and descriptors of the stats file @fd into @set. Returns
 * 0, -EINVAL for a file that is not one (offsets, sizes or counts out of
 * range), -ENOMEM, or a read's -errno.
 */
int kvm_stats__parse(struct kvm_stats_set *set, int fd) __attribute__((warn_unused_result));

/* The values of @set's statistics from @fd into @v[set->n]. Returns 0 or -errno. */
int kvm_stats__read(const struct kvm_stats_set *set, int fd, uint64_t *v)
	__attribute__((warn_unused_result));

void kvm_stats__free_set(struct kvm_stats_set *set);

/*
 * KVM_GET_STATS_FD of the VM (@vm_fd) and of its @nr vCPUs (@vcpu_fds). A
 * KVM without them is not an error: @ks->why says why, and the statistics
 * say it instead of the numbers. Returns 0 or -errno (also in @ks->why).
 */
int kvm_stats__open(struct kvm_stats *ks, int vm_fd, const int *vcpu_fds, unsigned nr);

/*
 * {"vm": {name: value, ...}, "vcpus": {name: value, ...}}: the VM's
 * statistics, and the vCPUs' summed (high-water marks: their maximum), in
 * KVM's order. NULL with @ks->why set when they cannot be read.
 */
json_t *kvm_stats__json(struct kvm_stats *ks);

/* The few that explain a fault's cost, one line each, for `--stats` as text. */
void kvm_stats__print_text(struct kvm_stats *ks, FILE *out);

void kvm_stats__close(struct kvm_stats *ks);

#endif
