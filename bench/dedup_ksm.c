/*
 * dedup-ksm: faultline's dedup against the host kernel's KSM on the same
 * memory image, in one run.
 *
 * The image is the dedup guest workload's: N pages, page i holding content
 * i % K. For faultline, a host thread writes it into guest RAM set up by
 * the MMU (memfd, userfaultfd), and the dedup scanner runs. For KSM it is
 * written into anonymous memory marked MADV_MERGEABLE, and ksmd runs with
 * the same pages_to_scan, sleep and max_page_sharing. Each engine runs
 * until it saves what it can (N - K * ceil(N / K / max_page_sharing)
 * pages) or the timeout. Reported per engine: pages saved, time to
 * converge, CPU time (faultline: its scanner and fault reader threads;
 * KSM: ksmd, in clock ticks), and the ratios faultline / KSM.
 *
 * --scatter: the same pages in a shuffled order (a fixed seed), so that
 * equal pages are seldom found in the same order twice: faultline merges
 * runs of pages whose shared pages are in a row together, and this image
 * has almost none.
 *
 * --zeros: every page of the image is zeros instead. faultline runs
 * --dedup zero (every page released: zero_pages), KSM use_zero_pages=1
 * (every page mapped to the kernel's zero page: ksm_zero_pages, Linux 6.10).
 *
 * Needs root (KSM's sysfs knobs, userfaultfd). KSM's settings are put back
 * afterwards. Exit: 0, 1 on a failure, 77 when the host has no KSM.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mmu/dedup.h"
#include "mmu/mmu.h"

#define PAGE	4096ULL
#define KSM_DIR "/sys/kernel/mm/ksm/"
#define POLL_MS 10

struct params {
	uint64_t pages, kinds, pages_to_scan, sleep_ms, max_sharing, timeout_s;
	bool zeros, scatter;
};

struct result {
	uint64_t saved;
	double seconds, cpu_ms;
	bool converged;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The content of page @i: i % K, or with --scatter that of a shuffled page (same counts). */
static uint64_t kind_of(const struct params *p, const uint64_t *order, uint64_t i)
{
	return (p->scatter ? order[i] : i) % p->kinds;
}

/* A permutation of the pages, from a fixed seed (xorshift64, Fisher-Yates). */
static uint64_t *shuffled(uint64_t n)
{
	uint64_t *order = malloc(n * sizeof(*order)), x = 0x2545f4914f6cdd1dULL, i;

	if (!order)
		return NULL;
	for (i = 0; i < n; i++)
		order[i] = i;
	for (i = n - 1; i > 0; i--) {
		uint64_t j, t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = x % (i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	return order;
}

static int fill(uint8_t *mem, const struct params *p)
{
	uint64_t *order = p->scatter ? shuffled(p->pages) : NULL, i, w;

	if (p->scatter && !order)
		return -1;
	for (i = 0; i < p->pages; i++)
		for (w = 0; w < PAGE / 8; w++)
			((volatile uint64_t *)(mem + i * PAGE))[w] =
				p->zeros ? 0
					 : (kind_of(p, order, i) + 1) * 0x9e3779b97f4a7c15ULL ^
						   (w * 0x100000001b3ULL);
	free(order);
	return 0;
}

static uint64_t target(const struct params *p)
{
	uint64_t per_kind = p->pages / p->kinds;
	uint64_t nodes = (per_kind + p->max_sharing - 1) / p->max_sharing;

	return p->zeros ? p->pages : p->pages - p->kinds * nodes;
}

/* ---- faultline ------------------------------------------------------------------ */

static double thread_cpu_ms(pthread_t t)
{
	struct timespec ts;
	clockid_t c;

	if (pthread_getcpuclockid(t, &c) || clock_gettime(c, &ts))
		return 0;
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_failed(void *owner, struct fault_ctx *ctx, fault_t r, const char *why)
{
	(void)owner, (void)r;
	fprintf(stderr, "dedup-ksm: fault at GPA 0x%llx failed: %s\n", (unsigned long long)ctx->gpa,
		why);
	exit(1);
}

static int run_faultline(const struct params *p, struct result *res)
{
	uint64_t ram = (p->pages * PAGE + (2ULL << 20) - 1) & ~((2ULL << 20) - 1);
	const struct mmu_config cfg = {.ram_size = ram,
				       .fault_around = 16,
				       .max_retries = 8,
				       .retry_ms = 2000,
				       .nr_handlers = 1,
				       .dedup = true};
	const struct mmu_ops ops = {.fault_failed = on_failed};
	static struct mmu mmu;
	static struct dedup d;
	struct dedup_knobs k;
	double t0;

	dedup__default_knobs(&k);
	k.pages_to_scan = p->pages_to_scan;
	k.sleep_ms = p->sleep_ms;
	k.max_page_sharing = p->max_sharing;
	if (mmu__init(&mmu, &cfg, &ops) ||
	    dedup__init(&d, &mmu, p->zeros ? DEDUP_ZERO : DEDUP_ON, &k) || mmu__start(&mmu) ||
	    fill(mmu.ram.host, p))
		return -1;
	t0 = now_s();
	if (dedup__start(&d))
		return -1;
	while (now_s() - t0 < (double)p->timeout_s) {
		res->saved = __atomic_load_n(
			p->zeros ? &d.stats.zero_pages : &d.stats.pages_sharing, __ATOMIC_RELAXED);
		if (res->saved >= target(p)) {
			res->converged = true;
			break;
		}
		usleep(POLL_MS * 1000);
	}
	res->seconds = now_s() - t0;
	res->cpu_ms = thread_cpu_ms(d.scanner) + thread_cpu_ms(d.reader);
	dedup__exit(&d);
	mmu__exit(&mmu);
	return 0;
}

/* ---- KSM ------------------------------------------------------------------------- */

static int ksm_read(const char *knob, uint64_t *v)
{
	char path[128];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), KSM_DIR "%s", knob);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	ok = fscanf(f, "%lu", v) == 1;
	fclose(f);
	return ok ? 0 : -EIO;
}

static int ksm_write(const char *knob, uint64_t v)
{
	char path[128];
	FILE *f;
	int err;

	snprintf(path, sizeof(path), KSM_DIR "%s", knob);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	err = fprintf(f, "%lu\n", v) < 0;
	return fclose(f) || err ? -EIO : 0;
}

/* ksmd's CPU time (utime + stime) in milliseconds, -1 when not found. */
static double ksmd_cpu_ms(void)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	double ms = -1;

	while (dir && (e = readdir(dir))) {
		char path[300], comm[32] = "", line[1024];
		unsigned long ut, st;
		FILE *f;
		char *rp;

		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f) || strcmp(comm, "ksmd\n")) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(line, sizeof(line), f) && (rp = strrchr(line, ')')) &&
		    sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			   &st) == 2)
			ms = (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
		if (f)
			fclose(f);
		break;
	}
	if (dir)
		closedir(dir);
	return ms;
}

static int run_ksm(const struct params *p, struct result *res)
{
	const char *saved = p->zeros ? "ksm_zero_pages" : "pages_sharing";
	uint64_t old_run, old_scan, old_sleep, old_max, old_zero, base;
	double t0, cpu0;
	uint8_t *mem;

	if (ksm_read("run", &old_run) || ksm_read("pages_to_scan", &old_scan) ||
	    ksm_read("sleep_millisecs", &old_sleep) || ksm_read("max_page_sharing", &old_max) ||
	    ksm_read("use_zero_pages", &old_zero) || (p->zeros && ksm_read(saved, &base)))
		return 77;
	mem = mmap(NULL, p->pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	if (mem == MAP_FAILED)
		return -1;
	if (fill(mem, p))
		return -1;
	/* max_page_sharing can change only while nothing is merged: run=2 first. */
	if (ksm_write("run", 2) || ksm_write("max_page_sharing", p->max_sharing) ||
	    ksm_write("pages_to_scan", p->pages_to_scan) ||
	    ksm_write("sleep_millisecs", p->sleep_ms) || ksm_write("use_zero_pages", p->zeros) ||
	    ksm_read(saved, &base) || madvise(mem, p->pages * PAGE, MADV_MERGEABLE))
		return -1;
	cpu0 = ksmd_cpu_ms();
	t0 = now_s();
	if (ksm_write("run", 1))
		return -1;
	while (now_s() - t0 < (double)p->timeout_s) {
		uint64_t v = 0;

		if (ksm_read(saved, &v))
			break;
		res->saved = v > base ? v - base : 0;
		if (res->saved >= target(p)) {
			res->converged = true;
			break;
		}
		usleep(POLL_MS * 1000);
	}
	res->seconds = now_s() - t0;
	res->cpu_ms = ksmd_cpu_ms() - cpu0;
	munmap(mem, p->pages * PAGE);
	if (ksm_write("run", 2) || ksm_write("max_page_sharing", old_max) ||
	    ksm_write("pages_to_scan", old_scan) || ksm_write("sleep_millisecs", old_sleep) ||
	    ksm_write("use_zero_pages", old_zero) || ksm_write("run", old_run))
		fprintf(stderr, "dedup-ksm: could not restore KSM's settings under " KSM_DIR "\n");
	return 0;
}

/* ---- main -------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out, "Usage: dedup-ksm [--pages N] [--kinds K] [--pages-to-scan P] [--sleep-ms S]\n"
		     "                 [--max-page-sharing M] [--timeout S] [--scatter] [--zeros]\n"
		     "                 [--json]\n"
		     "Defaults: 32768 pages of 16 contents (page i holds content i %% K), 4096\n"
		     "pages per batch, 10 ms sleep, 256 sharers, 120 s. --scatter: the same pages\n"
		     "shuffled (equal pages seldom in the same order twice). --zeros: every page\n"
		     "zeros (faultline --dedup zero, KSM use_zero_pages=1). Needs root; exit 77\n"
		     "without KSM.\n");
}

static int parse(int argc, char **argv, struct params *p, bool *json)
{
	static const struct option opts[] = {
		{"pages", 1, NULL, 'n'},
		{"kinds", 1, NULL, 'k'},
		{"pages-to-scan", 1, NULL, 'p'},
		{"sleep-ms", 1, NULL, 's'},
		{"max-page-sharing", 1, NULL, 'm'},
		{"timeout", 1, NULL, 't'},
		{"zeros", 0, NULL, 'z'},
		{"scatter", 0, NULL, 'x'},
		{"json", 0, NULL, 'j'},
		{"help", 0, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*p = (struct params){32768, 16, 4096, 10, 256, 120, false, false};
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		uint64_t v = optarg ? strtoull(optarg, NULL, 0) : 0;

		switch (c) {
		case 'n': p->pages = v; break;
		case 'k': p->kinds = v; break;
		case 'p': p->pages_to_scan = v; break;
		case 's': p->sleep_ms = v; break;
		case 'm': p->max_sharing = v; break;
		case 't': p->timeout_s = v; break;
		case 'z': p->zeros = true; break;
		case 'x': p->scatter = true; break;
		case 'j': *json = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!p->pages || !p->kinds || p->kinds > p->pages || !p->pages_to_scan ||
	    p->max_sharing < 2 || !p->timeout_s) {
		fprintf(stderr, "dedup-ksm: bad parameters (see --help)\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct result fl = {0}, ksm = {0};
	struct params p;
	bool json = false;
	int ret;

	if (parse(argc, argv, &p, &json))
		return 1;
	if (run_faultline(&p, &fl)) {
		fprintf(stderr, "dedup-ksm: faultline's dedup could not run (root? Linux 5.19?)\n");
		return 1;
	}
	ret = run_ksm(&p, &ksm);
	if (ret == 77) {
		fprintf(stderr, "dedup-ksm: this host has no KSM (" KSM_DIR ")\n");
		return 77;
	}
	if (ret) {
		fprintf(stderr, "dedup-ksm: KSM could not run: %s\n", strerror(errno));
		return 1;
	}
	if (json) {
		printf("{\"pages\":%lu,\"kinds\":%lu,\"zeros\":%s,\"scatter\":%s,\"pages_to_scan\":"
		       "%"
		       "lu,\"sleep_ms\":%lu,"
		       "\"target\":%lu,\"faultline\":{\"saved\":%lu,\"seconds\":%.3f,\"cpu_ms\":%."
		       "1f,"
		       "\"converged\":%s},\"ksm\":{\"saved\":%lu,\"seconds\":%.3f,\"cpu_ms\":%.1f,"
		       "\"converged\":%s}}\n",
		       p.pages, p.kinds, p.zeros ? "true" : "false", p.scatter ? "true" : "false",
		       p.pages_to_scan, p.sleep_ms, target(&p), fl.saved, fl.seconds, fl.cpu_ms,
		       fl.converged ? "true" : "false", ksm.saved, ksm.seconds, ksm.cpu_ms,
		       ksm.converged ? "true" : "false");
		return 0;
	}
	if (p.zeros)
		printf("%lu pages of zeros, %lu pages per batch, %lu ms sleep: %lu pages to save\n",
		       p.pages, p.pages_to_scan, p.sleep_ms, target(&p));
	else
		printf("%lu pages of %lu contents%s, %lu pages per batch, %lu ms sleep: %lu pages "
		       "to save\n",
		       p.pages, p.kinds, p.scatter ? " (scattered)" : "", p.pages_to_scan,
		       p.sleep_ms, target(&p));
	printf("%-10s %12s %12s %12s\n", "engine", "saved", "seconds", "cpu ms");
	printf("%-10s %12lu %12.3f %12.1f%s\n", "faultline", fl.saved, fl.seconds, fl.cpu_ms,
	       fl.converged ? "" : " (timeout)");
	printf("%-10s %12lu %12.3f %12.1f%s\n", "ksm", ksm.saved, ksm.seconds, ksm.cpu_ms,
	       ksm.converged ? "" : " (timeout)");
	if (ksm.saved && ksm.seconds > 0 && ksm.cpu_ms > 0)
		printf("faultline / ksm: saved %.2fx, time to converge %.2fx, cpu %.2fx\n",
		       (double)fl.saved / (double)ksm.saved, fl.seconds / ksm.seconds,
		       fl.cpu_ms / ksm.cpu_ms);
	return 0;
}
