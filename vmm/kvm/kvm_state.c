/*
 * KVM's state of a VM and its vCPUs, saved and restored for snapshots.
 * The order of a restore is Firecracker's: MP state, registers, special
 * registers, XSAVE, XCRs, debug registers, local APIC, MSRs, then events.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lib/log.h"
#include "vmm/kvm/kvm_state.h"

#define KVM_STATE_VERSION  1
#define VCPU_STATE_VERSION 1
#define VCPU_MSRS_MAX	   4096 /* more than any KVM offers */

static int vcpu_state_ioctl(struct vcpu *vcpu, unsigned long req, void *arg, const char *name)
{
	if (kvm__ioctl(vcpu->fd, req, (unsigned long)arg, name) < 0) {
		int err = errno;

		pr_err("%s failed: %s (vCPU %u)", name, strerror(err), vcpu->id);
		return -err;
	}
	return 0;
}

/* A struct as its size, then its bytes. */
static void blob_sized(struct blob *b, const void *p, size_t n)
{
	blob__u32(b, (uint32_t)n);
	blob__bytes(b, p, n);
}

static void get_sized(struct blob_reader *r, void *p, size_t n, const char *what)
{
	uint32_t len = blob__get_u32(r);

	if (r->err)
		return;
	if (len != n) {
		blob__fail(r, "%s is %u bytes, expected %zu", what, len, n);
		return;
	}
	blob__get_bytes(r, p, n);
}

/* KVM_GET_XSAVE2's size where KVM has it (AMX), else struct kvm_xsave's. */
static size_t kvm_xsave_size(struct kvm *kvm)
{
	int n = ioctl(kvm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* KVM_GET_MSR_INDEX_LIST; NULL on failure (a snapshot then says so). */
static struct kvm_msr_list *kvm_msr_index_list(struct kvm *kvm)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;

	if (ioctl(kvm->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	if (probe.nmsrs > VCPU_MSRS_MAX)
		probe.nmsrs = VCPU_MSRS_MAX;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (kvm__ioctl(kvm->sys_fd, KVM_GET_MSR_INDEX_LIST, (unsigned long)list,
		       "KVM_GET_MSR_INDEX_LIST") < 0) {
		free(list);
		return NULL;
	}
	return list;
}

void kvm__probe_state(struct kvm *kvm)
{
	kvm->xsave_size = kvm_xsave_size(kvm);
	kvm->msr_list = kvm_msr_index_list(kvm);
}

/*
 * Every MSR of the index list that reads on @vcpu, in *@out (free()).
 * KVM_GET_MSRS stops at the first it cannot read; that one is skipped.
 */
static int vcpu_get_msrs(struct vcpu *vcpu, struct kvm_msrs **out)
{
	const struct kvm_msr_list *list = vcpu->kvm->msr_list;
	struct kvm_msrs *msrs, *one;
	uint32_t i, n = 0;

	if (!list) {
		pr_err("KVM_GET_MSR_INDEX_LIST failed when the VM was set up: its MSRs cannot be "
		       "saved (vCPU %u)",
		       vcpu->id);
		return -ENOTSUP;
	}
	msrs = calloc(1, sizeof(*msrs) + list->nmsrs * sizeof(msrs->entries[0]));
	one = calloc(1, sizeof(*one) + list->nmsrs * sizeof(one->entries[0]));
	if (!msrs || !one) {
		free(msrs);
		free(one);
		return -ENOMEM;
	}
	for (i = 0; i < list->nmsrs;) {
		uint32_t k, left = list->nmsrs - i;
		int got;

		one->nmsrs = left;
		for (k = 0; k < left; k++)
			one->entries[k] = (struct kvm_msr_entry){.index = list->indices[i + k]};
		got = kvm__ioctl(vcpu->fd, KVM_GET_MSRS, (unsigned long)one, "KVM_GET_MSRS");
		if (got < 0) {
			int err = errno;

			pr_err("KVM_GET_MSRS failed: %s (vCPU %u)", strerror(err), vcpu->id);
			free(msrs);
			free(one);
			return -err;
		}
		memcpy(&msrs->entries[n], one->entries, (size_t)got * sizeof(one->entries[0]));
		n += (uint32_t)got;
		i += (uint32_t)got + 1; /* the one it could not read, if any */
	}
	msrs->nmsrs = n;
	free(one);
	*out = msrs;
	return 0;
}

void vcpu__settle(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	(void)kvm__ioctl(vcpu->fd, KVM_RUN, 0, "KVM_RUN"); /* -EINTR, having completed the exit */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

int vcpu__save(struct vcpu *vcpu, bool irqchip, bool halted, unsigned tsc_khz, struct blob *b)
{
	size_t xsave_size = vcpu->kvm->xsave_size, at;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp = {0};
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_xcrs xcrs;
	struct kvm_msrs *msrs = NULL;
	void *xsave = calloc(1, xsave_size);
	uint32_t i;
	int ret;

	if (!xsave)
		return -ENOMEM;
	ret = vcpu_state_ioctl(vcpu, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	ret = ret
		      ?: vcpu_state_ioctl(vcpu,
					  xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2
										: KVM_GET_XSAVE,
					  xsave, "KVM_GET_XSAVE");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_GET_DEBUGREGS, &debugregs, "KVM_GET_DEBUGREGS");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS");
	if (!ret && irqchip) {
		ret = vcpu_state_ioctl(vcpu, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
		ret = ret ?: vcpu_state_ioctl(vcpu, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	}
	ret = ret ?: vcpu_get_msrs(vcpu, &msrs);
	if (ret) {
		free(xsave);
		return ret;
	}
	at = blob__section(b, "vcpu", VCPU_STATE_VERSION);
	blob__u32(b, vcpu->id);
	blob__bool(b, halted);
	blob__u32(b, tsc_khz);
	blob_sized(b, &regs, sizeof(regs));
	blob_sized(b, &sregs, sizeof(sregs));
	blob_sized(b, xsave, xsave_size);
	blob_sized(b, &xcrs, sizeof(xcrs));
	blob_sized(b, &debugregs, sizeof(debugregs));
	blob_sized(b, &events, sizeof(events));
	blob__bool(b, irqchip);
	if (irqchip) {
		blob_sized(b, &lapic, sizeof(lapic));
		blob__u32(b, mp.mp_state);
	}
	blob__u32(b, msrs->nmsrs);
	for (i = 0; i < msrs->nmsrs; i++) {
		blob__u32(b, msrs->entries[i].index);
		blob__u64(b, msrs->entries[i].data);
	}
	blob__section_end(b, at);
	free(msrs);
	free(xsave);
	return blob__end(b);
}

/* What vcpu__restore() reads, before any of it goes to KVM. */
struct vcpu_state {
	uint32_t id, tsc_khz, mp_state;
	bool halted, irqchip;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_vcpu_events events;
	struct kvm_lapic_state lapic;
	struct kvm_msrs *msrs;
	void *xsave;
};

static int vcpu_state_read(unsigned id, struct blob_reader *r, struct vcpu_state *s,
			   size_t xsave_size)
{
	struct blob_reader sub;
	uint16_t version;
	uint32_t i, n;

	if (blob__enter(r, "vcpu", VCPU_STATE_VERSION, &version, &sub))
		return -EINVAL;
	s->id = blob__get_u32(&sub);
	s->halted = blob__get_bool(&sub);
	s->tsc_khz = blob__get_u32(&sub);
	get_sized(&sub, &s->regs, sizeof(s->regs), "kvm_regs");
	get_sized(&sub, &s->sregs, sizeof(s->sregs), "kvm_sregs");
	get_sized(&sub, s->xsave, xsave_size, "the XSAVE area");
	get_sized(&sub, &s->xcrs, sizeof(s->xcrs), "kvm_xcrs");
	get_sized(&sub, &s->debugregs, sizeof(s->debugregs), "kvm_debugregs");
	get_sized(&sub, &s->events, sizeof(s->events), "kvm_vcpu_events");
	s->irqchip = blob__get_bool(&sub);
	if (s->irqchip) {
		get_sized(&sub, &s->lapic, sizeof(s->lapic), "kvm_lapic_state");
		s->mp_state = blob__get_u32(&sub);
	}
	n = blob__get_u32(&sub);
	if (!sub.err && n > VCPU_MSRS_MAX)
		blob__fail(&sub, "%u MSRs, at most %d", n, VCPU_MSRS_MAX);
	if (!sub.err && s->id != id)
		blob__fail(&sub, "the state of vCPU %u where vCPU %u's belongs", s->id, id);
	if (sub.err) {
		r->err = sub.err;
		snprintf(r->why, sizeof(r->why), "%s", sub.why);
		return -EINVAL;
	}
	s->msrs = calloc(1, sizeof(*s->msrs) + n * sizeof(s->msrs->entries[0]));
	if (!s->msrs)
		return -ENOMEM;
	s->msrs->nmsrs = n;
	for (i = 0; i < n; i++) {
		s->msrs->entries[i].index = blob__get_u32(&sub);
		s->msrs->entries[i].data = blob__get_u64(&sub);
	}
	if (blob_reader__done(&sub)) {
		r->err = sub.err;
		snprintf(r->why, sizeof(r->why), "%s", sub.why);
		return -EINVAL;
	}
	return 0;
}

int vcpu__parse_state(struct blob_reader *r, unsigned id, size_t xsave_size)
{
	struct vcpu_state s = {.xsave = calloc(1, xsave_size ? xsave_size : 1)};
	int ret = s.xsave ? vcpu_state_read(id, r, &s, xsave_size) : -ENOMEM;

	free(s.msrs);
	free(s.xsave);
	return ret;
}

/* The guest's TSC frequency as it was: KVM scales it where the host's differs. */
static int vcpu_restore_tsc_khz(struct vcpu *vcpu, uint32_t khz)
{
	if (!khz || vcpu__tsc_khz(vcpu) == khz)
		return 0;
	if (kvm__ioctl(vcpu->fd, KVM_SET_TSC_KHZ, khz, "KVM_SET_TSC_KHZ") < 0) {
		int err = errno;

		pr_err("KVM_SET_TSC_KHZ failed: %s: the snapshot's TSC runs at %u kHz, this "
		       "host's at %u kHz (vCPU %u)",
		       strerror(err), khz, vcpu__tsc_khz(vcpu), vcpu->id);
		return -err;
	}
	return 0;
}

/* Does MSR @e read back as @e->data on the new vCPU (so that it needs no write)? */
static bool vcpu_msr_holds(struct vcpu *vcpu, const struct kvm_msr_entry *e)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} one = {.h = {.nmsrs = 1}, .e = {.index = e->index}};

	return ioctl(vcpu->fd, KVM_GET_MSRS, &one) == 1 && one.e.data == e->data;
}

/*
 * KVM_SET_MSRS stops at the first MSR it refuses. One that already holds
 * its value (a paravirtual MSR a host rejects writes of 0 to) is skipped;
 * any other refusal fails the restore, naming the MSR.
 */
static int vcpu_restore_msrs(struct vcpu *vcpu, struct kvm_msrs *msrs)
{
	uint32_t done = 0, total = msrs->nmsrs;
	int ret = 0;

	while (done < total) {
		struct kvm_msr_entry *e = &msrs->entries[done];
		int set;

		memmove(msrs->entries, e, (total - done) * sizeof(*e));
		total -= done;
		done = 0;
		msrs->nmsrs = total;
		set = kvm__ioctl(vcpu->fd, KVM_SET_MSRS, (unsigned long)msrs, "KVM_SET_MSRS");
		if (set < 0) {
			ret = -errno;
			pr_err("KVM_SET_MSRS failed: %s (vCPU %u)", strerror(-ret), vcpu->id);
			break;
		}
		done = (uint32_t)set;
		if (done == total)
			break;
		if (!vcpu_msr_holds(vcpu, &msrs->entries[done])) {
			pr_err("KVM_SET_MSRS refused MSR 0x%x = 0x%llx (vCPU %u)",
			       msrs->entries[done].index,
			       (unsigned long long)msrs->entries[done].data, vcpu->id);
			ret = -EINVAL;
			break;
		}
		done++;
	}
	return ret;
}

int vcpu__restore(struct vcpu *vcpu, bool irqchip, struct blob_reader *r, bool *halted)
{
	size_t xsave_size = vcpu->kvm->xsave_size;
	struct vcpu_state s = {.xsave = calloc(1, xsave_size)};
	struct kvm_mp_state mp;
	int ret;

	if (!s.xsave)
		return -ENOMEM;
	ret = vcpu_state_read(vcpu->id, r, &s, xsave_size);
	if (!ret && s.irqchip != irqchip) {
		blob__fail(r, "vCPU %u was saved %s the in-kernel irqchip", vcpu->id,
			   s.irqchip ? "with" : "without");
		ret = -EINVAL;
	}
	if (ret)
		goto out;
	mp.mp_state = s.mp_state;
	ret = vcpu_restore_tsc_khz(vcpu, s.tsc_khz);
	if (!ret && irqchip)
		ret = vcpu_state_ioctl(vcpu, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_SET_REGS, &s.regs, "KVM_SET_REGS");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_SET_SREGS, &s.sregs, "KVM_SET_SREGS");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_SET_XSAVE, s.xsave, "KVM_SET_XSAVE");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_SET_XCRS, &s.xcrs, "KVM_SET_XCRS");
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_SET_DEBUGREGS, &s.debugregs, "KVM_SET_DEBUGREGS");
	if (!ret && irqchip)
		ret = vcpu_state_ioctl(vcpu, KVM_SET_LAPIC, &s.lapic, "KVM_SET_LAPIC");
	ret = ret ?: vcpu_restore_msrs(vcpu, s.msrs);
	ret = ret ?: vcpu_state_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &s.events, "KVM_SET_VCPU_EVENTS");
	*halted = s.halted;
out:
	free(s.msrs);
	free(s.xsave);
	return ret;
}

static int kvm_state_ioctl(struct kvm *kvm, unsigned long req, void *arg, const char *name)
{
	if (kvm__ioctl(kvm->vm_fd, req, (unsigned long)arg, name) < 0) {
		int err = errno;

		pr_err("%s failed: %s", name, strerror(err));
		return -err;
	}
	return 0;
}

int kvm__save(struct kvm *kvm, bool irqchip, uint64_t clock_ns, struct blob *b)
{
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
	size_t at;
	int i, ret = 0;

	for (i = 0; irqchip && !ret && i < 3; i++) {
		memset(&chips[i], 0, sizeof(chips[i]));
		chips[i].chip_id = (uint32_t)i; /* PIC master, PIC slave, IOAPIC */
		ret = kvm_state_ioctl(kvm, KVM_GET_IRQCHIP, &chips[i], "KVM_GET_IRQCHIP");
	}
	if (!ret && irqchip)
		ret = kvm_state_ioctl(kvm, KVM_GET_PIT2, &pit, "KVM_GET_PIT2");
	if (ret)
		return ret;
	at = blob__section(b, "kvm", KVM_STATE_VERSION);
	blob__u64(b, clock_ns);
	blob__bool(b, irqchip);
	for (i = 0; irqchip && i < 3; i++)
		blob_sized(b, &chips[i], sizeof(chips[i]));
	if (irqchip)
		blob_sized(b, &pit, sizeof(pit));
	blob__section_end(b, at);
	return blob__end(b);
}

int kvm__restore(struct kvm *kvm, bool irqchip, struct blob_reader *r, uint64_t *clock_ns)
{
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
	struct blob_reader sub;
	uint16_t version;
	bool had;
	int i, ret = 0;

	if (blob__enter(r, "kvm", KVM_STATE_VERSION, &version, &sub))
		return -EINVAL;
	*clock_ns = blob__get_u64(&sub);
	had = blob__get_bool(&sub);
	if (!sub.err && had != irqchip)
		blob__fail(&sub, "the VM was saved %s the in-kernel irqchip",
			   had ? "with" : "without");
	for (i = 0; irqchip && i < 3; i++) {
		get_sized(&sub, &chips[i], sizeof(chips[i]), "kvm_irqchip");
		if (!sub.err && chips[i].chip_id != (uint32_t)i)
			blob__fail(&sub, "interrupt chip %u where chip %d belongs",
				   chips[i].chip_id, i);
	}
	if (irqchip)
		get_sized(&sub, &pit, sizeof(pit), "kvm_pit_state2");
	if (blob_reader__done(&sub)) {
		r->err = sub.err;
		snprintf(r->why, sizeof(r->why), "%s", sub.why);
		return -EINVAL;
	}
	for (i = 0; irqchip && !ret && i < 3; i++)
		ret = kvm_state_ioctl(kvm, KVM_SET_IRQCHIP, &chips[i], "KVM_SET_IRQCHIP");
	if (!ret && irqchip)
		ret = kvm_state_ioctl(kvm, KVM_SET_PIT2, &pit, "KVM_SET_PIT2");
	return ret;
}

const char *const kvm_cpuid_words[KVM_CPUID_WORDS] = {
	"1.ecx",   "1.edx",	     "7.0.ebx",	       "7.0.ecx",
	"7.0.edx", "0x80000001.ecx", "0x80000001.edx", "0xd.0.eax",
};

static const struct kvm_cpuid_entry2 *kvm_cpuid_leaf(const struct kvm *kvm, uint32_t fn,
						     uint32_t index)
{
	uint32_t i;

	for (i = 0; i < kvm->cpuid->nent; i++)
		if (kvm->cpuid->entries[i].function == fn && kvm->cpuid->entries[i].index == index)
			return &kvm->cpuid->entries[i];
	return NULL;
}

void kvm__cpuid_words(const struct kvm *kvm, uint32_t w[KVM_CPUID_WORDS])
{
	const struct kvm_cpuid_entry2 *e;
	static const struct kvm_cpuid_entry2 none;

	e = kvm_cpuid_leaf(kvm, 1, 0) ?: &none;
	w[0] = e->ecx;
	w[1] = e->edx;
	e = kvm_cpuid_leaf(kvm, 7, 0) ?: &none;
	w[2] = e->ebx;
	w[3] = e->ecx;
	w[4] = e->edx;
	e = kvm_cpuid_leaf(kvm, 0x80000001, 0) ?: &none;
	w[5] = e->ecx;
	w[6] = e->edx;
	e = kvm_cpuid_leaf(kvm, 0xd, 0) ?: &none;
	w[7] = e->eax;
}

int kvm__cpuid_missing(const struct kvm *kvm, const uint32_t want[KVM_CPUID_WORDS], uint32_t *bits)
{
	uint32_t have[KVM_CPUID_WORDS];
	int i;

	kvm__cpuid_words(kvm, have);
	for (i = 0; i < KVM_CPUID_WORDS; i++) {
		/* 1.ecx bit 27 (OSXSAVE) and 1.ebx-style dynamic bits follow the guest. */
		uint32_t missing = want[i] & ~have[i] & (i == 0 ? ~(1U << 27) : ~0U);

		if (missing) {
			*bits = missing;
			return i;
		}
	}
	return -1;
}

void kvm__cpu_vendor(char vendor[13])
{
	unsigned a, b, c, d;

	__cpuid(0, a, b, c, d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	vendor[12] = '\0';
}
