/*
 * Workloads of the test guest. Each runs on every vCPU and returns a guest
 * exit status; vCPU 0 exits with the worst one.
 */
#include "guest.h"

static volatile uint64_t pages_verified;

static int hello(const struct guest *g, uint32_t cpu)
{
	if (cpu == 0)
		gprintf("hello: faultline test guest, %u vCPUs, cmdline '%s'\n", g->ncpus,
			g->cmdline);
	gprintf("hello: vCPU %u up\n", cpu);
	return GUEST_EXIT_OK;
}

static uint64_t pattern(uint64_t gpa)
{
	uint64_t x = gpa * 0x9e3779b97f4a7c15ULL;

	return x ^ (x >> 29) ^ 0xfa017111e5ULL;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* A permutation of 0..n-1: i -> (i * stride + offset) mod n, gcd(stride, n) = 1. */
struct order {
	uint64_t n, stride, offset;
};

static void order_init(struct order *o, uint64_t n, int random, uint32_t cpu)
{
	o->n = n;
	o->stride = 1;
	o->offset = 0;
	if (!random || n < 2)
		return;
	o->stride = (0x9e3779b1ULL + cpu * 7919ULL) % n;
	while (o->stride < 2 || gcd(o->stride, n) != 1)
		o->stride = (o->stride + 1) % n;
	o->offset = (cpu * 104729ULL) % n;
}

static uint64_t order_page(const struct order *o, uint64_t i)
{
	return (i * o->stride + o->offset) % o->n;
}

static int verify_page(uint64_t *page, uint64_t gpa, int written)
{
	uint64_t k;

	for (k = 0; k < PAGE_SIZE / 8; k++) {
		uint64_t want = written ? pattern(gpa + k * 8) : 0;

		if (page[k] != want) {
			gprintf("touch: GPA 0x%lx holds 0x%lx, expected 0x%lx\n", gpa + k * 8,
				page[k], want);
			return -1;
		}
	}
	return 0;
}

static int parse_choice(const struct guest *g, const char *key, const char *a, const char *b,
			int *is_b)
{
	const char *v = guest_arg(g, key);

	*is_b = 0;
	if (!v || !strcmp(v, a))
		return 0;
	if (!strcmp(v, b)) {
		*is_b = 1;
		return 0;
	}
	gprintf("touch: %s=%s: expected %s or %s\n", key, v, a, b);
	return -1;
}

/*
 * touch: pages=N (1024) order=seq|random access=write|read. Each vCPU owns N pages
 * after the image. "write" fills every word with a GPA-derived pattern in
 * the given order, then reads all back in the same order; "read" checks
 * that never-written memory reads as zeros.
 */
static int touch(const struct guest *g, uint32_t cpu)
{
	uint64_t n, base, i, verified = 0;
	int random, read, write;
	struct order o;

	if (guest_arg_u64(g, "pages", 1024, &n) ||
	    parse_choice(g, "order", "seq", "random", &random) ||
	    parse_choice(g, "access", "write", "read", &read))
		return GUEST_EXIT_ARGS;
	write = !read;
	if (n == 0 || n > (g->ram_end - g->ram_start) / PAGE_SIZE / g->ncpus) {
		if (cpu == 0)
			gprintf("touch: %lu pages on %u vCPUs do not fit in %lu free bytes\n", n,
				g->ncpus, g->ram_end - g->ram_start);
		return GUEST_EXIT_NOMEM;
	}
	base = g->ram_start + cpu * n * PAGE_SIZE;
	order_init(&o, n, random, cpu);
	if (write) {
		for (i = 0; i < n; i++) {
			uint64_t gpa = base + order_page(&o, i) * PAGE_SIZE;
			uint64_t *page = (uint64_t *)gpa, k;

			for (k = 0; k < PAGE_SIZE / 8; k++)
				page[k] = pattern(gpa + k * 8);
		}
	}
	for (i = 0; i < n; i++) {
		uint64_t gpa = base + order_page(&o, i) * PAGE_SIZE;

		if (verify_page((uint64_t *)gpa, gpa, write))
			return GUEST_EXIT_VERIFY;
		verified++;
	}
	__atomic_add_fetch(&pages_verified, verified, __ATOMIC_ACQ_REL);
	gprintf("touch: vCPU %u verified %lu pages at GPA 0x%lx (%s, %s)\n", cpu, verified, base,
		random ? "random" : "seq", write ? "write" : "read");
	return GUEST_EXIT_OK;
}

static int touch_report(const struct guest *g, uint32_t cpu)
{
	static volatile uint32_t finished;
	int status = touch(g, cpu);

	__atomic_add_fetch(&finished, 1, __ATOMIC_ACQ_REL);
	if (cpu == 0) {
		while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < g->ncpus)
			cpu_relax();
		if (status == GUEST_EXIT_OK)
			gprintf("touch: verified %lu pages on %u vCPUs\n",
				__atomic_load_n(&pages_verified, __ATOMIC_ACQUIRE), g->ncpus);
	}
	return status;
}

/* crash: vCPU 0 raises #UD, which has no handler (trap.c): a triple fault. */
static int crash(const struct guest *g, uint32_t cpu)
{
	(void)g;
	if (cpu == 0) {
		gprintf("crash: raising #UD, which has no handler\n");
		__asm__ volatile("ud2");
	}
	return GUEST_EXIT_OK;
}

/* badio: kind=mmio (addr=GPA) or kind=pio (port=N): an access no device claims. */
static int badio(const struct guest *g, uint32_t cpu)
{
	uint64_t addr, port;
	int pio;

	if (cpu != 0)
		return GUEST_EXIT_OK;
	if (parse_choice(g, "kind", "mmio", "pio", &pio) ||
	    guest_arg_u64(g, "addr", 0xd0000000, &addr) ||
	    guest_arg_u64(g, "port", 0xdead, &port) || port > 0xffff)
		return GUEST_EXIT_ARGS;
	if (pio) {
		gprintf("badio: reading port 0x%lx\n", port);
		(void)inb((uint16_t)port);
	} else {
		gprintf("badio: reading GPA 0x%lx\n", addr);
		(void)*(volatile uint32_t *)addr;
	}
	gprintf("badio: the access returned\n");
	return GUEST_EXIT_VERIFY;
}

/* exit: status=N, written to the exit device as is (the monitor checks the range). */
static int exit_status(const struct guest *g, uint32_t cpu)
{
	uint64_t status;

	if (guest_arg_u64(g, "status", 0, &status) || status > 0xffffffffULL)
		return GUEST_EXIT_ARGS;
	if (cpu == 0)
		outl(g->exit_port, (uint32_t)status);
	return GUEST_EXIT_OK;
}

/* spin: vCPU 0 loops forever (the monitor must still stop on a signal). */
static int spin(const struct guest *g, uint32_t cpu)
{
	(void)g;
	if (cpu == 0) {
		gprintf("spin: looping forever\n");
		for (;;)
			cpu_relax();
	}
	return GUEST_EXIT_OK;
}

/* halt: every vCPU halts with interrupts off and nobody exits. */
static int halt(const struct guest *g, uint32_t cpu)
{
	(void)g;
	gprintf("halt: vCPU %u halting\n", cpu);
	halt_forever();
}

const struct workload workloads[] = {
	{"hello", hello},      {"touch", touch_report}, {"crash", crash}, {"badio", badio},
	{"exit", exit_status}, {"spin", spin},		{"halt", halt},	  {NULL, NULL},
};
