/*
 * faultline bench without KVM: what the guest prints is untrusted input
 * to the parser; the histogram's statistics; the results document
 * (ratios, validation, CSV, plot files): vmm/bench_report.c. The options:
 * vmm/bench.c. The runs themselves (vmm/bench_run.c: child processes,
 * medians, the latency run) need KVM: t_bench_quick in tests/kvm/run.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vmm/bench.h"
#include "vmm/log.h"

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
	ck_assert_int_eq(bench__write_csv(doc, path), 0);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert(!strncmp(line, "mode,kind,order,access,vcpus,ops,ops_per_s", 42));
	ck_assert_str_eq(strstr(line, ",status,"), ",status,wall_s,setup_s,guest_s,loop_s,verify_s,"
						   "guest_other_s,stop_s,exit_s\n");
	columns = commas(line);
	ck_assert_int_eq(columns, 26);
	while (fgets(line, sizeof(line), f)) {
		/* every row has every column, empty where a result has no value */
		ck_assert_int_eq(commas(line), columns);
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
	struct bench_job jobs[256];
	unsigned n;

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

	/* everything: 15 touch modes (fa-64 is faultline) in 4 patterns, 6 scaling, 4 others */
	n = jobs_of(all, 2, jobs, 256);
	ck_assert_uint_eq(n, 15 * 4 + 6 + 4);
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
	tcase_add_test(tc, validate_documents);
	tcase_add_test(tc, csv_and_plot_files);
	tcase_add_test(tc, phases_of_a_run);
	tcase_add_test(tc, options);
	suite_add_tcase(s, tc);
	return s;
}
