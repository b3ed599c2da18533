/*
 * Page bitmaps of the MMU and the dedup engine: one bit per host page
 * index, read and written with atomics from any thread.
 */
#ifndef FAULTLINE_BITMAP_H
#define FAULTLINE_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#define BITS_PER_LONG (8 * sizeof(unsigned long))

static inline bool bit_test(const unsigned long *map, uint64_t i)
{
	unsigned long w = __atomic_load_n(&map[i / BITS_PER_LONG], __ATOMIC_ACQUIRE);

	return w & (1UL << (i % BITS_PER_LONG));
}

static inline void bit_set(unsigned long *map, uint64_t i)
{
	__atomic_or_fetch(&map[i / BITS_PER_LONG], 1UL << (i % BITS_PER_LONG), __ATOMIC_RELEASE);
}

/* Clear bit @i; true when it was set. */
static inline bool bit_test_clear(unsigned long *map, uint64_t i)
{
	unsigned long m = 1UL << (i % BITS_PER_LONG);

	return __atomic_fetch_and(&map[i / BITS_PER_LONG], ~m, __ATOMIC_ACQ_REL) & m;
}

/* Words of a bitmap of @bits bits. */
static inline uint64_t bitmap_words(uint64_t bits)
{
	return (bits + BITS_PER_LONG - 1) / BITS_PER_LONG;
}

#endif
