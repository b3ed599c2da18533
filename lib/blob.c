#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/blob.h"
#include "lib/inject.h"

void blob__init(struct blob *b)
{
	memset(b, 0, sizeof(*b));
}

void blob__free(struct blob *b)
{
	free(b->buf);
	blob__init(b);
}

static uint8_t *blob_room(struct blob *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->err)
		return NULL;
	if (n > SIZE_MAX / 2 - b->len) {
		b->err = -EINVAL;
		return NULL;
	}
	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		p = inject__check("blob.alloc") ? NULL : realloc(b->buf, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->buf = p;
		b->cap = cap;
	}
	p = b->buf + b->len;
	b->len += n;
	return p;
}

static void blob_le(struct blob *b, uint64_t v, unsigned bytes)
{
	uint8_t *p = blob_room(b, bytes);
	unsigned i;

	for (i = 0; p && i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void blob__u8(struct blob *b, uint8_t v)
{
	blob_le(b, v, 1);
}

void blob__u16(struct blob *b, uint16_t v)
{
	blob_le(b, v, 2);
}

void blob__u32(struct blob *b, uint32_t v)
{
	blob_le(b, v, 4);
}

void blob__u64(struct blob *b, uint64_t v)
{
	blob_le(b, v, 8);
}

void blob__bool(struct blob *b, bool v)
{
	blob_le(b, v ? 1 : 0, 1);
}

void blob__bytes(struct blob *b, const void *src, size_t n)
{
	uint8_t *p = blob_room(b, n);

	if (p && n)
		memcpy(p, src, n);
}

size_t blob__section(struct blob *b, const char *name, uint16_t version)
{
	size_t n = strlen(name), at;

	if (!n || n > BLOB_NAME_MAX) {
		if (!b->err)
			b->err = -EINVAL;
		return 0;
	}
	blob__u8(b, (uint8_t)n);
	blob__bytes(b, name, n);
	blob__u16(b, version);
	at = b->len;
	blob__u32(b, 0);
	return at;
}

void blob__section_end(struct blob *b, size_t at)
{
	uint64_t n;
	unsigned i;

	if (b->err)
		return;
	n = b->len - at - 4;
	if (n > UINT32_MAX) {
		b->err = -EINVAL;
		return;
	}
	for (i = 0; i < 4; i++)
		b->buf[at + i] = (uint8_t)(n >> (8 * i));
}

int blob__end(const struct blob *b)
{
	return b->err;
}

void blob_reader__init(struct blob_reader *r, const void *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
}

int blob__fail(struct blob_reader *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->err) {
		r->err = -EINVAL;
		va_start(ap, fmt);
		vsnprintf(r->why, sizeof(r->why), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const uint8_t *blob_take(struct blob_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		blob__fail(r, "it ends %zu bytes early (at byte %zu)", n - (r->len - r->off),
			   r->off);
		return NULL;
	}
	p = r->buf + r->off;
	r->off += n;
	return p;
}

static uint64_t blob_get_le(struct blob_reader *r, unsigned bytes)
{
	const uint8_t *p = blob_take(r, bytes);
	uint64_t v = 0;
	unsigned i;

	for (i = 0; p && i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t blob__get_u8(struct blob_reader *r)
{
	return (uint8_t)blob_get_le(r, 1);
}

uint16_t blob__get_u16(struct blob_reader *r)
{
	return (uint16_t)blob_get_le(r, 2);
}

uint32_t blob__get_u32(struct blob_reader *r)
{
	return (uint32_t)blob_get_le(r, 4);
}

uint64_t blob__get_u64(struct blob_reader *r)
{
	return blob_get_le(r, 8);
}

bool blob__get_bool(struct blob_reader *r)
{
	size_t at = r->off;
	uint8_t v = blob__get_u8(r);

	if (v > 1)
		blob__fail(r, "byte %zu is %u, expected 0 or 1", at, v);
	return v == 1;
}

void blob__get_bytes(struct blob_reader *r, void *dst, size_t n)
{
	const uint8_t *p = blob_take(r, n);

	if (p && n)
		memcpy(dst, p, n);
	else if (n)
		memset(dst, 0, n);
}

void blob__skip(struct blob_reader *r, size_t n)
{
	(void)blob_take(r, n);
}

int blob__enter(struct blob_reader *r, const char *name, uint16_t max_version, uint16_t *version,
		struct blob_reader *sub)
{
	char got[BLOB_NAME_MAX + 1];
	uint8_t n;
	uint32_t len;

	blob_reader__init(sub, NULL, 0);
	n = blob__get_u8(r);
	if (!r->err && (!n || n > BLOB_NAME_MAX))
		return blob__fail(r, "a section's name is %u bytes long, expected 1..%d", n,
				  BLOB_NAME_MAX);
	blob__get_bytes(r, got, n);
	got[n] = 0;
	if (!r->err && (strlen(got) != n || strcmp(got, name)))
		return blob__fail(r, "a section is named \"%.*s\", expected \"%s\"",
				  (int)strlen(got), got, name);
	*version = blob__get_u16(r);
	if (!r->err && (!*version || *version > max_version))
		return blob__fail(r, "section %s is of version %u, this faultline reads 1..%u",
				  name, *version, max_version);
	len = blob__get_u32(r);
	if (!r->err && len > r->len - r->off)
		return blob__fail(r, "section %s says %u bytes, %zu are left", name, len,
				  r->len - r->off);
	if (r->err)
		return -EINVAL;
	blob_reader__init(sub, r->buf + r->off, len);
	r->off += len;
	return 0;
}

int blob_reader__done(struct blob_reader *r)
{
	if (!r->err && r->off != r->len)
		blob__fail(r, "%zu bytes are left over", r->len - r->off);
	return r->err;
}
