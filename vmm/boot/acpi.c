#include <string.h>

#include "vmm/boot/acpi.h"

#define ACPI_HDR_LEN	 36
#define FADT_LEN	 276
#define FADT_REVISION	 6
#define DSDT_REVISION	 2
#define XSDT_ENTRIES	 2
#define MADT_REVISION	 5
#define MADT_PCAT_COMPAT 1
#define MADT_LAPIC	 0
#define MADT_IOAPIC	 1
#define MADT_LAPIC_NMI	 4
#define RSDP_LEN	 36
#define RSDP_V1_LEN	 20
#define FADT_WBINVD	 (1U << 0)
#define FADT_PWR_BUTTON	 (1U << 4) /* no fixed power button */
#define FADT_SLP_BUTTON	 (1U << 5) /* no fixed sleep button */
#define BOOT_ARCH_8042	 (1U << 1)
#define BOOT_ARCH_NO_VGA (1U << 2)
#define BOOT_ARCH_NO_MSI (1U << 3)
#define CMOS_CENTURY	 0x32

/* AML opcodes and prefixes used below. */
#define AML_ZERO    0x00
#define AML_NAME    0x08
#define AML_BYTE    0x0a
#define AML_STRING  0x0d
#define AML_SCOPE   0x10
#define AML_BUFFER  0x11
#define AML_PACKAGE 0x12
#define AML_DWORD   0x0c
#define AML_METHOD  0x14
#define AML_DUAL    0x2e
#define AML_EXT	    0x5b
#define AML_DEVICE  0x82
#define AML_NOTIFY  0x86
#define AML_ROOT    0x5c

/* Resource descriptors of _CRS. */
#define RES_MEM32_FIXED 0x86
#define RES_EXT_IRQ	0x89
#define RES_IO		0x47 /* small item 8, 7 bytes */
#define RES_IO_LEN	8
#define RES_END		0x79
#define RES_CRS_LEN	(12 + 9 + 2)

uint8_t acpi__sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "FAULTL", 6);
	memcpy(t + 16, "MICROVM ", 8);
	put32(t + 24, 1);
	memcpy(t + 28, "FLTL", 4);
	put32(t + 32, 1);
}

static void acpi_finish(uint8_t *t, uint32_t len)
{
	put32(t + 4, len);
	t[9] = 0;
	t[9] = (uint8_t)-acpi__sum(t, len);
}

/*
 * An AML PkgLength for a package whose contents after the PkgLength are
 * @body bytes: 1 byte up to 63 in all, else 2 (up to 4095). Returns its size.
 */
static size_t aml_pkglen(uint8_t *p, size_t body)
{
	size_t total = body + 1;

	if (total < 64) {
		p[0] = (uint8_t)total;
		return 1;
	}
	total = body + 2;
	p[0] = (uint8_t)(0x40 | (total & 0x0f));
	p[1] = (uint8_t)(total >> 4);
	return 2;
}

static size_t aml_name(uint8_t *p, const char *seg)
{
	p[0] = AML_NAME;
	memcpy(p + 1, seg, 4);
	return 5;
}

/* Wrap @body (@len bytes) as Device (...) { body }, the name first in @body. */
static size_t aml_wrap_device(uint8_t *p, const uint8_t *body, size_t len)
{
	size_t k;

	p[0] = AML_EXT;
	p[1] = AML_DEVICE;
	k = 2 + aml_pkglen(p + 2, len);
	memcpy(p + k, body, len);
	return k + len;
}

/* Name (_HID, "@hid"): an 8-character ID. */
static size_t aml_hid(uint8_t *p, const char *hid)
{
	size_t k = aml_name(p, "_HID");

	p[k] = AML_STRING;
	memcpy(p + k + 1, hid, 9);
	return k + 10;
}

/* An Extended Interrupt descriptor: consumer, edge-triggered, active high, exclusive. */
static size_t res_ext_irq(uint8_t *p, uint32_t irq)
{
	p[0] = RES_EXT_IRQ;
	put16(p + 1, 6);
	p[3] = 0x03;
	p[4] = 1;
	put32(p + 5, irq);
	return 9;
}

/*
 * Device (@name) { Name (_HID, @hid), [Name (_UID, @uid),] Name (_CRS, Buffer { @crs }) }
 * with @crs (@crs_len bytes, its end tag included). @uid < 0: no _UID.
 */
static size_t aml_device(uint8_t *p, const char *name, const char *hid, int uid, const uint8_t *crs,
			 size_t crs_len)
{
	uint8_t body[96], *b = body;

	memcpy(b, name, 4);
	b += 4;
	b += aml_hid(b, hid);
	if (uid >= 0) {
		b += aml_name(b, "_UID");
		*b++ = AML_BYTE;
		*b++ = (uint8_t)uid;
	}
	b += aml_name(b, "_CRS");
	*b++ = AML_BUFFER;
	b += aml_pkglen(b, 2 + crs_len);
	*b++ = AML_BYTE;
	*b++ = (uint8_t)crs_len;
	memcpy(b, crs, crs_len);
	b += crs_len;
	return aml_wrap_device(p, body, (size_t)(b - body));
}

/* Device (VRnn) { _HID "LNRO0005", _UID n, _CRS { Memory32Fixed, Interrupt } } */
static size_t aml_virtio_device(uint8_t *p, unsigned n, const struct acpi_mmio_device *d)
{
	uint8_t crs[RES_CRS_LEN], *b = crs;
	char name[5] = {'V', 'R', (char)('0' + n / 10), (char)('0' + n % 10), 0};

	*b++ = RES_MEM32_FIXED;
	put16(b, 9);
	b[2] = 1; /* read-write */
	put32(b + 3, (uint32_t)d->gpa);
	put32(b + 7, d->size);
	b += 11;
	b += res_ext_irq(b, d->irq);
	*b++ = RES_END;
	*b++ = 0;
	return aml_device(p, name, "LNRO0005", (int)n, crs, sizeof(crs));
}

/* Device (PEVT) { _HID "QEMU0001", _CRS { IO (Decode16, port, port, 1, 1) } }: pvpanic */
static size_t aml_pvpanic_device(uint8_t *p)
{
	uint8_t crs[RES_IO_LEN + 2] = {RES_IO, 1 /* 16-bit decode */};

	put16(crs + 2, ACPI_PVPANIC_PORT);
	put16(crs + 4, ACPI_PVPANIC_PORT);
	crs[6] = 1; /* alignment */
	crs[7] = 1; /* ports */
	crs[8] = RES_END;
	return aml_device(p, "PEVT", "QEMU0001", -1, crs, sizeof(crs));
}

/* Device (VGEN) { Name (_HID, "VMGENCTR"), Name (ADDR, Package (2) { low, high }) } */
static size_t aml_vmgenid_device(uint8_t *p)
{
	uint8_t body[64], *b = body;

	memcpy(b, "VGEN", 4);
	b += 4;
	b += aml_hid(b, "VMGENCTR");
	b += aml_name(b, "ADDR");
	*b++ = AML_PACKAGE;
	b += aml_pkglen(b, 11);
	*b++ = 2;
	*b++ = AML_DWORD;
	put32(b, (uint32_t)ACPI_VMGENID_GPA);
	b += 4;
	*b++ = AML_DWORD;
	put32(b, (uint32_t)(ACPI_VMGENID_GPA >> 32));
	b += 4;
	return aml_wrap_device(p, body, (size_t)(b - body));
}

/*
 * Device (GED0) { Name (_HID, "ACPI0013"), Name (_CRS, { Interrupt (edge)
 * { ACPI_GED_IRQ } }), Method (_EVT, 1) { Notify (\_SB.VGEN, 0x80) } }
 */
static size_t aml_ged_device(uint8_t *p)
{
	uint8_t body[96], *b = body;

	memcpy(b, "GED0", 4);
	b += 4;
	b += aml_hid(b, "ACPI0013");
	b += aml_name(b, "_CRS");
	*b++ = AML_BUFFER;
	b += aml_pkglen(b, 2 + 11);
	*b++ = AML_BYTE;
	*b++ = 11;
	b += res_ext_irq(b, ACPI_GED_IRQ);
	*b++ = RES_END;
	*b++ = 0;
	*b++ = AML_METHOD;
	b += aml_pkglen(b, 4 + 1 + 1 + 10 + 2);
	memcpy(b, "_EVT", 4);
	b += 4;
	*b++ = 1; /* one argument, not serialized */
	*b++ = AML_NOTIFY;
	*b++ = AML_ROOT;
	*b++ = AML_DUAL;
	memcpy(b, "_SB_VGEN", 8);
	b += 8;
	*b++ = AML_BYTE;
	*b++ = 0x80; /* the generation changed */
	return aml_wrap_device(p, body, (size_t)(b - body));
}

static size_t acpi_dsdt(uint8_t *t, const struct acpi_mmio_device *devs, unsigned nr)
{
	uint8_t devices[ACPI_MAX_DEVICES * 80 + 256], *p = t + ACPI_HDR_LEN;
	size_t dlen = 0, body;
	unsigned i;

	/* Name (\_S5, Package (4) { 5, 5, 0, 0 }) */
	p += aml_name(p, "_S5_");
	*p++ = AML_PACKAGE;
	p += aml_pkglen(p, 7);
	*p++ = 4;
	*p++ = AML_BYTE;
	*p++ = ACPI_S5_TYPE;
	*p++ = AML_BYTE;
	*p++ = ACPI_S5_TYPE;
	*p++ = AML_ZERO;
	*p++ = AML_ZERO;
	for (i = 0; i < nr; i++)
		dlen += aml_virtio_device(devices + dlen, i, &devs[i]);
	dlen += aml_pvpanic_device(devices + dlen);
	dlen += aml_vmgenid_device(devices + dlen);
	dlen += aml_ged_device(devices + dlen);
	/* Scope (\_SB) { devices } */
	body = 5 + dlen;
	*p++ = AML_SCOPE;
	p += aml_pkglen(p, body);
	*p++ = AML_ROOT;
	memcpy(p, "_SB_", 4);
	p += 4;
	memcpy(p, devices, dlen);
	p += dlen;
	acpi_header(t, "DSDT", 0, DSDT_REVISION);
	acpi_finish(t, (uint32_t)(p - t));
	return (size_t)(p - t);
}

static void acpi_fadt(uint8_t *t, uint64_t dsdt)
{
	memset(t, 0, FADT_LEN);
	acpi_header(t, "FACP", FADT_LEN, FADT_REVISION);
	put32(t + 40, (uint32_t)dsdt);
	put16(t + 46, ACPI_SCI_IRQ);
	put32(t + 56, ACPI_PM1_EVT_PORT);
	put32(t + 64, ACPI_PM1_CNT_PORT);
	t[88] = 4;	     /* PM1_EVT_LEN */
	t[89] = 2;	     /* PM1_CNT_LEN */
	put16(t + 96, 101);  /* no C2 */
	put16(t + 98, 1001); /* no C3 */
	t[108] = CMOS_CENTURY;
	put16(t + 109, BOOT_ARCH_8042 | BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_MSI);
	put32(t + 112, FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON);
	t[131] = 5; /* FADT minor version: ACPI 6.5 */
	put64(t + 140, dsdt);
	memcpy(t + 268, "FAULTLN\0", 8); /* hypervisor vendor identity */
	acpi_finish(t, FADT_LEN);
}

/* MADT: a local APIC per CPU (APIC ID = index), the I/O APIC, NMI on LINT1. */
static size_t acpi_madt(uint8_t *t, unsigned nr_cpus)
{
	uint8_t *p = t + ACPI_HDR_LEN;
	unsigned i;

	put32(p, ACPI_LAPIC_GPA);
	put32(p + 4, MADT_PCAT_COMPAT);
	p += 8;
	for (i = 0; i < nr_cpus; i++, p += 8) {
		p[0] = MADT_LAPIC;
		p[1] = 8;
		p[2] = (uint8_t)i; /* processor UID */
		p[3] = (uint8_t)i; /* APIC ID */
		put32(p + 4, 1);   /* enabled */
	}
	p[0] = MADT_IOAPIC;
	p[1] = 12;
	p[2] = (uint8_t)nr_cpus; /* I/O APIC ID, after the CPUs' */
	p[3] = 0;
	put32(p + 4, ACPI_IOAPIC_GPA);
	put32(p + 8, 0); /* GSI base */
	p += 12;
	p[0] = MADT_LAPIC_NMI;
	p[1] = 6;
	p[2] = 0xff; /* all processors */
	put16(p + 3, 0);
	p[5] = 1; /* LINT1 */
	p += 6;
	acpi_header(t, "APIC", 0, MADT_REVISION);
	acpi_finish(t, (uint32_t)(p - t));
	return (size_t)(p - t);
}

size_t acpi__build(void *buf, size_t len, uint64_t gpa, const struct acpi_mmio_device *devs,
		   unsigned nr_devs, unsigned nr_cpus)
{
	uint8_t *rsdp = buf, *xsdt, *fadt, *dsdt;
	size_t xsdt_off = 64, fadt_off, dsdt_off, madt_off, end;

	if (nr_devs > ACPI_MAX_DEVICES || nr_cpus == 0 || nr_cpus > ACPI_MAX_CPUS ||
	    len < xsdt_off + ACPI_HDR_LEN + 8 * XSDT_ENTRIES + FADT_LEN + 64 + ACPI_HDR_LEN + 32 +
			    ACPI_MAX_DEVICES * 80 + 192 + ACPI_HDR_LEN + 8 + 8 * ACPI_MAX_CPUS +
			    12 + 6 + 32)
		return 0;
	memset(buf, 0, len);
	fadt_off = xsdt_off + ACPI_HDR_LEN + 8 * XSDT_ENTRIES;
	fadt_off = (fadt_off + 15) & ~(size_t)15;
	dsdt_off = (fadt_off + FADT_LEN + 15) & ~(size_t)15;
	xsdt = rsdp + xsdt_off;
	fadt = rsdp + fadt_off;
	dsdt = rsdp + dsdt_off;
	end = dsdt_off + acpi_dsdt(dsdt, devs, nr_devs);
	madt_off = (end + 15) & ~(size_t)15;
	end = madt_off + acpi_madt(rsdp + madt_off, nr_cpus);
	acpi_fadt(fadt, gpa + dsdt_off);
	acpi_header(xsdt, "XSDT", 0, 1);
	put64(xsdt + ACPI_HDR_LEN, gpa + fadt_off);
	put64(xsdt + ACPI_HDR_LEN + 8, gpa + madt_off);
	acpi_finish(xsdt, ACPI_HDR_LEN + 8 * XSDT_ENTRIES);
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "FAULTL", 6);
	rsdp[15] = 2; /* revision: ACPI 2.0+, with the XSDT */
	put32(rsdp + 20, RSDP_LEN);
	put64(rsdp + 24, gpa + xsdt_off);
	rsdp[8] = (uint8_t)-acpi__sum(rsdp, RSDP_V1_LEN);
	rsdp[32] = (uint8_t)-acpi__sum(rsdp, RSDP_LEN);
	return end;
}
