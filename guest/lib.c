/*
 * The few C library functions the guest and Debian's libfdt.a need, plus a
 * small vsnprintf. Freestanding: no SSE assumptions, no allocation.
 */
#include <libfdt_env.h>

#include "guest.h"

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	if (dp <= sp || dp >= sp + n)
		return memcpy(d, s, n);
	while (n--)
		dp[n] = sp[n];
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *ap = a, *bp = b;

	for (; n; n--, ap++, bp++)
		if (*ap != *bp)
			return *ap - *bp;
	return 0;
}

void *memchr(const void *s, int c, size_t n)
{
	const unsigned char *p = s;

	for (; n; n--, p++)
		if (*p == (unsigned char)c)
			return (void *)p;
	return NULL;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

char *strchr(const char *s, int c);
char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

char *strrchr(const char *s, int c);
char *strrchr(const char *s, int c)
{
	const char *last = NULL;

	for (;; s++) {
		if (*s == (char)c)
			last = s;
		if (!*s)
			return (char *)last;
	}
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/* Saturates at ULONG_MAX like the real one; no errno here. */
unsigned long strtoul(const char *s, char **end, int base)
{
	unsigned long v = 0;
	int d, overflow = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if ((base == 0 || base == 16) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		base = 16;
	} else if (base == 0) {
		base = s[0] == '0' ? 8 : 10;
	}
	for (; (d = digit_value(*s)) < base; s++) {
		if (__builtin_mul_overflow(v, (unsigned long)base, &v) ||
		    __builtin_add_overflow(v, (unsigned long)d, &v))
			overflow = 1;
	}
	if (end)
		*end = (char *)s;
	return overflow ? ~0UL : v;
}

void __stack_chk_fail(void);
void __stack_chk_fail(void)
{
	gprintf("guest: stack protector tripped\n");
	halt_forever();
}

struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, char c)
{
	if (o->pos + 1 < o->len)
		o->buf[o->pos] = c;
	o->pos++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, int width, char pad)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (width-- > n)
		put(o, pad);
	while (n)
		put(o, tmp[--n]);
}

/* %s %c %d %u %x %p %%, with l/ll, width and 0-padding. */
int vsnprintf_(char *buf, size_t len, const char *fmt, va_list ap)
{
	struct out o = {buf, len, 0};

	for (; *fmt; fmt++) {
		int longs = 0, width = 0;
		char pad = ' ';

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l')
			longs++, fmt++;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			for (s = s ? s : "(null)"; *s; s++)
				put(&o, *s);
			break;
		}
		case 'c': put(&o, (char)va_arg(ap, int)); break;
		case 'd': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);

			if (v < 0) {
				put(&o, '-');
				v = -v;
			}
			put_num(&o, (uint64_t)v, 10, width, pad);
			break;
		}
		case 'u':
			put_num(&o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width,
				pad);
			break;
		case 'x':
			put_num(&o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width,
				pad);
			break;
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (uint64_t)va_arg(ap, void *), 16, 0, ' ');
			break;
		case '%': put(&o, '%'); break;
		default: put(&o, '?'); break;
		}
	}
	if (o.len)
		o.buf[o.pos < o.len ? o.pos : o.len - 1] = '\0';
	return (int)o.pos;
}

uint32_t crc32_update(uint32_t crc, const volatile void *p, uint64_t len)
{
	static uint32_t table[256];
	const volatile uint8_t *b = p;
	uint32_t c;
	uint64_t i;
	unsigned k;

	if (!table[1])
		for (i = 0; i < 256; i++) {
			for (c = (uint32_t)i, k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ c >> 1 : c >> 1;
			table[i] = c;
		}
	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = table[(crc ^ b[i]) & 0xff] ^ crc >> 8;
	return ~crc;
}

uint32_t crc32_of(const volatile void *p, uint64_t len)
{
	return crc32_update(0, p, len);
}
