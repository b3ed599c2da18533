/*
 * uffd-touch: the fault engine's share of a first touch, without KVM.
 *
 * A host thread touches pages of guest RAM set up by the MMU exactly as
 * for a VM (memfd, userfaultfd, handler threads), in the patterns of
 * `faultline bench` (sequential and random, write and read), once per
 * mode: pre-populated memory (floor), the kernel's demand paging of
 * anonymous memory (kernel), the naive handler (naive), the engine at
 * every fault-around size (fa-N), and the default window with fault-ahead
 * of N pages (ahead-N). What it leaves out is KVM's own exit,
 * which `faultline bench` measures on a host with /dev/kvm; what it keeps
 * is every userfaultfd round trip, so it runs on the build host and in
 * CI's machines, and its ratios come from one run. The median of --repeat
 * runs is reported as pages/s and as a ratio to the floor and the kernel.
 *
 * Needs userfaultfd (root, or vm.unprivileged_userfaultfd=1). Exit: 0, 1
 * on a failure, 64 on a bad option.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest/order.h"
#include "lib/log.h"
#include "mmu/mmu.h"

#define PAGE	    4096ULL
#define MAX_RUNS    15
#define NR_SIZES    10 /* fault-around 1..512 */
#define NR_AHEAD    3  /* fault-ahead 256, 1024, 4096 (fault-around 64) */
#define NR_MODES    (3 + NR_SIZES + NR_AHEAD + 1) /* + huge, with --huge */
#define NR_PATTERNS 4

struct mode {
	char name[16];
	enum mmu_handler handler;
	unsigned around;
	bool prefault;
	unsigned ahead;
	bool huge; /* --hugepages: 2 MiB hugetlbfs pages, a fault each */
};

static const char *const patterns[NR_PATTERNS][2] = {
	{"seq", "write"}, {"random", "write"}, {"seq", "read"}, {"random", "read"}};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_failed(void *owner, struct fault_ctx *ctx, fault_t r, const char *why)
{
	(void)owner;
	(void)r;
	fprintf(stderr, "uffd-touch: fault at GPA 0x%llx failed: %s\n",
		(unsigned long long)ctx->gpa, why);
	exit(1);
}

/* One run: pages/s of touching @pages pages in @pattern under @m; 0 on failure. */
static double run_once(const struct mode *m, unsigned pattern, uint64_t pages)
{
	const struct mmu_config cfg = {
		.ram_size = (pages * PAGE + (2ULL << 20) - 1) & ~((2ULL << 20) - 1),
		.fault_around = m->around,
		.fault_ahead = m->ahead,
		.max_retries = 8,
		.retry_ms = 2000,
		.nr_handlers = 1,
		.handler = m->handler,
		.huge = m->huge,
	};
	const struct mmu_ops ops = {.fault_failed = on_failed};
	bool random = pattern == 1 || pattern == 3, write = pattern < 2;
	struct order o;
	uint64_t i;
	static struct mmu mmu;
	volatile uint64_t sink = 0;
	double t0, t1;

	if (mmu__init(&mmu, &cfg, &ops) || mmu__start(&mmu) ||
	    (m->prefault && mmu__prefault(&mmu))) {
		mmu__exit(&mmu);
		return 0;
	}
	order_init(&o, pages, random, 0); /* vCPU 0's order in the guest */
	t0 = now_s();
	for (i = 0; i < pages; i++) {
		volatile uint64_t *p =
			(volatile uint64_t *)(mmu.ram.host + order_page(&o, i) * PAGE);

		if (write)
			*p = i + 1;
		else
			sink += *p;
	}
	t1 = now_s();
	(void)sink;
	mmu__exit(&mmu);
	return (double)pages / (t1 - t0);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_rate(const struct mode *m, unsigned pattern, uint64_t pages, unsigned repeat)
{
	double rates[MAX_RUNS];
	unsigned i;

	for (i = 0; i < repeat; i++) {
		rates[i] = run_once(m, pattern, pages);
		if (rates[i] <= 0)
			return 0;
	}
	qsort(rates, repeat, sizeof(rates[0]), by_value);
	return rates[repeat / 2];
}

static unsigned build_modes(struct mode *modes, bool huge)
{
	unsigned n = 0, size;

	modes[n++] = (struct mode){"floor", MMU_HANDLER_KERNEL, 1, true, 0, false};
	modes[n++] = (struct mode){"kernel", MMU_HANDLER_KERNEL, 1, false, 0, false};
	modes[n++] = (struct mode){"naive", MMU_HANDLER_NAIVE, 1, false, 0, false};
	for (size = 1; size <= 512; size *= 2) {
		modes[n] = (struct mode){"", MMU_HANDLER_FAULTLINE, size, false, 0, false};
		snprintf(modes[n].name, sizeof(modes[n].name), "fa-%u", size);
		n++;
	}
	for (size = 256; size <= 4096; size *= 4) {
		modes[n] = (struct mode){"", MMU_HANDLER_FAULTLINE, 64, false, size, false};
		snprintf(modes[n].name, sizeof(modes[n].name), "ahead-%u", size);
		n++;
	}
	if (huge)
		modes[n++] = (struct mode){"huge", MMU_HANDLER_FAULTLINE, 512, false, 0, true};
	return n;
}

static int usage(FILE *out, int status)
{
	fprintf(out,
		"Usage: uffd-touch [--pages N] [--repeat N] [--huge]\n"
		"  --pages N   pages touched per run (default 16384; 64..1048576)\n"
		"  --repeat N  runs per result, the median is kept (default 5; 1..15)\n"
		"  --huge      also the huge mode: RAM on 2 MiB hugetlbfs pages (--hugepages),\n"
		"              which needs them reserved (sysctl vm.nr_hugepages)\n");
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"pages", 1, NULL, 'n'},
					     {"repeat", 1, NULL, 'r'},
					     {"huge", 0, NULL, 'H'},
					     {"help", 0, NULL, 'h'},
					     {0}};
	struct mode modes[NR_MODES];
	double rate[NR_MODES][NR_PATTERNS];
	unsigned long long pages = 16384, repeat = 5;
	bool huge = false;
	unsigned nm, m, p;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'n')
			pages = strtoull(optarg, NULL, 10);
		else if (c == 'r')
			repeat = strtoull(optarg, NULL, 10);
		else if (c == 'H')
			huge = true;
		else
			return usage(c == 'h' ? stdout : stderr, c == 'h' ? 0 : 64);
	}
	if (pages < 64 || pages > (1ULL << 20) || repeat < 1 || repeat > MAX_RUNS)
		return usage(stderr, 64);
	nm = build_modes(modes, huge);
	printf("uffd-touch: %llu pages, median of %llu runs, one handler thread; pages/s and "
	       "time per page over the floor's and the kernel's\n",
	       pages, repeat);
	printf("%-10s", "mode");
	for (p = 0; p < NR_PATTERNS; p++)
		printf(" %13s-%-5s %6s %6s", patterns[p][0], patterns[p][1], "xfloor", "xkern");
	printf("\n");
	for (m = 0; m < nm; m++)
		for (p = 0; p < NR_PATTERNS; p++) {
			rate[m][p] = median_rate(&modes[m], p, pages, (unsigned)repeat);
			if (rate[m][p] <= 0) {
				fprintf(stderr, "uffd-touch: mode %s could not run\n",
					modes[m].name);
				return 1;
			}
		}
	for (m = 0; m < nm; m++) {
		printf("%-10s", modes[m].name);
		for (p = 0; p < NR_PATTERNS; p++)
			printf(" %19.0f %5.2fx %5.2fx", rate[m][p], rate[0][p] / rate[m][p],
			       rate[1][p] / rate[m][p]);
		printf("\n");
	}
	return 0;
}
