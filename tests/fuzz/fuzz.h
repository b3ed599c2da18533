/*
 * What the fuzz targets (tests/fuzz/fuzz_*.c, libFuzzer) share: a reader
 * that turns the fuzzer's bytes into a script of operations, and the rule
 * that every target checks invariants with fuzz__check(), which aborts (a
 * crash the fuzzer keeps) instead of asserting with Check.
 *
 * A reader past the end of its input reads zeros, so every input is a
 * whole script and the fuzzer never has to learn lengths.
 */
#ifndef FAULTLINE_FUZZ_H
#define FAULTLINE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t fuzz__take(struct fuzz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

#define fuzz__u8(in)  ((uint8_t)fuzz__take(in, 1))
#define fuzz__u16(in) ((uint16_t)fuzz__take(in, 2))
#define fuzz__u32(in) ((uint32_t)fuzz__take(in, 4))
#define fuzz__u64(in) fuzz__take(in, 8)

/* Copy up to @len bytes of the input into @dst; returns how many there were. */
static inline size_t fuzz__bytes(struct fuzz_in *in, void *dst, size_t len)
{
	size_t n = len < in->n ? len : in->n;

	memcpy(dst, in->p, n);
	in->p += n;
	in->n -= n;
	return n;
}

/* An invariant of the code under test: a crash the fuzzer keeps, with the reason. */
#define fuzz__check(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz: %s:%d: invariant broken: ", __FILE__, __LINE__);    \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
