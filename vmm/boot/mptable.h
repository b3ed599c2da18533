/*
 * The Intel MultiProcessor Specification 1.4 table a Linux guest without
 * ACPI finds its CPUs, its I/O APIC and its interrupt routing in: a
 * floating pointer at the start of the EBDA and the configuration table
 * right after it. One processor entry per vCPU (APIC ID = vCPU index, the
 * BSP is 0), an ISA bus, the in-kernel I/O APIC with ISA IRQs 0-15 wired
 * to its pins of the same number (edge, active high), and LINT0 as ExtINT,
 * LINT1 as NMI on every local APIC.
 */
#ifndef FAULTLINE_MPTABLE_H
#define FAULTLINE_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#define MPTABLE_IOAPIC_GPA 0xfec00000U
#define MPTABLE_LAPIC_GPA  0xfee00000U
#define MPTABLE_ISA_IRQS   16

/* Bytes mptable__build() writes for @nr_cpus. */
size_t mptable__size(unsigned nr_cpus);

/*
 * Write the floating pointer and configuration table for @nr_cpus into
 * @buf (@len bytes), which the guest sees at @gpa. @cpu_signature and
 * @cpu_features are CPUID leaf 1's EAX and EDX. Returns the bytes written,
 * or 0 when @len is too small.
 */
size_t mptable__build(void *buf, size_t len, uint64_t gpa, unsigned nr_cpus, uint32_t cpu_signature,
		      uint32_t cpu_features);

#endif
