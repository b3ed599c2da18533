/*
 * The state KVM keeps for a VM and its vCPUs, as versioned blob sections
 * (lib/blob.h), for a snapshot: every register set a vCPU has, every MSR
 * of KVM_GET_MSR_INDEX_LIST that reads, and the VM's interrupt chips, PIT
 * and kvmclock. A blob read back is untrusted: each size is checked, and
 * KVM checks the values. Errors are reported naming the ioctl and vCPU.
 */
#ifndef FAULTLINE_KVM_STATE_H
#define FAULTLINE_KVM_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/blob.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/vcpu.h"

/* What a snapshot needs from /dev/kvm, read while the VM is set up: the MSR list, the XSAVE size.
 */
void kvm__probe_state(struct kvm *kvm);

/*
 * Save @vcpu, whose thread is outside KVM_RUN and has completed its last
 * exit (vcpu__settle()), as the section "vcpu". @irqchip: the VM has the
 * in-kernel irqchip, so the local APIC and the MP state go too. @halted:
 * the monitor parked it for good (the test guest's HLT). @tsc_khz: its
 * TSC's frequency. 0 or -errno.
 */
int vcpu__save(struct vcpu *vcpu, bool irqchip, bool halted, unsigned tsc_khz, struct blob *b)
	__attribute__((warn_unused_result));

/*
 * Back from the section "vcpu", into a vCPU that has not run. 0, -EINVAL
 * (the blob is bad: @r says why) or -errno of the ioctl that refused it.
 */
int vcpu__restore(struct vcpu *vcpu, bool irqchip, struct blob_reader *r, bool *halted)
	__attribute__((warn_unused_result));

/* Only read a section "vcpu" for vCPU @id, as vcpu__restore() does (the fuzz target). */
int vcpu__parse_state(struct blob_reader *r, unsigned id, size_t xsave_size);

/*
 * Complete the last exit inside KVM (an I/O read's value, an MMIO access)
 * without entering the guest: KVM_RUN with immediate_exit. The vCPU's own
 * thread, before it parks; afterwards its registers are consistent.
 */
void vcpu__settle(struct vcpu *vcpu);

/* The VM's kvmclock @clock_ns and, with @irqchip, the PIC, IOAPIC and PIT: section "kvm". */
int kvm__save(struct kvm *kvm, bool irqchip, uint64_t clock_ns, struct blob *b)
	__attribute__((warn_unused_result));
/* Back from the section "kvm": the chips now, the clock in *@clock_ns for later. */
int kvm__restore(struct kvm *kvm, bool irqchip, struct blob_reader *r, uint64_t *clock_ns)
	__attribute__((warn_unused_result));

/*
 * The CPU features the vCPUs are given, for the manifest: @words gets
 * KVM_CPUID_WORDS words of KVM_GET_SUPPORTED_CPUID (kvm_cpuid_words[] names
 * them). kvm__cpuid_missing() says which of a snapshot's this host lacks:
 * the first word's index with bits missing (*@bits), or -1.
 */
#define KVM_CPUID_WORDS 8
extern const char *const kvm_cpuid_words[KVM_CPUID_WORDS];
void kvm__cpuid_words(const struct kvm *kvm, uint32_t words[KVM_CPUID_WORDS]);
int kvm__cpuid_missing(const struct kvm *kvm, const uint32_t words[KVM_CPUID_WORDS],
		       uint32_t *bits);

/* "AuthenticAMD", "GenuineIntel", ...: CPUID leaf 0 of the host. */
void kvm__cpu_vendor(char vendor[13]);

#endif
