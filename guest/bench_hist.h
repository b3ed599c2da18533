/*
 * The latency histogram of `faultline bench`, shared by the test guest
 * (which fills it with TSC cycles) and the monitor (which reads it back):
 * values below 16 have a bucket each; above, every power of two is cut
 * into 8 buckets, so a bucket is at most 12.5% wide. Freestanding C.
 */
#ifndef FAULTLINE_BENCH_HIST_H
#define FAULTLINE_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_BUCKETS 400 /* up to 2^51 cycles */

static inline unsigned bench_hist_bucket(uint64_t v)
{
	unsigned e, b;

	if (v < 16)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);
	b = 16 + (e - 4) * 8 + (unsigned)((v >> (e - 3)) & 7);
	return b < BENCH_HIST_BUCKETS ? b : BENCH_HIST_BUCKETS - 1;
}

/* The smallest value of bucket @b; its values end before bench_hist_low(b + 1). */
static inline uint64_t bench_hist_low(unsigned b)
{
	unsigned e;

	if (b < 16)
		return b;
	e = (b - 16) / 8 + 4;
	return (uint64_t)(8 + (b - 16) % 8) << (e - 3);
}

#endif
