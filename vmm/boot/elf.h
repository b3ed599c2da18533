/*
 * Validation and loading of the guest image: a statically linked x86-64
 * ELF executable (ET_EXEC) whose PT_LOAD segments are placed at their
 * physical addresses. The file is untrusted input: every offset, size and
 * address is checked with overflow-safe arithmetic before use.
 */
#ifndef FAULTLINE_ELF_H
#define FAULTLINE_ELF_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/guest_ram.h"

#define ELF_MAX_SEGMENTS 16
#define ELF_WHY_LEN	 160

struct elf_segment {
	uint64_t gpa;
	uint64_t file_offset;
	uint64_t file_size;
	uint64_t mem_size;
};

struct elf_image {
	uint64_t entry;
	unsigned nr_segments;
	struct elf_segment segments[ELF_MAX_SEGMENTS];
};

/*
 * Check @len bytes at @buf and describe its segments in @img. Every
 * segment must lie inside [load_min, load_max). Returns 0, or -ENOEXEC with
 * the reason in @why (e.g. "wrong ELF class: 32-bit, need 64-bit").
 */
int elf__parse(const void *buf, size_t len, uint64_t load_min, uint64_t load_max,
	       struct elf_image *img, char why[ELF_WHY_LEN]) __attribute__((warn_unused_result));

/*
 * Program header @i of a file whose headers were checked to lie inside it
 * (@phoff: e_phoff), copied to @ph: a file's offsets promise no alignment.
 */
void elf__phdr(const void *buf, uint64_t phoff, unsigned i, Elf64_Phdr *ph);

/*
 * Copy the segments of a parsed image into guest memory through @ga,
 * zeroing each segment's tail past its file size. Returns 0, or @ga's
 * error (-EFAULT: a segment is not inside RAM; -ENOMEM: out of memory).
 */
int elf__load(const void *buf, const struct elf_image *img, const struct guest_access *ga)
	__attribute__((warn_unused_result));

#endif
