/*
 * The ACPI PM1a event and control registers the FADT points at
 * (vmm/boot/acpi.h): status (write 1 to clear), enable, and control with
 * SCI_EN always set (no SMI, the machine is always in ACPI mode). Writing SLP_EN with
 * sleep type 5 (\_S5, soft off) calls @on_poweroff: `poweroff` in the
 * guest ends the VM. Other sleep states are not offered.
 */
#ifndef FAULTLINE_ACPI_PM_H
#define FAULTLINE_ACPI_PM_H

#include <pthread.h>
#include <stdint.h>

#include "devices/bus.h"
#include "lib/blob.h"

#define ACPI_PM1_EVT_PORT 0x600 /* PM1a status (2 bytes) and enable (2 bytes) */
#define ACPI_PM1_CNT_PORT 0x604 /* PM1a control (2 bytes) */
#define ACPI_PM_NR_PORTS  6	/* 0x600: status, 0x602: enable, 0x604: control */
#define ACPI_S5_TYPE	  5	/* SLP_TYP of \_S5 */

struct acpi_pm {
	pthread_mutex_t lock;
	uint16_t status, enable, control;
	void (*on_poweroff)(void *ctx);
	void *ctx;
};

extern const struct bus_device_ops acpi_pm_ops;

int acpi_pm__init(struct acpi_pm *pm, void (*on_poweroff)(void *ctx), void *ctx)
	__attribute__((warn_unused_result));
void acpi_pm__exit(struct acpi_pm *pm);

/* PM1a status, enable and control, as blob section "acpi-pm" (version 1), and back. */
void acpi_pm__save(struct acpi_pm *pm, struct blob *b);
int acpi_pm__restore(struct acpi_pm *pm, struct blob_reader *r);

#endif
