/*
 * faultline bench, the results: parsing what the guest printed, the
 * statistics of a histogram, and rendering a results document as a table,
 * CSV and gnuplot plots.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmm/cmd/bench.h"

#define BENCH_LINE_MAX 4096

/* "key=NUMBER" in @line: 0, or -EINVAL. */
static int field_u64(const char *line, const char *key, uint64_t *v)
{
	const char *p = strstr(line, key);
	char *end;

	if (!p || (p != line && p[-1] != ' '))
		return -EINVAL;
	p += strlen(key);
	if (*p != '=' || p[1] < '0' || p[1] > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(p + 1, &end, 10);
	return errno || (*end && *end != ' ' && *end != '\n') ? -EINVAL : 0;
}

static int parse_summary(const char *line, struct bench_sample *s)
{
	const char *k = strstr(line, "kind="), *e;
	uint64_t vcpus;

	if (!k)
		return -EINVAL;
	k += 5;
	e = k + strcspn(k, " \n");
	if (e == k || (size_t)(e - k) >= sizeof(s->kind))
		return -EINVAL;
	memcpy(s->kind, k, (size_t)(e - k));
	s->kind[e - k] = '\0';
	if (field_u64(line, "vcpus", &vcpus) || field_u64(line, "ops", &s->ops) ||
	    field_u64(line, "cycles", &s->cycles) || field_u64(line, "verified", &s->verified) ||
	    field_u64(line, "timed", &s->timed) || field_u64(line, "timer", &s->timer_cycles) ||
	    field_u64(line, "verify", &s->verify_cycles) || vcpus == 0 || vcpus > 64)
		return -EINVAL;
	s->vcpus = (unsigned)vcpus;
	return 0;
}

/* " BUCKET:COUNT" pairs; every bucket in range. */
static int parse_hist(const char *p, struct bench_sample *s)
{
	while (*p && *p != '\n') {
		unsigned long long b, n;
		char *end;

		if (*p++ != ' ')
			return -EINVAL;
		errno = 0;
		b = strtoull(p, &end, 10);
		if (end == p || *end != ':' || b >= BENCH_HIST_BUCKETS)
			return -EINVAL;
		p = end + 1;
		n = strtoull(p, &end, 10);
		if (end == p || errno)
			return -EINVAL;
		s->hist[b] += n;
		p = end;
	}
	return 0;
}

static int parse_line(const char *line, struct bench_sample *s, unsigned *seen)
{
	char *end;

	if (!strncmp(line, "bench: kind=", 12)) {
		*seen |= 1;
		return parse_summary(line + 7, s);
	}
	if (!strncmp(line, "bench-hist:", 11)) {
		*seen |= 2;
		return parse_hist(line + 11, s);
	}
	if (!strncmp(line, "bench-max: ", 11)) {
		*seen |= 4;
		errno = 0;
		s->max_cycles = strtoull(line + 11, &end, 10);
		return errno || end == line + 11 || (*end && *end != '\n') ? -EINVAL : 0;
	}
	return 0;
}

int bench__parse_guest(const char *out, struct bench_sample *s, char *why, size_t len)
{
	unsigned seen = 0;
	uint64_t total = 0;
	unsigned b;

	memset(s, 0, sizeof(*s));
	while (out && *out) {
		const char *nl = strchr(out, '\n');
		size_t n = nl ? (size_t)(nl - out) : strlen(out);
		char line[BENCH_LINE_MAX];

		if (n < sizeof(line)) {
			memcpy(line, out, n);
			line[n] = '\0';
			if (parse_line(line, s, &seen)) {
				snprintf(why, len, "malformed guest output (line: %.60s)", line);
				return -EINVAL;
			}
		}
		out += n + (nl != NULL);
	}
	if (seen != 7) {
		snprintf(why, len, "the guest printed no %s line",
			 !(seen & 1)   ? "bench:"
			 : !(seen & 2) ? "bench-hist:"
				       : "bench-max:");
		return -EINVAL;
	}
	for (b = 0; b < BENCH_HIST_BUCKETS; b++)
		total += s->hist[b];
	if (total != s->timed || (s->timed && s->timed != s->ops) || s->verified != s->ops ||
	    !s->ops) {
		snprintf(why, len,
			 "inconsistent guest output (ops: %" PRIu64 ", timed: %" PRIu64
			 ", histogram: %" PRIu64 ", verified: %" PRIu64 ")",
			 s->ops, s->timed, total, s->verified);
		return -EINVAL;
	}
	return 0;
}

uint64_t bench__percentile(const uint64_t *hist, uint64_t max, unsigned pct)
{
	uint64_t total = 0, seen = 0, want, top;
	unsigned b;

	for (b = 0; b < BENCH_HIST_BUCKETS; b++)
		total += hist[b];
	if (!total)
		return 0;
	want = (total * pct + 99) / 100;
	for (b = 0; b < BENCH_HIST_BUCKETS - 1; b++) {
		seen += hist[b];
		if (seen >= want)
			break;
	}
	if (b == BENCH_HIST_BUCKETS - 1)
		return max;
	top = bench_hist_low(b + 1) - 1;
	return top < max ? top : max;
}

double bench__cycles_to_ns(uint64_t cycles, unsigned tsc_khz)
{
	return tsc_khz ? (double)cycles * 1e6 / tsc_khz : (double)cycles;
}

/* A latency in ns, less the timer's own cost. */
static double lat_ns(const struct bench_sample *s, uint64_t cycles, unsigned khz)
{
	uint64_t c = cycles > s->timer_cycles ? cycles - s->timer_cycles : 0;

	return bench__cycles_to_ns(c, khz);
}

static json_t *cdf_json(const struct bench_sample *s, unsigned khz)
{
	json_t *cdf = json_array();
	uint64_t total = 0, seen = 0, top;
	unsigned b;

	for (b = 0; b < BENCH_HIST_BUCKETS; b++)
		total += s->hist[b];
	for (b = 0; cdf && b < BENCH_HIST_BUCKETS; b++) {
		if (!s->hist[b])
			continue;
		seen += s->hist[b];
		top = b + 1 < BENCH_HIST_BUCKETS ? bench_hist_low(b + 1) - 1 : s->max_cycles;
		if (top > s->max_cycles)
			top = s->max_cycles;
		json_array_append_new(
			cdf, json_pack("[f,f]", lat_ns(s, top, khz), (double)seen / (double)total));
	}
	return cdf;
}

json_t *bench__sample_json(const struct bench_sample *s, unsigned khz)
{
	double secs = bench__cycles_to_ns(s->cycles, khz) / 1e9;
	json_t *r = json_pack("{s:I,s:f,s:f,s:f}", "ops", (json_int_t)s->ops, "ops_per_s",
			      secs > 0 ? (double)s->ops / secs : 0.0, "ns_per_op",
			      secs * 1e9 / (double)s->ops, "verify_s",
			      bench__cycles_to_ns(s->verify_cycles, khz) / 1e9);

	if (!r || !s->timed)
		return r;
	json_object_set_new(
		r, "guest_latency_ns",
		json_pack("{s:f,s:f,s:f,s:f,s:f}", "p50",
			  lat_ns(s, bench__percentile(s->hist, s->max_cycles, 50), khz), "p90",
			  lat_ns(s, bench__percentile(s->hist, s->max_cycles, 90), khz), "p99",
			  lat_ns(s, bench__percentile(s->hist, s->max_cycles, 99), khz), "max",
			  lat_ns(s, s->max_cycles, khz), "timer",
			  bench__cycles_to_ns(s->timer_cycles, khz)));
	json_object_set_new(r, "cdf", cdf_json(s, khz));
	return r;
}

static double pos(double x)
{
	return x > 0 ? x : 0.0;
}

void bench__add_phases(json_t *r, json_t *times, double wall_s)
{
	static const char *const keys[] = {"setup", "guest", "stop", "total"};
	double t[4], loop, verify;
	unsigned k;

	for (k = 0; k < 4; k++) {
		json_t *v = json_object_get(times, keys[k]);

		if (!json_is_number(v))
			return;
		t[k] = json_number_value(v);
	}
	loop = (double)json_integer_value(json_object_get(r, "ops")) *
	       json_number_value(json_object_get(r, "ns_per_op")) / 1e9;
	verify = json_number_value(json_object_get(r, "verify_s"));
	json_object_set_new(r, "phases_s",
			    json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "setup", t[0], "guest", t[1],
				      "loop", loop, "verify", verify, "guest_other",
				      pos(t[1] - loop - verify), "stop", t[2], "exit",
				      pos(wall_s - t[3])));
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static bool result_ok(json_t *r)
{
	return json_integer_value(json_object_get(r, "status")) == 0 &&
	       json_is_number(json_object_get(r, "ns_per_op"));
}

/* The result of @mode with @r's pattern and vCPU count, or NULL. */
static json_t *find_peer(json_t *results, json_t *r, const char *mode)
{
	size_t i;
	json_t *p;

	json_array_foreach(results, i,
			   p) if (!strcmp(str_of(p, "mode"), mode) &&
				  !strcmp(str_of(p, "kind"), "touch") &&
				  !strcmp(str_of(p, "order"), str_of(r, "order")) &&
				  !strcmp(str_of(p, "access"), str_of(r, "access")) &&
				  json_integer_value(json_object_get(p, "vcpus")) ==
					  json_integer_value(json_object_get(r, "vcpus")) &&
				  result_ok(p)) return p;
	return NULL;
}

static json_t *ratio(json_t *results, json_t *r, const char *mode)
{
	json_t *peer = find_peer(results, r, mode);
	double base;

	if (!peer || !result_ok(r))
		return json_null();
	base = json_number_value(json_object_get(peer, "ns_per_op"));
	return base > 0 ? json_real(json_number_value(json_object_get(r, "ns_per_op")) / base)
			: json_null();
}

double bench__host_kib(json_t *r)
{
	json_t *m = json_object_get(r, "memory_kib");
	json_t *guest = json_object_get(m, "guest"), *monitor = json_object_get(m, "monitor");
	json_t *tables = json_object_get(m, "page_tables");

	if (!json_is_integer(guest) || !json_is_integer(monitor) || !json_is_integer(tables))
		return 0;
	return (double)(json_integer_value(guest) + json_integer_value(monitor) +
			json_integer_value(tables));
}

/* @r's host memory over the floor's, same pattern and vCPUs. */
static json_t *memory_ratio(json_t *results, json_t *r)
{
	json_t *peer = find_peer(results, r, "floor");
	double base = peer ? bench__host_kib(peer) : 0, mine = bench__host_kib(r);

	return base > 0 && mine > 0 && result_ok(r) ? json_real(mine / base) : json_null();
}

void bench__add_ratios(json_t *results)
{
	size_t i;
	json_t *r;

	json_array_foreach(results, i, r)
	{
		bool touch = !strcmp(str_of(r, "kind"), "touch");

		json_object_set_new(r, "ratio_floor",
				    touch ? ratio(results, r, "floor") : json_null());
		json_object_set_new(r, "ratio_kernel",
				    touch ? ratio(results, r, "kernel") : json_null());
		json_object_set_new(r, "memory_ratio_floor",
				    touch ? memory_ratio(results, r) : json_null());
	}
}

int bench__validate(json_t *doc, char *why, size_t len)
{
	static const char *const strings[] = {"mode", "kind", "order", "access"};
	json_t *results = json_object_get(doc, "results"), *r;
	size_t i, k;

	if (!json_is_object(doc) ||
	    json_integer_value(json_object_get(doc, "faultline_bench")) != BENCH_FORMAT) {
		snprintf(why, len, "not a faultline bench results document of format %d",
			 BENCH_FORMAT);
		return -EINVAL;
	}
	if (!json_is_array(results)) {
		snprintf(why, len, "no \"results\" array");
		return -EINVAL;
	}
	if (json_object_get(doc, "snapshots") &&
	    !json_is_object(json_object_get(doc, "snapshots"))) {
		snprintf(why, len, "\"snapshots\" is not an object");
		return -EINVAL;
	}
	json_array_foreach(results, i, r)
	{
		for (k = 0; k < sizeof(strings) / sizeof(strings[0]); k++)
			if (!json_is_string(json_object_get(r, strings[k]))) {
				snprintf(why, len, "result %zu: \"%s\" is not a string", i,
					 strings[k]);
				return -EINVAL;
			}
		if (!json_is_integer(json_object_get(r, "vcpus")) ||
		    !json_is_integer(json_object_get(r, "status"))) {
			snprintf(why, len, "result %zu: \"vcpus\" or \"status\" is not an integer",
				 i);
			return -EINVAL;
		}
		if (result_ok(r) && !json_is_object(json_object_get(r, "guest_latency_ns"))) {
			snprintf(why, len, "result %zu: no \"guest_latency_ns\" object", i);
			return -EINVAL;
		}
	}
	return 0;
}

static double num_at(json_t *r, const char *obj, const char *key)
{
	json_t *o = obj ? json_object_get(r, obj) : r;

	return json_number_value(json_object_get(o, key));
}

static void format_ratio(char *buf, size_t len, json_t *v)
{
	if (json_is_number(v))
		snprintf(buf, len, "%.2fx", json_number_value(v));
	else
		snprintf(buf, len, "-");
}

static void print_row(json_t *r, FILE *out)
{
	char pattern[32], rf[16], rk[16], rm[16], mib[24] = "-";

	snprintf(pattern, sizeof(pattern), "%s", str_of(r, "kind"));
	if (!strcmp(str_of(r, "kind"), "touch"))
		snprintf(pattern, sizeof(pattern), "%s-%s", str_of(r, "order"),
			 str_of(r, "access"));
	if (!result_ok(r)) {
		fprintf(out, "%-10s %-13s %3lld  failed: exit %lld, %s\n", str_of(r, "mode"),
			pattern, (long long)json_integer_value(json_object_get(r, "vcpus")),
			(long long)json_integer_value(json_object_get(r, "status")),
			str_of(r, "error"));
		return;
	}
	format_ratio(rf, sizeof(rf), json_object_get(r, "ratio_floor"));
	format_ratio(rk, sizeof(rk), json_object_get(r, "ratio_kernel"));
	format_ratio(rm, sizeof(rm), json_object_get(r, "memory_ratio_floor"));
	if (bench__host_kib(r) > 0)
		snprintf(mib, sizeof(mib), "%.1f", bench__host_kib(r) / 1024);
	fprintf(out,
		"%-10s %-13s %3lld %11.0f %8s %8s %8.2f %8.2f %8.2f %9.2f %9.2f %9lld %9s %7s\n",
		str_of(r, "mode"), pattern,
		(long long)json_integer_value(json_object_get(r, "vcpus")),
		num_at(r, NULL, "ops_per_s"), rf, rk, num_at(r, "guest_latency_ns", "p50") / 1e3,
		num_at(r, "guest_latency_ns", "p90") / 1e3,
		num_at(r, "guest_latency_ns", "p99") / 1e3,
		num_at(r, "guest_latency_ns", "max") / 1e3,
		num_at(r, "monitor", "service_p50_ns") / 1e3,
		(long long)json_integer_value(
			json_object_get(json_object_get(r, "monitor"), "faults")),
		mib, rm);
}

/* The snapshot modes' lines (bench_snap.c), when the document has them. */
static void print_snapshots(json_t *snaps, FILE *out)
{
	json_t *restore = json_object_get(snaps, "restore"), *clones, *v;
	size_t i;

	if (json_is_string(json_object_get(snaps, "error")))
		fprintf(out, "snapshots: %s\n", str_of(snaps, "error"));
	if (json_is_string(json_object_get(restore, "error")))
		fprintf(out, "restore: %s\n", str_of(restore, "error"));
	else if (restore) {
		fprintf(out,
			"\nrestore of %lld pages%s: first answer after the restore, against "
			"the warm answer in the same VM\n",
			(long long)json_integer_value(json_object_get(restore, "pages")),
			json_is_true(json_object_get(restore, "on_tmpfs")) ? " (tmpfs)" : "");
		fprintf(out, "%-9s %12s %12s %12s %9s %12s %12s\n", "prefetch", "restore ms",
			"answer ms", "warm ms", "xwarm", "faults_uffd", "prefetched");
		json_array_foreach(json_object_get(restore, "variants"), i, v) fprintf(
			out, "%-9s %12.3f %12.3f %12.3f %8.2fx %12lld %12lld\n",
			str_of(v, "prefetch"), num_at(v, NULL, "restore_to_answer_ms"),
			num_at(v, NULL, "first_answer_ms"), num_at(v, NULL, "warm_answer_ms"),
			num_at(v, NULL, "ratio_warm"),
			(long long)json_integer_value(json_object_get(v, "faults_uffd")),
			(long long)json_integer_value(json_object_get(v, "pages_prefetched")));
		fprintf(out,
			"restore ms: the child's start to its first answer; xwarm: that over "
			"the warm answer; fault reduction with ws: %.1f%%\n",
			100 * num_at(restore, NULL, "fault_reduction_ws"));
	}
	clones = json_object_get(snaps, "clones");
	if (json_is_string(json_object_get(clones, "error")))
		fprintf(out, "clones: %s\n", str_of(clones, "error"));
	else if (clones)
		fprintf(out,
			"\nclones: %lld at once of one snapshot%s%s%s: PSS %.0f KiB in all (%.0f "
			"KiB "
			"more per clone than one alone, %.0f KiB), %.3fx of %lld copies' %.0f KiB; "
			"all answered in %.1f ms (copies %.1f ms, one %.1f ms)\n",
			(long long)json_integer_value(json_object_get(clones, "clones")),
			json_is_string(json_object_get(clones, "guest")) ? " of " : "",
			str_of(clones, "guest"),
			json_is_true(json_object_get(clones, "on_tmpfs"))
				? ""
				: " (not on tmpfs: copied)",
			num_at(clones, NULL, "pss_kib_shared"),
			num_at(clones, NULL, "kib_per_clone"), num_at(clones, NULL, "pss_kib_one"),
			num_at(clones, NULL, "ratio_private"),
			(long long)json_integer_value(json_object_get(clones, "clones")),
			num_at(clones, NULL, "pss_kib_private"),
			num_at(clones, NULL, "start_ms_shared"),
			num_at(clones, NULL, "start_ms_private"),
			num_at(clones, NULL, "start_ms_one"));
}

void bench__print_table(json_t *doc, FILE *out)
{
	json_t *host = json_object_get(doc, "host"), *r;
	size_t i;

	fprintf(out, "faultline bench on %s (kernel %s, %lld CPUs, %s, THP %s), TSC %lld kHz%s\n",
		str_of(host, "cpu"), str_of(host, "kernel"),
		(long long)json_integer_value(json_object_get(host, "cpus")), str_of(host, "kvm"),
		json_is_string(json_object_get(host, "thp")) ? str_of(host, "thp") : "not recorded",
		(long long)json_integer_value(json_object_get(doc, "tsc_khz")),
		json_is_true(json_object_get(doc, "quick")) ? ", --quick: sizes too small to "
							      "compare"
							    : "");
	fprintf(out, "%-10s %-13s %3s %11s %8s %8s %8s %8s %8s %9s %9s %9s %9s %7s\n", "mode",
		"pattern", "cpu", "ops/s", "xfloor", "xkernel", "p50 us", "p90 us", "p99 us",
		"max us", "svc p50", "faults", "host MiB", "xmem");
	json_array_foreach(json_object_get(doc, "results"), i, r) print_row(r, out);
	fprintf(out, "xfloor, xkernel: time per page over the pre-populated floor's and kernel "
		     "demand paging's, same pattern and vCPUs (1.00x: as fast)\n"
		     "p50..max: latency of one operation seen by the guest (TSC); svc p50: "
		     "fault service time seen by the monitor\n"
		     "host MiB: host memory of the VM at its end (guest RAM held, the monitor's "
		     "own, page tables); xmem: over the floor's\n");
	if (json_is_object(json_object_get(doc, "snapshots")))
		print_snapshots(json_object_get(doc, "snapshots"), out);
}

static void csv_number(FILE *f, json_t *v)
{
	if (json_is_integer(v))
		fprintf(f, ",%lld", (long long)json_integer_value(v));
	else if (json_is_number(v))
		fprintf(f, ",%.6g", json_number_value(v));
	else
		fputc(',', f);
}

int bench__write_csv(json_t *doc, const char *path)
{
	static const char *const top[] = {"ops", "ops_per_s", "ns_per_op", "ratio_floor",
					  "ratio_kernel"};
	static const char *const lat[] = {"p50", "p90", "p99", "max"};
	static const char *const mon[] = {"faults", "pages_installed", "service_p50_ns",
					  "service_p99_ns"};
	static const char *const phases[] = {"setup",	    "guest", "loop", "verify",
					     "guest_other", "stop",  "exit"};
	static const char *const mem[] = {"guest", "monitor", "page_tables"};
	static const char *const kvm[] = {"exits", "pf_taken", "pf_fixed"};
	FILE *f = fopen(path, "w");
	size_t i, k;
	json_t *r;

	if (!f) {
		pr_err("cannot write the CSV file: %s (file: %s)", strerror(errno), path);
		return -errno;
	}
	fprintf(f, "mode,kind,order,access,vcpus,ops,ops_per_s,ns_per_op,ratio_floor,"
		   "ratio_kernel,p50_ns,p90_ns,p99_ns,max_ns,monitor_faults,"
		   "monitor_pages_installed,monitor_service_p50_ns,monitor_service_p99_ns,status,"
		   "wall_s,setup_s,guest_s,loop_s,verify_s,guest_other_s,stop_s,exit_s,"
		   "host_guest_kib,host_monitor_kib,host_page_tables_kib,memory_ratio_floor,"
		   "monitor_resident_pages,kvm_exits,kvm_pf_taken,kvm_pf_fixed\n");
	json_array_foreach(json_object_get(doc, "results"), i, r)
	{
		fprintf(f, "%s,%s,%s,%s,%lld", str_of(r, "mode"), str_of(r, "kind"),
			str_of(r, "order"), str_of(r, "access"),
			(long long)json_integer_value(json_object_get(r, "vcpus")));
		for (k = 0; k < sizeof(top) / sizeof(top[0]); k++)
			csv_number(f, json_object_get(r, top[k]));
		for (k = 0; k < sizeof(lat) / sizeof(lat[0]); k++)
			csv_number(f,
				   json_object_get(json_object_get(r, "guest_latency_ns"), lat[k]));
		for (k = 0; k < sizeof(mon) / sizeof(mon[0]); k++)
			csv_number(f, json_object_get(json_object_get(r, "monitor"), mon[k]));
		fprintf(f, ",%lld", (long long)json_integer_value(json_object_get(r, "status")));
		csv_number(f, json_object_get(r, "wall_s"));
		for (k = 0; k < sizeof(phases) / sizeof(phases[0]); k++)
			csv_number(f, json_object_get(json_object_get(r, "phases_s"), phases[k]));
		for (k = 0; k < sizeof(mem) / sizeof(mem[0]); k++)
			csv_number(f, json_object_get(json_object_get(r, "memory_kib"), mem[k]));
		csv_number(f, json_object_get(r, "memory_ratio_floor"));
		csv_number(f, json_object_get(json_object_get(r, "monitor"), "resident_pages"));
		for (k = 0; k < sizeof(kvm) / sizeof(kvm[0]); k++)
			csv_number(f, json_object_get(json_object_get(r, "kvm"), kvm[k]));
		fputc('\n', f);
	}
	if (fclose(f)) {
		pr_err("cannot write the CSV file: %s (file: %s)", strerror(errno), path);
		return -EIO;
	}
	return 0;
}

static bool is_touch(json_t *r, const char *order, const char *access, long long vcpus)
{
	return result_ok(r) && !strcmp(str_of(r, "kind"), "touch") &&
	       !strcmp(str_of(r, "order"), order) && !strcmp(str_of(r, "access"), access) &&
	       (vcpus < 0 || json_integer_value(json_object_get(r, "vcpus")) == vcpus);
}

/* latency-cdf.dat: one block per mode (seq-write, 1 vCPU). Returns the blocks. */
static int plot_cdf(json_t *doc, FILE *dat, FILE *gp)
{
	json_t *r, *pt;
	size_t i, k;
	int n = 0;

	fprintf(gp, "set output 'latency-cdf.svg'\nset title 'first-touch latency seen by the "
		    "guest, sequential write, 1 vCPU'\nset xlabel 'ns'\nset ylabel 'fraction of "
		    "faults'\nset logscale x\nset key bottom right\nplot ");
	json_array_foreach(json_object_get(doc, "results"), i, r)
	{
		if (!is_touch(r, "seq", "write", 1))
			continue;
		fprintf(dat, "# %s\n", str_of(r, "mode"));
		json_array_foreach(json_object_get(r, "cdf"), k, pt)
			fprintf(dat, "%.1f %.6f\n", json_number_value(json_array_get(pt, 0)),
				json_number_value(json_array_get(pt, 1)));
		fprintf(dat, "\n\n");
		fprintf(gp, "%s'latency-cdf.dat' index %d with steps title '%s'", n ? ", " : "", n,
			str_of(r, "mode"));
		n++;
	}
	fprintf(gp, "%s\nunset logscale x\n", n ? "" : "NaN notitle");
	return n;
}

/* scaling.dat: pages/s against vCPUs for the modes that ran at several counts. */
static void plot_scaling(json_t *doc, FILE *dat, FILE *gp)
{
	static const char *const modes[] = {"floor",	 "kernel",  "naive",
					    "faultline", "spin-50", "ahead-1024"};
	const size_t nm = sizeof(modes) / sizeof(modes[0]);
	json_t *results = json_object_get(doc, "results"), *r;
	long long v;
	size_t i, m;

	fprintf(dat, "# vcpus");
	for (m = 0; m < nm; m++)
		fprintf(dat, " %s", modes[m]);
	fprintf(dat, "\n");
	for (v = 1; v <= 64; v++) {
		bool any = false;
		double row[sizeof(modes) / sizeof(modes[0])];

		for (m = 0; m < nm; m++) {
			row[m] = -1;
			json_array_foreach(results, i, r) if (is_touch(r, "seq", "write", v) &&
							      !strcmp(str_of(r, "mode"), modes[m]))
			{
				row[m] = num_at(r, NULL, "ops_per_s");
				any = true;
			}
		}
		if (!any)
			continue;
		fprintf(dat, "%lld", v);
		for (m = 0; m < nm; m++)
			fprintf(dat, row[m] < 0 ? " NaN" : " %.0f", row[m]);
		fprintf(dat, "\n");
	}
	fprintf(gp, "set output 'scaling.svg'\nset title 'pages/s against vCPUs, sequential "
		    "write'\nset xlabel 'vCPUs'\nset ylabel 'pages/s'\nset key top left\nplot ");
	for (m = 0; m < nm; m++)
		fprintf(gp, "%s'scaling.dat' using 1:%zu with linespoints title '%s'",
			m ? ", " : "", m + 2, modes[m]);
	fprintf(gp, "\n");
}

/* fault-around.dat: time per page against the fault-around size. */
static void plot_fault_around(json_t *doc, FILE *dat, FILE *gp)
{
	static const char *const patterns[][2] = {
		{"seq", "write"}, {"random", "write"}, {"seq", "read"}, {"random", "read"}};
	long long def = json_integer_value(json_object_get(doc, "default_fault_around"));
	json_t *r;
	unsigned size;
	size_t i, p;

	fprintf(dat, "# size seq-write random-write seq-read random-read (ns per page)\n");
	for (size = 1; size <= 512; size *= 2) {
		char name[16];

		snprintf(name, sizeof(name), "fa-%u", size);
		fprintf(dat, "%u", size);
		for (p = 0; p < 4; p++) {
			double ns = -1;

			json_array_foreach(
				json_object_get(doc, "results"), i,
				r) if (is_touch(r, patterns[p][0], patterns[p][1], 1) &&
				       (!strcmp(str_of(r, "mode"), name) ||
					(size == def && !strcmp(str_of(r, "mode"), "faultline"))))
				ns = num_at(r, NULL, "ns_per_op");
			fprintf(dat, ns < 0 ? " NaN" : " %.1f", ns);
		}
		fprintf(dat, "\n");
	}
	fprintf(gp, "set output 'fault-around.svg'\nset title 'time per page against "
		    "fault-around size, 1 vCPU'\nset xlabel 'pages per fault'\nset ylabel 'ns per "
		    "page'\nset logscale x 2\nset key top right\nplot ");
	for (p = 0; p < 4; p++)
		fprintf(gp, "%s'fault-around.dat' using 1:%zu with linespoints title '%s-%s'",
			p ? ", " : "", p + 2, patterns[p][0], patterns[p][1]);
	fprintf(gp, "\n");
}

static FILE *open_in(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		pr_err("cannot write a plot file: %s (file: %s)", strerror(errno), path);
	return f;
}

/* gnuplot bench.gp in @dir; 0, 1 when gnuplot is not installed, or -EIO. */
static int run_gnuplot(const char *dir)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -EIO;
	if (pid == 0) {
		if (chdir(dir) == 0)
			execlp("gnuplot", "gnuplot", "bench.gp", (char *)NULL);
		_exit(errno == ENOENT ? 127 : 126);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -EIO;
	if (WEXITSTATUS(status) == 127)
		return 1;
	return WEXITSTATUS(status) ? -EIO : 0;
}

/* fclose() each of @n files that were opened; nonzero when any failed. */
static int close_all(FILE **files, unsigned n)
{
	int bad = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		if (files[i] && fclose(files[i]))
			bad = 1;
	return bad;
}

int bench__write_plots(json_t *doc, const char *dir)
{
	FILE *gp, *cdf, *scaling, *fa;
	int ret = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		pr_err("cannot create the plot directory: %s (directory: %s)", strerror(errno),
		       dir);
		return -errno;
	}
	gp = open_in(dir, "bench.gp");
	cdf = open_in(dir, "latency-cdf.dat");
	scaling = open_in(dir, "scaling.dat");
	fa = open_in(dir, "fault-around.dat");
	if (gp && cdf && scaling && fa) {
		fprintf(gp, "# made by faultline bench; run: gnuplot bench.gp\n"
			    "set terminal svg size 900,560 dynamic\nset grid\n");
		plot_cdf(doc, cdf, gp);
		plot_scaling(doc, scaling, gp);
		plot_fault_around(doc, fa, gp);
	} else {
		ret = -EIO;
	}
	if (close_all((FILE *[]){gp, cdf, scaling, fa}, 4))
		ret = -EIO;
	if (ret) {
		if (ret == -EIO)
			pr_err("cannot write the plot files (directory: %s)", dir);
		return ret;
	}
	ret = run_gnuplot(dir);
	if (ret == 1)
		pr_err("gnuplot is not installed: data and bench.gp written, no SVGs (directory: "
		       "%s)",
		       dir);
	else if (ret)
		pr_err("gnuplot failed on the plot script (file: %s/bench.gp)", dir);
	return ret < 0 ? ret : 0;
}
