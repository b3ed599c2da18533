/*
 * The order in which a touch visits its pages, shared by the test guest and
 * the engine-only benchmark (bench/uffd_touch.c) so that both walk the same
 * permutation: sequential, or i -> (i * stride + offset) mod n with a
 * stride coprime to n, different per vCPU. Freestanding C.
 */
#ifndef FAULTLINE_ORDER_H
#define FAULTLINE_ORDER_H

#include <stdint.h>

struct order {
	uint64_t n, stride, offset;
};

static inline uint64_t order_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static inline void order_init(struct order *o, uint64_t n, int random, uint32_t cpu)
{
	o->n = n;
	o->stride = 1;
	o->offset = 0;
	if (!random || n < 2)
		return;
	o->stride = (0x9e3779b1ULL + cpu * 7919ULL) % n;
	while (o->stride < 2 || order_gcd(o->stride, n) != 1)
		o->stride = (o->stride + 1) % n;
	o->offset = (cpu * 104729ULL) % n;
}

static inline uint64_t order_page(const struct order *o, uint64_t i)
{
	return (i * o->stride + o->offset) % o->n;
}

#endif
