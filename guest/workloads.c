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

uint64_t pattern(uint64_t gpa)
{
	uint64_t x = gpa * 0x9e3779b97f4a7c15ULL;

	return x ^ (x >> 29) ^ 0xfa017111e5ULL;
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

int guest_choice(const struct guest *g, const char *key, const char *a, const char *b, int *is_b)
{
	const char *v = guest_arg(g, key);

	*is_b = 0;
	if (!v || !strcmp(v, a))
		return 0;
	if (!strcmp(v, b)) {
		*is_b = 1;
		return 0;
	}
	gprintf("guest: %s=%s: expected %s or %s\n", key, v, a, b);
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
	    guest_choice(g, "order", "seq", "random", &random) ||
	    guest_choice(g, "access", "write", "read", &read))
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

/*
 * crc32: addr=GPA (the first free byte) len=N (1 MiB): vCPU 0 prints the
 * CRC-32 (IEEE 802.3, as zlib and `busybox crc32` compute it) of guest
 * memory, so that a test can compare it with the file that backs it.
 */
static int crc32(const struct guest *g, uint32_t cpu)
{
	uint64_t addr, len;

	if (cpu != 0)
		return GUEST_EXIT_OK;
	if (guest_arg_u64(g, "addr", g->ram_start, &addr) ||
	    guest_arg_u64(g, "len", 1UL << 20, &len))
		return GUEST_EXIT_ARGS;
	if (addr >= g->ram_end || len > g->ram_end - addr) {
		gprintf("crc32: [0x%lx, +0x%lx) is not in the first memory bank\n", addr, len);
		return GUEST_EXIT_ARGS;
	}
	gprintf("crc32: %08x %lu bytes at GPA 0x%lx\n", crc32_of((const void *)addr, len), len,
		addr);
	return GUEST_EXIT_OK;
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

/*
 * badio: kind=mmio (addr=GPA) or kind=pio (port=N), count=N (1): reads no
 * device claims. The monitor answers all ones and the guest goes on.
 */
static int badio(const struct guest *g, uint32_t cpu)
{
	uint64_t addr, port, count, wr, i, v = 0;
	int pio;

	if (cpu != 0)
		return GUEST_EXIT_OK;
	if (guest_choice(g, "kind", "mmio", "pio", &pio) ||
	    guest_arg_u64(g, "addr", 0xd0000000, &addr) ||
	    guest_arg_u64(g, "port", 0xdead, &port) || port > 0xffff ||
	    guest_arg_u64(g, "count", 1, &count) || guest_arg_u64(g, "write", ~0UL, &wr) ||
	    (wr != ~0UL && wr > (pio ? 0xffUL : 0xffffffffUL)))
		return GUEST_EXIT_ARGS;
	if (wr != ~0UL) { /* write=V: writes, which the monitor drops or a device refuses */
		gprintf("badio: writing 0x%lx to %s 0x%lx %lu times\n", wr, pio ? "port" : "GPA",
			pio ? port : addr, count);
		for (i = 0; i < count; i++)
			if (pio)
				outb((uint16_t)port, (uint8_t)wr);
			else
				*(volatile uint32_t *)addr = (uint32_t)wr;
		gprintf("badio: wrote %lu times\n", count);
		return GUEST_EXIT_OK;
	}
	gprintf("badio: reading %s 0x%lx %lu times\n", pio ? "port" : "GPA", pio ? port : addr,
		count);
	for (i = 0; i < count; i++)
		v = pio ? inb((uint16_t)port) : *(volatile uint32_t *)addr;
	gprintf("badio: read 0x%lx\n", v);
	return v == (pio ? 0xffUL : 0xffffffffUL) ? GUEST_EXIT_OK : GUEST_EXIT_VERIFY;
}

/*
 * exit: status=N cpu=C (0) touch=0|1 (0): vCPU C writes N to the exit
 * device. With touch=1 every other vCPU first touches a fresh page of its
 * own, and vCPU C exits once they all have started to: a guest exit that
 * must reach vCPUs blocked in faults.
 */
static int exit_status(const struct guest *g, uint32_t cpu)
{
	static volatile uint32_t touching;
	uint64_t status, exit_cpu, touch_first, i;

	if (guest_arg_u64(g, "status", 0, &status) || status > 0xffffffffULL ||
	    guest_arg_u64(g, "cpu", 0, &exit_cpu) || guest_arg_u64(g, "touch", 0, &touch_first))
		return GUEST_EXIT_ARGS;
	if (exit_cpu >= g->ncpus) {
		if (cpu == 0)
			gprintf("exit: cpu=%lu, but there are %u vCPUs\n", exit_cpu, g->ncpus);
		return GUEST_EXIT_ARGS;
	}
	if (cpu != exit_cpu) {
		if (touch_first) {
			__atomic_add_fetch(&touching, 1, __ATOMIC_ACQ_REL);
			*(volatile uint64_t *)(g->ram_start + cpu * PAGE_SIZE) = 1;
		}
		return GUEST_EXIT_OK;
	}
	if (touch_first) {
		while (__atomic_load_n(&touching, __ATOMIC_ACQUIRE) < g->ncpus - 1)
			cpu_relax();
		for (i = 0; i < 100000; i++)
			cpu_relax();
	}
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

/*
 * snap's shared=S pages after the vCPUs' own: vCPU 0 writes them in round
 * 1 and from then on only reads them, round after round: clones of a
 * snapshot share them. Returns 0, or GUEST_EXIT_VERIFY after saying where.
 */
static int snap_shared(uint64_t base, uint64_t s, uint64_t r)
{
	uint64_t p, k;

	for (p = 0; p < s; p++) {
		volatile uint64_t *page = (uint64_t *)(base + p * PAGE_SIZE);

		for (k = 0; k < PAGE_SIZE / 8; k += 64) { /* a word per cache line */
			uint64_t gpa = base + p * PAGE_SIZE + k * 8;

			if (r == 1) {
				page[k] = ~pattern(gpa);
			} else if (page[k] != ~pattern(gpa)) {
				gprintf("snap: round %lu: shared GPA 0x%lx holds 0x%lx, expected "
					"0x%lx\n",
					r, gpa, page[k], ~pattern(gpa));
				return GUEST_EXIT_VERIFY;
			}
		}
	}
	return 0;
}

/* What snap writes at @gpa in round @r of clone @c: each clone a pattern of its own. */
static uint64_t snap_value(uint64_t gpa, uint64_t r, uint32_t c)
{
	return pattern(gpa) + r + ((uint64_t)c << 40);
}

/*
 * snap: pages=N (256) rounds=R (1000) shared=S (0). Each vCPU owns N
 * pages after the image. Round r checks that every word still holds round
 * r - 1's value (zeros before the first) and writes snap_value(gpa, r, c),
 * c the clone number read at the round's start; vCPU 0 also checks the S
 * pages after them (snap_shared()). vCPU 0 says every 10th round it
 * finished, and the clone number when it changed (a restore). Snapshotted
 * and restored mid-run, it goes on from its round and finds every page as
 * it left it, then writes its own clone's pattern.
 */
static int snap(const struct guest *g, uint32_t cpu)
{
	uint64_t n, rounds, shared, base, r, p, k;
	uint32_t clone, last = 0;

	if (guest_arg_u64(g, "pages", 256, &n) || guest_arg_u64(g, "rounds", 1000, &rounds) ||
	    guest_arg_u64(g, "shared", 0, &shared))
		return GUEST_EXIT_ARGS;
	if (n == 0 || n > (g->ram_end - g->ram_start) / PAGE_SIZE / g->ncpus ||
	    shared > (g->ram_end - g->ram_start) / PAGE_SIZE - n * g->ncpus) {
		if (cpu == 0)
			gprintf("snap: %lu pages on %u vCPUs do not fit\n", n, g->ncpus);
		return GUEST_EXIT_NOMEM;
	}
	base = g->ram_start + cpu * n * PAGE_SIZE;
	for (r = 1; r <= rounds; r++) {
		clone = guest_clone(g);
		if (cpu == 0 && clone != last)
			gprintf("snap: clone %u from round %lu\n", clone, r);
		for (p = 0; p < n; p++) {
			volatile uint64_t *page = (uint64_t *)(base + p * PAGE_SIZE);

			for (k = 0; k < PAGE_SIZE / 8; k++) {
				uint64_t gpa = base + p * PAGE_SIZE + k * 8;
				uint64_t want = r == 1 ? 0 : snap_value(gpa, r - 1, last);

				if (page[k] != want) {
					gprintf("snap: round %lu: GPA 0x%lx holds 0x%lx, expected "
						"0x%lx\n",
						r, gpa, page[k], want);
					return GUEST_EXIT_VERIFY;
				}
				page[k] = snap_value(gpa, r, clone);
			}
		}
		last = clone;
		if (cpu == 0 && shared &&
		    snap_shared(g->ram_start + g->ncpus * n * PAGE_SIZE, shared, r))
			return GUEST_EXIT_VERIFY;
		if (cpu == 0 && r % 10 == 0)
			gprintf("snap: round %lu\n", r);
	}
	gprintf("snap: vCPU %u checked %lu pages in %lu rounds\n", cpu, n, rounds);
	return GUEST_EXIT_OK;
}

static inline uint64_t serve_tsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/*
 * serve: pages=N (256) requests=K (2) writes=W (1) end=exit|spin (exit).
 * A function that waits for its request in a snapshot: vCPU 0 fills N
 * pages after the image with pattern(gpa), says "serve: ready", then reads
 * the clone number until it changes (a restore with another --clone: the
 * request). Each of K requests reads and checks every word of the N pages
 * and rewrites the first word of W of them, spread evenly, and says
 * "serve: request k of clone C: N pages in CYCLES cycles" (TSC). Then it
 * exits 0, or spins (a clone that stays: a halt would end the VM). The
 * other vCPUs have nothing to do.
 */
static int serve(const struct guest *g, uint32_t cpu)
{
	uint64_t n, requests, writes, k, p, w, t0;
	const char *end = guest_arg(g, "end");
	uint32_t boot, clone;

	if (cpu != 0)
		return GUEST_EXIT_OK;
	if (guest_arg_u64(g, "pages", 256, &n) || guest_arg_u64(g, "requests", 2, &requests) ||
	    guest_arg_u64(g, "writes", 1, &writes) ||
	    (end && strcmp(end, "exit") && strcmp(end, "spin"))) {
		gprintf("serve: bad arguments\n");
		return GUEST_EXIT_ARGS;
	}
	if (n == 0 || n > (g->ram_end - g->ram_start) / PAGE_SIZE || writes > n) {
		gprintf("serve: %lu pages (%lu written) do not fit\n", n, writes);
		return GUEST_EXIT_NOMEM;
	}
	for (p = 0; p < n; p++)
		for (w = 0; w < PAGE_SIZE / 8; w++) {
			uint64_t gpa = g->ram_start + p * PAGE_SIZE + w * 8;

			*(volatile uint64_t *)gpa = pattern(gpa);
		}
	boot = guest_clone(g);
	gprintf("serve: ready\n");
	do {
		cpu_relax();
		clone = guest_clone(g);
	} while (clone == boot);
	for (k = 1; k <= requests; k++) {
		t0 = serve_tsc();
		for (p = 0; p < n; p++)
			for (w = 0; w < PAGE_SIZE / 8; w++) {
				uint64_t gpa = g->ram_start + p * PAGE_SIZE + w * 8;
				uint64_t want = pattern(gpa);

				if (w == 0 && writes && p % (n / writes) == 0 &&
				    p / (n / writes) < writes && k > 1)
					want ^= k - 1;
				if (*(volatile uint64_t *)gpa != want) {
					gprintf("serve: GPA 0x%lx holds 0x%lx, expected 0x%lx\n",
						gpa, *(volatile uint64_t *)gpa, want);
					return GUEST_EXIT_VERIFY;
				}
			}
		for (w = 0; w < writes; w++) {
			uint64_t gpa = g->ram_start + w * (n / writes) * PAGE_SIZE;

			*(volatile uint64_t *)gpa = pattern(gpa) ^ k;
		}
		gprintf("serve: request %lu of clone %u: %lu pages in %lu cycles\n", k, clone, n,
			serve_tsc() - t0);
	}
	while (end && !strcmp(end, "spin"))
		cpu_relax();
	return GUEST_EXIT_OK;
}

const struct workload workloads[] = {
	{"hello", hello},
	{"touch", touch_report},
	{"crc32", crc32},
	{"crash", crash},
	{"badio", badio},
	{"exit", exit_status},
	{"spin", spin},
	{"halt", halt},
	{"shm", shm_workload},
	{"vram", vram_workload},
	{"dedup", dedup_workload},
	{"bench", bench_workload},
	{"snap", snap},
	{"serve", serve},
	{NULL, NULL},
};
