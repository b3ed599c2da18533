/*
 * Versioned blobs of device state: a writer that grows a buffer and a
 * reader that never reads past its end. Integers are little-endian. A
 * section is a name, a version and a length, then its bytes: a reader
 * checks the name and the version before it reads on, and that the
 * section's bytes are consumed exactly. Errors are sticky: after the
 * first, every call does nothing, and blob__end() / blob_reader__done()
 * say what went wrong. A blob read back is untrusted input.
 */
#ifndef FAULTLINE_BLOB_H
#define FAULTLINE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOB_NAME_MAX 32 /* bytes of a section's name, the NUL not counted */
#define BLOB_WHY_LEN  128

struct blob {
	uint8_t *buf;
	size_t len, cap;
	int err; /* 0, or -ENOMEM / -EINVAL: the first error */
};

struct blob_reader {
	const uint8_t *buf;
	size_t len, off;
	int err; /* 0 or -EINVAL */
	char why[BLOB_WHY_LEN];
};

void blob__init(struct blob *b);
void blob__free(struct blob *b);
void blob__u8(struct blob *b, uint8_t v);
void blob__u16(struct blob *b, uint16_t v);
void blob__u32(struct blob *b, uint32_t v);
void blob__u64(struct blob *b, uint64_t v);
void blob__bool(struct blob *b, bool v);
void blob__bytes(struct blob *b, const void *p, size_t n);

/*
 * Open a section @name (at most BLOB_NAME_MAX bytes) of @version; returns
 * where its length goes, for blob__section_end().
 */
size_t blob__section(struct blob *b, const char *name, uint16_t version);
void blob__section_end(struct blob *b, size_t at);
/* 0 or the first error. */
int blob__end(const struct blob *b);

void blob_reader__init(struct blob_reader *r, const void *buf, size_t len);
uint8_t blob__get_u8(struct blob_reader *r);
uint16_t blob__get_u16(struct blob_reader *r);
uint32_t blob__get_u32(struct blob_reader *r);
uint64_t blob__get_u64(struct blob_reader *r);
bool blob__get_bool(struct blob_reader *r); /* a byte 0 or 1; anything else is an error */
void blob__get_bytes(struct blob_reader *r, void *p, size_t n);
void blob__skip(struct blob_reader *r, size_t n); /* past @n bytes, read later from a copy of @r */

/*
 * Enter the section that comes next: it must be named @name and have a
 * version of 1..@max_version (*@version). @sub reads its bytes only; @r
 * goes on after them. 0 or -EINVAL.
 */
int blob__enter(struct blob_reader *r, const char *name, uint16_t max_version, uint16_t *version,
		struct blob_reader *sub);
/* Mark @r bad: @fmt says why (the first reason stays). Returns -EINVAL. */
int blob__fail(struct blob_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when every byte was read and none failed; else -EINVAL, r->why says why. */
int blob_reader__done(struct blob_reader *r);

#endif
