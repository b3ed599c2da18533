/*
 * Booting Linux: the x86 boot protocol's 64-bit entry for a bzImage or an
 * uncompressed ELF vmlinux, the zero page (struct boot_params) with its
 * e820 map, and where the kernel, initrd and command line go in guest RAM.
 *
 * The image is untrusted input: linux__parse() checks every field it uses
 * against the file's length and the protocol's rules and says what is
 * wrong in @why. Nothing here touches KVM.
 *
 * Guest-physical layout of a Linux boot (below 1 MiB, on top of the page
 * tables and GDT of vmm/boot/x86_boot.h):
 *   0x50000  boot_params (the zero page)
 *   0x51000  kernel command line (at most LINUX_CMDLINE_MAX bytes)
 *   0x9fc00  MP table (vmm/boot/mptable.h), reserved in the e820 map up to 1 MiB
 *   0x100000 a bzImage's protected-mode kernel (code32_start), entered at
 *            +0x200; it decompresses itself to pref_address
 *   p_paddr  each PT_LOAD segment of a vmlinux (16 MiB for a stock x86-64
 *            kernel), entered at e_entry (startup_64's physical address)
 *   top of low RAM: the initrd, page aligned
 *
 * A vmlinux has no setup header: faultline writes the zero page's header
 * fields itself (signature, boot flag, loader type, command line and
 * initrd), the way a bzImage's own setup code would have left them. It is
 * entered directly, so no KASLR: the kernel runs where it was linked.
 */
#ifndef FAULTLINE_LINUX_H
#define FAULTLINE_LINUX_H

#include <asm/bootparam.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/guest_ram.h"
#include "vmm/boot/elf.h"

#define LINUX_BOOT_PARAMS_GPA 0x50000ULL
#define LINUX_CMDLINE_GPA     0x51000ULL
#define LINUX_CMDLINE_MAX     4096 /* bytes with the NUL; the kernel's cmdline_size may be less */
#define LINUX_EBDA_GPA	      0x9fc00ULL
#define LINUX_KERNEL_GPA      0x100000ULL
#define LINUX_WHY_LEN	      160
#define LINUX_E820_MAX	      8
#define LINUX_E820_RAM	      1
#define LINUX_E820_RESERVED   2

/* The x86-64 kernel's virtual map (__START_KERNEL_map): a vmlinux links here. */
#define LINUX_KERNEL_MAP	 0xffffffff80000000ULL
#define LINUX_VMLINUX_CMDLINE	 2047 /* COMMAND_LINE_SIZE - 1 */
#define LINUX_VMLINUX_INITRD_MAX 0x7fffffffU
#define LINUX_VMLINUX_MAX_GPA	 0x100000000ULL /* segments below 4 GiB */

enum linux_format {
	LINUX_BZIMAGE,
	LINUX_VMLINUX,
};

/* What linux__parse() learned from a bzImage or a vmlinux. */
struct linux_image {
	enum linux_format format;
	const uint8_t *kernel; /* bzImage: the protected-mode part; vmlinux: the file */
	size_t kernel_len;
	struct elf_image elf;	 /* vmlinux: its PT_LOAD segments */
	uint64_t load_gpa;	 /* bzImage: LINUX_KERNEL_GPA; vmlinux: lowest segment */
	uint64_t entry_gpa;	 /* the 64-bit entry: load_gpa + 0x200, or e_entry */
	uint64_t pref_address;	 /* where the kernel decompresses itself (vmlinux: load_gpa) */
	uint32_t init_size;	 /* bytes it needs there (vmlinux: up to its last segment's end) */
	uint32_t initrd_max;	 /* highest byte an initrd may occupy */
	uint32_t cmdline_size;	 /* longest command line it takes, without the NUL */
	uint16_t version;	 /* boot protocol version, 0x020c or later */
	struct setup_header hdr; /* copied into boot_params (vmlinux: made up here) */
};

/*
 * Check that @buf (@len bytes) is a kernel this monitor can boot.
 *
 * A bzImage: the "HdrS" signature, boot protocol 2.12 or later, a 64-bit
 * entry point (XLF_KERNEL_64), a relocatable kernel, setup sectors and
 * payload inside the file.
 *
 * A vmlinux (linux__is_vmlinux()): a 64-bit x86-64 ELF executable whose
 * PT_LOAD segments lie at physical addresses from 1 MiB to 4 GiB, do not
 * overlap, and hold the entry point in an executable one.
 *
 * Returns 0 and fills @li (pointing into @buf), or -EINVAL with the reason
 * in @why (LINUX_WHY_LEN bytes).
 */
int linux__parse(const void *buf, size_t len, struct linux_image *li, char *why)
	__attribute__((warn_unused_result));

/* Whether @buf looks like a bzImage at all (the "HdrS" magic), to pick a loader. */
bool linux__is_bzimage(const void *buf, size_t len);

/*
 * Whether @buf looks like an x86-64 vmlinux: an ELF64 x86-64 file with a
 * PT_LOAD segment linked in the kernel's virtual map (LINUX_KERNEL_MAP and
 * up), which faultline's own ELF guests never are.
 */
bool linux__is_vmlinux(const void *buf, size_t len);

/* Where the kernel, initrd and command line go, from linux__place(). */
struct linux_layout {
	uint64_t initrd_gpa; /* 0: no initrd */
	uint64_t initrd_size;
	uint64_t cmdline_len; /* without the NUL */
};

/*
 * Place an initrd of @initrd_size bytes (0: none) at the top of low RAM,
 * below the kernel's limit and above what the kernel needs, and check that
 * the kernel itself fits in @ram and the command line in its limit.
 * Returns 0, or -ENOSPC / -E2BIG with the reason in @why.
 */
int linux__place(const struct linux_image *li, const struct guest_ram *ram, uint64_t initrd_size,
		 const char *cmdline, struct linux_layout *out, char *why)
	__attribute__((warn_unused_result));

/*
 * The e820 map for @ram: RAM below the EBDA, the EBDA and BIOS area
 * reserved up to 1 MiB, RAM from 1 MiB, and the high bank when there is
 * one. Returns the number of entries written to @e (at most
 * LINUX_E820_MAX).
 */
unsigned linux__e820(const struct guest_ram *ram, struct boot_e820_entry *e);

/* Fill the zero page for @li placed as @lay on @ram. */
void linux__boot_params(struct boot_params *bp, const struct linux_image *li,
			const struct linux_layout *lay, const struct guest_ram *ram);

#endif
