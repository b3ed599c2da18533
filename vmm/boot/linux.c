#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/boot/linux.h"

/* Offsets and values of the x86 boot protocol (Documentation/arch/x86/boot.rst). */
#define HDR_OFFSET 0x1f1
#define HDR_JUMP_LEN_OFFSET                                                                        \
	0x201 /* the 2-byte jump at 0x200: its offset says where the header ends */
#define HDR_MAGIC	     0x53726448 /* "HdrS" */
#define HDR_BOOT_FLAG	     0xaa55
#define HDR_MIN_VERSION	     0x020c /* xloadflags */
#define LOADFLAG_LOADED_HIGH 0x01
#define TYPE_OF_LOADER_OTHER 0xff
#define ENTRY_64_OFFSET	     0x200
#define DEFAULT_SETUP_SECTS  4
#define OLD_INITRD_ADDR_MAX  0x37ffffffU
#define PAGE_MASK_4K	     0xfffULL
#define SZ_1M		     (1ULL << 20)

#define linux__fail(why, ...) log__why(why, LINUX_WHY_LEN, -EINVAL, __VA_ARGS__)

bool linux__is_bzimage(const void *buf, size_t len)
{
	uint32_t magic;

	if (len < HDR_OFFSET + sizeof(struct setup_header))
		return false;
	memcpy(&magic, (const uint8_t *)buf + 0x202, sizeof(magic));
	return magic == HDR_MAGIC;
}

static int linux_parse_bzimage(const void *buf, size_t len, struct linux_image *li, char *why)
{
	const uint8_t *p = buf;
	struct setup_header *h = &li->hdr;
	size_t hdr_end, setup_len;
	unsigned setup_sects;

	memset(li, 0, sizeof(*li));
	if (len < HDR_OFFSET + sizeof(*h))
		return linux__fail(why, "%zu bytes is too short for a bzImage setup header", len);
	hdr_end = 0x202 + (size_t)p[HDR_JUMP_LEN_OFFSET];
	if (hdr_end > HDR_OFFSET + sizeof(*h))
		hdr_end = HDR_OFFSET + sizeof(*h);
	memcpy(h, p + HDR_OFFSET, hdr_end - HDR_OFFSET);
	if (h->header != HDR_MAGIC)
		return linux__fail(why, "no \"HdrS\" signature at offset 0x202: not a bzImage");
	if (h->boot_flag != HDR_BOOT_FLAG)
		return linux__fail(why, "boot flag is 0x%04x, expected 0xaa55", h->boot_flag);
	if (h->version < HDR_MIN_VERSION)
		return linux__fail(
			why,
			"boot protocol %u.%02u is too old: faultline needs 2.12 or later "
			"(Linux 3.8)",
			h->version >> 8, h->version & 0xff);
	if (!(h->loadflags & LOADFLAG_LOADED_HIGH))
		return linux__fail(why, "a zImage (loaded below 1 MiB) is not supported");
	if (!(h->xloadflags & XLF_KERNEL_64))
		return linux__fail(why, "the kernel has no 64-bit entry point (xloadflags 0x%x)",
				   h->xloadflags);
	if (!h->relocatable_kernel)
		return linux__fail(why, "the kernel is not relocatable");
	setup_sects = h->setup_sects ? h->setup_sects : DEFAULT_SETUP_SECTS;
	setup_len = ((size_t)setup_sects + 1) * 512;
	if (setup_len >= len)
		return linux__fail(why, "%u setup sectors leave no kernel in %zu bytes",
				   setup_sects, len);
	if (h->payload_offset &&
	    ((uint64_t)h->payload_offset + h->payload_length > len - setup_len))
		return linux__fail(why,
				   "the compressed payload (offset %u, %u bytes) lies past the end "
				   "of the file (%zu bytes)",
				   h->payload_offset, h->payload_length, len);
	if (!h->init_size || h->init_size < len - setup_len)
		return linux__fail(why, "init_size %u is smaller than the kernel (%zu bytes)",
				   h->init_size, len - setup_len);
	li->kernel = p + setup_len;
	li->kernel_len = len - setup_len;
	li->load_gpa = LINUX_KERNEL_GPA;
	li->entry_gpa = LINUX_KERNEL_GPA + ENTRY_64_OFFSET;
	li->pref_address = h->pref_address ? h->pref_address : LINUX_KERNEL_GPA;
	li->init_size = h->init_size;
	li->initrd_max = h->initrd_addr_max ? h->initrd_addr_max : OLD_INITRD_ADDR_MAX;
	li->cmdline_size = h->cmdline_size;
	li->version = h->version;
	return 0;
}

bool linux__is_vmlinux(const void *buf, size_t len)
{
	const Elf64_Ehdr *eh = buf;
	Elf64_Phdr ph;
	uint64_t ph_end;
	unsigned i;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(ph))
		return false;
	if (__builtin_mul_overflow((uint64_t)eh->e_phnum, sizeof(ph), &ph_end) ||
	    __builtin_add_overflow(ph_end, eh->e_phoff, &ph_end) || ph_end > len)
		return false;
	for (i = 0; i < eh->e_phnum; i++) {
		elf__phdr(buf, eh->e_phoff, i, &ph);
		if (ph.p_type == PT_LOAD && ph.p_vaddr >= LINUX_KERNEL_MAP)
			return true;
	}
	return false;
}

/*
 * A vmlinux: its segments go where they say (p_paddr), it is entered at
 * e_entry, and the setup header a bzImage would carry is made up here with
 * the fields the kernel reads from the zero page.
 */
static int linux_parse_vmlinux(const void *buf, size_t len, struct linux_image *li, char *why)
{
	struct setup_header *h = &li->hdr;
	uint64_t lo = UINT64_MAX, hi = 0;
	char elf_why[ELF_WHY_LEN];
	unsigned i;

	memset(li, 0, sizeof(*li));
	if (elf__parse(buf, len, LINUX_KERNEL_GPA, LINUX_VMLINUX_MAX_GPA, &li->elf, elf_why))
		return linux__fail(why, "vmlinux: %s", elf_why);
	for (i = 0; i < li->elf.nr_segments; i++) {
		const struct elf_segment *s = &li->elf.segments[i];

		if (!s->mem_size)
			continue;
		if (s->gpa < lo)
			lo = s->gpa;
		if (s->gpa + s->mem_size > hi)
			hi = s->gpa + s->mem_size;
	}
	/* Not empty: elf__parse() found the entry inside a segment's memory. */
	li->format = LINUX_VMLINUX;
	li->kernel = buf;
	li->kernel_len = len;
	li->load_gpa = lo;
	li->entry_gpa = li->elf.entry;
	li->pref_address = lo;
	li->init_size = (uint32_t)(hi - lo); /* below 4 GiB: elf__parse checked */
	li->initrd_max = LINUX_VMLINUX_INITRD_MAX;
	li->cmdline_size = LINUX_VMLINUX_CMDLINE;
	li->version = HDR_MIN_VERSION;
	h->boot_flag = HDR_BOOT_FLAG;
	h->header = HDR_MAGIC;
	h->version = HDR_MIN_VERSION;
	h->loadflags = LOADFLAG_LOADED_HIGH;
	h->initrd_addr_max = li->initrd_max;
	h->cmdline_size = li->cmdline_size;
	h->init_size = li->init_size;
	h->pref_address = lo;
	h->xloadflags = XLF_KERNEL_64;
	return 0;
}

int linux__parse(const void *buf, size_t len, struct linux_image *li, char *why)
{
	if (linux__is_vmlinux(buf, len))
		return linux_parse_vmlinux(buf, len, li, why);
	return linux_parse_bzimage(buf, len, li, why);
}

int linux__place(const struct linux_image *li, const struct guest_ram *ram, uint64_t initrd_size,
		 const char *cmdline, struct linux_layout *out, char *why)
{
	uint64_t low = ram->banks[0].size, need, top;
	size_t cmd_len = strlen(cmdline);

	memset(out, 0, sizeof(*out));
	need = li->pref_address > li->load_gpa ? li->pref_address : li->load_gpa;
	need += li->init_size;
	if (li->format == LINUX_BZIMAGE && need < li->load_gpa + li->kernel_len)
		need = li->load_gpa + li->kernel_len;
	if (need > low) {
		snprintf(why, LINUX_WHY_LEN,
			 "the kernel needs %llu MiB of RAM %s, the guest has %llu MiB below 3 GiB: "
			 "raise --mem",
			 (unsigned long long)((need + SZ_1M - 1) / SZ_1M),
			 li->format == LINUX_VMLINUX ? "for its segments" : "to decompress itself",
			 (unsigned long long)(low / SZ_1M));
		return -ENOSPC;
	}
	if (cmd_len + 1 > LINUX_CMDLINE_MAX || cmd_len > li->cmdline_size) {
		snprintf(why, LINUX_WHY_LEN,
			 "the command line is %zu bytes, this kernel takes at most %u", cmd_len,
			 li->cmdline_size < LINUX_CMDLINE_MAX - 1 ? li->cmdline_size
								  : LINUX_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	out->cmdline_len = cmd_len;
	if (!initrd_size)
		return 0;
	top = low;
	if (top > (uint64_t)li->initrd_max + 1)
		top = (uint64_t)li->initrd_max + 1;
	if (initrd_size > top || ((top - initrd_size) & ~PAGE_MASK_4K) < need) {
		snprintf(why, LINUX_WHY_LEN,
			 "the initrd (%llu bytes) does not fit between the kernel (up to %llu MiB) "
			 "and the top of low RAM (%llu MiB): raise --mem",
			 (unsigned long long)initrd_size,
			 (unsigned long long)((need + SZ_1M - 1) / SZ_1M),
			 (unsigned long long)(top / SZ_1M));
		return -ENOSPC;
	}
	out->initrd_gpa = (top - initrd_size) & ~PAGE_MASK_4K;
	out->initrd_size = initrd_size;
	return 0;
}

static void linux_e820_add(struct boot_e820_entry *e, unsigned *n, uint64_t addr, uint64_t size,
			   uint32_t type)
{
	if (!size || *n == LINUX_E820_MAX)
		return;
	e[*n].addr = addr;
	e[*n].size = size;
	e[*n].type = type;
	(*n)++;
}

unsigned linux__e820(const struct guest_ram *ram, struct boot_e820_entry *e)
{
	uint64_t low = ram->banks[0].size;
	unsigned n = 0, i;

	linux_e820_add(e, &n, 0, LINUX_EBDA_GPA, LINUX_E820_RAM);
	linux_e820_add(e, &n, LINUX_EBDA_GPA, LINUX_KERNEL_GPA - LINUX_EBDA_GPA,
		       LINUX_E820_RESERVED);
	if (low > LINUX_KERNEL_GPA)
		linux_e820_add(e, &n, LINUX_KERNEL_GPA, low - LINUX_KERNEL_GPA, LINUX_E820_RAM);
	for (i = 1; i < ram->nr_banks; i++)
		linux_e820_add(e, &n, ram->banks[i].gpa, ram->banks[i].size, LINUX_E820_RAM);
	return n;
}

void linux__boot_params(struct boot_params *bp, const struct linux_image *li,
			const struct linux_layout *lay, const struct guest_ram *ram)
{
	memset(bp, 0, sizeof(*bp));
	bp->hdr = li->hdr;
	bp->hdr.type_of_loader = TYPE_OF_LOADER_OTHER;
	bp->hdr.code32_start = (uint32_t)li->load_gpa;
	bp->hdr.cmd_line_ptr = (uint32_t)LINUX_CMDLINE_GPA;
	bp->hdr.ramdisk_image = (uint32_t)lay->initrd_gpa;
	bp->hdr.ramdisk_size = (uint32_t)lay->initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(lay->initrd_gpa >> 32);
	bp->ext_ramdisk_size = (uint32_t)(lay->initrd_size >> 32);
	bp->e820_entries = (uint8_t)linux__e820(ram, bp->e820_table);
}
