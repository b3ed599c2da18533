/*
 * The ACPI tables of a Linux boot, there for what the MP table cannot say:
 * the virtio-mmio devices (a Debian kernel only finds them as ACPI devices
 * "LNRO0005", it cannot take them from its command line), the pvpanic port
 * and how to power off. RSDP -> XSDT -> FADT, MADT -> DSDT, all in the BIOS
 * area below 1 MiB. The MADT repeats the MP table's CPUs and I/O APIC
 * (vmm/boot/mptable.h): Linux with ACPI tables but no MADT ignores the MP table
 * and boots one CPU.
 *
 * The FADT describes a PC with the PM1 event and control blocks of
 * devices/legacy/acpi_pm.h, no SMI command port (always in ACPI mode) and an 8042;
 * the DSDT holds \_S5 (sleep type 5), one device per virtio-mmio window
 * with its memory range and edge-triggered interrupt, and the pvpanic
 * device (QEMU0001, devices/legacy/pvpanic.h) with its port, and the VM
 * generation ID with the event device that announces a new one.
 */
#ifndef FAULTLINE_ACPI_H
#define FAULTLINE_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "devices/legacy/acpi_pm.h" /* the PM1a ports and \\_S5 that the tables name */

#define ACPI_RSDP_GPA	  0xe0000ULL
#define ACPI_MAX_DEVICES  8
#define ACPI_MAX_CPUS	  64
#define ACPI_LAPIC_GPA	  0xfee00000U
#define ACPI_IOAPIC_GPA	  0xfec00000U
#define ACPI_SCI_IRQ	  9
#define ACPI_PVPANIC_PORT 0x505 /* devices/legacy/pvpanic.h */
/*
 * The VM generation ID: 16 bytes the monitor writes at this GPA (reserved
 * memory below 1 MiB), named by device VGEN ("VMGENCTR", its ADDR). On a
 * restore the monitor writes a new one and pulses ACPI_GED_IRQ: the
 * Generic Event Device GED0 ("ACPI0013") then notifies VGEN, and Linux's
 * vmgenid driver reseeds the guest's random numbers.
 */
#define ACPI_VMGENID_GPA 0xe1000ULL
#define ACPI_VMGENID_LEN 16
#define ACPI_GED_IRQ	 3

struct acpi_mmio_device {
	uint64_t gpa;
	uint32_t size;
	uint32_t irq;
};

/*
 * Write the tables for @nr_cpus CPUs and @nr_devs virtio-mmio devices into
 * @buf (@len bytes), which the guest sees at @gpa (ACPI_RSDP_GPA). Returns
 * the bytes written, or 0 when @len is too small or a count is out of
 * range (1..ACPI_MAX_CPUS CPUs, at most ACPI_MAX_DEVICES devices).
 */
size_t acpi__build(void *buf, size_t len, uint64_t gpa, const struct acpi_mmio_device *devs,
		   unsigned nr_devs, unsigned nr_cpus);

/* The byte sum of @len bytes at @p (a valid table sums to 0). */
uint8_t acpi__sum(const void *p, size_t len);

#endif
