/*
 * faultline bench, the driver: the options, the matrix of measurements
 * and the runs of `faultline run` that make them (one child process each,
 * so that every mode starts from a fresh process and a failed run costs
 * one result, not the benchmark).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/cmd/bench.h"
#include "vmm/cmd/cli.h"

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION "unknown"
#endif

#define BENCH_PAGES	  16384 /* per vCPU: 64 MiB */
#define BENCH_PAGES_QUICK 256
#define BENCH_REPEAT	  3
#define BENCH_SPIN_US	  "50"
#define BENCH_AHEAD	  "1024"

/* X(name, option value, help) */
#define BENCH_OPTIONS(X)                                                                           \
	X("quick", 'q', 0, "", "a seconds-long smoke run: 256 pages, one run each, vCPUs 1,2")     \
	X("json", 'j', 0, "", "print the results as one JSON document instead of the table")       \
	X("csv", 'C', 1, "FILE", "also write one CSV row per result to FILE")                      \
	X("plot", 'P', 1, "DIR",                                                                   \
	  "also write gnuplot data and bench.gp to DIR, and SVG plots when gnuplot is installed")  \
	X("input", 'i', 1, "FILE", "render results saved with --json instead of measuring")        \
	X("kernel", 'k', 1, "FILE",                                                                \
	  "the test guest (default: guest/faultline-guest.elf beside this program)")               \
	X("pages", 'n', 1, "N",                                                                    \
	  "pages each vCPU touches (default 16384; 16..1048576; sparse-write at most 4096)")       \
	X("vcpus", 'c', 1, "LIST",                                                                 \
	  "vCPU counts of the scaling runs (default 1,2,4,8,16 up to this host's CPUs)")           \
	X("repeat", 'r', 1, "N", "runs per result, the median is kept (default 3; 1..21)")         \
	X("modes", 'M', 1, "LIST", "only these modes, comma-separated (default: all)")             \
	X("patterns", 'p', 1, "LIST",                                                              \
	  "only these touch patterns: seq-write, random-write, seq-read, random-read, "            \
	  "sparse-write (every 16th page of RAM 16 times larger: what each mode holds of a guest " \
	  "that uses part of its RAM) (default: all; the scaling runs come with seq-write)")       \
	X("timeout", 't', 1, "S", "seconds one run may take (default 300)")                        \
	X("clones", 'N', 1, "N",                                                                   \
	  "restores at once of the clones mode (default 50, --quick 8; 2..64)")                    \
	X("linux", 'L', 1, "CONFIG",                                                               \
	  "the clones mode's guest: Linux from this VM config (configs/default.json) instead of "  \
	  "the test guest; with --modes clones only")                                              \
	X("help", 'h', 0, "", "show this help")

static const struct option bench_long_options[] = {
#define BENCH_GETOPT(name, val, has_arg, metavar, help) {name, has_arg, NULL, val},
	BENCH_OPTIONS(BENCH_GETOPT)
#undef BENCH_GETOPT
		{NULL, 0, NULL, 0},
};

/* A way of serving first touches: the extra `faultline run` options. */
struct bench_mode {
	const char *name;
	const char *help;
	const char *flags[4];
	bool scaling; /* also measured at every vCPU count */
	bool opt_in;  /* only when --modes names it: it needs what a host may not have */
};

#define FA(n)                                                                                      \
	{                                                                                          \
		"fa-" #n, "faultline with --fault-around " #n, {"--fault-around", #n}, false,      \
			false                                                                      \
	}
static const struct bench_mode touch_modes[] = {
	{"floor",
	 "pre-populated host memory: kernel baseline with --prefault",
	 {"--fault-handler", "kernel", "--prefault"},
	 true,
	 false},
	{"kernel",
	 "kernel demand paging: anonymous memory, no userfaultfd",
	 {"--fault-handler", "kernel"},
	 true,
	 false},
	{"naive",
	 "naive userfaultfd handler: one thread, poll(), one page per fault",
	 {"--fault-handler", "naive"},
	 true,
	 false},
	{"faultline", "faultline's defaults", {NULL}, true, false},
	FA(1),
	FA(2),
	FA(4),
	FA(8),
	FA(16),
	FA(32),
	FA(64),
	FA(128),
	FA(256),
	FA(512),
	{"spin-" BENCH_SPIN_US,
	 "faultline, handler threads poll " BENCH_SPIN_US " us for the next fault",
	 {"--fault-spin", BENCH_SPIN_US},
	 true,
	 false},
	{"ahead-" BENCH_AHEAD,
	 "faultline, up to " BENCH_AHEAD " pages installed ahead of a sequential stream",
	 {"--fault-ahead", BENCH_AHEAD},
	 true,
	 false},
	{"zero",
	 "faultline with --dedup zero: the zero pages the guest left untouched given back",
	 {"--dedup", "zero,pages_to_scan=4096", "--guest-arg", "scans=3"},
	 false,
	 false},
	{"huge",
	 "faultline with --hugepages: 2 MiB pages, one fault each (needs vm.nr_hugepages "
	 "reserved; only when --modes names it)",
	 {"--hugepages"},
	 true,
	 true},
};
#undef FA

static const char *const extra_modes[][2] = {
	{"mmio", "MMIO exit round trip: a register BAR read"},
	{"pio", "port I/O exit round trip: a serial register read"},
	{"bar", "nopage BAR first touch: a vram page migrated in"},
	{"cow", "copy-on-write break of a page merged by dedup"},
};

static const char *const snapshot_modes[][2] = {
	{"restore", "a restore's first answer against a warm VM's, prefetch off, seq and ws"},
	{"clones", "PSS of N clones of one snapshot at once (--clones) against N copies"},
};

static bool default_size(const char *mode)
{
	return !strncmp(mode, "fa-", 3) && atoi(mode + 3) == CLI_FAULT_AROUND_DEFAULT;
}

void bench__usage(FILE *out)
{
	size_t i;

	fprintf(out, "Usage: faultline bench [OPTIONS]\n"
		     "\n"
		     "Measures guest first-touch fault latency and pages/s of faultline against "
		     "its\nbaselines in one run, each mode a `faultline run` of the test guest. "
		     "Needs /dev/kvm\n(or: tests/nested/run -- build/faultline bench --quick).\n"
		     "\nOptions:\n");
#define BENCH_HELPLINE(name, val, has_arg, metavar, help)                                          \
	do {                                                                                       \
		char opt[32];                                                                      \
		snprintf(opt, sizeof(opt), "%s%s%s", name, has_arg ? " " : "", metavar);           \
		fprintf(out, "  --%-16s %s\n", opt, help);                                         \
	} while (0);
	BENCH_OPTIONS(BENCH_HELPLINE)
#undef BENCH_HELPLINE
	fprintf(out, "\nModes of the touch workload (sequential and random, write and read, "
		     "sparse write,\n1 vCPU; those marked * also at every --vcpus count, "
		     "sequential write):\n");
	for (i = 0; i < sizeof(touch_modes) / sizeof(touch_modes[0]); i++)
		fprintf(out, "  %-10s%s %s%s\n", touch_modes[i].name,
			touch_modes[i].scaling ? "*" : " ", touch_modes[i].help,
			default_size(touch_modes[i].name) ? " (the default: measured as faultline)"
							  : "");
	fprintf(out, "Other modes (faultline's defaults, 1 vCPU):\n");
	for (i = 0; i < sizeof(extra_modes) / sizeof(extra_modes[0]); i++)
		fprintf(out, "  %-10s  %s\n", extra_modes[i][0], extra_modes[i][1]);
	fprintf(out, "Snapshot modes (the test guest's serve workload, or --linux; only when "
		     "--modes names\nthem):\n");
	for (i = 0; i < sizeof(snapshot_modes) / sizeof(snapshot_modes[0]); i++)
		fprintf(out, "  %-10s  %s\n", snapshot_modes[i][0], snapshot_modes[i][1]);
	fprintf(out, "\nExit status: 0 when every run succeeded; 64 bad options; 65 an --input "
		     "file that\nis not a results document; 66 a file cannot be read; 69 no "
		     "usable KVM; 70 a host\ncall failed; else the status of the first run that "
		     "failed (faultline --help),\nafter all results are reported. "
		     "Docs: docs/benchmarks.md\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *v < min || *v > max) {
		pr_err("invalid option value: expected a number %llu..%llu (--%s: %s)",
		       (unsigned long long)min, (unsigned long long)max, opt, s);
		return -EINVAL;
	}
	return 0;
}

static int parse_vcpu_list(const char *s, struct bench_options *o)
{
	char buf[128], *tok, *save = NULL;
	uint64_t v;

	if (strlen(s) >= sizeof(buf)) {
		pr_err("invalid option value: list too long (--vcpus: %s)", s);
		return -EINVAL;
	}
	strcpy(buf, s);
	o->nr_vcpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->nr_vcpus == BENCH_MAX_VCPU_COUNTS) {
			pr_err("invalid option value: at most %d counts (--vcpus: %s)",
			       BENCH_MAX_VCPU_COUNTS, s);
			return -EINVAL;
		}
		if (parse_u64("vcpus", tok, 1, VM_VCPUS_MAX, &v))
			return -EINVAL;
		o->vcpus[o->nr_vcpus++] = (unsigned)v;
	}
	if (!o->nr_vcpus) {
		pr_err("invalid option value: empty list (--vcpus: %s)", s);
		return -EINVAL;
	}
	return 0;
}

/*
 * The touch workload's patterns: order, access, and the name --patterns
 * takes. "sparse" is sequential order over every BENCH_SPREAD-th page: a
 * guest that uses a part of its RAM, for what each mode costs in memory.
 */
static const char *const patterns[][3] = {
	{"seq", "write", "seq-write"},	     {"random", "write", "random-write"},
	{"seq", "read", "seq-read"},	     {"random", "read", "random-read"},
	{"sparse", "write", "sparse-write"},
};
#define NR_PATTERNS (sizeof(patterns) / sizeof(patterns[0]))

static bool pattern_known(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NR_PATTERNS; i++)
		if (strlen(patterns[i][2]) == len && !strncmp(patterns[i][2], name, len))
			return true;
	return false;
}

static bool mode_known(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(touch_modes) / sizeof(touch_modes[0]); i++)
		if (strlen(touch_modes[i].name) == len && !strncmp(touch_modes[i].name, name, len))
			return true;
	for (i = 0; i < sizeof(snapshot_modes) / sizeof(snapshot_modes[0]); i++)
		if (strlen(snapshot_modes[i][0]) == len &&
		    !strncmp(snapshot_modes[i][0], name, len))
			return true;
	for (i = 0; i < sizeof(extra_modes) / sizeof(extra_modes[0]); i++)
		if (strlen(extra_modes[i][0]) == len && !strncmp(extra_modes[i][0], name, len))
			return true;
	return false;
}

/* Every name of comma-separated @list is @known: --modes, --patterns. */
static int check_list(const char *opt, const char *what, const char *list,
		      bool (*known)(const char *name, size_t len))
{
	const char *p = list;

	if (!*list) {
		pr_err("invalid option value: empty list (--%s)", opt);
		return -EINVAL;
	}
	while (*p) {
		size_t len = strcspn(p, ",");

		if (!known(p, len)) {
			pr_err("invalid option value: unknown %s '%.*s'; see 'faultline bench "
			       "--help' (--%s: %s)",
			       what, (int)len, p, opt, list);
			return -EINVAL;
		}
		p += len + (p[len] == ',');
	}
	return 0;
}

static int parse_option(int c, const char *arg, struct bench_options *o, bool *pages_set,
			bool *repeat_set)
{
	uint64_t v;

	switch (c) {
	case 'q': o->quick = true; return 0;
	case 'j': o->json = true; return 0;
	case 'C': o->csv = arg; return 0;
	case 'P': o->plot_dir = arg; return 0;
	case 'i': o->input = arg; return 0;
	case 'k': o->kernel = arg; return 0;
	case 'L': o->linux_config = arg; return 0;
	case 'M': o->modes = arg; return check_list("modes", "mode", arg, mode_known);
	case 'p': o->patterns = arg; return check_list("patterns", "pattern", arg, pattern_known);
	case 'c': return parse_vcpu_list(arg, o);
	case 'n':
		*pages_set = true;
		if (parse_u64("pages", arg, 16, 1U << 20, &v))
			return -EINVAL;
		o->pages = v;
		return 0;
	case 'r':
		*repeat_set = true;
		if (parse_u64("repeat", arg, 1, 21, &v))
			return -EINVAL;
		o->repeat = (unsigned)v;
		return 0;
	case 'N':
		if (parse_u64("clones", arg, 2, BENCH_MAX_CLONES, &v))
			return -EINVAL;
		o->clones = (unsigned)v;
		return 0;
	case 't':
		if (parse_u64("timeout", arg, 1, 86400, &v))
			return -EINVAL;
		o->timeout_s = (unsigned)v;
		return 0;
	}
	return -EINVAL;
}

/* The default scaling counts: powers of two up to 16 and this host's CPUs. */
static void default_vcpus(struct bench_options *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned v;

	o->nr_vcpus = 0;
	for (v = 1; v <= (o->quick ? 2U : 16U); v *= 2)
		if (v == 1 || (long)v <= cpus)
			o->vcpus[o->nr_vcpus++] = v;
}

int bench__parse(int argc, char **argv, struct bench_options *o)
{
	bool pages_set = false, repeat_set = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->kvm_device = KVM_DEVICE_DEFAULT;
	o->timeout_s = 300;
	optind = 0; /* glibc: start over, forgetting a cluster a previous parse left */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", bench_long_options, NULL)) != -1) {
		if (c == 'h')
			return 1;
		if (c == ':' || c == '?') {
			pr_err("usage: %s (%s); see 'faultline bench --help'",
			       c == ':' ? "option needs a value" : "unknown option",
			       argv[optind - 1]);
			return -EINVAL;
		}
		if (parse_option(c, optarg, o, &pages_set, &repeat_set))
			return -EINVAL;
	}
	if (optind < argc) {
		pr_err("usage: unexpected argument (%s); see 'faultline bench --help'",
		       argv[optind]);
		return -EINVAL;
	}
	if (o->linux_config && (!o->modes || strcmp(o->modes, "clones"))) {
		pr_err("usage: --linux is for the clones mode alone (the other modes time the test "
		       "guest); give --modes clones (--modes %s)",
		       o->modes ? o->modes : "not given");
		return -EINVAL;
	}
	if (o->linux_config && access(o->linux_config, R_OK) < 0) {
		pr_err("usage: cannot read the --linux config: %s (%s)", strerror(errno),
		       o->linux_config);
		return -EINVAL;
	}
	if (!pages_set)
		o->pages = o->quick ? BENCH_PAGES_QUICK : BENCH_PAGES;
	if (!repeat_set)
		o->repeat = o->quick ? 1 : BENCH_REPEAT;
	if (!o->nr_vcpus)
		default_vcpus(o);
	return 0;
}

/* Whether comma-separated @list (NULL: everything) names @name. */
static bool listed(const char *list, const char *name)
{
	const char *p = list;
	size_t len = strlen(name);

	if (!p)
		return true;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == len && !strncmp(p, name, n))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

/* The snapshot modes run only when --modes names them. */
static bool listed_mode(const struct bench_options *o, const char *name)
{
	return o->modes && listed(o->modes, name);
}

/* Without --modes, every mode but those that need more of the host (huge pages). */
static bool mode_selected(const struct bench_options *o, const char *name)
{
	size_t i;

	if (o->modes)
		return listed(o->modes, name);
	for (i = 0; i < sizeof(touch_modes) / sizeof(touch_modes[0]); i++)
		if (touch_modes[i].opt_in && !strcmp(touch_modes[i].name, name))
			return false;
	return true;
}

static void add_job(struct bench_job *jobs, unsigned *n, unsigned max, struct bench_job job)
{
	if (*n < max)
		jobs[(*n)++] = job;
}

/*
 * The matrix: every touch mode in every pattern on 1 vCPU (interleaved, so
 * that drift of the host hits all modes alike); the scaling modes at every
 * other vCPU count (sequential write: with that pattern only); the other
 * workloads. fa-N of the default size is the "faultline" mode already.
 */
unsigned bench__jobs(const struct bench_options *o, struct bench_job *jobs, unsigned max)
{
	const size_t nm = sizeof(touch_modes) / sizeof(touch_modes[0]);
	uint64_t small = o->pages < 4096 ? o->pages : 4096;
	unsigned n = 0, v;
	size_t m, p;

	for (p = 0; p < NR_PATTERNS; p++)
		for (m = 0; m < nm; m++)
			if (listed(o->patterns, patterns[p][2]) &&
			    mode_selected(o, touch_modes[m].name) &&
			    !default_size(touch_modes[m].name))
				add_job(jobs, &n, max,
					(struct bench_job){
						touch_modes[m].name, "touch", patterns[p][0],
						patterns[p][1], 1, touch_modes[m].flags,
						strcmp(patterns[p][0], "sparse") ? o->pages
										 : small});
	for (v = 0; v < o->nr_vcpus; v++)
		for (m = 0; m < nm; m++)
			if (o->vcpus[v] > 1 && touch_modes[m].scaling &&
			    listed(o->patterns, "seq-write") &&
			    mode_selected(o, touch_modes[m].name))
				add_job(jobs, &n, max,
					(struct bench_job){touch_modes[m].name, "touch", "seq",
							   "write", o->vcpus[v],
							   touch_modes[m].flags, o->pages});
	if (mode_selected(o, "mmio"))
		add_job(jobs, &n, max,
			(struct bench_job){"mmio", "mmio", "-", "-", 1, NULL, small * 4});
	if (mode_selected(o, "pio"))
		add_job(jobs, &n, max,
			(struct bench_job){"pio", "pio", "-", "-", 1, NULL, small * 4});
	if (mode_selected(o, "bar"))
		add_job(jobs, &n, max, (struct bench_job){"bar", "bar", "-", "-", 1, NULL, small});
	if (mode_selected(o, "cow"))
		add_job(jobs, &n, max,
			(struct bench_job){"cow", "cow", "-", "-", 1, NULL,
					   small < 2048 ? small : 2048});
	return n;
}

static void read_cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown CPU");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(buf, len, "%.*s", (int)strcspn(colon + 2, "\n"), colon + 2);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* Which KVM implementation this host runs: the loaded module. */
static const char *kvm_flavour(void)
{
	static const char *const mods[] = {"kvm_pvm", "kvm_amd", "kvm_intel"};
	char path[64];
	size_t i;

	for (i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		snprintf(path, sizeof(path), "/sys/module/%s", mods[i]);
		if (access(path, F_OK) == 0)
			return mods[i];
	}
	return "kvm";
}

/*
 * The host's transparent-huge-page mode ("always", "madvise", "never"): the
 * floor's and the kernel baseline's anonymous memory gets 2 MiB pages under
 * "always", which KVM maps with one fault each (docs/benchmarks.md).
 */
static void read_thp(char *buf, size_t len)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128], *open, *close;

	snprintf(buf, len, "unknown");
	if (f && fgets(line, sizeof(line), f) && (open = strchr(line, '[')) &&
	    (close = strchr(open, ']')))
		snprintf(buf, len, "%.*s", (int)(close - open - 1), open + 1);
	if (f)
		fclose(f);
}

static json_t *host_json(void)
{
	struct utsname u;
	char cpu[256], thp[32];

	read_cpu_model(cpu, sizeof(cpu));
	read_thp(thp, sizeof(thp));
	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	return json_pack("{s:s,s:s,s:I,s:s,s:s}", "kernel", u.release, "cpu", cpu, "cpus",
			 (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "kvm", kvm_flavour(), "thp",
			 thp);
}

/* The fastest fault-around size for each pattern, 1 vCPU: the default's evidence. */
static json_t *best_fault_around(json_t *results)
{
	json_t *best = json_object(), *r;
	unsigned p;
	size_t i;

	for (p = 0; p < 4; p++) {
		double min = 0;
		long long size = 0;
		char key[32];

		json_array_foreach(results, i, r)
		{
			const char *mode = json_string_value(json_object_get(r, "mode"));
			long long s = !strcmp(mode, "faultline") ? CLI_FAULT_AROUND_DEFAULT
				      : !strncmp(mode, "fa-", 3) ? atoll(mode + 3)
								 : 0;
			double ns = json_number_value(json_object_get(r, "ns_per_op"));

			if (!s || json_integer_value(json_object_get(r, "status")) ||
			    json_integer_value(json_object_get(r, "vcpus")) != 1 ||
			    strcmp(json_string_value(json_object_get(r, "order")),
				   patterns[p][0]) ||
			    strcmp(json_string_value(json_object_get(r, "access")), patterns[p][1]))
				continue;
			if (!size || ns < min) {
				min = ns;
				size = s;
			}
		}
		snprintf(key, sizeof(key), "%s-%s", patterns[p][0], patterns[p][1]);
		json_object_set_new(best, key, size ? json_integer(size) : json_null());
	}
	return best;
}

static const char *kvm_device(const struct bench_options *o)
{
	const char *env = getenv("FAULTLINE_KVM_DEVICE");

	return env ? env : o->kvm_device;
}

/* Where this program and the test guest are; 0 or an exit status (reported). */
static int locate(const struct bench_options *o, char *self, char *guest, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", self, len - 1);
	int fd;

	if (n <= 0) {
		pr_err("cannot find this program: readlink failed: %s (file: /proc/self/exe)",
		       strerror(errno));
		return FL_EXIT_INTERNAL;
	}
	self[n] = '\0';
	if (o->kernel)
		snprintf(guest, len, "%s", o->kernel);
	else {
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s", self);
		snprintf(guest, len, "%s/guest/faultline-guest.elf", dirname(dir));
	}
	if (access(guest, R_OK) < 0) {
		pr_err("cannot read the test guest: %s (file: %s); build it with make or give "
		       "--kernel",
		       strerror(errno), guest);
		return FL_EXIT_NOINPUT;
	}
	fd = open(kvm_device(o), O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		pr_err("no usable KVM: %s (device: %s); without one, run inside the nested "
		       "harness: tests/nested/run -- build/faultline bench --quick",
		       strerror(errno), kvm_device(o));
		return FL_EXIT_NOKVM;
	}
	close(fd);
	return 0;
}

static volatile sig_atomic_t bench_stop;

static void on_stop_signal(int sig)
{
	bench_stop = sig;
}

bool bench__stopping(void)
{
	return bench_stop != 0;
}

/*
 * SIGINT or SIGTERM ends the benchmark: the run in progress is stopped
 * with SIGTERM (bench__stopping()) and dropped, the results so far are
 * still reported, marked "interrupted".
 */
static void catch_stop_signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int measure_all(const struct bench_options *o, json_t **doc)
{
	static struct bench_job jobs[256];
	char self[PATH_MAX], guest[PATH_MAX];
	json_t *snapshots = NULL;
	struct bench_run b = {.o = o, .self = self, .guest = guest};
	unsigned i, n;
	int status = locate(o, self, guest, sizeof(self));

	if (status)
		return status;
	n = bench__jobs(o, jobs, sizeof(jobs) / sizeof(jobs[0]));
	b.total = n;
	b.results = json_array();
	catch_stop_signals();
	for (i = 0; b.results && i < n && !bench_stop; i++) {
		int before = b.first_failure;
		json_t *r = bench__measure(&b, &jobs[i]);

		/* a run the signal cut short is no result, and no failure */
		if (bench_stop && json_integer_value(json_object_get(r, "status"))) {
			json_decref(r);
			b.first_failure = before;
		} else {
			json_array_append_new(b.results, r);
		}
	}
	if (!bench_stop && (listed_mode(o, "restore") || listed_mode(o, "clones"))) {
		int before = b.first_failure;

		bench__progress(&b, NULL);
		snapshots = bench__measure_snapshots(&b, listed_mode(o, "restore"),
						     listed_mode(o, "clones"));
		if (bench_stop) /* what the signal cut short is no failure */
			b.first_failure = before;
	}
	bench__progress(&b, NULL);
	if (bench_stop) {
		pr_err("interrupted by signal %d after %zu of %u measurements: reporting those",
		       (int)bench_stop, json_array_size(b.results), n);
		b.first_failure = b.first_failure ?: 128 + bench_stop;
	}
	bench__add_ratios(b.results);
	*doc = json_pack("{s:i,s:s,s:b,s:b,s:o,s:i,s:I,s:i,s:i,s:i,s:o,s:o}", "faultline_bench",
			 BENCH_FORMAT, "version", FAULTLINE_VERSION, "quick", o->quick,
			 "interrupted", bench_stop != 0, "host", host_json(), "tsc_khz", b.tsc_khz,
			 "pages", (json_int_t)o->pages, "repeat", o->repeat, "default_fault_around",
			 CLI_FAULT_AROUND_DEFAULT, "default_fault_spin_us", 0, "best_fault_around",
			 best_fault_around(b.results), "results", b.results);
	if (!*doc) {
		pr_err("cannot build the results document: out of memory");
		json_decref(snapshots);
		return FL_EXIT_INTERNAL;
	}
	if (snapshots)
		json_object_set_new(*doc, "snapshots", snapshots);
	return b.first_failure;
}

static json_t *load(const char *path, int *status)
{
	json_error_t e;
	char why[256];
	json_t *doc = json_load_file(path, 0, &e);

	if (!doc) {
		bool unreadable = access(path, R_OK) < 0;

		pr_err("%s: %s (file: %s, line %d)",
		       unreadable ? "cannot read the results file" : "invalid results file",
		       unreadable ? strerror(errno) : e.text, path, e.line);
		*status = unreadable ? FL_EXIT_NOINPUT : FL_EXIT_IMAGE;
		return NULL;
	}
	if (bench__validate(doc, why, sizeof(why))) {
		pr_err("invalid results file: %s (file: %s)", why, path);
		json_decref(doc);
		*status = FL_EXIT_IMAGE;
		return NULL;
	}
	bench__add_ratios(json_object_get(doc, "results"));
	return doc;
}

int bench__main(const struct bench_options *o)
{
	json_t *doc = NULL;
	int status = 0;

	if (o->input)
		doc = load(o->input, &status);
	else
		status = measure_all(o, &doc);
	if (!doc)
		return status;
	if (o->json) {
		json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else {
		bench__print_table(doc, stdout);
	}
	fflush(stdout);
	if ((o->csv && bench__write_csv(doc, o->csv)) ||
	    (o->plot_dir && bench__write_plots(doc, o->plot_dir)))
		status = status ?: FL_EXIT_INTERNAL;
	json_decref(doc);
	return status;
}
