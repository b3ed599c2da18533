#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/size.h"
#include "lib/status.h"
#include "lib/usock.h"
#include "mmu/mmu.h"
#include "vmm/cmd/cli.h"
#include "vmm/cmd/ctl.h"

#define CTL_REPLY_MAX	(1 << 20)
#define CTL_REPLY_MS	5000	   /* for the whole reply */
#define CTL_MAX_FDS	3	   /* descriptors with one request: a diff snapshot's files */
#define CTL_SNAPSHOT_MS 600000	   /* a snapshot's reply: it writes all of guest RAM */
#define CTL_WAIT_MS	20	   /* wait: between two looks for a socket not there yet */
#define CTL_LINE_MAX	(64 << 10) /* a line of an event stream */
#define CTL_EXIT_NO	1	   /* the VM refused the request, or ended while waited for */
#define CTL_EXIT_TIMER	124	   /* wait: the time ran out (as timeout(1)) */

static void ctl_usage(FILE *out)
{
	fprintf(out,
		"Usage: faultline ctl SOCKET COMMAND [ARG]\n"
		"\n"
		"Sends one request to the control socket of a running VM (faultline run\n"
		"--api SOCKET) and prints the reply's fields as JSON on standard output.\n"
		"\n"
		"Commands:\n"
		"  status              state (running, paused, paused-oom, stopping), vCPUs\n"
		"                      parked, pages of RAM, budget and resident, the --on-oom\n"
		"                      policy, pauses so far; when paused-oom, the fault that\n"
		"                      waits (\"oom\")\n"
		"  pause               stop running the vCPUs; waits up to 500 ms for them\n"
		"                      to leave the guest and says how many did\n"
		"  resume              run them again; a fault that paused the VM out of\n"
		"                      memory is served again (and pauses it again if the\n"
		"                      budget still has no room)\n"
		"  mem-limit SIZE      set the budget of resident guest memory (256M, 1G,\n"
		"                      ...; at most --mem); lowering it drops clean file\n"
		"                      pages, and is refused below what stays resident\n"
		"  balloon SIZE        ask the guest for SIZE of its memory (--balloon):\n"
		"                      its driver inflates the balloon with pages that\n"
		"                      faultline drops; 0 gives them all back\n"
		"  stats               the counters of --stats=json, now\n"
		"  stop                stop the VM; faultline exits with status %d\n"
		"  snapshot DIR [--diff] [--resume]\n"
		"                      pause the VM and write a snapshot into the new\n"
		"                      directory DIR (manifest.json, state, memory); the VM\n"
		"                      stays paused, or runs on with --resume; start one\n"
		"                      with 'faultline run --restore DIR' (docs/snapshots.md);\n"
		"                      --diff: only the pages written since the VM's last\n"
		"                      snapshot, on top of it (run --diff-snapshots)\n"
		"  events              follow the VM: its status as one JSON line, then a\n"
		"                      line per change (paused, paused-oom, resumed,\n"
		"                      mem-limit, balloon, stopping with the exit status\n"
		"                      and reason) until the VM ends\n"
		"  wait STATE [SECS]   follow the events until the state is STATE (running,\n"
		"                      paused: either pause, paused-oom), at most SECS\n"
		"                      seconds (default: no limit), then print the status; a\n"
		"                      socket not there yet is looked for every %d ms\n"
		"\n"
		"The protocol (one JSON line each way) is in docs/cli.md.\n"
		"\n"
		"Exit status: 0 done; %d the VM refused the request (its reason on stderr),\n"
		"or ended while waited for; 64 bad usage; 66 the socket cannot be connected\n"
		"to; 70 a read or write failed, or the reply is not JSON; %d wait ran out\n"
		"of time.\n",
		FL_EXIT_STOPPED, CTL_WAIT_MS, CTL_EXIT_NO, CTL_EXIT_TIMER);
}

/*
 * Read the whole reply from @fd until the VM closes the connection, within
 * @ms. Returns its length, or -errno (-ETIMEDOUT, -EMSGSIZE).
 */
static ssize_t ctl_read_reply(int fd, char *buf, size_t max, unsigned ms)
{
	uint64_t deadline = mmu__now_ns() + ms * 1000000ULL, now;
	size_t used = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		now = mmu__now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1) <= 0)
			continue;
		n = read(fd, buf + used, max - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return (ssize_t)used;
		used += (size_t)n;
		if (used == max)
			return -EMSGSIZE;
	}
}

/*
 * Send @request, read the reply into *@reply. Returns 0, or the exit status
 * after reporting (66 cannot connect, 70 I/O or a reply that is not JSON).
 * @quiet: a socket that cannot be connected to is not reported, and
 * -ENOENT/-ECONNREFUSED come back as 66 for wait to retry.
 */
/* The request line, and @nr_fds descriptors with its first byte (SCM_RIGHTS). */
static int ctl_send(int fd, const char *text, const int *fds, unsigned nr_fds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(CTL_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	size_t len = strlen(text);

	if (nr_fds > CTL_MAX_FDS)
		return -1;
	if (nr_fds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nr_fds * sizeof(int));
	}
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
		return -1;
	return 0;
}

static int ctl_request_fds(const char *path, json_t *request, const int *fds, unsigned nr_fds,
			   unsigned ms, json_t **reply, bool quiet);

static int ctl_request(const char *path, json_t *request, json_t **reply, bool quiet)
{
	return ctl_request_fds(path, request, NULL, 0, CTL_REPLY_MS, reply, quiet);
}

static int ctl_request_fds(const char *path, json_t *request, const int *fds, unsigned nr_fds,
			   unsigned ms, json_t **reply, bool quiet)
{
	char *text = json_dumps(request, JSON_COMPACT), *buf = malloc(CTL_REPLY_MAX);
	json_error_t jerr;
	ssize_t n = -ENOMEM;
	int fd, ret = 0;

	*reply = NULL;
	if (!text || !buf) {
		pr_err("ctl: out of memory");
		ret = FL_EXIT_INTERNAL;
		goto out;
	}
	fd = usock__connect(path, quiet ? NULL : "control socket");
	if (fd < 0) {
		ret = fd == -ENAMETOOLONG ? FL_EXIT_USAGE : FL_EXIT_NOINPUT;
		goto out;
	}
	if (!ctl_send(fd, text, fds, nr_fds)) {
		shutdown(fd, SHUT_WR);
		n = ctl_read_reply(fd, buf, CTL_REPLY_MAX, ms);
	} else {
		n = -errno;
	}
	close(fd);
	if ((n == 0 || n == -EPIPE || n == -ECONNRESET) && quiet) {
		ret = FL_EXIT_NOINPUT; /* closed unanswered: the VM is stopping */
		goto out;
	}
	if (n <= 0) {
		pr_err("ctl: no reply from the VM: %s (socket: %s)",
		       n ? strerror((int)-n) : "the connection closed unanswered", path);
		ret = FL_EXIT_INTERNAL;
		goto out;
	}
	*reply = json_loadb(buf, (size_t)n, 0, &jerr);
	if (!json_is_object(*reply) || !json_is_boolean(json_object_get(*reply, "ok"))) {
		pr_err("ctl: the reply is not a JSON object with \"ok\": %s (socket: %s)",
		       *reply ? "other fields" : jerr.text, path);
		json_decref(*reply);
		*reply = NULL;
		ret = FL_EXIT_INTERNAL;
	}
out:
	free(text);
	free(buf);
	return ret;
}

/* A refusal is reported and is status 1; else print the reply's other fields. */
static int ctl_finish(const char *path, json_t *reply)
{
	int ret = 0;

	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *why = json_string_value(json_object_get(reply, "error"));

		pr_err("ctl: %s (socket: %s)", why ? why : "refused, no reason given", path);
		ret = CTL_EXIT_NO;
	} else {
		json_object_del(reply, "ok");
		if (json_object_size(reply)) {
			json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		}
	}
	json_decref(reply);
	return ret;
}

static bool ctl_state_matches(const char *state, const char *want)
{
	if (!state)
		return false;
	if (!strcmp(want, "paused"))
		return !strcmp(state, "paused") || !strcmp(state, "paused-oom");
	return !strcmp(state, want);
}

/* The lines of an event stream, read as they come. */
struct ctl_stream {
	int fd;
	char buf[CTL_LINE_MAX];
	size_t used;
};

/*
 * Open an event stream: connect, send {"command": "events"}. Returns 0, or
 * the exit status (66: not there, reported unless @quiet; 64, 70).
 */
static int ctl_stream_open(struct ctl_stream *st, const char *path, bool quiet)
{
	static const char req[] = "{\"command\":\"events\"}\n";

	st->used = 0;
	st->fd = usock__connect(path, quiet ? NULL : "control socket");
	if (st->fd < 0)
		return st->fd == -ENAMETOOLONG ? FL_EXIT_USAGE : FL_EXIT_NOINPUT;
	if (send(st->fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		if (!quiet)
			pr_err("ctl: cannot send the request: %s (socket: %s)", strerror(errno),
			       path);
		close(st->fd);
		return quiet ? FL_EXIT_NOINPUT : FL_EXIT_INTERNAL;
	}
	return 0;
}

/*
 * The next line of @st as a JSON object, by @deadline (0: none). Returns 0,
 * -ENODATA at the end of the stream, -ETIMEDOUT, -EBADMSG (not a JSON
 * object, or a line too long) or -errno.
 */
static int ctl_stream_next(struct ctl_stream *st, uint64_t deadline, json_t **line)
{
	json_error_t jerr;
	char *nl;

	*line = NULL;
	while (!(nl = memchr(st->buf, '\n', st->used))) {
		struct pollfd p = {.fd = st->fd, .events = POLLIN};
		uint64_t now = mmu__now_ns();
		ssize_t n;

		if (st->used == sizeof(st->buf))
			return -EBADMSG;
		if (deadline && now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, deadline ? (int)((deadline - now) / 1000000ULL) + 1 : -1) <= 0)
			continue;
		n = read(st->fd, st->buf + st->used, sizeof(st->buf) - st->used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -ENODATA : -errno;
		if (n == 0)
			return -ENODATA;
		st->used += (size_t)n;
	}
	*line = json_loadb(st->buf, (size_t)(nl - st->buf), 0, &jerr);
	st->used -= (size_t)(nl + 1 - st->buf);
	memmove(st->buf, nl + 1, st->used);
	if (!json_is_object(*line)) {
		json_decref(*line);
		*line = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* A stream's line that is not what the protocol says: 70, reported. */
static int ctl_stream_broken(const char *path, int err)
{
	pr_err("ctl: the event stream broke: %s (socket: %s)",
	       err == -EBADMSG ? "a line that is not a JSON object" : strerror(-err), path);
	return FL_EXIT_INTERNAL;
}

/* The stream's first line: the status it starts from, or a refusal (1). */
static int ctl_stream_first(struct ctl_stream *st, const char *path, json_t **first)
{
	int err = ctl_stream_next(st, mmu__now_ns() + CTL_REPLY_MS * 1000000ULL, first);

	if (err == -ENODATA || err == -ETIMEDOUT) {
		pr_err("ctl: no reply from the VM: %s (socket: %s)",
		       err == -ENODATA ? "the connection closed unanswered" : strerror(-err), path);
		return FL_EXIT_INTERNAL;
	}
	if (err)
		return ctl_stream_broken(path, err);
	if (!json_is_true(json_object_get(*first, "ok")))
		return ctl_finish(path, *first); /* reports the refusal: 1 */
	json_object_del(*first, "ok");
	return 0;
}

/* Print @line as one compact JSON line, now. */
static void ctl_print_line(json_t *line)
{
	json_dumpf(line, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	fflush(stdout);
}

/* events: the status it starts from, then every event, until the VM ends. */
static int ctl_events(const char *path)
{
	struct ctl_stream *st = malloc(sizeof(*st));
	json_t *line;
	int ret, err;

	if (!st) {
		pr_err("ctl: out of memory");
		return FL_EXIT_INTERNAL;
	}
	ret = ctl_stream_open(st, path, false);
	if (ret)
		goto out_free;
	ret = ctl_stream_first(st, path, &line);
	if (ret)
		goto out;
	do {
		ctl_print_line(line);
		json_decref(line);
	} while (!(err = ctl_stream_next(st, 0, &line)));
	if (err != -ENODATA)
		ret = ctl_stream_broken(path, err);
out:
	close(st->fd);
out_free:
	free(st);
	return ret;
}

/*
 * wait: follow the event stream until the state is @want. The socket may
 * not be there yet: it is looked for every CTL_WAIT_MS until @deadline.
 */
static int ctl_wait_stream(struct ctl_stream *st, const char *path, const char *want,
			   uint64_t deadline, unsigned long s)
{
	json_t *line, *request, *status;
	int ret, err;

	while ((ret = ctl_stream_open(st, path, true)) == FL_EXIT_NOINPUT) {
		if (deadline && mmu__now_ns() >= deadline)
			goto timeout;
		usleep(CTL_WAIT_MS * 1000);
	}
	if (ret)
		return ret;
	ret = ctl_stream_first(st, path, &line);
	for (err = 0; !ret && !err; err = ctl_stream_next(st, deadline, &line)) {
		if (!ctl_state_matches(json_string_value(json_object_get(line, "state")), want)) {
			json_decref(line);
			continue;
		}
		/* Print the status as it is now; the event, if the VM has gone since. */
		close(st->fd);
		st->fd = -1;
		request = json_pack("{s:s}", "command", "status");
		ret = request ? ctl_request(path, request, &status, true) : FL_EXIT_INTERNAL;
		json_decref(request);
		if (ret == FL_EXIT_NOINPUT) {
			json_object_del(line, "event");
			status = json_pack("{s:b}", "ok", 1);
			if (status)
				json_object_update(status, line);
			ret = 0;
		}
		json_decref(line);
		return ret ? ret : ctl_finish(path, status);
	}
	if (ret)
		return ret;
	if (err == -ETIMEDOUT)
		goto timeout;
	if (err != -ENODATA)
		return ctl_stream_broken(path, err);
	pr_err("ctl: the VM ended before it was %s (socket: %s)", want, path);
	return CTL_EXIT_NO;
timeout:
	pr_err("ctl: the VM was not %s within %lu s (socket: %s)", want, s, path);
	return CTL_EXIT_TIMER;
}

static int ctl_wait(const char *path, const char *want, const char *secs)
{
	uint64_t deadline = 0;
	struct ctl_stream *st;
	char *end;
	unsigned long s = 0;
	int ret;

	if (strcmp(want, "running") && strcmp(want, "paused") && strcmp(want, "paused-oom")) {
		pr_err("usage: wait takes running, paused or paused-oom (ctl wait: %s)", want);
		return FL_EXIT_USAGE;
	}
	if (secs) {
		errno = 0;
		s = strtoul(secs, &end, 10);
		if (errno || end == secs || *end || s > 86400 || secs[0] == '-') {
			pr_err("usage: expected a number of seconds, 0..86400 (ctl wait: %s)",
			       secs);
			return FL_EXIT_USAGE;
		}
	}
	if (s)
		deadline = mmu__now_ns() + s * 1000000000ULL;
	st = malloc(sizeof(*st));
	if (!st) {
		pr_err("ctl: out of memory");
		return FL_EXIT_INTERNAL;
	}
	st->fd = -1;
	ret = ctl_wait_stream(st, path, want, deadline, s);
	if (st->fd >= 0)
		close(st->fd);
	free(st);
	return ret;
}

/* Remove what a failed snapshot left in @tmp. */
static void ctl_snapshot_cleanup(const char *tmp)
{
	char path[PATH_MAX + 64];
	const char *names[] = {"state", "memory", "pages", "manifest.json"};
	unsigned i;

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, names[i]);
		unlink(path);
	}
	rmdir(tmp);
}

static int ctl_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

/* Write the manifest the VM returned, then give the directory its name. */
static int ctl_snapshot_finish(const char *tmp, const char *dir, json_t *manifest)
{
	char path[PATH_MAX + 64], parent[PATH_MAX], *slash;
	int fd;
	FILE *f;

	snprintf(path, sizeof(path), "%s/manifest.json", tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f || json_dumpf(manifest, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
	    fputc('\n', f) == EOF || fflush(f) || fsync(fileno(f))) {
		pr_err("ctl: cannot write the snapshot's manifest: %s (file: %s)", strerror(errno),
		       path);
		if (f)
			fclose(f);
		else if (fd >= 0)
			close(fd);
		return FL_EXIT_INTERNAL;
	}
	fclose(f);
	if (ctl_sync_dir(tmp) || renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE)) {
		pr_err("ctl: cannot name the snapshot directory: %s (file: %s)", strerror(errno),
		       dir);
		return FL_EXIT_INTERNAL;
	}
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash)
		*(slash == parent ? slash + 1 : slash) = '\0';
	ctl_sync_dir(slash ? parent : ".");
	return 0;
}

/*
 * snapshot DIR [--resume]: the files are made here, under DIR.partial-XXXXXX
 * beside DIR, passed to the VM to write, and named DIR once whole; on any
 * failure nothing is left.
 */
/*
 * @dir made absolute for a later diff's base: its parent's real path and
 * its name. Empty when the parent cannot be resolved.
 */
static void ctl_absolute(const char *dir, char *abs, size_t size)
{
	char parent[PATH_MAX], real[PATH_MAX];
	const char *name = strrchr(dir, '/');

	snprintf(parent, sizeof(parent), "%.*s", name ? (int)(name - dir) : 1, name ? dir : ".");
	if (name && name == dir)
		snprintf(parent, sizeof(parent), "/");
	if (!realpath(parent, real)) {
		abs[0] = '\0';
		return;
	}
	snprintf(abs, size, "%s/%s", strcmp(real, "/") ? real : "", name ? name + 1 : dir);
}

static int ctl_snapshot(const char *path, const char *arg, bool resume, bool diff)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 32], file[PATH_MAX + 48], abs[2 * PATH_MAX + 2];
	int fds[3] = {-1, -1, -1}, ret;
	unsigned nr = diff ? 3 : 2;
	json_t *request, *reply = NULL, *manifest;
	struct stat st;
	size_t len = strlen(arg);
	unsigned i;

	while (len > 1 && arg[len - 1] == '/')
		len--;
	if (!len || len >= sizeof(dir)) {
		pr_err("usage: expected a directory to create (ctl snapshot: %s)", arg);
		return FL_EXIT_USAGE;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)len, arg);
	if (lstat(dir, &st) == 0) {
		pr_err("ctl: the snapshot directory exists; name a new one (file: %s)", dir);
		return FL_EXIT_USAGE;
	}
	snprintf(tmp, sizeof(tmp), "%s.partial-XXXXXX", dir);
	if (!mkdtemp(tmp)) {
		pr_err("ctl: cannot create the snapshot directory: %s (file: %s)", strerror(errno),
		       tmp);
		return FL_EXIT_NOINPUT;
	}
	for (i = 0; i < nr; i++) {
		snprintf(file, sizeof(file), "%s/%s", tmp,
			 i == 2 ? "pages"
			 : i	? "memory"
				: "state");
		fds[i] = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fds[i] < 0) {
			pr_err("ctl: cannot create a snapshot file: %s (file: %s)", strerror(errno),
			       file);
			while (i)
				close(fds[--i]);
			ctl_snapshot_cleanup(tmp);
			return FL_EXIT_NOINPUT;
		}
	}
	ctl_absolute(dir, abs, sizeof(abs));
	request = json_pack("{s:s,s:b,s:b,s:s?}", "command", "snapshot", "resume", resume, "diff",
			    diff, "dir", abs[0] ? abs : NULL);
	ret = request ? ctl_request_fds(path, request, fds, nr, CTL_SNAPSHOT_MS, &reply, false)
		      : FL_EXIT_INTERNAL;
	json_decref(request);
	for (i = 0; i < nr; i++)
		close(fds[i]);
	manifest = reply ? json_object_get(reply, "manifest") : NULL;
	if (!ret && json_is_true(json_object_get(reply, "ok")) && !json_is_object(manifest)) {
		pr_err("ctl: the VM's reply has no manifest (socket: %s)", path);
		ret = FL_EXIT_INTERNAL;
	}
	if (!ret && json_is_true(json_object_get(reply, "ok")))
		ret = ctl_snapshot_finish(tmp, dir, manifest);
	if (ret || !json_is_true(json_object_get(reply, "ok")))
		ctl_snapshot_cleanup(tmp);
	if (ret) {
		json_decref(reply);
		return ret;
	}
	json_object_del(reply, "manifest");
	json_object_set_new(reply, "dir", json_string(dir));
	return ctl_finish(path, reply);
}

int ctl__main(int argc, char **argv)
{
	const char *path, *cmd;
	json_t *request, *reply;
	uint64_t bytes;
	int ret;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		ctl_usage(stdout);
		return 0;
	}
	if (argc < 3 || argv[1][0] == '-') {
		pr_err("usage: faultline ctl SOCKET COMMAND [ARG]; see 'faultline ctl --help'");
		return FL_EXIT_USAGE;
	}
	path = argv[1];
	cmd = argv[2];
	if (!strcmp(cmd, "wait") && (argc == 4 || argc == 5))
		return ctl_wait(path, argv[3], argc == 5 ? argv[4] : NULL);
	if (!strcmp(cmd, "events") && argc == 3)
		return ctl_events(path);
	if (!strcmp(cmd, "snapshot") && argc >= 4 && argc <= 6) {
		bool resume = false, diff = false;
		int i;

		for (i = 4; i < argc; i++) {
			if (!strcmp(argv[i], "--resume") && !resume) {
				resume = true;
			} else if (!strcmp(argv[i], "--diff") && !diff) {
				diff = true;
			} else {
				pr_err("usage: faultline ctl SOCKET snapshot DIR [--diff] "
				       "[--resume] "
				       "(unknown: %s)",
				       argv[i]);
				return FL_EXIT_USAGE;
			}
		}
		return ctl_snapshot(path, argv[3], resume, diff);
	}
	if (!strcmp(cmd, "balloon") && argc == 4) {
		if (size__parse(argv[3], &bytes)) {
			pr_err("usage: expected a size like 256M or 1G, or 0 (ctl balloon: %s)",
			       argv[3]);
			return FL_EXIT_USAGE;
		}
		request = json_pack("{s:s,s:I}", "command", cmd, "bytes", (json_int_t)bytes);
	} else if (!strcmp(cmd, "mem-limit") && argc == 4) {
		if (size__parse(argv[3], &bytes) || bytes < MMU_PAGE_SIZE) {
			pr_err("usage: expected a size like 256M or 1G, at least 4K (ctl "
			       "mem-limit: "
			       "%s)",
			       argv[3]);
			return FL_EXIT_USAGE;
		}
		request = json_pack("{s:s,s:I}", "command", cmd, "bytes", (json_int_t)bytes);
	} else if (argc == 3 && strcmp(cmd, "wait") && strcmp(cmd, "mem-limit") &&
		   strcmp(cmd, "balloon") && strcmp(cmd, "snapshot")) {
		/* Any other name goes to the VM, whose reply names the commands it knows. */
		request = json_pack("{s:s}", "command", cmd);
	} else {
		pr_err("usage: wrong number of arguments for %s; see 'faultline ctl --help'", cmd);
		return FL_EXIT_USAGE;
	}
	ret = ctl_request(path, request, &reply, false);
	json_decref(request);
	return ret ? ret : ctl_finish(path, reply);
}
