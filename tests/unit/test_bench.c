/*
 * faultline bench without KVM: what the guest prints is untrusted input
 * to the parser; the histogram's statistics; the results document
 * (ratios, validation, CSV, plot files): vmm/cmd/bench_report.c. The options:
 * vmm/cmd/bench.c. The runs themselves (vmm/cmd/bench_run.c: child processes,
 * medians, the latency run) need KVM: t_bench_quick in tests/kvm/run.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "tests/unit/unit.h"
#include "vmm/cmd/bench.h"
#include "vmm/sys/host_mem.h"

static char log_buf[1024];
static struct bench_sample sample;
static char why[256];

#define GOOD                                                                                       \
	"hello: noise before\n"                                                                    \
	"bench: kind=touch vcpus=2 ops=4 cycles=8000 verified=4 timed=4 timer=10 verify=7\n"       \
	"bench-hist: 20:1 40:2\n"                                                                  \
	"bench-hist: 60:1\n"                                                                       \
	"bench-max: 200\n"

START_TEST(histogram_buckets)
{
	uint64_t v;

	for (v = 0; v < 1000000; v = v * 3 / 2 + 1) {
		unsigned b = bench_hist_bucket(v);

		ck_assert_uint_le(bench_hist_low(b), v);
		ck_assert_uint_gt(bench_hist_low(b + 1), v);
		/* at most 12.5% wide */
		ck_assert_uint_le((bench_hist_low(b + 1) - bench_hist_low(b)) * 8,
				  bench_hist_low(b) < 16 ? 8 : bench_hist_low(b));
	}
	ck_assert_uint_eq(bench_hist_bucket(~0ULL), BENCH_HIST_BUCKETS - 1);
}
END_TEST

START_TEST(parse_guest_output)
{
	ck_assert_int_eq(bench__parse_guest(GOOD, &sample, why, sizeof(why)), 0);
	ck_assert_str_eq(sample.kind, "touch");
	ck_assert_uint_eq(sample.vcpus, 2);
	ck_assert_uint_eq(sample.ops, 4);
	ck_assert_uint_eq(sample.cycles, 8000);
	ck_assert_uint_eq(sample.timer_cycles, 10);
	ck_assert_uint_eq(sample.verify_cycles, 7);
	ck_assert_uint_eq(sample.hist[40], 2);
	ck_assert_uint_eq(sample.hist[60], 1);
	ck_assert_uint_eq(sample.max_cycles, 200);
	/* lat=0: an empty histogram */
	ck_assert_int_eq(bench__parse_guest("bench: kind=pio vcpus=1 ops=9 cycles=90 verified=9 "
					    "timed=0 timer=3 verify=0\nbench-hist:\nbench-max: 0\n",
					    &sample, why, sizeof(why)),
			 0);
	ck_assert_uint_eq(sample.ops, 9);
}
END_TEST

START_TEST(parse_guest_rejects)
{
	static const struct {
		const char *out, *why;
	} cases[] = {
		{"", "the guest printed no bench: line"},
		{"bench: kind=touch vcpus=1 ops=1 cycles=1 verified=1 timed=1 timer=1 verify=0\n",
		 "the guest printed no bench-hist: line"},
		{"bench: kind=touch vcpus=1 ops=1 cycles=1 verified=1 timed=1 timer=1 verify=0\n"
		 "bench-hist: 3:1\n",
		 "the guest printed no bench-max: line"},
		{"bench: kind=touch vcpus=0 ops=1 cycles=1 verified=1 timed=1 timer=1 verify=0\n",
		 "malformed guest output (line: bench: kind=touch vcpus=0 ops=1 cycles=1 "
		 "verified=1 "
		 "timed=1 )"},
		{"bench: kind=touch vcpus=1 ops=1 cycles=1 verified=1 timed=1 timer=1\n",
		 "malformed guest output (line: bench: kind=touch vcpus=1 ops=1 cycles=1 "
		 "verified=1 "
		 "timed=1 )"},
		{"bench: kind=touch vcpus=1 ops=x cycles=1 verified=1 timed=1 timer=1 verify=0\n",
		 "malformed guest output (line: bench: kind=touch vcpus=1 ops=x cycles=1 "
		 "verified=1 "
		 "timed=1 )"},
		{"bench-hist: 400:1\n", "malformed guest output (line: bench-hist: 400:1)"},
		{"bench-hist: 3:\n", "malformed guest output (line: bench-hist: 3:)"},
		{"bench-hist:3:1\n", "malformed guest output (line: bench-hist:3:1)"},
		{"bench-max: 12x\n", "malformed guest output (line: bench-max: 12x)"},
		{"bench: kind=touch vcpus=1 ops=5 cycles=1 verified=5 timed=5 timer=1 verify=0\n"
		 "bench-hist: 3:1\nbench-max: 4\n",
		 "inconsistent guest output (ops: 5, timed: 5, histogram: 1, verified: 5)"},
		{"bench: kind=touch vcpus=1 ops=2 cycles=1 verified=1 timed=0 timer=1 verify=0\n"
		 "bench-hist:\nbench-max: 4\n",
		 "inconsistent guest output (ops: 2, timed: 0, histogram: 0, verified: 1)"},
		{"bench: kind=touch vcpus=1 ops=0 cycles=1 verified=0 timed=0 timer=1 verify=0\n"
		 "bench-hist:\nbench-max: 4\n",
		 "inconsistent guest output (ops: 0, timed: 0, histogram: 0, verified: 0)"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(bench__parse_guest(cases[i].out, &sample, why, sizeof(why)),
				 -EINVAL);
		ck_assert_str_eq(why, cases[i].why);
	}
}
END_TEST

START_TEST(percentiles)
{
	uint64_t hist[BENCH_HIST_BUCKETS] = {0};

	ck_assert_uint_eq(bench__percentile(hist, 0, 50), 0);
	hist[5] = 50;			    /* exactly 5 cycles */
	hist[bench_hist_bucket(1000)] = 49; /* 960..1023 */
	hist[bench_hist_bucket(90000)] = 1;
	ck_assert_uint_eq(bench__percentile(hist, 90000, 50), 5);
	ck_assert_uint_eq(bench__percentile(hist, 90000, 90), 1023);
	ck_assert_uint_eq(bench__percentile(hist, 90000, 99), 1023);
	ck_assert_uint_eq(bench__percentile(hist, 90000, 100), 90000); /* capped at max */
	ck_assert(bench__cycles_to_ns(2000, 2000000) > 999.99 &&
		  bench__cycles_to_ns(2000, 2000000) < 1000.01);
}
END_TEST

/* The result of a run: rates from cycles and TSC frequency, latency less the timer. */
START_TEST(sample_to_json)
{
	json_t *r;

	ck_assert_int_eq(bench__parse_guest(GOOD, &sample, why, sizeof(why)), 0);
	r = bench__sample_json(&sample, 1000); /* 1 MHz: a cycle is 1 us */
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "ops")), 4);
	ck_assert(json_real_value(json_object_get(r, "ops_per_s")) == 500.0);
	ck_assert(json_real_value(json_object_get(r, "ns_per_op")) == 2e6);
	/* bucket 40 holds 128..143 cycles; less 10 of the timer: 133 us */
	ck_assert(json_real_value(json_object_get(json_object_get(r, "guest_latency_ns"), "p50")) ==
		  133000.0);
	ck_assert(json_real_value(json_object_get(json_object_get(r, "guest_latency_ns"), "max")) ==
		  190000.0);
	ck_assert_uint_eq(json_array_size(json_object_get(r, "cdf")), 3);
	json_decref(r);
}
END_TEST

/* Where a run's wall time went: the child's times split with the guest's own. */
START_TEST(phases_of_a_run)
{
	json_t *r = json_pack("{s:i,s:f,s:f}", "ops", 4, "ns_per_op", 2e6, "verify_s", 0.002);
	json_t *times = json_pack("{s:f,s:f,s:f,s:f}", "setup", 0.5, "guest", 1.0, "stop", 0.125,
				  "total", 1.75);
	json_t *p;

	bench__add_phases(r, times, 2.0);
	p = json_object_get(r, "phases_s");
	ck_assert_ptr_nonnull(p);
	ck_assert_double_eq_tol(json_real_value(json_object_get(p, "setup")), 0.5, 1e-9);
	ck_assert_double_eq_tol(json_real_value(json_object_get(p, "guest")), 1.0, 1e-9);
	ck_assert_double_eq_tol(json_real_value(json_object_get(p, "loop")), 0.008, 1e-9);
	ck_assert_double_eq_tol(json_real_value(json_object_get(p, "verify")), 0.002, 1e-9);
	ck_assert_double_eq_tol(json_real_value(json_object_get(p, "guest_other")), 0.99, 1e-9);
	ck_assert_double_eq_tol(json_real_value(json_object_get(p, "stop")), 0.125, 1e-9);
	ck_assert_double_eq_tol(json_real_value(json_object_get(p, "exit")), 0.25, 1e-9);
	/* clocks that disagree give no negative time */
	bench__add_phases(r, times, 1.0);
	ck_assert(json_real_value(json_object_get(json_object_get(r, "phases_s"), "exit")) == 0.0);
	/* a child without "times_s" (an older faultline): nothing is made up */
	json_object_del(r, "phases_s");
	json_object_del(times, "stop");
	bench__add_phases(r, times, 2.0);
	ck_assert_ptr_null(json_object_get(r, "phases_s"));
	bench__add_phases(r, NULL, 2.0);
	ck_assert_ptr_null(json_object_get(r, "phases_s"));
	json_decref(times);
	json_decref(r);
}
END_TEST

static json_t *result(const char *mode, const char *order, int vcpus, double ns, int status)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:f,s:f,s:{s:f,s:f,s:f,s:f}}", "mode", mode,
			 "kind", "touch", "order", order, "access", "write", "vcpus", vcpus,
			 "status", status, "ns_per_op", ns, "ops_per_s", 1e9 / ns,
			 "guest_latency_ns", "p50", 1.0, "p90", 2.0, "p99", 3.0, "max", 4.0);
}

static json_t *document(void)
{
	json_t *results = json_array();

	json_array_append_new(results, result("floor", "seq", 1, 1000, 0));
	json_array_append_new(results, result("kernel", "seq", 1, 2000, 0));
	json_array_append_new(results, result("faultline", "seq", 1, 1500, 0));
	json_array_append_new(results, result("faultline", "random", 1, 3000, 0));
	json_array_append_new(results, result("naive", "seq", 1, 9000, 70));
	return json_pack("{s:i,s:i,s:o}", "faultline_bench", BENCH_FORMAT, "default_fault_around",
			 16, "results", results);
}

START_TEST(ratios_from_the_same_run)
{
	json_t *doc = document(), *results = json_object_get(doc, "results");

	bench__add_ratios(results);
	ck_assert(json_real_value(json_object_get(json_array_get(results, 2), "ratio_floor")) ==
		  1.5);
	ck_assert(json_real_value(json_object_get(json_array_get(results, 2), "ratio_kernel")) ==
		  0.75);
	/* no floor measured for random order, and a failed run has no ratio */
	ck_assert(json_is_null(json_object_get(json_array_get(results, 3), "ratio_floor")));
	ck_assert(json_is_null(json_object_get(json_array_get(results, 4), "ratio_floor")));
	json_decref(doc);
}
END_TEST

/* Host memory: guest RAM, the monitor and page tables, over the floor's. */
static void set_memory(json_t *r, int guest, int monitor, int tables)
{
	json_object_set_new(r, "memory_kib",
			    json_pack("{s:i,s:i,s:i,s:i}", "guest", guest, "monitor", monitor,
				      "page_tables", tables, "program", 500));
}

START_TEST(memory_ratios_from_the_same_run)
{
	json_t *doc = document(), *results = json_object_get(doc, "results");

	set_memory(json_array_get(results, 0), 1000, 20, 4);
	set_memory(json_array_get(results, 2), 200, 52, 4);
	set_memory(json_array_get(results, 3), 100, 20, 4);
	bench__add_ratios(results);
	ck_assert(bench__host_kib(json_array_get(results, 2)) == 256);
	ck_assert(json_real_value(json_object_get(json_array_get(results, 2),
						  "memory_ratio_floor")) == 0.25);
	/* the floor against itself; random order has no floor; kernel has no memory */
	ck_assert(json_real_value(json_object_get(json_array_get(results, 0),
						  "memory_ratio_floor")) == 1.0);
	ck_assert(json_is_null(json_object_get(json_array_get(results, 3), "memory_ratio_floor")));
	ck_assert(json_is_null(json_object_get(json_array_get(results, 1), "memory_ratio_floor")));
	ck_assert(bench__host_kib(json_array_get(results, 1)) == 0);
	/* a faultline run whose host memory could not be read (null) */
	json_object_set_new(json_array_get(results, 2), "memory_kib", json_null());
	bench__add_ratios(results);
	ck_assert(json_is_null(json_object_get(json_array_get(results, 2), "memory_ratio_floor")));
	json_decref(doc);
}
END_TEST

START_TEST(host_memory_from_proc_status)
{
	static const char status[] = "Name:\tfaultline\nVmPeak:\t  300000 kB\n"
				     "RssAnon:\t     276 kB\nRssFile:\t      12 kB\n"
				     "RssShmem:\t   67328 kB\nVmPTE:\t     188 kB\nThreads:\t3\n";
	struct host_mem_status st;
	struct host_mem m;

	ck_assert_int_eq(host_mem__parse_status(status, &st), 0);
	ck_assert_uint_eq(st.rss_anon, 276);
	ck_assert_uint_eq(st.rss_file, 12);
	ck_assert_uint_eq(st.pte, 188);
	/* guest RAM in a memfd is not in RssAnon */
	host_mem__combine(&st, 67328, 0, &m);
	ck_assert_uint_eq(m.guest_kib, 67328);
	ck_assert_uint_eq(m.monitor_kib, 276);
	ck_assert_uint_eq(m.page_tables_kib, 188);
	ck_assert_uint_eq(m.program_kib, 12);
	/* anonymous guest RAM (the kernel baseline) is, and never below zero */
	host_mem__combine(&st, 200, 200, &m);
	ck_assert_uint_eq(m.monitor_kib, 76);
	host_mem__combine(&st, 300, 300, &m);
	ck_assert_uint_eq(m.monitor_kib, 0);
	/* a field missing, not a number, or not in kB */
	ck_assert_int_eq(host_mem__parse_status("RssAnon:\t1 kB\nRssFile:\t2 kB\n", &st), -EINVAL);
	ck_assert_int_eq(
		host_mem__parse_status("RssAnon:\tx kB\nRssFile:\t2 kB\nVmPTE:\t3 kB\n", &st),
		-EINVAL);
	ck_assert_int_eq(
		host_mem__parse_status("RssAnon:\t1 MB\nRssFile:\t2 kB\nVmPTE:\t3 kB\n", &st),
		-EINVAL);
	ck_assert_int_eq(
		host_mem__parse_status("RssAnonX:\t1 kB\nRssFile:\t2 kB\nVmPTE:\t3 kB\n", &st),
		-EINVAL);
	ck_assert_int_eq(host_mem__parse_status(NULL, &st), -EINVAL);
}
END_TEST

/* The kernel baseline's anonymous RAM: the Anonymous: field of its own mapping. */
START_TEST(anonymous_ram_from_smaps)
{
	static const char smaps[] = "00400000-00600000 r-xp 00000000 00:1f 1234 /faultline\n"
				    "Size:               2048 kB\nRss:                 900 "
				    "kB\nAnonymous:             0 kB\n"
				    "VmFlags: rd ex mr mw me\n"
				    "7f0000000000-7f0004000000 rw-p 00000000 00:00 0 \n"
				    "Size:              65536 kB\nRss:                6144 "
				    "kB\nAnonymous:          4096 kB\n"
				    "AnonHugePages:      4096 kB\nVmFlags: rd wr mr mw me ac\n"
				    "7f0004000000-7f0004001000 rw-p 00000000 00:00 0 \n"
				    "Size:                  4 kB\nVmFlags: rd wr\n";
	uint64_t kib = 1;

	ck_assert_int_eq(host_mem__parse_smaps_anon(smaps, 0x7f0000000000UL, &kib), 0);
	ck_assert_uint_eq(kib, 4096);
	ck_assert_int_eq(host_mem__parse_smaps_anon(smaps, 0x400000UL, &kib), 0);
	ck_assert_uint_eq(kib, 0);
	/* no mapping starts there; a mapping without the field */
	ck_assert_int_eq(host_mem__parse_smaps_anon(smaps, 0x7f0000001000UL, &kib), -EINVAL);
	ck_assert_int_eq(host_mem__parse_smaps_anon(smaps, 0x7f0004000000UL, &kib), -EINVAL);
	ck_assert_int_eq(host_mem__parse_smaps_anon("", 0x400000UL, &kib), -EINVAL);
	ck_assert_uint_eq(kib, 0);
}
END_TEST

START_TEST(validate_documents)
{
	json_t *doc = document();

	ck_assert_int_eq(bench__validate(doc, why, sizeof(why)), 0);
	json_object_set_new(json_array_get(json_object_get(doc, "results"), 1), "vcpus",
			    json_string("two"));
	ck_assert_int_eq(bench__validate(doc, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "result 1: \"vcpus\" or \"status\" is not an integer");
	json_object_del(json_array_get(json_object_get(doc, "results"), 0), "mode");
	ck_assert_int_eq(bench__validate(doc, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "result 0: \"mode\" is not a string");
	json_object_set_new(doc, "faultline_bench", json_integer(BENCH_FORMAT + 1));
	ck_assert_int_eq(bench__validate(doc, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "not a faultline bench results document of format 1");
	json_decref(doc);
	doc = document();
	json_object_set_new(doc, "snapshots", json_integer(3));
	ck_assert_int_eq(bench__validate(doc, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "\"snapshots\" is not an object");
	json_decref(doc);
}
END_TEST

/* The serve workload's answers; anything else is no number (0). */
START_TEST(serve_answers)
{
	const char *out = "serve: ready\n"
			  "serve: request 1 of clone 7: 1024 pages in 123456 cycles\n"
			  "xserve: request 2 of clone 7: 1024 pages in 99 cycles\n"
			  "serve: request 2 of clone 7: 1024 pages in 4567 cycles\n";

	ck_assert_uint_eq(bench__answer_cycles(out, 1), 123456);
	ck_assert_uint_eq(bench__answer_cycles(out, 2), 4567);
	ck_assert_uint_eq(bench__answer_cycles(out, 3), 0);
	ck_assert_uint_eq(bench__answer_cycles(NULL, 1), 0);
	/* whose answer it is: the test guest's line, and the Linux guest's */
	ck_assert(bench__answered_as(out, "7"));
	ck_assert(!bench__answered_as(out, "71"));
	ck_assert(!bench__answered_as(out, "8"));
	ck_assert(!bench__answered_as(NULL, "7"));
	ck_assert(bench__answered_as("go\r\nserve: request 1 of clone 12\r\n", "12"));
	ck_assert(!bench__answered_as("go\r\nserve: request 1 of clone 123\r\n", "12"));
	ck_assert(!bench__answered_as("serve: request 1 of clone \r\n", "12"));
	ck_assert(!bench__answered_as("echo serve: request 1 of clone 12\n", "12"));
	ck_assert_uint_eq(
		bench__answer_cycles("serve: request 1 of clone 7: 1 pages in  cycles\n", 1), 0);
	ck_assert_uint_eq(
		bench__answer_cycles("serve: request 1 of clone 7: 1 pages in 12x cycles\n", 1), 0);
	ck_assert_uint_eq(
		bench__answer_cycles("serve: request 1 of clone 7\n1 pages in 5 cycles\n", 1), 0);
	ck_assert_uint_eq(
		bench__answer_cycles(
			"serve: request 1 of clone 7: 1 pages in 99999999999999999999999 cycles\n",
			1),
		0);
}
END_TEST

/* The table says what the snapshot modes measured, or why they did not. */
START_TEST(snapshot_table)
{
	json_t *doc = document();
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	json_object_set_new(
		doc, "snapshots",
		json_pack("{s:{s:s},s:{s:s,s:i,s:i,s:b,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f}}",
			  "restore", "error", "the restore: faultline: bad snapshot", "clones",
			  "guest", "Linux (--linux configs/default.json)", "clones", 8, "pages",
			  1024, "on_tmpfs", 1, "pss_kib_one", (json_int_t)5000, "pss_kib_shared",
			  (json_int_t)12000, "pss_kib_private", (json_int_t)48000, "start_ms_one",
			  10.0, "start_ms_shared", 40.0, "start_ms_private", 80.0, "kib_per_clone",
			  1000.0, "ratio_private", 0.25));
	ck_assert_ptr_nonnull(f);
	bench__print_table(doc, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "restore: the restore: faultline: bad snapshot\n"));
	ck_assert_ptr_nonnull(strstr(text, "clones: 8 at once of one snapshot of Linux (--linux "
					   "configs/default.json): PSS 12000 KiB in "
					   "all (1000 KiB more per clone than one alone, 5000 "
					   "KiB), 0.250x of 8 copies' 48000 KiB; all answered in "
					   "40.0 ms (copies 80.0 ms, one 10.0 ms)\n"));
	free(text);
	json_decref(doc);
}
END_TEST

static int commas(const char *line)
{
	int n = 0;

	for (; *line; line++)
		n += *line == ',';
	return n;
}

START_TEST(csv_and_plot_files)
{
	char dir[] = "/tmp/faultline-bench-XXXXXX", path[128], line[512];
	json_t *doc = document();
	int rows = 0, columns;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/r.csv", dir);
	bench__add_ratios(json_object_get(doc, "results"));
	json_object_set_new(json_array_get(json_object_get(doc, "results"), 0), "kvm",
			    json_pack("{s:i,s:i,s:i,s:i}", "exits", 900, "pf_taken", 4100,
				      "pf_fixed", 4096, "pages_4k", 4096));
	ck_assert_int_eq(bench__write_csv(doc, path), 0);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert(!strncmp(line, "mode,kind,order,access,vcpus,ops,ops_per_s", 42));
	ck_assert_str_eq(
		strstr(line, ",status,"),
		",status,wall_s,setup_s,guest_s,loop_s,verify_s,guest_other_s,stop_s,exit_s,"
		"host_guest_kib,host_monitor_kib,host_page_tables_kib,memory_ratio_floor,"
		"monitor_resident_pages,kvm_exits,kvm_pf_taken,kvm_pf_fixed\n");
	columns = commas(line);
	ck_assert_int_eq(columns, 34);
	while (fgets(line, sizeof(line), f)) {
		/* every row has every column, empty where a result has no value */
		ck_assert_int_eq(commas(line), columns);
		/* KVM's counters last: the first result has them, the others none */
		ck_assert_str_eq(line + strlen(line) - (rows ? 4 : 15),
				 rows ? ",,,\n" : ",900,4100,4096\n");
		rows++;
	}
	fclose(f);
	ck_assert_int_eq(rows, 5);
	snprintf(path, sizeof(path), "%s/plots", dir);
	setenv("PATH", "/nonexistent", 1); /* no gnuplot: data and script only */
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(bench__write_plots(doc, path), 0);
	log__capture(NULL, 0);
	snprintf(path, sizeof(path), "%s/plots/bench.gp", dir);
	ck_assert_int_eq(access(path, R_OK), 0);
	snprintf(path, sizeof(path), "%s/plots/scaling.dat", dir);
	ck_assert_int_eq(access(path, R_OK), 0);
	/* a directory that cannot be made */
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(bench__write_plots(doc, "/nonexistent/x"), -ENOENT);
	ck_assert_log(log_buf, "faultline: cannot create the plot directory: No such file or "
			       "directory (directory: /nonexistent/x)\n");
	ck_assert_int_eq(bench__write_csv(doc, "/nonexistent/x.csv"), -ENOENT);
	log__capture(NULL, 0);
	json_decref(doc);
}
END_TEST

static int parse(struct bench_options *o, const char *a, const char *b)
{
	char *argv[] = {(char *)"bench", (char *)a, (char *)b, NULL};

	log__capture(log_buf, sizeof(log_buf));
	return bench__parse(b ? 3 : a ? 2 : 1, argv, o);
}

START_TEST(options)
{
	struct bench_options o;

	ck_assert_int_eq(parse(&o, NULL, NULL), 0);
	ck_assert_uint_eq(o.pages, 16384);
	ck_assert_uint_eq(o.repeat, 3);
	ck_assert_uint_eq(o.vcpus[0], 1);
	ck_assert_int_eq(parse(&o, "--quick", NULL), 0);
	ck_assert_uint_eq(o.pages, 256);
	ck_assert_uint_eq(o.repeat, 1);
	ck_assert_uint_eq(o.nr_vcpus, sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1);
	ck_assert_int_eq(parse(&o, "--vcpus", "1,4,16"), 0);
	ck_assert_uint_eq(o.nr_vcpus, 3);
	ck_assert_uint_eq(o.vcpus[2], 16);
	ck_assert_int_eq(parse(&o, "--help", NULL), 1);
	ck_assert_int_eq(parse(&o, "--modes", "floor,nope"), -EINVAL);
	ck_assert_log(log_buf, "faultline: invalid option value: unknown mode 'nope'; see "
			       "'faultline bench --help' (--modes: floor,nope)\n");
	ck_assert_int_eq(parse(&o, "--modes", ""), -EINVAL);
	ck_assert_log(log_buf, "faultline: invalid option value: empty list (--modes)\n");
	ck_assert_int_eq(parse(&o, "--patterns", "seq-write,seq"), -EINVAL);
	ck_assert_log(log_buf, "faultline: invalid option value: unknown pattern 'seq'; see "
			       "'faultline bench --help' (--patterns: seq-write,seq)\n");
	ck_assert_int_eq(parse(&o, "--pages", "8"), -EINVAL);
	ck_assert_log(log_buf, "faultline: invalid option value: expected a number "
			       "16..1048576 (--pages: 8)\n");
	ck_assert_int_eq(parse(&o, "--vcpus", "1,,65"), -EINVAL);
	ck_assert_log(log_buf, "faultline: invalid option value: expected a number 1..64 "
			       "(--vcpus: 65)\n");
	ck_assert_int_eq(parse(&o, "--repeat", NULL), -EINVAL);
	ck_assert_log(log_buf, "faultline: usage: option needs a value (--repeat); see "
			       "'faultline bench --help'\n");
	ck_assert_int_eq(parse(&o, "--clones", "64"), 0);
	ck_assert_uint_eq(o.clones, 64);
	ck_assert_int_eq(parse(&o, "--clones", "65"), -EINVAL);
	ck_assert_log(log_buf, "faultline: invalid option value: expected a number "
			       "2..64 (--clones: 65)\n");
	ck_assert_int_eq(parse(&o, "--modes", "restore,clones"), 0);
	ck_assert_ptr_null(o.linux_config);
	{
		char *lx[] = {(char *)"bench", (char *)"--linux", (char *)"configs/default.json",
			      (char *)"--modes", (char *)"clones"};
		char *lx_restore[] = {(char *)"bench", (char *)"--modes", (char *)"restore,clones",
				      (char *)"--linux", (char *)"configs/default.json"};
		char *lx_missing[] = {(char *)"bench", (char *)"--modes", (char *)"clones",
				      (char *)"--linux", (char *)"/nonexistent/vm.json"};

		ck_assert_int_eq(bench__parse(5, lx, &o), 0);
		ck_assert_str_eq(o.linux_config, "configs/default.json");
		log__capture(log_buf, sizeof(log_buf));
		ck_assert_int_eq(bench__parse(3, lx, &o), -EINVAL);
		ck_assert_log(log_buf,
			      "faultline: usage: --linux is for the clones mode alone (the "
			      "other modes time the test guest); give --modes clones "
			      "(--modes not given)\n");
		log__capture(log_buf, sizeof(log_buf));
		ck_assert_int_eq(bench__parse(5, lx_restore, &o), -EINVAL);
		ck_assert_log(log_buf,
			      "faultline: usage: --linux is for the clones mode alone (the "
			      "other modes time the test guest); give --modes clones "
			      "(--modes restore,clones)\n");
		log__capture(log_buf, sizeof(log_buf));
		ck_assert_int_eq(bench__parse(5, lx_missing, &o), -EINVAL);
		ck_assert_log(log_buf, "faultline: usage: cannot read the --linux config: No such "
				       "file or directory (/nonexistent/vm.json)\n");
	}
	ck_assert_int_eq(parse(&o, "extra", NULL), -EINVAL);
	ck_assert_log(log_buf, "faultline: usage: unexpected argument (extra); see 'faultline "
			       "bench --help'\n");
	log__capture(NULL, 0);
}
END_TEST

static unsigned jobs_of(const char *const *args, int n, struct bench_job *jobs, unsigned max)
{
	char *argv[16] = {(char *)"bench"};
	struct bench_options o;
	int i;

	for (i = 0; i < n; i++)
		argv[i + 1] = (char *)args[i];
	ck_assert_int_eq(bench__parse(n + 1, argv, &o), 0);
	return bench__jobs(&o, jobs, max);
}

/* --modes and --patterns choose the measurements; scaling comes with seq-write. */
START_TEST(jobs_follow_modes_and_patterns)
{
	static const char *const random_only[] = {
		"--modes", "floor,faultline,mmio", "--patterns", "random-write", "--vcpus", "1,4"};
	static const char *const two[] = {"--modes",	"floor,faultline",
					  "--patterns", "random-write,seq-write",
					  "--vcpus",	"1,4,16"};
	static const char *const all[] = {"--vcpus", "1,2"};
	static const char *const huge[] = {"--modes", "huge", "--vcpus", "1,2"};
	struct bench_job jobs[256];
	unsigned n, i;

	n = jobs_of(random_only, 6, jobs, 256);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(jobs[0].mode, "floor");
	ck_assert_str_eq(jobs[0].order, "random");
	ck_assert_str_eq(jobs[0].access, "write");
	ck_assert_str_eq(jobs[1].mode, "faultline");
	ck_assert_str_eq(jobs[1].order, "random");
	ck_assert_str_eq(jobs[2].mode, "mmio");
	ck_assert_uint_eq(jobs[2].vcpus, 1);

	n = jobs_of(two, 6, jobs, 256);
	ck_assert_uint_eq(n, 8);
	/* the 1-vCPU patterns in the table's order, then the scaling runs */
	ck_assert_str_eq(jobs[0].order, "seq");
	ck_assert_str_eq(jobs[2].order, "random");
	ck_assert_str_eq(jobs[4].mode, "floor");
	ck_assert_uint_eq(jobs[4].vcpus, 4);
	ck_assert_str_eq(jobs[7].mode, "faultline");
	ck_assert_uint_eq(jobs[7].vcpus, 16);
	ck_assert_str_eq(jobs[7].order, "seq");

	/*
	 * everything: 16 touch modes (fa-64 is faultline; huge only when named) in 5
	 * patterns, 6 scaling, 4 others
	 */
	n = jobs_of(all, 2, jobs, 256);
	ck_assert_uint_eq(n, 16 * 5 + 6 + 4);
	for (i = 0; i < n; i++)
		ck_assert_str_ne(jobs[i].mode, "huge");
	/* named, huge pages run in every pattern and scale */
	n = jobs_of(huge, 4, jobs, 256);
	ck_assert_uint_eq(n, 5 + 1);
	ck_assert_str_eq(jobs[5].mode, "huge");
	ck_assert_uint_eq(jobs[5].vcpus, 2);
	ck_assert_str_eq(jobs[5].flags[0], "--hugepages");
	n = jobs_of(all, 2, jobs, 256);
	/* sparse, the fifth pattern: at most 4096 pages, spread over RAM in job_argv() */
	ck_assert_str_eq(jobs[16 * 4].mode, "floor");
	ck_assert_str_eq(jobs[16 * 4].order, "sparse");
	ck_assert_str_eq(jobs[16 * 4].access, "write");
	ck_assert_uint_eq(jobs[16 * 4].ops, 4096);
	ck_assert_uint_eq(jobs[0].ops, 16384);
	log__capture(NULL, 0);
}
END_TEST

Suite *bench_suite(void)
{
	Suite *s = suite_create("bench");
	TCase *tc = tcase_create("bench");

	tcase_add_test(tc, histogram_buckets);
	tcase_add_test(tc, parse_guest_output);
	tcase_add_test(tc, parse_guest_rejects);
	tcase_add_test(tc, percentiles);
	tcase_add_test(tc, sample_to_json);
	tcase_add_test(tc, jobs_follow_modes_and_patterns);
	tcase_add_test(tc, ratios_from_the_same_run);
	tcase_add_test(tc, memory_ratios_from_the_same_run);
	tcase_add_test(tc, host_memory_from_proc_status);
	tcase_add_test(tc, anonymous_ram_from_smaps);
	tcase_add_test(tc, validate_documents);
	tcase_add_test(tc, serve_answers);
	tcase_add_test(tc, snapshot_table);
	tcase_add_test(tc, csv_and_plot_files);
	tcase_add_test(tc, phases_of_a_run);
	tcase_add_test(tc, options);
	suite_add_tcase(s, tc);
	return s;
}
