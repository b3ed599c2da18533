#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vmm/kvm/kvm.h"
#include "vmm/kvm/kvm_stats.h"

#define KVM_STATS_NAME_SIZE_MAX 1024 /* a header's name_size at most */

/* pread() all of @len bytes at @off: 0, -EINVAL when the file is shorter, or -errno. */
static int read_all(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EINVAL;
		done += (size_t)n;
	}
	return 0;
}

/* Keep descriptor @d (name @name of @name_size bytes) in @set, or skip it. */
static int keep_desc(struct kvm_stats_set *set, const struct kvm_stats_desc *d, const char *name,
		     size_t name_size)
{
	uint32_t type = d->flags & KVM_STATS_TYPE_MASK;
	size_t len = strnlen(name, name_size);
	struct kvm_stat *s;

	if (d->size == 0 || len == 0 || len == name_size)
		return -EINVAL; /* no value, no name, or a name without its NUL */
	if ((uint64_t)d->offset + 8ULL * d->size > KVM_STATS_DATA_MAX)
		return -EINVAL;
	/* Histograms and arrays are left out; so is a name too long to keep. */
	if (d->size != 1 || type > KVM_STATS_TYPE_PEAK || len >= KVM_STATS_NAME_MAX)
		return 0;
	s = &set->stats[set->n++];
	memcpy(s->name, name, len);
	s->name[len] = '\0';
	s->offset = d->offset;
	s->peak = type == KVM_STATS_TYPE_PEAK;
	if (d->offset + 8 > set->data_len)
		set->data_len = d->offset + 8;
	return 0;
}

int kvm_stats__parse(struct kvm_stats_set *set, int fd)
{
	struct kvm_stats_header h;
	size_t stride, len;
	char *descs;
	unsigned i;
	int err;

	memset(set, 0, sizeof(*set));
	err = read_all(fd, &h, sizeof(h), 0);
	if (err)
		return err;
	if (h.name_size == 0 || h.name_size > KVM_STATS_NAME_SIZE_MAX ||
	    h.num_desc > KVM_STATS_DESC_MAX)
		return -EINVAL;
	stride = sizeof(struct kvm_stats_desc) + h.name_size;
	len = stride * h.num_desc;
	descs = malloc(len ? len : 1);
	set->stats = calloc(h.num_desc ? h.num_desc : 1, sizeof(*set->stats));
	if (!descs || !set->stats) {
		err = -ENOMEM;
		goto out;
	}
	err = read_all(fd, descs, len, h.desc_offset);
	for (i = 0; !err && i < h.num_desc; i++) {
		struct kvm_stats_desc d;
		const char *p = descs + i * stride;

		memcpy(&d, p, sizeof(d));
		err = keep_desc(set, &d, p + sizeof(d), h.name_size);
	}
	set->data_offset = h.data_offset;
out:
	free(descs);
	if (err)
		kvm_stats__free_set(set);
	return err;
}

int kvm_stats__read(const struct kvm_stats_set *set, int fd, uint64_t *v)
{
	uint8_t *data = malloc(set->data_len ? set->data_len : 1);
	unsigned i;
	int err;

	if (!data)
		return -ENOMEM;
	err = read_all(fd, data, set->data_len, set->data_offset);
	for (i = 0; !err && i < set->n; i++)
		memcpy(&v[i], data + set->stats[i].offset, sizeof(v[i]));
	free(data);
	return err;
}

void kvm_stats__free_set(struct kvm_stats_set *set)
{
	free(set->stats);
	memset(set, 0, sizeof(*set));
}

void kvm_stats__close(struct kvm_stats *ks)
{
	unsigned i;

	for (i = 0; ks->vcpu_fds && i < ks->nr_vcpus; i++)
		if (ks->vcpu_fds[i] >= 0)
			close(ks->vcpu_fds[i]);
	free(ks->vcpu_fds);
	ks->vcpu_fds = NULL;
	ks->nr_vcpus = 0;
	if (ks->vm_fd >= 0)
		close(ks->vm_fd);
	ks->vm_fd = -1;
	kvm_stats__free_set(&ks->vm);
	kvm_stats__free_set(&ks->vcpu);
}

static int stats_fd(struct kvm_stats *ks, int fd, const char *whose)
{
	int sfd = kvm__ioctl(fd, KVM_GET_STATS_FD, 0, "KVM_GET_STATS_FD"), err = errno;

	if (sfd < 0) {
		snprintf(ks->why, sizeof(ks->why), "KVM_GET_STATS_FD failed: %s (%s)",
			 strerror(err), whose);
		return -err;
	}
	return sfd;
}

int kvm_stats__open(struct kvm_stats *ks, int vm_fd, const int *vcpu_fds, unsigned nr)
{
	char whose[16];
	int err;

	memset(ks, 0, sizeof(*ks));
	err = stats_fd(ks, vm_fd, "the VM");
	ks->vm_fd = err < 0 ? -1 : err;
	if (err < 0)
		return err;
	ks->vcpu_fds = malloc(nr * sizeof(*ks->vcpu_fds));
	if (!ks->vcpu_fds) {
		err = -ENOMEM;
		snprintf(ks->why, sizeof(ks->why), "KVM's statistics cannot be read: %s",
			 strerror(ENOMEM));
		goto fail;
	}
	for (ks->nr_vcpus = 0; ks->nr_vcpus < nr; ks->nr_vcpus++) {
		snprintf(whose, sizeof(whose), "vCPU %u", ks->nr_vcpus);
		err = stats_fd(ks, vcpu_fds[ks->nr_vcpus], whose);
		if (err < 0)
			goto fail;
		ks->vcpu_fds[ks->nr_vcpus] = err;
	}
	err = kvm_stats__parse(&ks->vm, ks->vm_fd);
	/* Every vCPU's file has the same layout. */
	if (!err && nr)
		err = kvm_stats__parse(&ks->vcpu, ks->vcpu_fds[0]);
	if (err) {
		snprintf(ks->why, sizeof(ks->why), "KVM's statistics cannot be read: %s",
			 strerror(-err));
		goto fail;
	}
	return 0;

fail:
	kvm_stats__close(ks);
	return err;
}

/* @ks's values: @vm[ks->vm.n] and the vCPUs' combined into @vcpus[ks->vcpu.n]. */
static int read_values(struct kvm_stats *ks, uint64_t *vm, uint64_t *vcpus)
{
	uint64_t *one = calloc(ks->vcpu.n ? ks->vcpu.n : 1, sizeof(*one));
	unsigned i, j;
	int err;

	if (!one)
		return -ENOMEM;
	err = kvm_stats__read(&ks->vm, ks->vm_fd, vm);
	memset(vcpus, 0, ks->vcpu.n * sizeof(*vcpus));
	for (i = 0; !err && i < ks->nr_vcpus; i++) {
		err = kvm_stats__read(&ks->vcpu, ks->vcpu_fds[i], one);
		for (j = 0; !err && j < ks->vcpu.n; j++)
			vcpus[j] = ks->vcpu.stats[j].peak ? (one[j] > vcpus[j] ? one[j] : vcpus[j])
							  : vcpus[j] + one[j];
	}
	free(one);
	if (err)
		snprintf(ks->why, sizeof(ks->why), "reading KVM's statistics failed: %s",
			 strerror(-err));
	return err;
}

static json_t *set_json(const struct kvm_stats_set *set, const uint64_t *v)
{
	json_t *o = json_object();
	unsigned i;

	for (i = 0; o && i < set->n; i++)
		json_object_set_new(o, set->stats[i].name, json_integer((json_int_t)v[i]));
	return o;
}

json_t *kvm_stats__json(struct kvm_stats *ks)
{
	uint64_t *vm, *vcpus;
	json_t *r = NULL;

	if (ks->vm_fd < 0) {
		if (!ks->why[0])
			snprintf(ks->why, sizeof(ks->why), "KVM's statistics were not opened");
		return NULL;
	}
	vm = calloc(ks->vm.n ? ks->vm.n : 1, sizeof(*vm));
	vcpus = calloc(ks->vcpu.n ? ks->vcpu.n : 1, sizeof(*vcpus));
	if (!vm || !vcpus)
		snprintf(ks->why, sizeof(ks->why), "KVM's statistics cannot be read: %s",
			 strerror(ENOMEM));
	else if (!read_values(ks, vm, vcpus))
		r = json_pack("{s:o,s:o}", "vm", set_json(&ks->vm, vm), "vcpus",
			      set_json(&ks->vcpu, vcpus));
	free(vm);
	free(vcpus);
	return r;
}

static const struct {
	bool vm;
	const char *name, *help;
} kvm_stats_text[] = {
	{false, "exits", "exits of the vCPUs, those KVM served itself included"},
	{false, "pf_taken", "guest page faults KVM's MMU took (EPT/NPT or shadow paging)"},
	{false, "pf_fixed", "of them, fixed by a mapping KVM made"},
	{false, "pf_emulate", "of them, emulated (MMIO)"},
	{false, "pf_spurious", "of them, fixed already"},
	{false, "io_exits", "port I/O exits to the monitor"},
	{false, "mmio_exits", "MMIO exits to the monitor"},
	{false, "halt_exits", "HLT exits"},
	{true, "pages_4k", "4 KiB pages KVM maps for the guest now"},
	{true, "pages_2m", "2 MiB pages KVM maps for the guest now"},
};

void kvm_stats__print_text(struct kvm_stats *ks, FILE *out)
{
	json_t *r = kvm_stats__json(ks);
	char name[64];
	size_t i;

	if (!r) {
		fprintf(out, "  %-24s %12s  %s\n", "kvm", "-", ks->why);
		return;
	}
	for (i = 0; i < sizeof(kvm_stats_text) / sizeof(kvm_stats_text[0]); i++) {
		json_t *v =
			json_object_get(json_object_get(r, kvm_stats_text[i].vm ? "vm" : "vcpus"),
					kvm_stats_text[i].name);

		if (!v)
			continue;
		snprintf(name, sizeof(name), "kvm_%s", kvm_stats_text[i].name);
		fprintf(out, "  %-24s %12lld  %s\n", name, (long long)json_integer_value(v),
			kvm_stats_text[i].help);
	}
	json_decref(r);
}
