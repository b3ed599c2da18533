#define _GNU_SOURCE
/*
 * Booting Linux without KVM: the bzImage setup header and the vmlinux ELF
 * headers as untrusted input (vmm/boot/linux.c), where the kernel and initrd go, the zero page and
 * e820 map, the MP table (vmm/boot/mptable.c), the ACPI tables (vmm/boot/acpi.c), and virtqueues
 * holding malformed descriptor chains (devices/virtio/virtio_mmio.c).
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_mmio.h"
#include "tests/unit/unit.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/linux.h"
#include "vmm/boot/mptable.h"

#define IMG_LEN (64 * 1024)

/* A well-formed bzImage header: 4 setup sectors, 2.15, 64-bit, relocatable. */
static uint8_t *fake_bzimage(void)
{
	uint8_t *img = calloc(1, IMG_LEN);
	struct setup_header h;

	memset(&h, 0, sizeof(h));
	h.setup_sects = 4;
	h.boot_flag = 0xaa55;
	h.jump = 0x66eb; /* jmp to 0x268: the whole 2.15 header */
	h.header = 0x53726448;
	h.version = 0x020f;
	h.loadflags = 0x01;
	h.initrd_addr_max = 0x7fffffff;
	h.relocatable_kernel = 1;
	h.cmdline_size = 2047;
	h.xloadflags = 0x03;
	h.pref_address = 0x1000000;
	h.init_size = 0x2000000;
	memcpy(img + 0x1f1, &h, sizeof(h));
	return img;
}

static void patch(uint8_t *img, size_t off, const void *v, size_t len)
{
	memcpy(img + off, v, len);
}

START_TEST(bzimage_parsed)
{
	uint8_t *img = fake_bzimage();
	struct linux_image li;
	char why[LINUX_WHY_LEN] = "";

	ck_assert(linux__is_bzimage(img, IMG_LEN));
	ck_assert_int_eq(linux__parse(img, IMG_LEN, &li, why), 0);
	ck_assert_ptr_eq(li.kernel, img + 5 * 512);
	ck_assert_uint_eq(li.kernel_len, IMG_LEN - 5 * 512);
	ck_assert_uint_eq(li.entry_gpa, 0x100200);
	ck_assert_uint_eq(li.pref_address, 0x1000000);
	ck_assert_uint_eq(li.cmdline_size, 2047);
	free(img);
}
END_TEST

/* Each corruption is refused with its own reason. */
START_TEST(bzimage_rejected)
{
	static const struct {
		size_t off;
		uint8_t bytes[4];
		size_t len;
		const char *why;
	} cases[] = {
		{0x202,
		 {'H', 'd', 'r', 'X'},
		 4,
		 "no \"HdrS\" signature at offset 0x202: not a bzImage"},
		{0x1fe, {0x55, 0x55}, 2, "boot flag is 0x5555, expected 0xaa55"},
		{0x206,
		 {0x00, 0x02},
		 2,
		 "boot protocol 2.00 is too old: faultline needs 2.12 or later (Linux 3.8)"},
		{0x211, {0x00}, 1, "a zImage (loaded below 1 MiB) is not supported"},
		{0x236, {0x02, 0x00}, 2, "the kernel has no 64-bit entry point (xloadflags 0x2)"},
		{0x234, {0x00}, 1, "the kernel is not relocatable"},
		{0x1f1, {0xff}, 1, "255 setup sectors leave no kernel in 65536 bytes"},
		{0x248,
		 {0x00, 0x00, 0x01, 0x00},
		 4,
		 "the compressed payload (offset 65536, 0 bytes) lies past the end of the file "
		 "(65536 bytes)"},
		{0x260,
		 {0x00, 0x01, 0x00, 0x00},
		 4,
		 "init_size 256 is smaller than the kernel (62976 bytes)"},
	};
	struct linux_image li;
	char why[LINUX_WHY_LEN];
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *img = fake_bzimage();

		patch(img, cases[i].off, cases[i].bytes, cases[i].len);
		ck_assert_int_eq(linux__parse(img, IMG_LEN, &li, why), -EINVAL);
		ck_assert_str_eq(why, cases[i].why);
		free(img);
	}
	{
		uint8_t *img = fake_bzimage();

		ck_assert_int_eq(linux__parse(img, 0x200, &li, why), -EINVAL);
		ck_assert_str_eq(why, "512 bytes is too short for a bzImage setup header");
		ck_assert(!linux__is_bzimage(img, 0x200));
		free(img);
	}
}
END_TEST

START_TEST(placement)
{
	uint8_t *img = fake_bzimage();
	struct linux_image li;
	struct linux_layout lay;
	struct guest_ram ram;
	char why[LINUX_WHY_LEN], big[3000];

	ck_assert_int_eq(linux__parse(img, IMG_LEN, &li, why), 0);
	ck_assert_int_eq(guest_ram__layout(&ram, 256ULL << 20), 0);
	ck_assert_int_eq(linux__place(&li, &ram, 5000, "console=ttyS0", &lay, why), 0);
	ck_assert_uint_eq(lay.initrd_gpa, ((256ULL << 20) - 5000) & ~0xfffULL);
	ck_assert_uint_eq(lay.initrd_size, 5000);
	ck_assert_uint_eq(lay.cmdline_len, 13);
	/* An initrd that would overlap the decompressed kernel. */
	ck_assert_int_eq(linux__place(&li, &ram, 240ULL << 20, "", &lay, why), -ENOSPC);
	ck_assert_str_eq(why, "the initrd (251658240 bytes) does not fit between the kernel (up "
			      "to 48 MiB) and the top of low RAM (256 MiB): raise --mem");
	/* RAM too small for the kernel to decompress itself. */
	ck_assert_int_eq(guest_ram__layout(&ram, 32ULL << 20), 0);
	ck_assert_int_eq(linux__place(&li, &ram, 0, "", &lay, why), -ENOSPC);
	ck_assert_str_eq(why, "the kernel needs 48 MiB of RAM to decompress itself, the guest has "
			      "32 MiB below 3 GiB: raise --mem");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(guest_ram__layout(&ram, 256ULL << 20), 0);
	ck_assert_int_eq(linux__place(&li, &ram, 0, big, &lay, why), -E2BIG);
	ck_assert_str_eq(why, "the command line is 2999 bytes, this kernel takes at most 2047");
	free(img);
}
END_TEST

START_TEST(zero_page_and_e820)
{
	uint8_t *img = fake_bzimage();
	struct linux_image li;
	struct linux_layout lay;
	struct guest_ram ram;
	struct boot_params *bp = malloc(sizeof(*bp));
	char why[LINUX_WHY_LEN];

	ck_assert_int_eq(linux__parse(img, IMG_LEN, &li, why), 0);
	ck_assert_int_eq(guest_ram__layout(&ram, 5ULL << 30), 0); /* two banks */
	ck_assert_int_eq(linux__place(&li, &ram, 4096, "x", &lay, why), 0);
	linux__boot_params(bp, &li, &lay, &ram);
	ck_assert_uint_eq(bp->hdr.type_of_loader, 0xff);
	ck_assert_uint_eq(bp->hdr.cmd_line_ptr, LINUX_CMDLINE_GPA);
	ck_assert_uint_eq(bp->hdr.ramdisk_image, lay.initrd_gpa);
	ck_assert_uint_eq(bp->hdr.ramdisk_size, 4096);
	ck_assert_uint_eq(bp->hdr.code32_start, 0x100000);
	ck_assert_uint_eq(bp->hdr.header, 0x53726448);
	ck_assert_uint_eq(bp->e820_entries, 4);
	ck_assert_uint_eq(bp->e820_table[0].addr, 0);
	ck_assert_uint_eq(bp->e820_table[0].size, LINUX_EBDA_GPA);
	ck_assert_uint_eq(bp->e820_table[1].type, LINUX_E820_RESERVED);
	ck_assert_uint_eq(bp->e820_table[2].addr, 0x100000);
	ck_assert_uint_eq(bp->e820_table[2].size, (3ULL << 30) - 0x100000);
	ck_assert_uint_eq(bp->e820_table[3].addr, 4ULL << 30);
	ck_assert_uint_eq(bp->e820_table[3].size, 2ULL << 30);
	ck_assert_uint_eq(bp->e820_table[3].type, LINUX_E820_RAM);
	free(bp);
	free(img);
}
END_TEST

/*
 * A vmlinux shaped like Debian's x86-64 kernel: text at 16 MiB linked at
 * 0xffffffff81000000, the per-CPU segment linked at 0 (loaded after the
 * data), and init, bss and brk last. Segment contents are a byte pattern.
 */
#define VML_LEN	  (64 * 1024)
#define VML_ENTRY 0x1000b53ULL

static uint8_t *fake_vmlinux(void)
{
	static const struct {
		uint64_t vaddr, paddr, filesz, memsz;
		uint32_t flags;
	} seg[] = {
		{0xffffffff81000000ULL, 0x1000000, 0x3000, 0x3000, PF_R | PF_X},
		{0xffffffff82c00000ULL, 0x2c00000, 0x2000, 0x2000, PF_R | PF_W},
		{0, 0x32fd000, 0x1000, 0x1000, PF_R | PF_W},
		{0xffffffff83336000ULL, 0x3336000, 0x1000, 0xeca000, PF_R | PF_W | PF_X},
	};
	uint8_t *img = calloc(1, VML_LEN);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*eh));
	uint64_t off = 0x1000;
	unsigned i;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = VML_ENTRY;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = sizeof(seg) / sizeof(seg[0]);
	for (i = 0; i < eh->e_phnum; i++) {
		ph[i].p_type = PT_LOAD;
		ph[i].p_flags = seg[i].flags;
		ph[i].p_offset = off;
		ph[i].p_vaddr = seg[i].vaddr;
		ph[i].p_paddr = seg[i].paddr;
		ph[i].p_filesz = seg[i].filesz;
		ph[i].p_memsz = seg[i].memsz;
		ph[i].p_align = 0x200000;
		memset(img + off, 0xa0 + i, seg[i].filesz);
		off += seg[i].filesz;
	}
	return img;
}

static Elf64_Phdr *vml_phdr(uint8_t *img, unsigned i)
{
	return (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr)) + i;
}

START_TEST(vmlinux_parsed)
{
	uint8_t *img = fake_vmlinux();
	struct linux_image li;
	char why[LINUX_WHY_LEN] = "";

	ck_assert(linux__is_vmlinux(img, VML_LEN));
	ck_assert(!linux__is_bzimage(img, VML_LEN));
	ck_assert_int_eq(linux__parse(img, VML_LEN, &li, why), 0);
	ck_assert_int_eq(li.format, LINUX_VMLINUX);
	ck_assert_uint_eq(li.elf.nr_segments, 4);
	ck_assert_uint_eq(li.elf.segments[2].gpa, 0x32fd000);
	ck_assert_uint_eq(li.entry_gpa, VML_ENTRY);
	ck_assert_uint_eq(li.load_gpa, 0x1000000);
	ck_assert_uint_eq(li.pref_address, 0x1000000);
	ck_assert_uint_eq(li.init_size, 0x4200000 - 0x1000000);
	ck_assert_uint_eq(li.cmdline_size, 2047);
	ck_assert_uint_eq(li.initrd_max, 0x7fffffff);
	ck_assert_uint_eq(li.hdr.header, 0x53726448);
	ck_assert_uint_eq(li.hdr.boot_flag, 0xaa55);
	ck_assert_uint_eq(li.hdr.version, 0x020c);
	/* Not every 64-bit x86 ELF is a kernel: faultline's own guests link low. */
	vml_phdr(img, 0)->p_vaddr = 0x1000000;
	vml_phdr(img, 1)->p_vaddr = 0x2c00000;
	vml_phdr(img, 3)->p_vaddr = 0x3336000;
	ck_assert(!linux__is_vmlinux(img, VML_LEN));
	/* Program headers past the end of the file: not looked at. */
	ck_assert(!linux__is_vmlinux(img, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr)));
	ck_assert(!linux__is_vmlinux(img, 16));
	free(img);
}
END_TEST

/* A corrupt vmlinux is refused with the ELF loader's reason, named as a vmlinux. */
START_TEST(vmlinux_rejected)
{
	struct linux_image li;
	char why[LINUX_WHY_LEN];
	uint8_t *img;

	img = fake_vmlinux();
	((Elf64_Ehdr *)img)->e_entry = 0x2c00010; /* in the data segment */
	ck_assert_int_eq(linux__parse(img, VML_LEN, &li, why), -EINVAL);
	ck_assert_str_eq(why, "vmlinux: entry point 0x2c00010 is not in an executable segment");
	free(img);

	img = fake_vmlinux();
	vml_phdr(img, 0)->p_paddr = 0x80000; /* below 1 MiB: the boot area */
	ck_assert_int_eq(linux__parse(img, VML_LEN, &li, why), -EINVAL);
	ck_assert_str_eq(why, "vmlinux: segment 0: GPA 0x80000+0x3000 is outside the loadable "
			      "RAM 0x100000-0x100000000");
	free(img);

	img = fake_vmlinux();
	vml_phdr(img, 2)->p_paddr = 0x2c01000; /* the per-CPU segment over the data */
	ck_assert_int_eq(linux__parse(img, VML_LEN, &li, why), -EINVAL);
	ck_assert_str_eq(why, "vmlinux: segment 2 overlaps an earlier segment at GPA 0x2c01000");
	free(img);

	img = fake_vmlinux();
	vml_phdr(img, 3)->p_filesz = VML_LEN; /* more bytes than the file holds */
	ck_assert_int_eq(linux__parse(img, VML_LEN, &li, why), -EINVAL);
	ck_assert_str_eq(why, "vmlinux: truncated: segment 3 (offset 28672, 65536 bytes) extends "
			      "beyond the end of the file (65536 bytes)");
	free(img);
}
END_TEST

/* A vmlinux needs RAM up to its last segment's end, and its initrd goes above that. */
START_TEST(vmlinux_placement_and_zero_page)
{
	uint8_t *img = fake_vmlinux();
	struct boot_params *bp = malloc(sizeof(*bp));
	struct linux_layout lay;
	struct linux_image li;
	struct guest_ram ram;
	char why[LINUX_WHY_LEN];

	ck_assert_int_eq(linux__parse(img, VML_LEN, &li, why), 0);
	li.kernel_len = 60ULL << 20; /* the file's size plays no part in where segments go */
	ck_assert_int_eq(guest_ram__layout(&ram, 64ULL << 20), 0);
	ck_assert_int_eq(linux__place(&li, &ram, 0, "", &lay, why), -ENOSPC);
	ck_assert_str_eq(why, "the kernel needs 66 MiB of RAM for its segments, the guest has 64 "
			      "MiB below 3 GiB: raise --mem");
	ck_assert_int_eq(guest_ram__layout(&ram, 128ULL << 20), 0);
	ck_assert_int_eq(linux__place(&li, &ram, 62ULL << 20, "", &lay, why), 0);
	ck_assert_uint_eq(lay.initrd_gpa, 66ULL << 20);
	ck_assert_int_eq(linux__place(&li, &ram, (62ULL << 20) + 1, "", &lay, why), -ENOSPC);
	ck_assert_str_eq(why, "the initrd (65011713 bytes) does not fit between the kernel (up to "
			      "66 MiB) and the top of low RAM (128 MiB): raise --mem");
	ck_assert_int_eq(linux__place(&li, &ram, 4096, "console=ttyS0", &lay, why), 0);
	linux__boot_params(bp, &li, &lay, &ram);
	ck_assert_uint_eq(bp->hdr.header, 0x53726448);
	ck_assert_uint_eq(bp->hdr.boot_flag, 0xaa55);
	ck_assert_uint_eq(bp->hdr.type_of_loader, 0xff);
	ck_assert_uint_eq(bp->hdr.cmd_line_ptr, LINUX_CMDLINE_GPA);
	ck_assert_uint_eq(bp->hdr.cmdline_size, 2047);
	ck_assert_uint_eq(bp->hdr.ramdisk_image, (128ULL << 20) - 4096);
	ck_assert_uint_eq(bp->hdr.ramdisk_size, 4096);
	ck_assert_uint_eq(bp->hdr.loadflags & 0x02, 0); /* no KASLR_FLAG: it runs where linked */
	ck_assert_uint_eq(bp->sentinel, 0);
	ck_assert_uint_eq(bp->e820_entries, 3);
	free(bp);
	free(img);
}
END_TEST

static uint8_t sum(const uint8_t *p, size_t len)
{
	return acpi__sum(p, len);
}

START_TEST(mp_table)
{
	uint8_t buf[4096];
	size_t len = mptable__build(buf, sizeof(buf), LINUX_EBDA_GPA, 3, 0x800f12, 0x178bfbff);
	uint32_t physptr;
	uint16_t hlen, count;

	ck_assert_uint_eq(len, mptable__size(3));
	ck_assert_mem_eq(buf, "_MP_", 4);
	ck_assert_uint_eq(sum(buf, 16), 0);
	memcpy(&physptr, buf + 4, 4);
	ck_assert_uint_eq(physptr, LINUX_EBDA_GPA + 16);
	ck_assert_mem_eq(buf + 16, "PCMP", 4);
	memcpy(&hlen, buf + 20, 2);
	memcpy(&count, buf + 16 + 34, 2);
	ck_assert_uint_eq(sum(buf + 16, hlen), 0);
	ck_assert_uint_eq(count, 3 + 1 + 1 + 16 + 2);
	ck_assert_uint_eq(buf[16 + 44 + 3], 0x03); /* CPU 0: enabled, BSP */
	ck_assert_uint_eq(buf[16 + 44 + 20 + 3], 0x01);
	ck_assert_uint_eq(mptable__build(buf, 100, LINUX_EBDA_GPA, 3, 0, 0), 0);
	ck_assert_uint_eq(mptable__build(buf, sizeof(buf), LINUX_EBDA_GPA, 0, 0, 0), 0);
}
END_TEST

/* The table at XSDT entry @i, or NULL. */
static const uint8_t *xsdt_entry(const uint8_t *buf, uint64_t gpa, unsigned i)
{
	uint64_t xsdt, entry;

	memcpy(&xsdt, buf + 24, 8);
	memcpy(&entry, buf + (xsdt - gpa) + 36 + 8 * i, 8);
	return buf + (entry - gpa);
}

START_TEST(acpi_tables)
{
	const struct acpi_mmio_device devs[2] = {{0xc0000000, 0x1000, 5}, {0xc0001000, 0x1000, 6}};
	uint8_t buf[4096];
	const uint8_t *fadt, *madt, *dsdt;
	uint32_t len;
	uint64_t dsdt_gpa;
	size_t n = acpi__build(buf, sizeof(buf), ACPI_RSDP_GPA, devs, 2, 2);

	ck_assert_uint_gt(n, 0);
	ck_assert_mem_eq(buf, "RSD PTR ", 8);
	ck_assert_uint_eq(sum(buf, 20), 0);
	ck_assert_uint_eq(sum(buf, 36), 0);
	fadt = xsdt_entry(buf, ACPI_RSDP_GPA, 0);
	madt = xsdt_entry(buf, ACPI_RSDP_GPA, 1);
	ck_assert_mem_eq(fadt, "FACP", 4);
	ck_assert_mem_eq(madt, "APIC", 4);
	memcpy(&len, fadt + 4, 4);
	ck_assert_uint_eq(len, 276);
	ck_assert_uint_eq(sum(fadt, len), 0);
	memcpy(&len, madt + 4, 4);
	ck_assert_uint_eq(len, 36 + 8 + 2 * 8 + 12 + 6);
	ck_assert_uint_eq(sum(madt, len), 0);
	memcpy(&dsdt_gpa, fadt + 140, 8);
	dsdt = buf + (dsdt_gpa - ACPI_RSDP_GPA);
	ck_assert_mem_eq(dsdt, "DSDT", 4);
	memcpy(&len, dsdt + 4, 4);
	ck_assert_uint_eq(sum(dsdt, len), 0);
	ck_assert_ptr_nonnull(memmem(dsdt, len, "LNRO0005", 8));
	ck_assert_ptr_nonnull(memmem(dsdt, len, "VR01", 4));
	ck_assert_ptr_nonnull(memmem(dsdt, len, "_S5_", 4));
	{
		/* Device (PEVT) { _HID "QEMU0001", _CRS { IO (Decode16, 0x505, 0x505, 1, 1) } } */
		static const uint8_t pvpanic[] = {
			0x5b, 0x82, 39,	  'P',	'E',  'V',  'T',  0x08, '_', 'H',  'I',
			'D',  0x0d, 'Q',  'E',	'M',  'U',  '0',  '0',	'0', '1',  0,
			0x08, '_',  'C',  'R',	'S',  0x11, 13,	  0x0a, 10,  0x47, 0x01,
			0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00};

		ck_assert_ptr_nonnull(memmem(dsdt, len, pvpanic, sizeof(pvpanic)));
	}
	{
		/* Device (VGEN) { _HID "VMGENCTR", ADDR Package (2) { 0xe1000, 0 } } */
		static const uint8_t vgen[] = {0x5b, 0x82, 38,	 'V',  'G',  'E', 'N',	0x08,
					       '_',  'H',  'I',	 'D',  0x0d, 'V', 'M',	'G',
					       'E',  'N',  'C',	 'T',  'R',  0,	  0x08, 'A',
					       'D',  'D',  'R',	 0x12, 12,   2,	  0x0c, 0x00,
					       0x10, 0x0e, 0x00, 0x0c, 0,    0,	  0,	0};
		/* Method (_EVT, 1) { Notify (\_SB.VGEN, 0x80) } */
		static const uint8_t evt[] = {0x14, 19,	 '_', 'E', 'V', 'T', 1,	  0x86, 0x5c, 0x2e,
					      '_',  'S', 'B', '_', 'V', 'G', 'E', 'N',	0x0a, 0x80};

		ck_assert_ptr_nonnull(memmem(dsdt, len, vgen, sizeof(vgen)));
		ck_assert_ptr_nonnull(memmem(dsdt, len, "ACPI0013", 8));
		ck_assert_ptr_nonnull(memmem(dsdt, len, evt, sizeof(evt)));
	}
	ck_assert_uint_eq(acpi__build(buf, 512, ACPI_RSDP_GPA, devs, 2, 2), 0);
	ck_assert_uint_eq(acpi__build(buf, sizeof(buf), ACPI_RSDP_GPA, devs, 9, 2), 0);
}
END_TEST

/* A queue of 4 descriptors in guest RAM: table at 0x1000, avail at 0x2000, used at 0x3000. */
struct vq_fixture {
	struct guest_ram ram;
	struct guest_access ga;
	struct virtq q;
	uint8_t *desc, *avail;
};

static void vq_setup(struct vq_fixture *f)
{
	ck_assert_int_eq(guest_ram__init(&f->ram, 4 << 20), 0);
	f->ga = guest_ram__direct(&f->ram);
	memset(&f->q, 0, sizeof(f->q));
	f->q.num = 4;
	f->q.ready = true;
	f->q.desc = 0x1000;
	f->q.avail = 0x2000;
	f->q.used = 0x3000;
	f->desc = guest_ram__ptr(&f->ram, 0x1000, 64);
	f->avail = guest_ram__ptr(&f->ram, 0x2000, 16);
}

static void vq_desc(struct vq_fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	memcpy(f->desc + 16 * i, &addr, 8);
	memcpy(f->desc + 16 * i + 8, &len, 4);
	memcpy(f->desc + 16 * i + 12, &flags, 2);
	memcpy(f->desc + 16 * i + 14, &next, 2);
}

/* Offer chain @head as entry @idx - 1; the device resumes there (as after a reset). */
static void vq_avail(struct vq_fixture *f, uint16_t idx, uint16_t head)
{
	f->q.last_avail = (uint16_t)(idx - 1);
	memcpy(f->avail + 4 + 2 * ((idx - 1) % 4), &head, 2);
	memcpy(f->avail + 2, &idx, 2);
}

START_TEST(virtq_good_chain)
{
	struct vq_fixture f;
	struct virtio_chain c;
	char why[VIRTIO_WHY_LEN];
	uint32_t used[3];

	vq_setup(&f);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), 0); /* empty */
	f.q.ready = false;
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "notified queue is not ready");
	f.q.ready = true;
	vq_desc(&f, 2, 0x10000, 16, 1, 3);
	vq_desc(&f, 3, 0x11000, 1, 2, 0);
	vq_avail(&f, 1, 2);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), 1);
	ck_assert_uint_eq(c.head, 2);
	ck_assert_uint_eq(c.n, 2);
	ck_assert(!c.buf[0].device_writes);
	ck_assert(c.buf[1].device_writes);
	ck_assert_ptr_eq(c.buf[1].host, guest_ram__ptr(&f.ram, 0x11000, 1));
	ck_assert_int_eq(virtq__push(&f.q, &f.ga, c.head, 1, why), 0);
	memcpy(used, guest_ram__ptr(&f.ram, 0x3000, 12), 12);
	ck_assert_uint_eq(used[0] >> 16, 1); /* used idx */
	ck_assert_uint_eq(used[1], 2);
	ck_assert_uint_eq(used[2], 1);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), 0);
	guest_ram__exit(&f.ram);
}
END_TEST

/* A guest_access that counts what is held and given back, by GPA. */
static int vq_held[4];

static void *vq_hold(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	void *p = guest_ram__ptr(ctx, gpa, len);

	*err = p ? 0 : -EFAULT;
	if (p && gpa >= 0x10000 && gpa < 0x14000)
		vq_held[(gpa - 0x10000) / 0x1000]++;
	return p;
}

static void vq_release(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx;
	(void)len;
	if (gpa >= 0x10000 && gpa < 0x14000)
		vq_held[(gpa - 0x10000) / 0x1000]--;
}

/*
 * Buffers are held (ga->hold) while the device has their chain and given
 * back by virtq__release(); a chain that fails to pop gives back what it
 * held; rings are not held.
 */
START_TEST(virtq_holds_buffers_until_released)
{
	struct vq_fixture f;
	struct virtio_chain c;
	char why[VIRTIO_WHY_LEN];

	vq_setup(&f);
	memset(vq_held, 0, sizeof(vq_held));
	f.ga.hold = vq_hold;
	f.ga.release = vq_release;
	vq_desc(&f, 2, 0x10000, 16, 1, 3);
	vq_desc(&f, 3, 0x11000, 1, 2, 0);
	vq_avail(&f, 1, 2);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), 1);
	ck_assert_int_eq(vq_held[0], 1);
	ck_assert_int_eq(vq_held[1], 1);
	virtq__release(&f.ga, &c);
	ck_assert_int_eq(vq_held[0], 0);
	ck_assert_int_eq(vq_held[1], 0);
	/* Unmapped: nothing held, nothing given back. */
	vq_avail(&f, 2, 2);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, false, why), 1);
	virtq__release(&f.ga, &c);
	ck_assert_int_eq(vq_held[0] | vq_held[1], 0);
	/* The second buffer is outside RAM: the first is given back. */
	vq_desc(&f, 3, 0xfff00000ULL, 16, 0, 0);
	vq_avail(&f, 3, 2);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_int_eq(vq_held[0], 0);
	/* A loop after a buffer: given back too. */
	vq_desc(&f, 2, 0x12000, 16, 1, 3);
	vq_desc(&f, 3, 0x13000, 16, 1, 2);
	vq_avail(&f, 4, 2);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "descriptor chain from 2 is longer than 4 (a loop?)");
	ck_assert_int_eq(vq_held[2] | vq_held[3], 0);
	guest_ram__exit(&f.ram);
}
END_TEST

/* The MMU's answer for a page the budget cannot back: -ENOMEM at 0x20000 and above. */
static struct guest_access budget_inner;

static void *budget_ptr(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	(void)ctx;
	if (gpa + len > 0x20000) {
		*err = -ENOMEM;
		return NULL;
	}
	return budget_inner.ptr(budget_inner.ctx, gpa, len, err);
}

START_TEST(virtq_malformed)
{
	struct vq_fixture f;
	struct virtio_chain c;
	char why[VIRTIO_WHY_LEN];

	vq_setup(&f);
	/* A loop: 0 -> 1 -> 0. */
	vq_desc(&f, 0, 0x10000, 16, 1, 1);
	vq_desc(&f, 1, 0x10000, 16, 1, 0);
	vq_avail(&f, 1, 0);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "descriptor chain from 0 is longer than 4 (a loop?)");
	/* A buffer outside guest RAM. */
	vq_desc(&f, 1, 0xfff00000ULL, 16, 0, 0);
	vq_avail(&f, 2, 1);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "descriptor 1: buffer outside guest RAM (GPA 0xfff00000, 16 bytes)");
	/* A buffer the memory budget cannot back (--mem-limit) says so. */
	budget_inner = f.ga;
	f.ga.ptr = budget_ptr;
	vq_desc(&f, 1, 0x20000, 16, 0, 0);
	vq_avail(&f, 2, 1);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -ENOMEM);
	ck_assert_str_eq(
		why,
		"descriptor 1: buffer does not fit in the memory budget (GPA 0x20000, 16 bytes)");
	f.ga = budget_inner;
	/* A head past the queue. */
	vq_avail(&f, 3, 7);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "chain head 7 is past the queue's 4 descriptors");
	/* next past the queue, and an indirect descriptor. */
	vq_desc(&f, 2, 0x10000, 16, 1, 9);
	vq_avail(&f, 4, 2);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "descriptor 2: next 9 is past the queue's 4");
	vq_desc(&f, 3, 0x10000, 16, 4, 0);
	vq_avail(&f, 5, 3);
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "indirect descriptor 3 (not offered)");
	/* The available index jumping by more than the queue holds. */
	vq_avail(&f, 50, 0);
	f.q.last_avail = 5;
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "available index moved by 45, more than the queue's 4");
	/* Rings outside RAM, and misaligned. */
	f.q.avail = 0xfff00000ULL;
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "available ring outside guest RAM (GPA 0xfff00000)");
	f.q.avail = 0x2001;
	ck_assert_int_eq(virtq__pop(&f.q, &f.ga, &c, true, why), -EINVAL);
	ck_assert_str_eq(why, "misaligned ring (desc 0x1000, avail 0x2001, used 0x3000)");
	guest_ram__exit(&f.ram);
}
END_TEST

Suite *linux_suite(void)
{
	Suite *s = suite_create("linux");
	TCase *tc = tcase_create("boot");

	tcase_add_test(tc, bzimage_parsed);
	tcase_add_test(tc, bzimage_rejected);
	tcase_add_test(tc, placement);
	tcase_add_test(tc, zero_page_and_e820);
	tcase_add_test(tc, vmlinux_parsed);
	tcase_add_test(tc, vmlinux_rejected);
	tcase_add_test(tc, vmlinux_placement_and_zero_page);
	tcase_add_test(tc, mp_table);
	tcase_add_test(tc, acpi_tables);
	tcase_add_test(tc, virtq_good_chain);
	tcase_add_test(tc, virtq_malformed);
	tcase_add_test(tc, virtq_holds_buffers_until_released);
	suite_add_tcase(s, tc);
	return s;
}
