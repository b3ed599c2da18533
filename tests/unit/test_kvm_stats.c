/*
 * KVM's binary statistics (vmm/kvm/kvm_stats.c) read from files laid out as
 * KVM_GET_STATS_FD's are: a header, descriptors with their names, a data
 * block of u64s. A memfd stands in for KVM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "lib/inject.h"
#include "tests/unit/unit.h"
#include "vmm/kvm/kvm_stats.h"

#define NAME_SIZE   48
#define DESC_OFFSET 64 /* after the header and its id string */

struct fake_stat {
	const char *name;
	uint32_t flags;
	uint16_t size;
	uint32_t offset;
};

/* A stats file of @n descriptors, data at @data_offset holding @data[@ndata]. */
static int stats_file(const struct fake_stat *st, unsigned n, uint32_t name_size,
		      uint32_t data_offset, const uint64_t *data, unsigned ndata)
{
	struct kvm_stats_header h = {
		.name_size = name_size,
		.num_desc = n,
		.id_offset = sizeof(h),
		.desc_offset = DESC_OFFSET,
		.data_offset = data_offset,
	};
	size_t stride = sizeof(struct kvm_stats_desc) + name_size;
	int fd = memfd_create("kvm-stats", 0);
	unsigned i;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	ck_assert_int_eq(pwrite(fd, "kvm-1", 6, h.id_offset), 6);
	for (i = 0; i < n; i++) {
		char buf[sizeof(struct kvm_stats_desc) + 256] = {0};
		struct kvm_stats_desc d = {
			.flags = st[i].flags, .size = st[i].size, .offset = st[i].offset};

		memcpy(buf, &d, sizeof(d));
		memcpy(buf + sizeof(d), st[i].name, strlen(st[i].name)); /* NULs after */
		ck_assert_int_eq(pwrite(fd, buf, stride, DESC_OFFSET + i * stride), stride);
	}
	if (ndata)
		ck_assert_int_eq(pwrite(fd, data, ndata * 8, data_offset), ndata * 8);
	return fd;
}

/* exits (cumulative), a histogram of 4, max_mmu_rmap_size (peak), guest_mode (instant). */
static const struct fake_stat vcpu_stats[] = {
	{"exits", KVM_STATS_TYPE_CUMULATIVE, 1, 0},
	{"halt_wait_hist", KVM_STATS_TYPE_LOG_HIST, 4, 8},
	{"max_mmu_rmap_size", KVM_STATS_TYPE_PEAK, 1, 40},
	{"guest_mode", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN, 1, 48},
};
#define DATA_OFFSET 1024

static int vcpu_file(uint64_t exits, uint64_t rmap, uint64_t mode)
{
	uint64_t data[7] = {exits, 9, 9, 9, 9, rmap, mode};

	return stats_file(vcpu_stats, 4, NAME_SIZE, DATA_OFFSET, data, 7);
}

START_TEST(parse_keeps_single_values)
{
	struct kvm_stats_set set;
	uint64_t v[3];
	int fd = vcpu_file(7, 3, 1);

	ck_assert_int_eq(kvm_stats__parse(&set, fd), 0);
	ck_assert_uint_eq(set.n, 3); /* the histogram left out */
	ck_assert_str_eq(set.stats[0].name, "exits");
	ck_assert_str_eq(set.stats[1].name, "max_mmu_rmap_size");
	ck_assert_str_eq(set.stats[2].name, "guest_mode");
	ck_assert(!set.stats[0].peak && set.stats[1].peak && !set.stats[2].peak);
	ck_assert_uint_eq(set.data_offset, DATA_OFFSET);
	ck_assert_uint_eq(set.data_len, 56);
	ck_assert_int_eq(kvm_stats__read(&set, fd, v), 0);
	ck_assert_uint_eq(v[0], 7);
	ck_assert_uint_eq(v[1], 3);
	ck_assert_uint_eq(v[2], 1);
	kvm_stats__free_set(&set);
	close(fd);
}
END_TEST

/* The VM's own, and the vCPUs' summed; a high-water mark is their maximum. */
START_TEST(json_sums_vcpus)
{
	static const struct fake_stat vm_stats[] = {{"pages_4k", KVM_STATS_TYPE_INSTANT, 1, 0}};
	uint64_t pages = 2048;
	int vcpus[2] = {vcpu_file(10, 5, 1), vcpu_file(32, 2, 0)};
	struct kvm_stats ks = {.vm_fd = stats_file(vm_stats, 1, NAME_SIZE, 512, &pages, 1),
			       .vcpu_fds = malloc(sizeof(vcpus)),
			       .nr_vcpus = 2};
	char *text;
	json_t *r;

	memcpy(ks.vcpu_fds, vcpus, sizeof(vcpus));
	ck_assert_int_eq(kvm_stats__parse(&ks.vm, ks.vm_fd), 0);
	ck_assert_int_eq(kvm_stats__parse(&ks.vcpu, vcpus[0]), 0);
	r = kvm_stats__json(&ks);
	ck_assert_ptr_nonnull(r);
	text = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
	ck_assert_str_eq(text, "{\"vm\":{\"pages_4k\":2048},\"vcpus\":{\"exits\":42,"
			       "\"max_mmu_rmap_size\":5,\"guest_mode\":1}}");
	free(text);
	json_decref(r);
	/* a data block that is gone: no numbers, and why */
	ck_assert_int_eq(ftruncate(vcpus[1], DATA_OFFSET + 8), 0);
	ck_assert_ptr_null(kvm_stats__json(&ks));
	ck_assert_str_eq(ks.why, "reading KVM's statistics failed: Invalid argument");
	kvm_stats__close(&ks);
	ck_assert_int_eq(ks.vm_fd, -1);
	ck_assert_ptr_null(ks.vcpu_fds);
}
END_TEST

/* Files that are not stats files are refused, whatever they hold. */
START_TEST(parse_refuses_malformed_files)
{
	static const struct fake_stat no_nul[] = {{"aaaaaaaa", 0, 1, 0}};
	static const struct fake_stat no_value[] = {{"exits", 0, 0, 0}};
	static const struct fake_stat far[] = {{"exits", 0, 1, KVM_STATS_DATA_MAX}};
	static const struct fake_stat empty_name[] = {{"", 0, 1, 0}};
	struct kvm_stats_set set;
	uint32_t too_many;
	int fd;

	fd = memfd_create("empty", 0); /* no header */
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL);
	close(fd);
	fd = stats_file(vcpu_stats, 1, 0, DATA_OFFSET, NULL, 0); /* names of 0 bytes */
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL);
	close(fd);
	fd = stats_file(vcpu_stats, 1, NAME_SIZE, DATA_OFFSET, NULL, 0);
	too_many = KVM_STATS_DESC_MAX + 1; /* the header's num_desc */
	ck_assert_int_eq(pwrite(fd, &too_many, sizeof(too_many), 8), sizeof(too_many));
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL); /* refused before a read */
	close(fd);
	fd = stats_file(vcpu_stats, 4, NAME_SIZE, DATA_OFFSET, NULL, 0);
	ck_assert_int_eq(ftruncate(fd, DESC_OFFSET + 100), 0); /* descriptors cut short */
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL);
	close(fd);
	fd = stats_file(no_nul, 1, 8, DATA_OFFSET, NULL, 0);
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL);
	close(fd);
	fd = stats_file(no_value, 1, NAME_SIZE, DATA_OFFSET, NULL, 0);
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL);
	close(fd);
	fd = stats_file(far, 1, NAME_SIZE, DATA_OFFSET, NULL, 0);
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL);
	close(fd);
	fd = stats_file(empty_name, 1, NAME_SIZE, DATA_OFFSET, NULL, 0);
	ck_assert_int_eq(kvm_stats__parse(&set, fd), -EINVAL);
	ck_assert_ptr_null(set.stats);
	close(fd);
	ck_assert_int_eq(kvm_stats__parse(&set, -1), -EBADF);
}
END_TEST

/* No KVM_GET_STATS_FD: not an error of the VM's, only a reason. */
START_TEST(open_without_stats_says_why)
{
	int vcpu_fds[1] = {-1};
	struct kvm_stats ks;

	ck_assert_int_eq(kvm_stats__open(&ks, -1, vcpu_fds, 1), -EBADF);
	ck_assert_str_eq(ks.why, "KVM_GET_STATS_FD failed: Bad file descriptor (the VM)");
	ck_assert_int_eq(ks.vm_fd, -1);
	ck_assert_int_eq(inject__init("KVM_GET_STATS_FD:ENOTTY"), 0);
	ck_assert_int_eq(kvm_stats__open(&ks, 0, vcpu_fds, 1), -ENOTTY);
	ck_assert_int_eq(inject__init(NULL), 0);
	ck_assert_str_eq(ks.why,
			 "KVM_GET_STATS_FD failed: Inappropriate ioctl for device (the VM)");
	ck_assert_ptr_null(kvm_stats__json(&ks));
	kvm_stats__close(&ks); /* closes nothing twice */
}
END_TEST

Suite *kvm_stats_suite(void)
{
	Suite *s = suite_create("kvm_stats");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, parse_keeps_single_values);
	tcase_add_test(tc, json_sums_vcpus);
	tcase_add_test(tc, parse_refuses_malformed_files);
	tcase_add_test(tc, open_without_stats_says_why);
	suite_add_tcase(s, tc);
	return s;
}
