/*
 * dedup (vCPU 0): pages=N (4096) pages of kinds=K (16) distinct contents,
 * page i holding content i % K. Waits until the monitor's dedup has done
 * scans=S (3) more full scans (its register page, faultline,dedup), prints
 * what it reports, then: touches fresh=F (0) new pages, rewrites rewrite=R
 * (64) pages spread over the N with contents of their own (copy-on-write
 * breaks that nothing merges again), waits S scans again, with unmerge=1 asks for run=2 and waits
 * until nothing is shared, and last verifies every byte of every page.
 * polls=P (1000000) bounds each wait in register reads. zeros=Z (0) more
 * pages after the N are written, then zeroed (zero pages to release);
 * run=R writes R to the RUN register first. rearm=1: after the rewrites,
 * if the monitor stopped merging (a copy-on-write break ran out of memory
 * and the VM went on: --on-oom pause), write run=1 before waiting.
 */
#include "guest.h"

#define DEDUP_MAGIC	  0x0100505544454c46UL
#define DEDUP_REG_RUN	  1
#define DEDUP_REG_SHARED  8 /* 0x40: the counters, in DEDUP_COUNTERS order */
#define DEDUP_REG_SHARING 9
#define DEDUP_REG_SCANS	  12
#define DEDUP_REG_ZERO	  14
#define DEDUP_REG_COW	  15

static volatile uint64_t *regs;

static uint64_t dedup_word(uint64_t kind, uint64_t w)
{
	return (kind + 1) * 0x9e3779b97f4a7c15ULL ^ (w * 0x100000001b3ULL);
}

static uint64_t fresh_word(uint64_t page, uint64_t w)
{
	return (page << 12 | w) * 0xff51afd7ed558ccdULL + 1;
}

static void fill_page(volatile uint64_t *p, uint64_t kind)
{
	uint64_t w;

	for (w = 0; w < PAGE_SIZE / 8; w++)
		p[w] = dedup_word(kind, w);
}

/* Wait for @scans more full scans; -1 after @polls register reads. */
static int wait_scans(uint64_t scans, uint64_t polls)
{
	uint64_t until = regs[DEDUP_REG_SCANS] + scans, i, k;

	for (i = 0; i < polls; i++) {
		if (regs[DEDUP_REG_SCANS] >= until)
			return 0;
		for (k = 0; k < 1000; k++)
			cpu_relax();
	}
	gprintf("dedup: the monitor did not finish %lu scans (%lu done, run=%lu)\n", scans,
		regs[DEDUP_REG_SCANS], regs[DEDUP_REG_RUN]);
	return -1;
}

static void report(const char *when)
{
	gprintf("dedup: %s: pages_shared %lu pages_sharing %lu zero_pages %lu cow_breaks %lu\n",
		when, regs[DEDUP_REG_SHARED], regs[DEDUP_REG_SHARING], regs[DEDUP_REG_ZERO],
		regs[DEDUP_REG_COW]);
}

static uint64_t rewrite_word(uint64_t page, uint64_t w)
{
	return fresh_word(page, w) ^ 0x5bd1e9955bd1e995ULL;
}

static void rewrite_page(volatile uint64_t *p, uint64_t page)
{
	uint64_t w;

	for (w = 0; w < PAGE_SIZE / 8; w++)
		p[w] = rewrite_word(page, w);
}

struct dedup_args {
	uint64_t n, kinds, rewrite, scans, fresh, zeros, unmerge, polls, rearm, step;
};

/* What page @i must hold: a kind, a fresh page's own words, or zeros. */
static uint64_t want_word(const struct dedup_args *a, uint64_t i, uint64_t w)
{
	if (i < a->n && a->step && i % a->step == 0)
		return rewrite_word(i, w);
	if (i < a->n)
		return dedup_word(i % a->kinds, w);
	return i < a->n + a->fresh ? fresh_word(i, w) : 0;
}

static int verify(uint8_t *base, const struct dedup_args *a)
{
	uint64_t i, w, want, total = a->n + a->fresh + a->zeros;
	uint32_t crc = 0;

	for (i = 0; i < total; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(base + i * PAGE_SIZE);

		for (w = 0; w < PAGE_SIZE / 8; w++) {
			want = want_word(a, i, w);
			if (p[w] != want) {
				gprintf("dedup: page %lu word %lu is 0x%lx, expected 0x%lx\n", i, w,
					p[w], want);
				return -1;
			}
		}
		crc = crc32_update(crc, p, PAGE_SIZE);
	}
	gprintf("dedup: verified %lu pages, crc32 %08x\n", total, crc);
	return 0;
}

static int dedup_args(const struct guest *g, struct dedup_args *a)
{
	if (guest_arg_u64(g, "pages", 4096, &a->n) || guest_arg_u64(g, "kinds", 16, &a->kinds) ||
	    guest_arg_u64(g, "rewrite", 64, &a->rewrite) ||
	    guest_arg_u64(g, "scans", 3, &a->scans) || guest_arg_u64(g, "fresh", 0, &a->fresh) ||
	    guest_arg_u64(g, "zeros", 0, &a->zeros) ||
	    guest_arg_u64(g, "unmerge", 0, &a->unmerge) ||
	    guest_arg_u64(g, "rearm", 0, &a->rearm) ||
	    guest_arg_u64(g, "polls", 1000000, &a->polls) || !a->n || !a->kinds ||
	    a->rewrite > a->n)
		return -1;
	a->step = a->rewrite ? a->n / a->rewrite : 0;
	return 0;
}

/* Fill the N pages and the zero pages (written, then zeroed: resident and dirty). */
static void dedup_fill(uint8_t *mem, const struct dedup_args *a)
{
	uint64_t i, w;

	for (i = 0; i < a->n; i++)
		fill_page((volatile uint64_t *)(mem + i * PAGE_SIZE), i % a->kinds);
	for (i = a->n + a->fresh; i < a->n + a->fresh + a->zeros; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(mem + i * PAGE_SIZE);

		fill_page(p, 0);
		for (w = 0; w < PAGE_SIZE / 8; w++)
			p[w] = 0;
	}
	gprintf("dedup: wrote %lu pages of %lu contents and %lu zero pages\n", a->n, a->kinds,
		a->zeros);
}

/* After the merge: fresh pages, then the rewrites (copy-on-write breaks). */
static int dedup_rewrite(uint8_t *mem, const struct dedup_args *a)
{
	uint64_t i, w;

	for (i = a->n; i < a->n + a->fresh; i++)
		for (w = 0; w < PAGE_SIZE / 8; w++)
			((volatile uint64_t *)(mem + i * PAGE_SIZE))[w] = fresh_word(i, w);
	if (!a->rewrite)
		return 0;
	for (i = 0; i < a->n; i += a->step)
		rewrite_page((volatile uint64_t *)(mem + i * PAGE_SIZE), i);
	gprintf("dedup: rewrote %lu pages\n", (a->n + a->step - 1) / a->step);
	if (a->rearm && regs[DEDUP_REG_RUN] == 0) {
		gprintf("dedup: the monitor stopped merging; asking for run=1\n");
		regs[DEDUP_REG_RUN] = 1;
	}
	if (wait_scans(a->scans, a->polls))
		return -1;
	report("rewritten");
	return 0;
}

int dedup_workload(const struct guest *g, uint32_t cpu)
{
	uint8_t *mem = (uint8_t *)ALIGN_UP(g->ram_start, PAGE_SIZE);
	struct dedup_args a;
	uint64_t base, size, run, i;

	if (cpu != 0)
		return GUEST_EXIT_OK;
	if (fdt_mmio(g, "faultline,dedup", 0, &base, &size)) {
		gprintf("dedup: no faultline,dedup device in the device tree (--dedup on)\n");
		return GUEST_EXIT_FDT;
	}
	if (dedup_args(g, &a))
		return GUEST_EXIT_ARGS;
	if ((uint64_t)mem + (a.n + a.fresh + a.zeros) * PAGE_SIZE > g->ram_end) {
		gprintf("dedup: %lu pages do not fit in RAM\n", a.n + a.fresh + a.zeros);
		return GUEST_EXIT_NOMEM;
	}
	regs = (volatile uint64_t *)base;
	if (regs[0] != DEDUP_MAGIC) {
		gprintf("dedup: unexpected magic 0x%lx\n", regs[0]);
		return GUEST_EXIT_VERIFY;
	}
	if (guest_arg(g, "run")) {
		if (guest_arg_u64(g, "run", 1, &run))
			return GUEST_EXIT_ARGS;
		regs[DEDUP_REG_RUN] = run;
	}
	dedup_fill(mem, &a);
	if (wait_scans(a.scans, a.polls))
		return GUEST_EXIT_VERIFY;
	report("merged");
	if (dedup_rewrite(mem, &a))
		return GUEST_EXIT_VERIFY;
	if (a.unmerge) {
		regs[DEDUP_REG_RUN] = 2;
		for (i = 0; i < a.polls && regs[DEDUP_REG_SHARED]; i++)
			cpu_relax();
		report("unmerged");
	}
	return verify(mem, &a) ? GUEST_EXIT_VERIFY : GUEST_EXIT_OK;
}
