#include <errno.h>
#include <string.h>

#include "devices/legacy/acpi_pm.h"

#define PM1_SCI_EN	0x0001
#define PM1_SLP_EN	0x2000
#define PM1_SLP_TYP(v)	(((v) >> 10) & 7)
#define PM1_STATUS_OFF	0
#define PM1_ENABLE_OFF	2
#define PM1_CONTROL_OFF 4

int acpi_pm__init(struct acpi_pm *pm, void (*on_poweroff)(void *ctx), void *ctx)
{
	memset(pm, 0, sizeof(*pm));
	pm->control = PM1_SCI_EN;
	pm->on_poweroff = on_poweroff;
	pm->ctx = ctx;
	return -pthread_mutex_init(&pm->lock, NULL);
}

void acpi_pm__exit(struct acpi_pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}

/* The 6 register bytes as the guest sees them. Lock held. */
static void acpi_pm_bytes(const struct acpi_pm *pm, uint8_t *b)
{
	memcpy(b + PM1_STATUS_OFF, &pm->status, 2);
	memcpy(b + PM1_ENABLE_OFF, &pm->enable, 2);
	memcpy(b + PM1_CONTROL_OFF, &pm->control, 2);
}

static int acpi_pm_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	uint8_t b[8] = {0};

	if (len > 4 || offset + len > ACPI_PM_NR_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	acpi_pm_bytes(pm, b);
	pthread_mutex_unlock(&pm->lock);
	memcpy(data, b + offset, len);
	return 0;
}

static int acpi_pm_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	uint8_t b[8] = {0};
	uint16_t status, control;
	bool off = false;

	if (len > 4 || offset + len > ACPI_PM_NR_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	acpi_pm_bytes(pm, b);
	memcpy(b + offset, data, len);
	if (offset < PM1_ENABLE_OFF) {
		memcpy(&status, b + PM1_STATUS_OFF, 2);
		pm->status &= (uint16_t)~status; /* write 1 to clear */
	}
	memcpy(&pm->enable, b + PM1_ENABLE_OFF, 2);
	if (offset + len > PM1_CONTROL_OFF) {
		memcpy(&control, b + PM1_CONTROL_OFF, 2);
		off = (control & PM1_SLP_EN) && PM1_SLP_TYP(control) == ACPI_S5_TYPE;
		pm->control = (uint16_t)((control & ~PM1_SLP_EN) | PM1_SCI_EN);
	}
	pthread_mutex_unlock(&pm->lock);
	if (off)
		pm->on_poweroff(pm->ctx);
	return 0;
}

const struct bus_device_ops acpi_pm_ops = {
	.read = acpi_pm_read,
	.write = acpi_pm_write,
};

#define ACPI_PM_STATE_VERSION 1

void acpi_pm__save(struct acpi_pm *pm, struct blob *b)
{
	size_t at = blob__section(b, "acpi-pm", ACPI_PM_STATE_VERSION);

	pthread_mutex_lock(&pm->lock);
	blob__u16(b, pm->status);
	blob__u16(b, pm->enable);
	blob__u16(b, pm->control);
	pthread_mutex_unlock(&pm->lock);
	blob__section_end(b, at);
}

int acpi_pm__restore(struct acpi_pm *pm, struct blob_reader *r)
{
	uint16_t version, status, enable, control;
	struct blob_reader sub;

	if (blob__enter(r, "acpi-pm", ACPI_PM_STATE_VERSION, &version, &sub))
		return -EINVAL;
	status = blob__get_u16(&sub);
	enable = blob__get_u16(&sub);
	control = blob__get_u16(&sub);
	if (blob_reader__done(&sub))
		return blob__fail(r, "acpi-pm: %s", sub.why);
	if (!(control & PM1_SCI_EN) || (control & PM1_SLP_EN))
		return blob__fail(r, "acpi-pm: control 0x%04x: SCI_EN is always set, SLP_EN never",
				  control);
	pthread_mutex_lock(&pm->lock);
	pm->status = status;
	pm->enable = enable;
	pm->control = control;
	pthread_mutex_unlock(&pm->lock);
	return 0;
}
