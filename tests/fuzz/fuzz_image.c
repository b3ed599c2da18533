/*
 * Fuzz target: kernel images, the way `faultline run --kernel FILE` takes
 * them (vmm/main.c): a bzImage or a vmlinux through linux__parse(),
 * linux__place() and the zero page, anything else as one of faultline's
 * ELF guests through elf__parse(); then the segments are loaded.
 *
 * The input's first two bytes pick the VM's memory size (4 MiB to 63 GiB,
 * in 2 MiB steps) and the third the initrd's size; the rest is the file.
 * Guest RAM is not mapped: the loader's accessor checks each range against
 * the layout, as the MMU's does, and serves it from a scratch buffer.
 *
 * Invariants, beyond "no crash, no sanitizer report": an image that parsed
 * and was placed is loaded only inside RAM; the initrd lies in low RAM,
 * page-aligned, below the kernel's limit; the e820 map stays in its array
 * and covers all of RAM; every rejection says why.
 */
#include <errno.h>
#include <stdbool.h>

#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/boot/elf.h"
#include "vmm/boot/linux.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/cmd/cli.h"

#define SCRATCH (4U << 20)

static uint8_t scratch[SCRATCH];
static struct guest_ram layout;
static char log_buf[4096];

/* Like the MMU's accessor: the whole range in one bank, or -EFAULT. */
static void *load_ptr(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	unsigned i;

	(void)ctx;
	for (i = 0; i < layout.nr_banks; i++) {
		const struct guest_ram_bank *b = &layout.banks[i];

		if (len && gpa >= b->gpa && gpa - b->gpa < b->size &&
		    len <= b->size - (gpa - b->gpa)) {
			if (len > SCRATCH) {
				*err = -ENOMEM; /* a budget that cannot back it */
				return NULL;
			}
			return scratch;
		}
	}
	fuzz__check(false, "a parsed image loads outside RAM: GPA 0x%llx, %llu bytes",
		    (unsigned long long)gpa, (unsigned long long)len);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log__capture(log_buf, sizeof(log_buf));
	return 0;
}

static void check_e820(void)
{
	struct boot_e820_entry e[LINUX_E820_MAX + 1];
	uint64_t ram = 0;
	unsigned n, i;

	memset(e, 0xa5, sizeof(e));
	n = linux__e820(&layout, e);
	fuzz__check(n >= 2 && n <= LINUX_E820_MAX, "%u e820 entries", n);
	fuzz__check(e[LINUX_E820_MAX].addr == 0xa5a5a5a5a5a5a5a5ULL, "e820 map overran its array");
	for (i = 0; i < n; i++)
		if (e[i].type == LINUX_E820_RAM)
			ram += e[i].size;
	fuzz__check(ram + (1 << 20) - LINUX_EBDA_GPA == layout.size,
		    "e820 RAM %llu + the reserved area != %llu bytes of RAM",
		    (unsigned long long)ram, (unsigned long long)layout.size);
}

static void fuzz_linux(const uint8_t *image, size_t len, uint64_t initrd_size)
{
	struct guest_access ga = {.ptr = load_ptr};
	struct linux_layout lay;
	struct linux_image li;
	static struct boot_params bp;
	char why[LINUX_WHY_LEN] = "";

	if (linux__parse(image, len, &li, why)) {
		fuzz__check(why[0], "a kernel image refused without a reason");
		return;
	}
	fuzz__check(li.kernel >= image && li.kernel_len <= len - (size_t)(li.kernel - image),
		    "the kernel is not inside the file");
	if (linux__place(&li, &layout, initrd_size, "console=ttyS0", &lay, why)) {
		fuzz__check(why[0], "a kernel that does not fit refused without a reason");
		return;
	}
	if (initrd_size) {
		fuzz__check(lay.initrd_gpa && !(lay.initrd_gpa & 4095) &&
				    lay.initrd_gpa + initrd_size <= layout.banks[0].size &&
				    lay.initrd_gpa + initrd_size - 1 <= li.initrd_max,
			    "initrd at GPA 0x%llx (%llu bytes): outside low RAM or the kernel's "
			    "limit 0x%x",
			    (unsigned long long)lay.initrd_gpa, (unsigned long long)initrd_size,
			    li.initrd_max);
	}
	linux__boot_params(&bp, &li, &lay, &layout);
	fuzz__check(bp.e820_entries <= LINUX_E820_MAX, "%u e820 entries in the zero page",
		    bp.e820_entries);
	if (li.format == LINUX_VMLINUX)
		(void)elf__load(li.kernel, &li.elf, &ga);
}

static void fuzz_elf(const uint8_t *image, size_t len)
{
	struct guest_access ga = {.ptr = load_ptr};
	char why[ELF_WHY_LEN] = "";
	struct elf_image img;

	if (elf__parse(image, len, BOOT_IMAGE_MIN_GPA, layout.banks[0].size, &img, why)) {
		fuzz__check(why[0], "an ELF image refused without a reason");
		return;
	}
	fuzz__check(img.nr_segments >= 1 && img.nr_segments <= ELF_MAX_SEGMENTS, "%u segments",
		    img.nr_segments);
	(void)elf__load(image, &img, &ga);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint64_t mem = VM_MEM_MIN + (uint64_t)(fuzz__u16(&in) % 32255) * VM_MEM_ALIGN;
	uint64_t initrd_size = (uint64_t)fuzz__u8(&in) << 20;
	uint8_t *image;

	fuzz__check(guest_ram__layout(&layout, mem) == 0, "no layout for %llu bytes",
		    (unsigned long long)mem);
	check_e820();
	/* The file as read_file() gives it: in a buffer of its own, aligned as malloc() aligns. */
	image = malloc(in.n ? in.n : 1);
	fuzz__check(image, "out of memory");
	memcpy(image, in.p, in.n);
	if (linux__is_bzimage(image, in.n) || linux__is_vmlinux(image, in.n))
		fuzz_linux(image, in.n, initrd_size);
	else
		fuzz_elf(image, in.n);
	free(image);
	return 0;
}
