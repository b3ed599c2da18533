#include <elf.h>
#include <errno.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "vmm/boot/elf.h"

#define MIN_GPA 0x100000ULL
#define MAX_GPA (64ULL << 20)

/* A valid image: code at 1 MiB (16 bytes from the file), bss of 8 KiB. */
struct image {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
	uint8_t code[16];
	uint8_t data[16];
};

static struct image img_buf;
static char why[ELF_WHY_LEN];

static void make_image(struct image *im)
{
	memset(im, 0, sizeof(*im));
	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_ident[EI_VERSION] = EV_CURRENT;
	im->eh.e_version = EV_CURRENT;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_entry = MIN_GPA + 4;
	im->eh.e_phoff = offsetof(struct image, ph);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = 2;
	im->ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
				 .p_flags = PF_R | PF_X,
				 .p_offset = offsetof(struct image, code),
				 .p_paddr = MIN_GPA,
				 .p_filesz = 16,
				 .p_memsz = 16};
	im->ph[1] = (Elf64_Phdr){.p_type = PT_LOAD,
				 .p_flags = PF_R | PF_W,
				 .p_offset = offsetof(struct image, data),
				 .p_paddr = MIN_GPA + 0x1000,
				 .p_filesz = 16,
				 .p_memsz = 0x2000};
	im->ph[2] = (Elf64_Phdr){.p_type = PT_NOTE};
	memset(im->code, 0x90, sizeof(im->code));
	memset(im->data, 0xab, sizeof(im->data));
}

static int parse_len(size_t len, struct elf_image *out)
{
	return elf__parse(&img_buf, len, MIN_GPA, MAX_GPA, out, why);
}

static void expect_reject(const char *want)
{
	struct elf_image out;

	ck_assert_int_eq(parse_len(sizeof(img_buf), &out), -ENOEXEC);
	ck_assert_str_eq(why, want);
}

START_TEST(valid_image)
{
	struct elf_image out;

	make_image(&img_buf);
	img_buf.eh.e_phnum = 3; /* non-PT_LOAD headers are skipped */
	ck_assert_int_eq(parse_len(sizeof(img_buf), &out), 0);
	ck_assert_uint_eq(out.entry, MIN_GPA + 4);
	ck_assert_uint_eq(out.nr_segments, 2);
	ck_assert_uint_eq(out.segments[1].gpa, MIN_GPA + 0x1000);
	ck_assert_uint_eq(out.segments[1].mem_size, 0x2000);
}
END_TEST

/* A file's offsets promise no alignment: headers at an odd offset are read as well (UBSan). */
START_TEST(program_headers_at_an_odd_offset)
{
	static uint8_t file[sizeof(struct image) + 1 + 3 * sizeof(Elf64_Phdr)];
	struct image *im = &img_buf;
	struct elf_image out;
	uint64_t phoff = sizeof(struct image) + 1;

	make_image(im);
	im->eh.e_phoff = phoff;
	memcpy(file, im, sizeof(*im));
	memcpy(file + phoff, im->ph, sizeof(im->ph));
	ck_assert_int_eq(elf__parse(file, sizeof(file), MIN_GPA, MAX_GPA, &out, why), 0);
	ck_assert_uint_eq(out.nr_segments, 2);
	ck_assert_uint_eq(out.segments[1].mem_size, 0x2000);
}
END_TEST

START_TEST(truncated)
{
	struct elf_image out;

	make_image(&img_buf);
	ck_assert_int_eq(parse_len(10, &out), -ENOEXEC);
	ck_assert_str_eq(why, "truncated: 10 bytes, an ELF header needs 64");
	ck_assert_int_eq(parse_len(3, &out), -ENOEXEC);
	ck_assert_str_eq(why, "not an ELF file (bad magic)");
	img_buf.eh.e_ident[1] = 'e';
	ck_assert_int_eq(parse_len(10, &out), -ENOEXEC);
	ck_assert_str_eq(why, "not an ELF file (bad magic)");
	img_buf.eh.e_ident[1] = 'E';
	ck_assert_int_eq(parse_len(100, &out), -ENOEXEC);
	ck_assert_str_eq(why, "truncated: 2 program headers at offset 64 extend beyond the end of "
			      "the file (100 bytes)");
	ck_assert_int_eq(parse_len(offsetof(struct image, data) + 8, &out), -ENOEXEC);
	ck_assert_str_eq(why, "truncated: segment 1 (offset 248, 16 bytes) extends beyond the end "
			      "of the file (256 bytes)");
}
END_TEST

START_TEST(bad_header_fields)
{
	make_image(&img_buf);
	img_buf.eh.e_ident[0] = 'x';
	expect_reject("not an ELF file (bad magic)");

	make_image(&img_buf);
	img_buf.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_reject("wrong ELF class: 32-bit, need 64-bit");

	make_image(&img_buf);
	img_buf.eh.e_ident[EI_DATA] = ELFDATA2MSB;
	expect_reject("not little-endian");

	make_image(&img_buf);
	img_buf.eh.e_machine = EM_AARCH64;
	expect_reject("machine 183 is not x86-64 (62)");

	make_image(&img_buf);
	img_buf.eh.e_type = ET_DYN;
	expect_reject("ELF type 3: need a statically linked executable (ET_EXEC)");

	make_image(&img_buf);
	img_buf.eh.e_phentsize = 40;
	expect_reject("program header size 40, expected 56");

	make_image(&img_buf);
	img_buf.eh.e_phnum = 0;
	expect_reject("no program headers");

	make_image(&img_buf);
	img_buf.eh.e_phoff = ~0ULL - 8;
	expect_reject("truncated: 2 program headers at offset 18446744073709551607 extend beyond "
		      "the end of the file (264 bytes)");
}
END_TEST

START_TEST(bad_segments)
{
	make_image(&img_buf);
	img_buf.ph[0].p_paddr = 0x1000;
	expect_reject("segment 0: GPA 0x1000+0x10 is outside the loadable RAM 0x100000-0x4000000");

	make_image(&img_buf);
	img_buf.ph[1].p_memsz = MAX_GPA;
	expect_reject(
		"segment 1: GPA 0x101000+0x4000000 is outside the loadable RAM 0x100000-0x4000000");

	make_image(&img_buf);
	img_buf.ph[1].p_paddr = ~0ULL - 4;
	expect_reject("segment 1: GPA 0xfffffffffffffffb+0x2000 is outside the loadable RAM "
		      "0x100000-0x4000000");

	make_image(&img_buf);
	img_buf.ph[1].p_paddr = MIN_GPA + 8;
	expect_reject("segment 1 overlaps an earlier segment at GPA 0x100008");

	make_image(&img_buf);
	img_buf.ph[1].p_filesz = 0x3000;
	expect_reject("segment 1: file size 0x3000 exceeds memory size 0x2000");

	make_image(&img_buf);
	img_buf.ph[1].p_offset = ~0ULL;
	expect_reject("truncated: segment 1 (offset 18446744073709551615, 16 bytes) extends beyond "
		      "the end of the file (264 bytes)");

	make_image(&img_buf);
	img_buf.ph[1].p_type = PT_INTERP;
	expect_reject("dynamically linked: need a static executable");

	make_image(&img_buf);
	img_buf.ph[0].p_type = PT_NOTE;
	img_buf.ph[1].p_type = PT_NOTE;
	expect_reject("no loadable segment");

	make_image(&img_buf);
	img_buf.eh.e_entry = MIN_GPA + 0x1000; /* in the data segment, not executable */
	expect_reject("entry point 0x101000 is not in an executable segment");
}
END_TEST

START_TEST(load_zeroes_bss)
{
	struct elf_image out;
	struct guest_access ga;
	struct guest_ram ram;
	uint8_t *p;

	make_image(&img_buf);
	ck_assert_int_eq(parse_len(sizeof(img_buf), &out), 0);
	ck_assert_int_eq(guest_ram__init(&ram, 4ULL << 20), 0);
	p = guest_ram__ptr(&ram, MIN_GPA, 0x3000);
	memset(p, 0x55, 0x3000);
	ga = guest_ram__direct(&ram);
	ck_assert_int_eq(elf__load(&img_buf, &out, &ga), 0);
	ck_assert_uint_eq(p[0], 0x90);
	ck_assert_uint_eq(p[15], 0x90);
	ck_assert_uint_eq(p[16], 0x55); /* between segments: untouched */
	ck_assert_uint_eq(p[0x1000], 0xab);
	ck_assert_uint_eq(p[0x100f], 0xab);
	ck_assert_uint_eq(p[0x1010], 0); /* bss */
	ck_assert_uint_eq(p[0x2fff], 0);
	guest_ram__exit(&ram);

	/* A segment beyond the RAM it is loaded into. */
	ck_assert_int_eq(guest_ram__init(&ram, 1ULL << 20), 0);
	ga = guest_ram__direct(&ram);
	ck_assert_int_eq(elf__load(&img_buf, &out, &ga), -EFAULT);
	guest_ram__exit(&ram);
}
END_TEST

Suite *elf_suite(void)
{
	Suite *s = suite_create("elf");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, valid_image);
	tcase_add_test(tc, program_headers_at_an_odd_offset);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, bad_header_fields);
	tcase_add_test(tc, bad_segments);
	tcase_add_test(tc, load_zeroes_bss);
	suite_add_tcase(s, tc);
	return s;
}
