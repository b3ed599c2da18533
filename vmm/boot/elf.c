#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "vmm/boot/elf.h"

#define elf__reject(why, ...) log__why(why, ELF_WHY_LEN, -ENOEXEC, __VA_ARGS__)

static int elf_check_header(const Elf64_Ehdr *eh, size_t len, char why[ELF_WHY_LEN])
{
	uint64_t ph_end;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return elf__reject(why, "not an ELF file (bad magic)");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return elf__reject(why, "wrong ELF class: %s, need 64-bit",
				   eh->e_ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "unknown");
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return elf__reject(why, "not little-endian");
	if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return elf__reject(why, "unknown ELF version %u", eh->e_ident[EI_VERSION]);
	if (eh->e_machine != EM_X86_64)
		return elf__reject(why, "machine %u is not x86-64 (62)", eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return elf__reject(why,
				   "ELF type %u: need a statically linked executable (ET_EXEC)",
				   eh->e_type);
	if (eh->e_phnum == 0)
		return elf__reject(why, "no program headers");
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return elf__reject(why, "program header size %u, expected %zu", eh->e_phentsize,
				   sizeof(Elf64_Phdr));
	if (__builtin_mul_overflow((uint64_t)eh->e_phnum, sizeof(Elf64_Phdr), &ph_end) ||
	    __builtin_add_overflow(ph_end, eh->e_phoff, &ph_end) || ph_end > len)
		return elf__reject(why,
				   "truncated: %u program headers at offset %" PRIu64
				   " extend beyond the end of the file (%zu bytes)",
				   eh->e_phnum, (uint64_t)eh->e_phoff, len);
	return 0;
}

void elf__phdr(const void *buf, uint64_t phoff, unsigned i, Elf64_Phdr *ph)
{
	memcpy(ph, (const uint8_t *)buf + phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

static int elf_add_segment(struct elf_image *img, const Elf64_Phdr *ph, unsigned idx, size_t len,
			   uint64_t load_min, uint64_t load_max, char why[ELF_WHY_LEN])
{
	uint64_t file_end, mem_end;
	unsigned i;

	if (ph->p_filesz > ph->p_memsz)
		return elf__reject(
			why, "segment %u: file size 0x%" PRIx64 " exceeds memory size 0x%" PRIx64,
			idx, (uint64_t)ph->p_filesz, (uint64_t)ph->p_memsz);
	if (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &file_end) || file_end > len)
		return elf__reject(why,
				   "truncated: segment %u (offset %" PRIu64 ", %" PRIu64
				   " bytes) extends beyond the end of the file (%zu bytes)",
				   idx, (uint64_t)ph->p_offset, (uint64_t)ph->p_filesz, len);
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &mem_end) || ph->p_paddr < load_min ||
	    mem_end > load_max)
		return elf__reject(why,
				   "segment %u: GPA 0x%" PRIx64 "+0x%" PRIx64
				   " is outside the loadable RAM 0x%" PRIx64 "-0x%" PRIx64,
				   idx, (uint64_t)ph->p_paddr, (uint64_t)ph->p_memsz, load_min,
				   load_max);
	for (i = 0; i < img->nr_segments; i++) {
		const struct elf_segment *s = &img->segments[i];

		if (ph->p_memsz && s->mem_size && ph->p_paddr < s->gpa + s->mem_size &&
		    s->gpa < mem_end)
			return elf__reject(
				why, "segment %u overlaps an earlier segment at GPA 0x%" PRIx64,
				idx, (uint64_t)ph->p_paddr);
	}
	if (img->nr_segments == ELF_MAX_SEGMENTS)
		return elf__reject(why, "more than %d loadable segments", ELF_MAX_SEGMENTS);
	img->segments[img->nr_segments++] = (struct elf_segment){
		ph->p_paddr,
		ph->p_offset,
		ph->p_filesz,
		ph->p_memsz,
	};
	return 0;
}

int elf__parse(const void *buf, size_t len, uint64_t load_min, uint64_t load_max,
	       struct elf_image *img, char why[ELF_WHY_LEN])
{
	const Elf64_Ehdr *eh = buf;
	bool entry_ok = false;
	unsigned i;
	int ret;

	memset(img, 0, sizeof(*img));
	if (len < SELFMAG || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return elf__reject(why, "not an ELF file (bad magic)");
	if (len < sizeof(*eh))
		return elf__reject(why, "truncated: %zu bytes, an ELF header needs %zu", len,
				   sizeof(*eh));
	ret = elf_check_header(eh, len, why);
	if (ret)
		return ret;
	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		elf__phdr(buf, eh->e_phoff, i, &ph);
		if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
			return elf__reject(why, "dynamically linked: need a static executable");
		if (ph.p_type != PT_LOAD)
			continue;
		ret = elf_add_segment(img, &ph, i, len, load_min, load_max, why);
		if (ret)
			return ret;
		if ((ph.p_flags & PF_X) && eh->e_entry >= ph.p_paddr &&
		    eh->e_entry < ph.p_paddr + ph.p_memsz)
			entry_ok = true;
	}
	if (img->nr_segments == 0)
		return elf__reject(why, "no loadable segment");
	if (!entry_ok)
		return elf__reject(why, "entry point 0x%" PRIx64 " is not in an executable segment",
				   (uint64_t)eh->e_entry);
	img->entry = eh->e_entry;
	return 0;
}

int elf__load(const void *buf, const struct elf_image *img, const struct guest_access *ga)
{
	unsigned i;
	int err = 0;

	for (i = 0; i < img->nr_segments; i++) {
		const struct elf_segment *s = &img->segments[i];
		uint8_t *dst;

		if (!s->mem_size)
			continue;
		dst = ga->ptr(ga->ctx, s->gpa, s->mem_size, &err);
		if (!dst)
			return err;
		memcpy(dst, (const char *)buf + s->file_offset, s->file_size);
		memset(dst + s->file_size, 0, s->mem_size - s->file_size);
	}
	return 0;
}
