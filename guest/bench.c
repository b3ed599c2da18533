/*
 * bench: the timing workloads of `faultline bench`. Every vCPU waits at a
 * barrier, then times each operation with the TSC (lfence; rdtsc on both
 * sides) into a histogram of its own (bench_hist.h), and verifies what it
 * did afterwards, outside the timing. kind= chooses the operation:
 *
 *   touch  pages=N (1024) order=seq|random access=write|read spread=S (1):
 *          the first touch of each of the vCPU's N pages after the image
 *          (one word written, or one read); with spread=S the N pages are
 *          every S-th page of N*S, a guest that uses a part of its RAM;
 *          scans=S (0): then vCPU 0 waits (polls=P register reads) for S
 *          more full scans of the monitor's dedup (--dedup), so that the
 *          memory the VM holds at its end is what dedup left of it
 *   mmio   ops=N (10000): reads of the dedup-regs MAGIC register, a
 *          register BAR whose every access exits to the monitor
 *   pio    ops=N (10000): reads of the serial line-status port
 *   bar    pages=N (256): first writes to pages of the vram BAR (served
 *          by its nopage handler)
 *   cow    pages=N (256): vCPU 0 fills N pages alike, waits (polls=P
 *          register reads, 1000000) until dedup merged them all, then
 *          times the first write to each (a copy-on-write break)
 *
 * lat=0 leaves the per-operation TSC reads out (pages/s without the
 * timer's cost; on hosts that trap RDTSC it is an exit per read).
 *
 * vCPU 0 prints, once all are done:
 *   bench: kind=K vcpus=V ops=N cycles=C verified=N timed=N timer=C verify=C
 *     (timed: operations in the histogram, N or 0; timer: the median
 *     cycles of two back-to-back TSC reads; verify: the longest
 *     verification pass of a vCPU, touch only, untimed otherwise)
 *   bench-hist: BUCKET:COUNT ... (non-empty buckets, several lines)
 *   bench-max: CYCLES
 * cycles run from the first vCPU's start to the last one's end.
 */
#include "bench_hist.h"
#include "guest.h"

#define BENCH_HIST_PER_LINE 16
#define DEDUP_WORD_SHARED   8 /* dedup-regs: pages_shared, then pages_sharing */
#define BENCH_SPREAD_MAX    4096
#define DEDUP_WORD_SHARING  9
#define DEDUP_WORD_SCANS    12

static uint32_t hist[GUEST_MAX_CPUS][BENCH_HIST_BUCKETS];
static uint64_t max_cycles[GUEST_MAX_CPUS];
static volatile uint32_t arrived, finished;
static volatile uint64_t first_start = ~0ULL, last_end, ops_done, verified_total;
static volatile int worst;
static volatile uint64_t sink, timer_cycles, verify_cycles;
static int lat = 1; /* lat=0: no TSC reads around each operation, only around the loop */

static inline uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/* lat=1: the TSC before an operation; lat=0: 0, and record() ignores it. */
static inline uint64_t op_start(void)
{
	return lat ? rdtsc_ordered() : 0;
}

static void record_op(uint32_t cpu, uint64_t t0);

static void record(uint32_t cpu, uint64_t cycles)
{
	hist[cpu][bench_hist_bucket(cycles)]++;
	if (cycles > max_cycles[cpu])
		max_cycles[cpu] = cycles;
}

static void record_op(uint32_t cpu, uint64_t t0)
{
	if (lat)
		record(cpu, rdtsc_ordered() - t0);
}

/*
 * The timer's own cost: the median of back-to-back TSC reads, which every
 * recorded latency includes once (vCPU 0, before the barrier). On a host
 * that traps RDTSC it is an exit of its own.
 */
static void calibrate_timer(void)
{
	uint64_t d[33], t0, v;
	unsigned i, j;

	for (i = 0; i < 33; i++) {
		t0 = rdtsc_ordered();
		v = rdtsc_ordered() - t0;
		for (j = i; j > 0 && d[j - 1] > v; j--)
			d[j] = d[j - 1];
		d[j] = v;
	}
	timer_cycles = d[16];
}

static void atomic_min(volatile uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (v < cur &&
	       !__atomic_compare_exchange_n(p, &cur, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

static void atomic_max(volatile uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (v > cur &&
	       !__atomic_compare_exchange_n(p, &cur, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

/* Every vCPU clears its histogram (faulting it in) and waits for the others. */
static void barrier(const struct guest *g, uint32_t cpu)
{
	memset(hist[cpu], 0, sizeof(hist[cpu]));
	max_cycles[cpu] = 0;
	if (cpu == 0)
		calibrate_timer();
	__atomic_add_fetch(&arrived, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < g->ncpus)
		cpu_relax();
}

struct bench_args {
	uint64_t n, spread, scans;
	int random, read;
};

static int touch_pages(const struct guest *g, uint32_t cpu, const struct bench_args *a,
		       uint64_t *verified)
{
	uint64_t span = a->spread * PAGE_SIZE, base, i, k, vstart;
	struct order o;

	if (a->n == 0 || a->n > (g->ram_end - g->ram_start) / PAGE_SIZE / a->spread / g->ncpus) {
		if (cpu == 0)
			gprintf("bench: %lu pages, spread %lu, on %u vCPUs do not fit in %lu free "
				"bytes\n",
				a->n, a->spread, g->ncpus, g->ram_end - g->ram_start);
		return GUEST_EXIT_NOMEM;
	}
	base = g->ram_start + cpu * a->n * span;
	order_init(&o, a->n, a->random, cpu);
	barrier(g, cpu);
	atomic_min(&first_start, rdtsc_ordered());
	for (i = 0; i < a->n; i++) {
		uint64_t gpa = base + order_page(&o, i) * span, want = pattern(gpa), t0;
		volatile uint64_t *p = (volatile uint64_t *)gpa;

		t0 = op_start();
		if (a->read)
			sink = *p;
		else
			*p = want;
		record_op(cpu, t0);
	}
	atomic_max(&last_end, rdtsc_ordered());
	vstart = rdtsc_ordered();
	for (i = 0; i < a->n; i++) {
		uint64_t gpa = base + i * span;
		const uint64_t *p = (const uint64_t *)gpa;

		if (p[0] != (a->read ? 0 : pattern(gpa))) {
			gprintf("bench: GPA 0x%lx holds 0x%lx after the touch\n", gpa, p[0]);
			return GUEST_EXIT_VERIFY;
		}
		/*
		 * The rest of the page must be zeros: every 8th word and the
		 * last are read. Sampled, because on the PVM host a full pass
		 * cost seconds per run (docs/benchmarks.md); the touch workload
		 * reads every word.
		 */
		for (k = 8; k <= PAGE_SIZE / 8; k += 8) {
			uint64_t w = k < PAGE_SIZE / 8 ? k : k - 1;

			if (p[w]) {
				gprintf("bench: GPA 0x%lx holds 0x%lx, expected 0\n", gpa + w * 8,
					p[w]);
				return GUEST_EXIT_VERIFY;
			}
		}
	}
	atomic_max(&verify_cycles, rdtsc_ordered() - vstart);
	*verified = a->n;
	return GUEST_EXIT_OK;
}

/* Time @n reads of a register: the MMIO or port I/O round trip. */
static int read_registers(const struct guest *g, uint32_t cpu, uint64_t n, int pio,
			  uint64_t *verified)
{
	volatile uint64_t *reg = NULL;
	uint64_t size, gpa, i, good = 0;

	if (!pio) {
		if (fdt_mmio(g, "faultline,dedup", 0, &gpa, &size)) {
			if (cpu == 0)
				gprintf("bench: kind=mmio needs the dedup-regs BAR (--dedup)\n");
			return GUEST_EXIT_ARGS;
		}
		reg = (volatile uint64_t *)gpa;
	}
	barrier(g, cpu);
	atomic_min(&first_start, rdtsc_ordered());
	for (i = 0; i < n; i++) {
		uint64_t t0 = op_start(), v;

		v = pio ? inb(0x3fd) : *reg;
		record_op(cpu, t0);
		/* MAGIC, or a line-status byte with the transmitter empty */
		good += pio ? (v & 0x20) != 0 : v == 0x0100505544454c46ULL;
	}
	atomic_max(&last_end, rdtsc_ordered());
	if (good != n) {
		gprintf("bench: %lu of %lu register reads returned the wrong value\n", n - good, n);
		return GUEST_EXIT_VERIFY;
	}
	*verified = n;
	return GUEST_EXIT_OK;
}

/* First writes to the vram BAR's pages, each vCPU its own share. */
static int touch_bar(const struct guest *g, uint32_t cpu, uint64_t n, uint64_t *verified)
{
	uint64_t gpa, size, base, i;

	if (fdt_mmio(g, "faultline,vram", 0, &gpa, &size)) {
		if (cpu == 0)
			gprintf("bench: kind=bar needs the vram BAR (--vram)\n");
		return GUEST_EXIT_ARGS;
	}
	if (n == 0 || n * g->ncpus > size / PAGE_SIZE) {
		if (cpu == 0)
			gprintf("bench: %lu pages on %u vCPUs do not fit in the %lu-byte BAR\n", n,
				g->ncpus, size);
		return GUEST_EXIT_NOMEM;
	}
	base = gpa + cpu * n * PAGE_SIZE;
	barrier(g, cpu);
	atomic_min(&first_start, rdtsc_ordered());
	for (i = 0; i < n; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(base + i * PAGE_SIZE);
		uint64_t want = pattern(base + i * PAGE_SIZE), t0 = op_start();

		*p = want;
		record_op(cpu, t0);
	}
	atomic_max(&last_end, rdtsc_ordered());
	for (i = 0; i < n; i++)
		if (*(volatile uint64_t *)(base + i * PAGE_SIZE) != pattern(base + i * PAGE_SIZE)) {
			gprintf("bench: BAR page at GPA 0x%lx lost its write\n",
				base + i * PAGE_SIZE);
			return GUEST_EXIT_VERIFY;
		}
	*verified = n;
	return GUEST_EXIT_OK;
}

static uint64_t cow_word(uint64_t w)
{
	return (w + 1) * 0x9e3779b97f4a7c15ULL;
}

/* vCPU 0: N pages alike, merged by dedup, then each broken by a write. */
static int cow_breaks(const struct guest *g, uint32_t cpu, uint64_t n, uint64_t polls,
		      uint64_t *verified)
{
	volatile uint64_t *regs;
	uint64_t gpa, size, i = 0, w, k;

	if (fdt_mmio(g, "faultline,dedup", 0, &gpa, &size)) {
		if (cpu == 0)
			gprintf("bench: kind=cow needs --dedup on\n");
		return GUEST_EXIT_ARGS;
	}
	regs = (volatile uint64_t *)gpa;
	if (n < 2 || n > (g->ram_end - g->ram_start) / PAGE_SIZE) {
		if (cpu == 0)
			gprintf("bench: kind=cow needs 2..%lu pages\n",
				(g->ram_end - g->ram_start) / PAGE_SIZE);
		return GUEST_EXIT_NOMEM;
	}
	if (cpu == 0) {
		for (i = 0; i < n; i++)
			for (w = 0; w < PAGE_SIZE / 8; w++)
				((volatile uint64_t *)(g->ram_start + i * PAGE_SIZE))[w] =
					cow_word(w);
		for (i = 0; i < polls; i++) {
			if (regs[DEDUP_WORD_SHARED] + regs[DEDUP_WORD_SHARING] >= n)
				break;
			for (k = 0; k < 1000; k++)
				cpu_relax();
		}
	}
	barrier(g, cpu); /* the others wait here while vCPU 0 waits for dedup */
	if (cpu != 0)
		return GUEST_EXIT_OK;
	if (i == polls) {
		gprintf("bench: dedup merged %lu of %lu pages within %lu polls\n",
			regs[DEDUP_WORD_SHARED] + regs[DEDUP_WORD_SHARING], n, polls);
		return GUEST_EXIT_VERIFY;
	}
	atomic_min(&first_start, rdtsc_ordered());
	for (i = 0; i < n; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(g->ram_start + i * PAGE_SIZE);
		uint64_t t0 = op_start();

		p[0] = ~cow_word(0) ^ i;
		record_op(cpu, t0);
	}
	atomic_max(&last_end, rdtsc_ordered());
	for (i = 0; i < n; i++) {
		const volatile uint64_t *p =
			(const volatile uint64_t *)(g->ram_start + i * PAGE_SIZE);

		for (w = 0; w < PAGE_SIZE / 8; w++)
			if (p[w] != (w ? cow_word(w) : ~cow_word(0) ^ i)) {
				gprintf("bench: page %lu word %lu is 0x%lx after its break\n", i, w,
					p[w]);
				return GUEST_EXIT_VERIFY;
			}
	}
	*verified = n;
	return GUEST_EXIT_OK;
}

/*
 * vCPU 0, after every vCPU's touch: wait for @scans more full scans of
 * dedup. Two passes see a page unchanged before a zero page is released,
 * and the pass under way when the wait starts began before the touch ended.
 */
static int wait_dedup_scans(const struct guest *g, uint64_t scans, uint64_t polls)
{
	volatile uint64_t *regs;
	uint64_t gpa, size, until, i, k;

	if (fdt_mmio(g, "faultline,dedup", 0, &gpa, &size)) {
		gprintf("bench: scans=%lu needs the dedup-regs BAR (--dedup)\n", scans);
		return GUEST_EXIT_ARGS;
	}
	regs = (volatile uint64_t *)gpa;
	until = regs[DEDUP_WORD_SCANS] + scans;
	for (i = 0; i < polls; i++) {
		if (regs[DEDUP_WORD_SCANS] >= until)
			return GUEST_EXIT_OK;
		for (k = 0; k < 1000; k++)
			cpu_relax();
	}
	gprintf("bench: dedup finished %lu of %lu scans within %lu polls\n",
		regs[DEDUP_WORD_SCANS] + scans - until, scans, polls);
	return GUEST_EXIT_VERIFY;
}

static void print_results(const struct guest *g, const char *kind)
{
	uint64_t total[BENCH_HIST_BUCKETS] = {0}, max = 0;
	unsigned b, c, on_line = 0;

	for (c = 0; c < g->ncpus; c++) {
		for (b = 0; b < BENCH_HIST_BUCKETS; b++)
			total[b] += hist[c][b];
		if (max_cycles[c] > max)
			max = max_cycles[c];
	}
	gprintf("bench: kind=%s vcpus=%u ops=%lu cycles=%lu verified=%lu timed=%lu timer=%lu "
		"verify=%lu\n",
		kind, g->ncpus, ops_done, last_end - first_start, verified_total,
		lat ? ops_done : 0, timer_cycles, verify_cycles);
	gprintf("bench-hist:");
	for (b = 0; b < BENCH_HIST_BUCKETS; b++) {
		if (!total[b])
			continue;
		if (on_line == BENCH_HIST_PER_LINE) {
			gprintf("\nbench-hist:");
			on_line = 0;
		}
		gprintf(" %u:%lu", b, total[b]);
		on_line++;
	}
	gprintf("\n");
	gprintf("bench-max: %lu\n", max);
}

int bench_workload(const struct guest *g, uint32_t cpu)
{
	const char *kind = guest_arg(g, "kind");
	struct bench_args a = {0};
	uint64_t ops, polls, verified = 0;
	int status, pio = 0;

	if (!kind)
		kind = "touch";
	if (guest_arg_u64(g, "polls", 1000000, &polls) || guest_arg_u64(g, "lat", 1, &ops) ||
	    ops > 1)
		return GUEST_EXIT_ARGS;
	lat = (int)ops;
	if (!strcmp(kind, "touch")) {
		if (guest_arg_u64(g, "pages", 1024, &a.n) ||
		    guest_arg_u64(g, "spread", 1, &a.spread) ||
		    guest_arg_u64(g, "scans", 0, &a.scans) ||
		    guest_choice(g, "order", "seq", "random", &a.random) ||
		    guest_choice(g, "access", "write", "read", &a.read))
			return GUEST_EXIT_ARGS;
		if (a.spread == 0 || a.spread > BENCH_SPREAD_MAX) {
			if (cpu == 0)
				gprintf("bench: spread=%lu: expected 1..%u\n", a.spread,
					BENCH_SPREAD_MAX);
			return GUEST_EXIT_ARGS;
		}
		status = touch_pages(g, cpu, &a, &verified);
	} else if (!strcmp(kind, "mmio") || (pio = !strcmp(kind, "pio"))) {
		if (guest_arg_u64(g, "ops", 10000, &ops))
			return GUEST_EXIT_ARGS;
		status = read_registers(g, cpu, ops, pio, &verified);
	} else if (!strcmp(kind, "bar")) {
		if (guest_arg_u64(g, "pages", 256, &ops))
			return GUEST_EXIT_ARGS;
		status = touch_bar(g, cpu, ops, &verified);
	} else if (!strcmp(kind, "cow")) {
		if (guest_arg_u64(g, "pages", 256, &ops))
			return GUEST_EXIT_ARGS;
		status = cow_breaks(g, cpu, ops, polls, &verified);
	} else {
		if (cpu == 0)
			gprintf("bench: kind=%s: expected touch, mmio, pio, bar or cow\n", kind);
		return GUEST_EXIT_ARGS;
	}
	if (status != GUEST_EXIT_OK)
		__atomic_store_n(&worst, status, __ATOMIC_RELEASE);
	__atomic_add_fetch(&ops_done, verified, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&verified_total, verified, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&finished, 1, __ATOMIC_ACQ_REL);
	if (cpu != 0)
		return status;
	while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < g->ncpus)
		cpu_relax();
	if (__atomic_load_n(&worst, __ATOMIC_ACQUIRE) != GUEST_EXIT_OK)
		return status;
	if (a.scans)
		status = wait_dedup_scans(g, a.scans, polls);
	if (status == GUEST_EXIT_OK)
		print_results(g, kind);
	return status;
}
