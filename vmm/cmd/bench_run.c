/*
 * faultline bench, the runs: the `faultline run` command line of a
 * measurement, the child process that runs it with its output captured
 * and bounded in time, and the median of its runs as a result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/status.h"
#include "mmu/mmu.h"
#include "vmm/cmd/bench.h"
#include "vmm/cmd/cli.h"

#define BENCH_ARGS 48

static void append(char **argv, unsigned *argc, const char *s)
{
	if (*argc < BENCH_ARGS - 1)
		argv[(*argc)++] = (char *)s;
	argv[*argc] = NULL;
}

/* Storage for the formatted arguments of one command line. */
struct bench_argbuf {
	char mem[32], vcpus[16], kind[32], order[32], access[32], ops[48], vram[64], lat[16],
		spread[32];
};

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* The `faultline run` command line of @job. */
static void job_argv(const struct bench_run *b, const struct bench_job *job, int lat,
		     struct bench_argbuf *buf, char **argv)
{
	bool sparse = !strcmp(job->order, "sparse");
	uint64_t spread = sparse ? BENCH_SPREAD : 1;
	uint64_t ram =
		align_up(job->ops * job->vcpus * spread * 4096ULL, VM_MEM_ALIGN) + (16ULL << 20);
	unsigned argc = 0, i;

	if (strcmp(job->kind, "touch"))
		ram = 64ULL << 20;
	snprintf(buf->mem, sizeof(buf->mem), "%lluM", (unsigned long long)(ram >> 20));
	snprintf(buf->vcpus, sizeof(buf->vcpus), "%u", job->vcpus);
	snprintf(buf->kind, sizeof(buf->kind), "kind=%s", job->kind);
	snprintf(buf->lat, sizeof(buf->lat), "lat=%d", lat);
	snprintf(buf->order, sizeof(buf->order), "order=%s", sparse ? "seq" : job->order);
	snprintf(buf->spread, sizeof(buf->spread), "spread=%llu", (unsigned long long)spread);
	snprintf(buf->access, sizeof(buf->access), "access=%s", job->access);
	snprintf(buf->ops, sizeof(buf->ops), "%s=%llu",
		 strcmp(job->kind, "mmio") && strcmp(job->kind, "pio") ? "pages" : "ops",
		 (unsigned long long)job->ops);
	snprintf(buf->vram, sizeof(buf->vram), "size=%lluK,pool=%lluK",
		 (unsigned long long)job->ops * 4, (unsigned long long)job->ops * 4);
	append(argv, &argc, "faultline");
	append(argv, &argc, "run");
	append(argv, &argc, "--kernel");
	append(argv, &argc, b->guest);
	append(argv, &argc, "--mem");
	append(argv, &argc, buf->mem);
	append(argv, &argc, "--vcpus");
	append(argv, &argc, buf->vcpus);
	append(argv, &argc, "--stats=json");
	for (i = 0; i < 4 && job->flags && job->flags[i]; i++)
		append(argv, &argc, job->flags[i]);
	if (!strcmp(job->kind, "mmio"))
		append(argv, &argc, "--dedup=zero,run=0");
	if (!strcmp(job->kind, "cow"))
		append(argv, &argc, "--dedup=on,pages_to_scan=4096,sleep_ms=0");
	if (!strcmp(job->kind, "bar")) {
		append(argv, &argc, "--vram");
		append(argv, &argc, buf->vram);
	}
	append(argv, &argc, "--guest-arg=workload=bench");
	append(argv, &argc, "--guest-arg");
	append(argv, &argc, buf->kind);
	append(argv, &argc, "--guest-arg");
	append(argv, &argc, buf->ops);
	append(argv, &argc, "--guest-arg");
	append(argv, &argc, buf->lat);
	if (!strcmp(job->kind, "touch")) {
		append(argv, &argc, "--guest-arg");
		append(argv, &argc, buf->order);
		append(argv, &argc, "--guest-arg");
		append(argv, &argc, buf->access);
		if (sparse) {
			append(argv, &argc, "--guest-arg");
			append(argv, &argc, buf->spread);
		}
	}
}

static json_t *command_string(char **argv)
{
	char line[2048] = "";
	size_t used = 0;
	unsigned i;

	for (i = 0; argv[i] && used < sizeof(line); i++)
		used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s", i ? " " : "",
					 i ? argv[i] : "build/faultline");
	return json_string(line);
}

void bench__capture(int fd, struct bench_captured *c, bool *open)
{
	char chunk[4096], *bigger;
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			*open = false;
		return;
	}
	if (c->lost)
		return;
	bigger = c->len + (size_t)n <= BENCH_OUT_MAX && !inject__check("realloc.bench_output")
			 ? realloc(c->buf, c->len + (size_t)n + 1)
			 : NULL;
	if (!bigger) {
		c->lost = true;
		return;
	}
	c->buf = bigger;
	memcpy(c->buf + c->len, chunk, (size_t)n);
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
}

int bench__pipes(int out[2], int err[2])
{
	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;

		close(out[0]);
		close(out[1]);
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * Run @argv as a child with its stdout and stderr captured, for at most
 * @timeout_s. Returns its exit status (128+N when killed by signal N, 124
 * when the timeout ran out) or -errno when it could not be started.
 */
static int spawn(const char *self, char **argv, unsigned timeout_s, struct bench_captured *out,
		 struct bench_captured *err)
{
	int po[2], pe[2], status = 0;
	struct timespec start, now;
	bool o_open = true, e_open = true, killed = false, stopped = false;
	pid_t pid;

	if (bench__pipes(po, pe) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(self, argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (pid > 0 && (o_open || e_open)) {
		struct pollfd fds[2] = {{.fd = o_open ? po[0] : -1, .events = POLLIN},
					{.fd = e_open ? pe[0] : -1, .events = POLLIN}};

		if (poll(fds, 2, 1000) > 0) {
			if (fds[0].revents)
				bench__capture(po[0], out, &o_open);
			if (fds[1].revents)
				bench__capture(pe[0], err, &e_open);
		}
		if (!stopped && bench__stopping()) {
			kill(pid, SIGTERM); /* the benchmark ends: this run is no result */
			stopped = true;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!killed && now.tv_sec - start.tv_sec >= (time_t)timeout_s) {
			kill(pid, SIGKILL);
			killed = true;
		}
	}
	close(po[0]);
	close(pe[0]);
	if (pid < 0)
		return -errno;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (killed)
		return 124;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

json_t *bench__stats_of(const char *err)
{
	const char *line = NULL, *p = err;

	while (p && *p) {
		if (*p == '{')
			line = p;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return line ? json_loadb(line, strcspn(line, "\n"), 0, NULL) : NULL;
}

static json_int_t int_at(json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}

/* What the monitor saw of the run. */
static json_t *monitor_json(json_t *stats)
{
	json_t *m = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "faults",
			      int_at(stats, "counters", "faults"), "faults_uffd",
			      int_at(stats, "counters", "faults_uffd"), "pages_installed",
			      int_at(stats, "counters", "pages_installed"), "pages_around",
			      int_at(stats, "counters", "pages_around"), "pages_ahead",
			      int_at(stats, "counters", "pages_ahead"), "fallbacks",
			      int_at(stats, "counters", "fallbacks"), "resident_pages",
			      int_at(stats, "pages", "resident"), "service_p50_ns",
			      int_at(stats, "fault_latency_ns", "p50"), "service_p99_ns",
			      int_at(stats, "fault_latency_ns", "p99"), "service_max_ns",
			      int_at(stats, "fault_latency_ns", "max"));

	if (m && json_object_get(stats, "dedup"))
		json_object_set_new(m, "cow_breaks",
				    json_integer(int_at(stats, "dedup", "cow_breaks")));
	return m;
}

/*
 * KVM's own counters of the run, flat: the vCPUs' exits and guest page
 * faults, the VM's mapped pages; null when the child had none ("kvm":
 * null). The names are KVM's; one this KVM lacks is left out.
 */
static json_t *kvm_json(json_t *stats)
{
	static const char *const vcpus[] = {"exits",	   "pf_taken", "pf_fixed",   "pf_emulate",
					    "pf_spurious", "io_exits", "mmio_exits", "halt_exits"};
	static const char *const vm[] = {"pages_4k", "pages_2m"};
	json_t *kvm = json_object_get(stats, "kvm"), *r, *v;
	size_t i;

	if (!json_is_object(kvm) || !(r = json_object()))
		return json_null();
	for (i = 0; i < sizeof(vcpus) / sizeof(vcpus[0]); i++)
		if ((v = json_object_get(json_object_get(kvm, "vcpus"), vcpus[i])))
			json_object_set(r, vcpus[i], v);
	for (i = 0; i < sizeof(vm) / sizeof(vm[0]); i++)
		if ((v = json_object_get(json_object_get(kvm, "vm"), vm[i])))
			json_object_set(r, vm[i], v);
	return r;
}

/* The first message of the child ("faultline: ..."), or its exit status. */
static void failure_text(const char *err, int status, char *why, size_t len)
{
	const char *p = err ? strstr(err, "faultline: ") : NULL;

	if (p && (p == err || p[-1] == '\n'))
		snprintf(why, len, "%.*s", (int)strcspn(p, "\n"), p);
	else
		snprintf(why, len, "faultline run exited with status %d", status);
}

/* One run of @job. Returns its result, or NULL with *status and @why set. */
static json_t *run_once(struct bench_run *b, char **argv, int *status, char *why, size_t len)
{
	struct bench_captured out = {0}, err = {0};
	uint64_t start = mmu__now_ns();
	struct bench_sample *s = malloc(sizeof(*s));
	json_t *stats = NULL, *r = NULL;
	unsigned khz;

	*status = s ? spawn(b->self, argv, b->o->timeout_s, &out, &err) : -ENOMEM;
	if (*status < 0) {
		snprintf(why, len, "cannot start faultline run: %s", strerror(-*status));
		*status = FL_EXIT_INTERNAL;
	} else if (*status) {
		failure_text(err.buf, *status, why, len);
	} else if (out.lost || err.lost) {
		snprintf(why, len,
			 "faultline run's %s could not be kept (over %u KiB, or out of memory)",
			 out.lost ? "output" : "stderr", BENCH_OUT_MAX >> 10);
		*status = FL_EXIT_INTERNAL;
	} else if (bench__parse_guest(out.buf, s, why, len)) {
		*status = FL_EXIT_GUEST;
	} else if (!(stats = bench__stats_of(err.buf))) {
		snprintf(why, len, "faultline run printed no --stats=json line");
		*status = FL_EXIT_INTERNAL;
	} else {
		khz = (unsigned)json_integer_value(json_object_get(stats, "tsc_khz"));
		if (khz)
			b->tsc_khz = khz;
		r = bench__sample_json(s, khz);
		if (r) {
			/* the whole child: start, guest, verification, teardown */
			double wall = (double)(mmu__now_ns() - start) / 1e9;

			json_object_set_new(r, "monitor", monitor_json(stats));
			json_object_set_new(r, "kvm", kvm_json(stats));
			json_object_set(r, "memory_kib",
					json_object_get(stats, "host_memory_kib") ?: json_null());
			json_object_set_new(r, "wall_s", json_real(wall));
			bench__add_phases(r, json_object_get(stats, "times_s"), wall);
		}
	}
	json_decref(stats);
	free(out.buf);
	free(err.buf);
	free(s);
	return r;
}

static int by_rate(const void *a, const void *b)
{
	double x = json_number_value(json_object_get(*(json_t *const *)a, "ops_per_s"));
	double y = json_number_value(json_object_get(*(json_t *const *)b, "ops_per_s"));

	return x < y ? -1 : x > y;
}

void bench__progress(struct bench_run *b, const struct bench_job *job)
{
	char bar[21];
	unsigned i, fill = b->total ? 20 * b->done / b->total : 20;

	if (!isatty(STDERR_FILENO))
		return;
	for (i = 0; i < 20; i++)
		bar[i] = i < fill ? '=' : ' ';
	bar[20] = '\0';
	if (job && !strcmp(job->kind, "touch"))
		fprintf(stderr, "\rfaultline bench [%s] %u/%u %s %s-%s, %u vCPU\033[K", bar,
			b->done + 1, b->total, job->mode, job->order, job->access, job->vcpus);
	else if (job)
		fprintf(stderr, "\rfaultline bench [%s] %u/%u %s\033[K", bar, b->done + 1, b->total,
			job->mode);
	else
		fprintf(stderr, "\r\033[K");
}

/* Why the first failed run failed: the result of a job that did not finish. */
static json_t *failed(struct bench_run *b, int status, const char *why)
{
	if (!status)
		status = FL_EXIT_INTERNAL;
	if (!b->first_failure)
		b->first_failure = status;
	return json_pack("{s:i,s:s}", "status", status, "error", why);
}

/*
 * The median of --repeat runs of @job without per-operation timing
 * (pages/s, what the monitor saw), then one run that times each operation
 * (the latency distribution).
 */
static json_t *measure_runs(struct bench_run *b, const struct bench_job *job, json_t **cmd)
{
	struct bench_argbuf buf;
	char *argv[BENCH_ARGS], why[512] = "";
	json_t *runs[21], *r = NULL, *lat, *rates;
	unsigned i, n = 0;
	int status = 0;

	job_argv(b, job, 0, &buf, argv);
	*cmd = command_string(argv);
	for (i = 0; i < b->o->repeat && !status; i++) {
		r = run_once(b, argv, &status, why, sizeof(why));
		if (r)
			runs[n++] = r;
	}
	job_argv(b, job, 1, &buf, argv);
	lat = status ? NULL : run_once(b, argv, &status, why, sizeof(why));
	if (status || !n || !lat) {
		for (i = 0; i < n; i++)
			json_decref(runs[i]);
		json_decref(lat);
		return failed(b, status, why);
	}
	qsort(runs, n, sizeof(runs[0]), by_rate);
	r = json_incref(runs[n / 2]);
	rates = json_array();
	for (i = 0; i < n; i++) {
		json_array_append(rates, json_object_get(runs[i], "ops_per_s"));
		json_decref(runs[i]);
	}
	json_object_set_new(r, "runs_ops_per_s", rates);
	json_object_set(r, "guest_latency_ns", json_object_get(lat, "guest_latency_ns"));
	json_object_set(r, "cdf", json_object_get(lat, "cdf"));
	json_object_set_new(r, "status", json_integer(0));
	json_decref(lat);
	return r;
}

json_t *bench__measure(struct bench_run *b, const struct bench_job *job)
{
	json_t *r, *res, *cmd = NULL;

	bench__progress(b, job);
	r = measure_runs(b, job, &cmd);
	res = json_pack("{s:s,s:s,s:s,s:s,s:i}", "mode", job->mode, "kind", job->kind, "order",
			job->order, "access", job->access, "vcpus", job->vcpus);
	if (res && r)
		json_object_update(res, r);
	json_decref(r);
	if (res)
		json_object_set_new(res, "command", cmd);
	else
		json_decref(cmd);
	b->done++;
	return res;
}
