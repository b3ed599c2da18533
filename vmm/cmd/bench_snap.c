/*
 * faultline bench, the snapshot modes. The test guest's serve workload is
 * booted, fills its pages and waits for a request; it is snapshotted there
 * on tmpfs. A restore as another clone (--clone) is the request: the guest
 * checks every page (the first response, cold), then again (the warm
 * response, the same work in a VM that has its pages), and says how many
 * TSC cycles each took.
 *
 * restore: the restore's first response, from the child's start to its
 * line, against the warm response of the same run, and the faults after
 * the restore, with --prefetch off, seq and the recorded working set.
 * clones: the summed PSS of N clones at once, answered and then stopped
 * (SIGSTOP: idle, their memory kept), against N --private-memory restores
 * and against one restore alone, and the time from starting N clones to
 * their last first answer.
 *
 * With --linux CONFIG the clones are of Linux: booted from CONFIG with a
 * shell loop as its command (BENCH_LINUX_SERVE) and snapshotted reading
 * its console; a line on a clone's stdin is the request, and it answers
 * twice with the clone number it reads from port 0x514.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/status.h"
#include "mmu/mmu.h"
#include "vmm/cmd/bench.h"

#define TMPFS_MAGIC 0x01021994

/*
 * The Linux guest's serve loop (guest/linux/init runs faultline.run):
 * under 32 words, or the kernel panics on too many init arguments. 1300
 * is port 0x514, read a byte at a time.
 */
#define BENCH_LINUX_SERVE                                                                          \
	"console=ttyS0 quiet faultline.run='echo serve: ready;while read -r l;do n=$(dd "          \
	"if=/dev/port bs=1 skip=1300 count=4 2>/dev/null|od -An -tu4);echo serve: request 1 of "   \
	"clone $n;echo serve: request 2 of clone $n;done'"

/* One `faultline` child: its output as it comes, when its answers came. */
struct snap_child {
	pid_t pid; /* 0: not started, or reaped */
	int fd[2]; /* its stdout and stderr; -1: closed */
	int in;	   /* its stdin, a pipe kept open (a Linux guest's console); -1: closed */
	struct bench_captured out, err;
	uint64_t start_ns;
	uint64_t answer_ns[2]; /* "serve: request 1 ", "serve: request 2 " seen; 0: not yet */
	int status;	       /* its exit status once reaped (128+N: signal N); -1 before */
	bool freeze;	       /* SIGSTOP it once it answered twice: an idle clone */
};

struct snap_bench {
	struct bench_run *b;
	char dir[96];	/* the scratch directory, on tmpfs where it can be */
	char snap[112]; /* the snapshot in it */
	char sock[112]; /* the VM's --api socket in it: sun_path holds 108 bytes */
	bool on_tmpfs;
	unsigned pages;		  /* the serve workload's */
	const char *linux_config; /* --linux; NULL: the test guest */
	unsigned next_clone;
	char why[512];
};

static int child_start(const struct snap_bench *sb, const char *const *argv, struct snap_child *c)
{
	int po[2], pe[2], pi[2], e;

	*c = (struct snap_child){.fd = {-1, -1}, .in = -1, .status = -1};
	if (pipe2(pi, O_CLOEXEC) < 0)
		return -errno;
	if (bench__pipes(po, pe) < 0) {
		e = errno;
		close(pi[0]);
		close(pi[1]);
		return -e;
	}
	c->start_ns = mmu__now_ns();
	c->pid = fork();
	if (c->pid == 0) {
		signal(SIGPIPE, SIG_DFL); /* the bench ignores it: a clone's stdin may close */
		dup2(pi[0], 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(sb->b->self, (char *const *)argv);
		_exit(127);
	}
	e = errno;
	close(pi[0]);
	close(po[1]);
	close(pe[1]);
	if (c->pid < 0) {
		c->pid = 0;
		close(pi[1]);
		close(po[0]);
		close(pe[0]);
		return -e;
	}
	c->in = pi[1];
	c->fd[0] = po[0];
	c->fd[1] = pe[0];
	return 0;
}

/* The first line of @text that starts with @prefix; NULL: none. */
static const char *line_at(const char *text, const char *prefix)
{
	const char *p = text;

	while ((p = strstr(p, prefix)) && p != text && p[-1] != '\n')
		p++;
	return p;
}

/* Note when @c's stdout first held each of the serve workload's answers. */
static void child_answers(struct snap_child *c)
{
	static const char *const lines[2] = {"serve: request 1 ", "serve: request 2 "};
	unsigned i;

	for (i = 0; i < 2; i++)
		if (!c->answer_ns[i] && c->out.buf && line_at(c->out.buf, lines[i]))
			c->answer_ns[i] = mmu__now_ns();
}

static bool child_done(const struct snap_child *c, unsigned answers)
{
	return (c->fd[0] < 0 && c->fd[1] < 0) || (answers && c->answer_ns[answers - 1]);
}

/*
 * Read the @n children's output until each has given @answers answers (0:
 * until each closed its output), or @timeout_s passed. Returns 0, or
 * -ETIMEDOUT.
 */
static int children_wait(struct snap_child *cs, unsigned n, unsigned answers, unsigned timeout_s)
{
	uint64_t deadline = mmu__now_ns() + (uint64_t)timeout_s * 1000000000ULL;
	struct pollfd fds[2 * BENCH_MAX_CLONES];
	unsigned i, k;

	for (;;) {
		for (i = 0, k = 0; i < n; i++)
			if (!child_done(&cs[i], answers)) {
				fds[k++] = (struct pollfd){.fd = cs[i].fd[0], .events = POLLIN};
				fds[k++] = (struct pollfd){.fd = cs[i].fd[1], .events = POLLIN};
			}
		if (!k)
			return 0;
		if (mmu__now_ns() >= deadline)
			return -ETIMEDOUT;
		if (bench__stopping() && answers)
			return -EINTR; /* SIGINT or SIGTERM: the benchmark ends */
		if (poll(fds, k, 200) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			unsigned s;

			for (s = 0; s < 2; s++) {
				bool open = true;
				unsigned j;

				for (j = 0; j < k; j++)
					if (fds[j].fd == cs[i].fd[s] && fds[j].fd >= 0 &&
					    fds[j].revents)
						break;
				if (j == k)
					continue;
				bench__capture(cs[i].fd[s], s ? &cs[i].err : &cs[i].out, &open);
				if (!open) {
					close(cs[i].fd[s]);
					cs[i].fd[s] = -1;
				}
			}
			child_answers(&cs[i]);
			if (cs[i].freeze && cs[i].answer_ns[1]) {
				kill(cs[i].pid, SIGSTOP);
				cs[i].freeze = false;
			}
		}
	}
}

/* Stop @c with @sig (0: let it end), read the rest of its output, reap it. */
static void child_end(struct snap_child *c, int sig, unsigned timeout_s)
{
	int status;

	if (!c->pid)
		return;
	if (sig)
		kill(c->pid, sig);
	if (children_wait(c, 1, 0, timeout_s)) {
		kill(c->pid, SIGKILL);
		children_wait(c, 1, 0, 10);
	}
	if (waitpid(c->pid, &status, 0) == c->pid)
		c->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	c->pid = 0;
}

static void child_free(struct snap_child *c)
{
	child_end(c, SIGKILL, 10);
	if (c->in >= 0)
		close(c->in);
	if (c->fd[0] >= 0)
		close(c->fd[0]);
	if (c->fd[1] >= 0)
		close(c->fd[1]);
	free(c->out.buf);
	free(c->err.buf);
	*c = (struct snap_child){.fd = {-1, -1}, .in = -1, .status = -1};
}

/* The first "faultline: " line of @c's stderr, or its status, into sb->why. */
static void child_why(struct snap_bench *sb, const char *what, const struct snap_child *c)
{
	const char *p = c->err.buf ? strstr(c->err.buf, "faultline: ") : NULL;

	if (p)
		snprintf(sb->why, sizeof(sb->why), "%s: %.*s", what, (int)strcspn(p, "\n"), p);
	else
		snprintf(sb->why, sizeof(sb->why), "%s: exited with status %d, no message", what,
			 c->status);
}

/* Run `faultline ctl SOCK ...` to its end. Returns 0 or -1 with sb->why set. */
static int run_ctl(struct snap_bench *sb, const char *cmd, const char *arg)
{
	const char *argv[] = {"faultline", "ctl", sb->sock, cmd, arg, NULL};
	struct snap_child c;
	int ret = child_start(sb, argv, &c);

	if (ret) {
		snprintf(sb->why, sizeof(sb->why), "cannot start faultline ctl: %s",
			 strerror(-ret));
		return -1;
	}
	child_end(&c, 0, sb->b->o->timeout_s);
	if (c.status)
		child_why(sb, cmd, &c);
	ret = c.status ? -1 : 0;
	child_free(&c);
	return ret;
}

/* The scratch directory: on /dev/shm when it is tmpfs (clones share), else $TMPDIR. */
static int make_dir(struct snap_bench *sb)
{
	const char *tmp = getenv("TMPDIR");
	struct statfs fs;

	snprintf(sb->dir, sizeof(sb->dir), "/dev/shm/faultline-bench-XXXXXX");
	if (statfs("/dev/shm", &fs) < 0 || fs.f_type != TMPFS_MAGIC || !mkdtemp(sb->dir)) {
		if ((size_t)snprintf(sb->dir, sizeof(sb->dir), "%s/faultline-bench-XXXXXX",
				     tmp ? tmp : "/tmp") >= sizeof(sb->dir)) {
			snprintf(sb->why, sizeof(sb->why),
				 "TMPDIR is too long for a socket path in it (%.40s...)", tmp);
			return -1;
		}
		if (!mkdtemp(sb->dir)) {
			snprintf(sb->why, sizeof(sb->why), "cannot make a directory: %s (%s)",
				 strerror(errno), sb->dir);
			return -1;
		}
	}
	sb->on_tmpfs = statfs(sb->dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
	snprintf(sb->snap, sizeof(sb->snap), "%s/snap", sb->dir);
	snprintf(sb->sock, sizeof(sb->sock), "%s/api.sock", sb->dir);
	return 0;
}

static void remove_dir(struct snap_bench *sb)
{
	static const char *const files[] = {"state", "memory", "ws", "manifest.json"};
	char path[PATH_MAX + 32];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", sb->snap, files[i]);
		unlink(path);
	}
	rmdir(sb->snap);
	unlink(sb->sock);
	rmdir(sb->dir);
}

/* Boot the serve workload, snapshot it waiting, stop it. Returns 0 or -1 (sb->why). */
static int take_snapshot(struct snap_bench *sb)
{
	char pages[40];
	const char *argv[] = {"faultline",   "run",    "--kernel",
			      sb->b->guest,  "--mem",  sb->b->o->quick ? "64M" : "256M",
			      "--api",	     sb->sock, "--guest-arg=workload=serve",
			      "--guest-arg", pages,    "--guest-arg=end=spin",
			      NULL};
	const char *linux_argv[] = {"faultline", "run",	   "--config",	sb->linux_config,
				    "--api",	 sb->sock, "--cmdline", BENCH_LINUX_SERVE,
				    NULL};
	struct snap_child vm;
	int ret;

	snprintf(pages, sizeof(pages), "pages=%u", sb->pages);
	ret = child_start(sb, sb->linux_config ? linux_argv : argv, &vm);
	if (ret) {
		snprintf(sb->why, sizeof(sb->why), "cannot start faultline run: %s",
			 strerror(-ret));
		return -1;
	}
	ret = 0;
	while (!ret && !(vm.out.buf && line_at(vm.out.buf, "serve: ready"))) {
		ret = children_wait(&vm, 1, 0, 1);
		if (!ret) { /* it ended */
			child_end(&vm, 0, 10);
			child_why(sb, "the VM to snapshot", &vm);
			ret = -1;
		} else if (ret == -ETIMEDOUT &&
			   mmu__now_ns() - vm.start_ns <
				   (uint64_t)sb->b->o->timeout_s * 1000000000ULL)
			ret = 0;
		else {
			snprintf(sb->why, sizeof(sb->why),
				 "the VM to snapshot did not say \"serve: ready\" within %u s",
				 sb->b->o->timeout_s);
		}
	}
	if (!ret)
		ret = run_ctl(sb, "snapshot", sb->snap) ?: run_ctl(sb, "stop", NULL);
	child_end(&vm, 0, sb->b->o->timeout_s);
	if (!ret && vm.status != FL_EXIT_STOPPED) {
		child_why(sb, "the snapshotted VM's stop", &vm);
		ret = -1;
	}
	child_free(&vm);
	return ret;
}

uint64_t bench__answer_cycles(const char *out, unsigned k)
{
	char key[32];
	const char *p, *at;
	unsigned long long v;
	char *end;

	snprintf(key, sizeof(key), "serve: request %u ", k);
	p = out ? line_at(out, key) : NULL;
	if (!p)
		return 0;
	at = strstr(p, " pages in ");
	if (!at || at > p + strcspn(p, "\n"))
		return 0;
	errno = 0;
	v = strtoull(at + 10, &end, 10);
	return errno || end == at + 10 || strncmp(end, " cycles\n", 8) ? 0 : (uint64_t)v;
}

static json_int_t counter(json_t *stats, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(stats, "counters"), name));
}

static double cycles_ms(uint64_t cycles, unsigned khz)
{
	return khz ? (double)cycles / khz : 0;
}

/*
 * One restore of the snapshot with @flags (NULL-terminated, at most 3):
 * its first answer's time from its start, both answers' cycles, what the
 * monitor counted. NULL with sb->why set when it failed.
 */
static json_t *restore_once(struct snap_bench *sb, const char *const *flags)
{
	char clone[16];
	const char *argv[16] = {"faultline",	"run",	   "--restore", sb->snap,
				"--stats=json", "--clone", clone};
	struct snap_child c;
	json_t *stats, *r = NULL;
	uint64_t cold, warm;
	unsigned i, argc = 7, khz;
	int ret;

	snprintf(clone, sizeof(clone), "%u", ++sb->next_clone);
	for (i = 0; flags && flags[i] && i < 3; i++)
		argv[argc++] = flags[i];
	argv[argc] = NULL;
	ret = child_start(sb, argv, &c);
	if (ret) {
		snprintf(sb->why, sizeof(sb->why), "cannot start faultline run: %s",
			 strerror(-ret));
		return NULL;
	}
	ret = children_wait(&c, 1, 2, sb->b->o->timeout_s);
	child_end(&c, SIGTERM, sb->b->o->timeout_s);
	if (ret == -EINTR) {
		snprintf(sb->why, sizeof(sb->why), "interrupted by a signal");
		child_free(&c);
		return NULL;
	}
	stats = bench__stats_of(c.err.buf);
	cold = bench__answer_cycles(c.out.buf, 1);
	warm = bench__answer_cycles(c.out.buf, 2);
	khz = (unsigned)json_integer_value(json_object_get(stats, "tsc_khz"));
	if (ret || !c.answer_ns[1] || c.status != 128 + SIGTERM)
		child_why(sb, "the restore", &c);
	else if (!stats || !cold || !warm)
		snprintf(sb->why, sizeof(sb->why),
			 "the restore printed no --stats=json line or no cycles of its answers");
	else
		r = json_pack("{s:f,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:O}", "restore_to_answer_ms",
			      (double)(c.answer_ns[0] - c.start_ns) / 1e6, "first_answer_ms",
			      cycles_ms(cold, khz), "warm_answer_ms", cycles_ms(warm, khz),
			      "faults_uffd", counter(stats, "faults_uffd"), "pages_installed",
			      counter(stats, "pages_installed"), "pages_prefetched",
			      counter(stats, "pages_prefetched"), "prefetch_used",
			      counter(stats, "prefetch_used"), "prefetch_waits",
			      counter(stats, "prefetch_waits"), "memory_shared",
			      json_object_get(json_object_get(stats, "restore"), "memory_shared")
				      ?: json_false());
	if (khz)
		sb->b->tsc_khz = khz;
	json_decref(stats);
	child_free(&c);
	return r;
}

static int by_answer(const void *a, const void *b)
{
	double x = json_number_value(json_object_get(*(json_t *const *)a, "restore_to_answer_ms"));
	double y = json_number_value(json_object_get(*(json_t *const *)b, "restore_to_answer_ms"));

	return x < y ? -1 : x > y;
}

/* The median of --repeat restores with @flags, as result "prefetch": @name. */
static json_t *restore_variant(struct snap_bench *sb, const char *name, const char *const *flags)
{
	json_t *runs[21], *r;
	unsigned i, n = 0, repeat = sb->b->o->repeat < 21 ? sb->b->o->repeat : 21;

	for (i = 0; i < repeat; i++) {
		r = restore_once(sb, flags);
		if (!r)
			break;
		runs[n++] = r;
	}
	if (n < repeat) {
		while (n)
			json_decref(runs[--n]);
		return NULL;
	}
	qsort(runs, n, sizeof(runs[0]), by_answer);
	r = json_incref(runs[n / 2]);
	for (i = 0; i < n; i++)
		json_decref(runs[i]);
	json_object_set_new(r, "prefetch", json_string(name));
	json_object_set_new(
		r, "ratio_warm",
		json_real(json_number_value(json_object_get(r, "restore_to_answer_ms")) /
			  json_number_value(json_object_get(r, "warm_answer_ms"))));
	return r;
}

/* restore: off, seq, then a recording and ws. Returns the result or NULL (sb->why). */
static json_t *measure_restore(struct snap_bench *sb)
{
	static const char *const off[] = {"--prefetch", "off", NULL};
	static const char *const seq[] = {"--prefetch", "seq", NULL};
	static const char *const record[] = {"--record-ws", NULL};
	static const char *const ws[] = {"--prefetch", "ws", NULL};
	json_t *variants = json_array(), *v, *r, *rec;
	double faults_off, faults_ws;

	if (!variants)
		return NULL;
	if (!(v = restore_variant(sb, "off", off)) || json_array_append_new(variants, v) ||
	    !(v = restore_variant(sb, "seq", seq)) || json_array_append_new(variants, v) ||
	    !(rec = restore_once(sb, record))) {
		json_decref(variants);
		return NULL;
	}
	json_decref(rec);
	if (!(v = restore_variant(sb, "ws", ws)) || json_array_append_new(variants, v)) {
		json_decref(variants);
		return NULL;
	}
	faults_off = (double)json_integer_value(
		json_object_get(json_array_get(variants, 0), "faults_uffd"));
	faults_ws = (double)json_integer_value(json_object_get(v, "faults_uffd"));
	r = json_pack("{s:s,s:i,s:b,s:o}", "command",
		      "faultline run --restore DIR --clone N --stats=json [--prefetch off|seq|ws]",
		      "pages", sb->pages, "on_tmpfs", sb->on_tmpfs, "variants", variants);
	if (r)
		json_object_set_new(r, "fault_reduction_ws",
				    faults_off > 0 ? json_real(1 - faults_ws / faults_off)
						   : json_null());
	return r;
}

/* The PSS of process @pid in KiB (/proc/PID/smaps_rollup); 0: unreadable. */
static uint64_t pss_kib(pid_t pid)
{
	char path[64], line[256];
	unsigned long long kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

bool bench__answered_as(const char *out, const char *number)
{
	char key[48];
	const char *p;
	size_t len;

	len = (size_t)snprintf(key, sizeof(key), "serve: request 1 of clone %s", number);
	p = out ? line_at(out, key) : NULL;
	return p && (p[len] == ':' || p[len] == '\r' || p[len] == '\n');
}

/*
 * Start @n restores at once (@private: --private-memory), wait until each
 * answered twice and idles, and sum their PSS. Returns 0, or -1 (sb->why).
 */
static int start_clones(struct snap_bench *sb, unsigned n, bool private, uint64_t *pss,
			double *start_ms)
{
	struct snap_child *cs = calloc(n, sizeof(*cs));
	char clone[BENCH_MAX_CLONES][16];
	uint64_t t0 = mmu__now_ns(), last = 0;
	unsigned i;
	int ret = cs ? 0 : -ENOMEM;

	for (i = 0; !ret && i < n; i++) {
		const char *argv[] = {"faultline",
				      "run",
				      "--restore",
				      sb->snap,
				      "--clone",
				      clone[i],
				      private ? "--private-memory" : NULL,
				      NULL};

		snprintf(clone[i], sizeof(clone[i]), "%u", ++sb->next_clone);
		ret = child_start(sb, argv, &cs[i]);
		cs[i].freeze = true; /* its guest spins: stopped, it holds its memory, no CPU */
		if (ret) {
			snprintf(sb->why, sizeof(sb->why), "cannot start faultline run: %s",
				 strerror(-ret));
		} else if (sb->linux_config && write(cs[i].in, "go\n", 3) != 3) { /* the request */
			ret = -EIO;
			snprintf(sb->why, sizeof(sb->why), "cannot write clone %.15s's request: %s",
				 clone[i], strerror(errno));
		}
	}
	if (!ret) {
		ret = children_wait(cs, n, 2, sb->b->o->timeout_s);
		for (i = 0; i < n && !ret; i++)
			if (!cs[i].answer_ns[1]) {
				child_end(&cs[i], SIGKILL, 10);
				child_why(sb, "a clone", &cs[i]);
				ret = -1;
			} else if (!bench__answered_as(cs[i].out.buf, clone[i])) {
				const char *l = line_at(cs[i].out.buf, "serve: request 1 ") ?: "";
				size_t len = strcspn(l, "\r\n");

				snprintf(sb->why, sizeof(sb->why),
					 "clone %.15s did not answer with its own number: %.*s",
					 clone[i], (int)(len < 200 ? len : 200), l);
				ret = -1;
			}
		if (ret == -ETIMEDOUT)
			snprintf(sb->why, sizeof(sb->why),
				 "%u clones did not all answer within %u s", n,
				 sb->b->o->timeout_s);
		else if (ret == -EINTR)
			snprintf(sb->why, sizeof(sb->why), "interrupted by a signal");
	}
	*pss = 0;
	for (i = 0; !ret && i < n; i++) {
		if (cs[i].answer_ns[0] > last)
			last = cs[i].answer_ns[0];
		*pss += pss_kib(cs[i].pid);
	}
	*start_ms = (double)(last - t0) / 1e6;
	for (i = 0; cs && i < n; i++)
		child_free(&cs[i]);
	free(cs);
	return ret ? -1 : 0;
}

/* clones: one alone, N sharing, N copying. Returns the result or NULL (sb->why). */
static json_t *measure_clones(struct snap_bench *sb, unsigned n)
{
	uint64_t one, shared, copies;
	double one_ms, shared_ms, copies_ms;
	char guest[PATH_MAX + 64];
	json_t *r;

	if (start_clones(sb, 1, false, &one, &one_ms) ||
	    start_clones(sb, n, false, &shared, &shared_ms) ||
	    start_clones(sb, n, true, &copies, &copies_ms))
		return NULL;
	if (sb->linux_config)
		snprintf(guest, sizeof(guest), "Linux (--linux %s)", sb->linux_config);
	else
		snprintf(guest, sizeof(guest), "the test guest's serve workload, %u pages",
			 sb->pages);
	r = json_pack("{s:s,s:s,s:i,s:i,s:b,s:I,s:I,s:I,s:f,s:f,s:f}", "command",
		      "N x faultline run --restore DIR --clone I [--private-memory]", "guest",
		      guest, "clones", n, "pages", sb->linux_config ? 0 : sb->pages, "on_tmpfs",
		      sb->on_tmpfs, "pss_kib_one", (json_int_t)one, "pss_kib_shared",
		      (json_int_t)shared, "pss_kib_private", (json_int_t)copies, "start_ms_one",
		      one_ms, "start_ms_shared", shared_ms, "start_ms_private", copies_ms);
	if (r) {
		json_object_set_new(r, "kib_per_clone",
				    json_real(n > 1 ? (double)(shared - one) / (n - 1) : 0));
		json_object_set_new(r, "ratio_private",
				    json_real(copies ? (double)shared / (double)copies : 0));
	}
	return r;
}

json_t *bench__measure_snapshots(struct bench_run *b, bool restore, bool clones)
{
	struct snap_bench sb = {
		.b = b, .pages = b->o->quick ? 1024 : 16384, .linux_config = b->o->linux_config};
	unsigned n = b->o->clones ? b->o->clones : b->o->quick ? 8 : 50;
	json_t *doc = json_object(), *r;
	void (*pipe_was)(int);

	if (!doc)
		return NULL;
	/* a Linux clone's request goes to its stdin: one that ended is an error, not SIGPIPE */
	pipe_was = signal(SIGPIPE, SIG_IGN);
	if (make_dir(&sb) || take_snapshot(&sb)) {
		signal(SIGPIPE, pipe_was);
		remove_dir(&sb);
		if (!b->first_failure)
			b->first_failure = FL_EXIT_INTERNAL;
		json_object_set_new(doc, "error", json_string(sb.why));
		return doc;
	}
	if (restore) {
		r = measure_restore(&sb);
		json_object_set_new(doc, "restore", r ?: json_pack("{s:s}", "error", sb.why));
	}
	if (clones) {
		r = measure_clones(&sb, n);
		json_object_set_new(doc, "clones", r ?: json_pack("{s:s}", "error", sb.why));
	}
	if ((restore && json_object_get(json_object_get(doc, "restore"), "error")) ||
	    (clones && json_object_get(json_object_get(doc, "clones"), "error")))
		b->first_failure = b->first_failure ?: FL_EXIT_INTERNAL;
	remove_dir(&sb);
	signal(SIGPIPE, pipe_was);
	return doc;
}
