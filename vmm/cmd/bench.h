/*
 * faultline bench: EPT/NPT (or shadow) fault latency of the fault engine
 * against its baselines, all measured in one run.
 *
 * Every measurement is one `faultline run` of the test guest's bench
 * workload (guest/bench.c) in a child process: the guest times each first
 * touch with the TSC into a histogram and prints it; the child's --stats
 * JSON adds what the monitor saw (faults, pages installed, service time)
 * and the TSC frequency. A result is the median of --repeat runs. Results
 * form one JSON document (the --json output, and what --input reads back)
 * from which the table, the CSV and the gnuplot plots are all made.
 */
#ifndef FAULTLINE_BENCH_H
#define FAULTLINE_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "guest/bench_hist.h"

#define BENCH_MAX_VCPU_COUNTS 8
#define BENCH_FORMAT	      1	 /* "faultline_bench" in the JSON: its layout's version */
#define BENCH_SPREAD	      16 /* the sparse pattern touches every 16th page */
#define BENCH_MAX_CLONES      64 /* --clones */

typedef struct json_t json_t;

struct bench_options {
	bool quick;
	bool json;
	const char *csv;      /* NULL: no CSV */
	const char *plot_dir; /* NULL: no plots */
	const char *input;    /* NULL: measure; else render these saved results */
	const char *kernel;   /* the test guest */
	const char *kvm_device;
	const char *modes;    /* comma-separated names, NULL: all */
	const char *patterns; /* comma-separated touch patterns (seq-write, ...), NULL: all */
	uint64_t pages;	      /* pages each vCPU touches */
	unsigned vcpus[BENCH_MAX_VCPU_COUNTS];
	unsigned nr_vcpus;
	unsigned repeat;
	unsigned timeout_s;	  /* per run */
	unsigned clones;	  /* --clones; 0: the default */
	const char *linux_config; /* --linux: the clones mode's guest; NULL: the test guest */
};

/*
 * Parse the options after `bench`. Returns 0, 1 when --help was asked for
 * (nothing else to do), or -EINVAL after reporting the problem.
 */
int bench__parse(int argc, char **argv, struct bench_options *o)
	__attribute__((warn_unused_result));
void bench__usage(FILE *out);

/* Measure (or load --input) and report. Returns a faultline exit status. */
int bench__main(const struct bench_options *o);

/* One measurement: a mode, a workload and its pattern, a vCPU count. */
struct bench_job {
	const char *mode;
	const char *kind;
	const char *order;  /* touch only: seq, random or sparse (BENCH_SPREAD); else "-" */
	const char *access; /* touch only, else "-" */
	unsigned vcpus;
	const char *const *flags; /* the mode's run options, NULL-terminated or 4 long */
	uint64_t ops;		  /* pages or operations per vCPU */
};

/*
 * The measurements @o asks for, in the order they are made, into @jobs (at
 * most @max). Returns how many.
 */
unsigned bench__jobs(const struct bench_options *o, struct bench_job *jobs, unsigned max);

/* The state of one benchmark: where the programs are, what was measured. */
struct bench_run {
	const struct bench_options *o;
	const char *self;  /* this program */
	const char *guest; /* the test guest */
	json_t *results;
	unsigned done, total;
	int first_failure; /* exit status of the first failed run, 0: none */
	unsigned tsc_khz;
};

/* bench_run.c: measure @job (its runs, median, latency run) as one result. */
json_t *bench__measure(struct bench_run *b, const struct bench_job *job);

#define BENCH_OUT_MAX (1U << 20) /* bytes kept of a run's stdout or stderr */

/* What a child printed on one stream. */
struct bench_captured {
	char *buf; /* NUL-terminated; NULL until something came */
	size_t len;
	bool lost; /* output dropped: over BENCH_OUT_MAX, or no memory to keep it */
};

/* Two pipes for a child's stdout and stderr (O_CLOEXEC). 0, or -1 with errno set. */
int bench__pipes(int out[2], int err[2]);

/* Read what @fd has into @c; output that cannot be kept is read and dropped. */
void bench__capture(int fd, struct bench_captured *c, bool *open);

/* A child's --stats=json: the last line of @err that is an object; NULL: none. */
json_t *bench__stats_of(const char *err);

/*
 * bench_snap.c: the snapshot modes (@restore, @clones) as the document's
 * "snapshots" object: "restore" and "clones" results, or "error". A
 * failure sets b->first_failure. NULL without memory.
 */
json_t *bench__measure_snapshots(struct bench_run *b, bool restore, bool clones);

/*
 * The cycles of the serve workload's answer @k in its output @out (the line
 * "serve: request K of clone C: N pages in CYCLES cycles"); 0 when there
 * is no such line or its number is not one: the guest is untrusted.
 */
uint64_t bench__answer_cycles(const char *out, unsigned k);

/*
 * Whether the first answer in @out is clone @number's: a line "serve:
 * request 1 of clone NUMBER" followed by ':' (the test guest's) or the
 * line's end (the --linux guest's, "\r\n" on its console).
 */
bool bench__answered_as(const char *out, const char *number);

/* SIGINT or SIGTERM came: a child in progress is to be stopped (SIGTERM). */
bool bench__stopping(void);

/* The progress bar on stderr when it is a terminal; @job NULL clears it. */
void bench__progress(struct bench_run *b, const struct bench_job *job);

/* What one run of the guest's bench workload printed. */
struct bench_sample {
	char kind[16];
	unsigned vcpus;
	uint64_t ops;
	uint64_t cycles;
	uint64_t verified;
	uint64_t timed;		/* operations in the histogram: ops, or 0 (lat=0) */
	uint64_t timer_cycles;	/* the cost of the TSC reads themselves */
	uint64_t verify_cycles; /* the guest's verification pass after the timed loop */
	uint64_t max_cycles;
	uint64_t hist[BENCH_HIST_BUCKETS];
};

/*
 * Parse the guest's output (bench:, bench-hist: and bench-max: lines among
 * others). Returns 0, or -EINVAL with @why saying what is missing or
 * malformed: the guest is untrusted, so every number is checked.
 */
int bench__parse_guest(const char *out, struct bench_sample *s, char *why, size_t len)
	__attribute__((warn_unused_result));

/*
 * The @pct-th percentile (1..100) of a histogram in cycles: the largest
 * value of the bucket that holds it, at most @max. 0 when it is empty.
 */
uint64_t bench__percentile(const uint64_t *hist, uint64_t max, unsigned pct);

/* cycles -> nanoseconds at @tsc_khz (0: cycles are returned). */
double bench__cycles_to_ns(uint64_t cycles, unsigned tsc_khz);

/*
 * The result object of a run: "ops", "ops_per_s", "ns_per_op" and
 * "verify_s" (the guest's untimed verification pass) from @s,
 * and when it timed each operation "guest_latency_ns" (each value less
 * the timer's own cost, "timer") and "cdf". NULL without memory.
 */
json_t *bench__sample_json(const struct bench_sample *s, unsigned tsc_khz);

/*
 * Where a run's @wall_s seconds went: "phases_s" for result @r (its "ops",
 * "ns_per_op" and "verify_s"), from the child's --stats=json "times_s"
 * (@times: "setup", "guest", "stop", "total"). "setup" (faultline's start
 * to the vCPUs'), "guest" (the guest ran) split into "loop" (the timed
 * loop), "verify" and "guest_other" (the rest: boot, page tables, output),
 * "stop" (threads joined) and "exit" (teardown after the statistics and
 * the process's end: @wall_s less "total"). Nothing is set when @times
 * lacks a number (an older faultline run).
 */
void bench__add_phases(json_t *r, json_t *times, double wall_s);

/*
 * Fill "ratio_floor" and "ratio_kernel" of every touch result: its time
 * per page over that of the floor (kernel) result of the same order,
 * access and vCPU count in @results; null when there is none. And
 * "memory_ratio_floor": its host memory (bench__host_kib()) over the
 * floor's.
 */
void bench__add_ratios(json_t *results);

/*
 * Check that @doc is a results document this version can render, naming
 * the first bad key in @why. Returns 0 or -EINVAL.
 */
/*
 * The host memory a result's VM held at its end, in KiB: guest RAM, the
 * monitor's own memory and page tables ("memory_kib", from the child's
 * --stats=json "host_memory_kib"). 0 when the result has none.
 */
double bench__host_kib(json_t *r);

int bench__validate(json_t *doc, char *why, size_t len) __attribute__((warn_unused_result));

/* Render: the table to @out; CSV to @path; plot data, scripts and SVGs in @dir. */
void bench__print_table(json_t *doc, FILE *out);
int bench__write_csv(json_t *doc, const char *path) __attribute__((warn_unused_result));
int bench__write_plots(json_t *doc, const char *dir) __attribute__((warn_unused_result));

#endif
