#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "lib/usock.h"
#include "mmu/mmu.h"
#include "vmm/api/api.h"

static char *api_refuse(struct api *api, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A refusal: {"ok": false, "error": why}. NULL only without memory. */
static char *api_refuse(struct api *api, const char *fmt, ...)
{
	char why[API_WHY_LEN];
	json_t *reply;
	va_list ap;
	char *text;

	__atomic_add_fetch(&api->refused, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	reply = json_pack("{s:b,s:s}", "ok", 0, "error", why);
	text = reply ? json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(reply);
	return text;
}

/* "status, pause, ...": the command names, for the unknown-command reply. */
static void api_names(const struct api *api, char *buf, size_t len)
{
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < api->nr_commands && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 api->commands[i].name);
}

static const struct api_command *api_find(const struct api *api, const char *name)
{
	unsigned i;

	for (i = 0; i < api->nr_commands; i++)
		if (!strcmp(api->commands[i].name, name))
			return &api->commands[i];
	return NULL;
}

/*
 * Run @cmd (NULL: nothing to run) on @request into a reply that starts with
 * "ok" and then @first's fields. Returns its text; NULL only without memory.
 */
static char *api_run(struct api *api, const struct api_command *cmd, const char *name,
		     json_t *request, json_t *first)
{
	char why[API_WHY_LEN] = "";
	json_t *reply = json_pack("{s:b}", "ok", 1);
	char *text;

	if (!reply || (first && json_object_update(reply, first))) {
		json_decref(reply);
		return NULL;
	}
	if (cmd && cmd->run(api->ctx, request, reply, why))
		text = api_refuse(api, "%s: %s", name, why[0] ? why : "refused");
	else
		text = json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(reply);
	return text;
}

/* Close stream @i (the last one takes its place). Thread only. */
static void api_drop_stream(struct api *api, unsigned i)
{
	unsigned n = api->nr_streams - 1;

	close(api->streams[i]);
	api->streams[i] = api->streams[n];
	__atomic_store_n(&api->nr_streams, n, __ATOMIC_RELEASE);
}

/* Send @line and its newline to every stream, closing those that cannot take it now. */
static void api_broadcast(struct api *api, const char *line)
{
	size_t len = strlen(line);
	unsigned i = 0;
	char *buf = malloc(len + 1);

	if (!buf)
		return;
	memcpy(buf, line, len);
	buf[len] = '\n';
	while (i < api->nr_streams) {
		ssize_t n = send(api->streams[i], buf, len + 1, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n == (ssize_t)len + 1) {
			i++;
			continue;
		}
		/* Full, or gone: a part of a line would break the stream anyway. */
		__atomic_add_fetch(&api->streams_dropped, 1, __ATOMIC_RELAXED);
		api_drop_stream(api, i);
	}
	free(buf);
}

/* Send what was published, in order, and a "lost" event where the queue was full. */
static void api_flush(struct api *api)
{
	char *queued[API_QUEUED], lost[64];
	unsigned n, i;
	uint64_t nlost;

	pthread_mutex_lock(&api->events_lock);
	n = api->nr_queued;
	memcpy(queued, api->queued, n * sizeof(queued[0]));
	api->nr_queued = 0;
	nlost = api->lost;
	api->lost = 0;
	pthread_mutex_unlock(&api->events_lock);
	for (i = 0; i < n; i++) {
		api_broadcast(api, queued[i]);
		free(queued[i]);
	}
	if (nlost) {
		snprintf(lost, sizeof(lost), "{\"event\":\"lost\",\"count\":%llu}",
			 (unsigned long long)nlost);
		api_broadcast(api, lost);
	}
}

void api__publish(struct api *api, const char *name, json_t *fields)
{
	uint64_t one = 1;
	json_t *o;
	char *text;

	if (!__atomic_load_n(&api->nr_streams, __ATOMIC_ACQUIRE)) {
		json_decref(fields); /* nobody listens; a new stream starts from a status */
		return;
	}
	o = json_pack("{s:s}", "event", name);
	if (o && fields && json_object_update(o, fields)) {
		json_decref(o);
		o = NULL;
	}
	json_decref(fields);
	text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	pthread_mutex_lock(&api->events_lock);
	if (text && api->nr_queued < API_QUEUED) {
		api->queued[api->nr_queued++] = text;
		text = NULL;
	} else {
		api->lost++;
	}
	pthread_mutex_unlock(&api->events_lock);
	free(text);
	if (write(api->event_fd, &one, sizeof(one)) < 0) {
		/* cannot fail: the counter is far from overflowing */
	}
}

/*
 * {"command": "events"} on connection @fd: it becomes a stream before the
 * status that opens it is taken, so that every change after that status
 * reaches it as an event. Events queued before it go to the others only.
 */
static char *api_open_stream(struct api *api, json_t *request, int fd)
{
	json_t *first;
	char *text;

	if (fd < 0)
		return api_refuse(api, "events: a stream needs a connection of its own");
	if (api->nr_streams == API_STREAMS)
		return api_refuse(api, "events: %d streams are open already", API_STREAMS);
	api_flush(api);
	api->streams[api->nr_streams] = fd;
	__atomic_store_n(&api->nr_streams, api->nr_streams + 1, __ATOMIC_RELEASE);
	first = json_pack("{s:s}", "event", "status");
	text = first ? api_run(api, api_find(api, "status"), "events", request, first) : NULL;
	json_decref(first);
	if (!text || strncmp(text, "{\"ok\":true", 10))
		__atomic_store_n(&api->nr_streams, api->nr_streams - 1, __ATOMIC_RELEASE);
	return text;
}

char *api__reply(struct api *api, const char *line, size_t len, int fd)
{
	const struct api_command *cmd;
	char names[API_WHY_LEN];
	json_t *request;
	json_error_t jerr;
	const char *name;
	char *text;

	__atomic_add_fetch(&api->requests, 1, __ATOMIC_RELAXED);
	request = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!request)
		return api_refuse(api, "the request is not JSON: %s (at byte %d)", jerr.text,
				  jerr.position);
	name = json_string_value(json_object_get(request, "command"));
	if (!json_is_object(request) || !name) {
		json_decref(request);
		return api_refuse(api,
				  "the request is not a JSON object with a \"command\" string");
	}
	if (!strcmp(name, "events")) {
		text = api_open_stream(api, request, fd);
		json_decref(request);
		return text;
	}
	cmd = api_find(api, name);
	if (!cmd) {
		api_names(api, names, sizeof(names));
		text = api_refuse(api, "unknown command: %s (commands: %s, events)", name, names);
	} else {
		text = api_run(api, cmd, name, request, NULL);
	}
	json_decref(request);
	return text;
}

/* Close the descriptors the last request carried and nobody took. */
static void api_close_fds(struct api *api)
{
	while (api->nr_req_fds)
		if (api->req_fds[--api->nr_req_fds] >= 0)
			close(api->req_fds[api->nr_req_fds]);
}

int api__take_fd(struct api *api, unsigned i)
{
	int fd;

	if (i >= api->nr_req_fds)
		return -1;
	fd = api->req_fds[i];
	api->req_fds[i] = -1;
	return fd;
}

/*
 * recv() that keeps the descriptors the bytes carry, up to API_FDS_MAX;
 * more, or a control message cut short, is refused (E2BIG, every one
 * closed).
 */
static ssize_t api_recv(struct api *api, int fd, char *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(API_FDS_MAX * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c;
	ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	bool bad = false;

	if (n < 0)
		return n;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t i, nr;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nr = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nr; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (api->nr_req_fds < API_FDS_MAX)
				api->req_fds[api->nr_req_fds++] = got;
			else {
				close(got);
				bad = true;
			}
		}
	}
	if (bad || (msg.msg_flags & MSG_CTRUNC)) {
		api_close_fds(api);
		errno = E2BIG;
		return -1;
	}
	return n;
}

/*
 * Read one request line from @fd within API_REQUEST_MS: up to a newline, or
 * the end of the stream. Returns its length, -EMSGSIZE when longer than
 * API_REQUEST_MAX, -ETIMEDOUT, -ECANCELED when the thread is told to end,
 * or -errno.
 */
static ssize_t api_read_request(struct api *api, int fd, char *buf)
{
	uint64_t deadline = mmu__now_ns() + API_REQUEST_MS * 1000000ULL, now;
	size_t used = 0;

	for (;;) {
		struct pollfd fds[2] = {{.fd = fd, .events = POLLIN},
					{.fd = api->stop_fd, .events = POLLIN}};
		char *nl;
		ssize_t n;

		now = mmu__now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(fds, 2, (int)((deadline - now) / 1000000ULL) + 1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (fds[1].revents)
			return -ECANCELED;
		if (!fds[0].revents)
			continue;
		n = api_recv(api, fd, buf + used, API_REQUEST_MAX + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		nl = memchr(buf + used, '\n', (size_t)n);
		used += (size_t)n;
		if (nl)
			used = (size_t)(nl - buf);
		if (used > API_REQUEST_MAX)
			return -EMSGSIZE;
		if (nl || n == 0)
			return (ssize_t)used;
	}
}

/* Write the reply and a newline; a client that does not read loses it. */
static void api_send(int fd, const char *text)
{
	struct timeval tv = {.tv_sec = API_REQUEST_MS / 1000};
	size_t len = strlen(text), done = 0;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (done <= len) {
		const char *p = done < len ? text + done : "\n";
		ssize_t n = send(fd, p, done < len ? len - done : 1, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

/* Is @fd one of the streams? Thread only. */
static bool api_is_stream(const struct api *api, int fd)
{
	unsigned i;

	for (i = 0; i < api->nr_streams; i++)
		if (api->streams[i] == fd)
			return true;
	return false;
}

static void api_serve(struct api *api, int fd)
{
	char buf[API_REQUEST_MAX + 1];
	ssize_t len = api_read_request(api, fd, buf);
	char *text;

	if (len == -ECANCELED || len == -ECONNRESET) {
		close(fd);
		return;
	}
	if (len < 0)
		__atomic_add_fetch(&api->requests, 1, __ATOMIC_RELAXED);
	if (len == -EMSGSIZE)
		text = api_refuse(api, "the request is longer than %d bytes", API_REQUEST_MAX);
	else if (len == -ETIMEDOUT)
		text = api_refuse(api, "no whole request line within %d ms", API_REQUEST_MS);
	else if (len == -E2BIG)
		text = api_refuse(api, "the request carries more than %d file descriptors",
				  API_FDS_MAX);
	else if (len < 0)
		text = api_refuse(api, "cannot read the request: %s", strerror((int)-len));
	else
		text = api__reply(api, buf, (size_t)len, fd);
	api_close_fds(api);
	if (text)
		api_send(fd, text); /* out of memory: the client sees the connection close */
	free(text);
	if (!api_is_stream(api, fd))
		close(fd);
}

/* A stream's client sent something or left: what it sends means nothing. */
static void api_stream_input(struct api *api, unsigned i)
{
	char buf[256];
	ssize_t n = recv(api->streams[i], buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		api_drop_stream(api, i);
}

static void *api_thread(void *arg)
{
	struct api *api = arg;

	for (;;) {
		struct pollfd fds[3 + API_STREAMS] = {
			{.fd = api->listen_fd, .events = POLLIN},
			{.fd = api->stop_fd, .events = POLLIN},
			{.fd = api->event_fd, .events = POLLIN},
		};
		unsigned i, n = api->nr_streams;
		uint64_t count;
		int fd;

		for (i = 0; i < n; i++)
			fds[3 + i] = (struct pollfd){.fd = api->streams[i], .events = POLLIN};
		if (poll(fds, 3 + n, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("control socket: poll failed: %s (file: %s)", strerror(errno),
			       api->path);
			break;
		}
		if (fds[2].revents && read(api->event_fd, &count, sizeof(count)) > 0)
			api_flush(api);
		if (fds[1].revents)
			break;
		/*
		 * From the last: dropping one moves the last stream into its place.
		 * The flush above may have dropped some already: only a stream
		 * still where poll() saw it is looked at.
		 */
		for (i = n; i-- > 0;)
			if (fds[3 + i].revents && i < api->nr_streams &&
			    api->streams[i] == fds[3 + i].fd)
				api_stream_input(api, i);
		if (!fds[0].revents)
			continue;
		fd = accept4(api->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			api_serve(api, fd);
		/* else the client left before its turn, or EAGAIN */
	}
	/* The owner published its last event (its stop) before it ended us. */
	api_flush(api);
	while (api->nr_streams)
		api_drop_stream(api, api->nr_streams - 1);
	return NULL;
}

int api__open(struct api *api, const char *path, const struct api_command *commands,
	      unsigned nr_commands, void *ctx)
{
	int err;

	memset(api, 0, sizeof(*api));
	api->path = path;
	api->commands = commands;
	api->nr_commands = nr_commands;
	api->ctx = ctx;
	api->stop_fd = api->event_fd = -1;
	pthread_mutex_init(&api->events_lock, NULL);
	api->listen_fd = usock__listen(path, "control socket", SOCK_NONBLOCK, 8);
	if (api->listen_fd < 0) {
		pthread_mutex_destroy(&api->events_lock);
		return api->listen_fd;
	}
	api->stop_fd = inject__fail("eventfd.api") ?: eventfd(0, EFD_CLOEXEC);
	api->event_fd = api->stop_fd < 0
				? -1
				: inject__fail("eventfd.api") ?: eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (api->stop_fd < 0 || api->event_fd < 0) {
		err = errno;
		pr_err("cannot set up the control socket: eventfd failed: %s (file: %s)",
		       strerror(err), path);
		api__close(api);
		return -err;
	}
	return 0;
}

int api__start(struct api *api)
{
	sigset_t all, old;
	int ret = inject__check("pthread_create.api");

	/* Signals are the vCPU threads' and vm__run()'s, never this thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = ret ?: pthread_create(&api->thread, NULL, api_thread, api);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		pr_err("cannot start the control socket's thread: %s (file: %s)", strerror(ret),
		       api->path);
		return -ret;
	}
	api->started = true;
	return 0;
}

void api__stop(struct api *api)
{
	uint64_t one = 1;

	if (!api->started)
		return;
	if (write(api->stop_fd, &one, sizeof(one)) < 0) {
		/* cannot fail: the counter is far from overflowing */
	}
	pthread_join(api->thread, NULL);
	api->started = false;
}

void api__close(struct api *api)
{
	unsigned i;

	api__stop(api);
	if (api->listen_fd >= 0) {
		close(api->listen_fd);
		unlink(api->path); /* ours: bound by api__open() */
		for (i = 0; i < api->nr_queued; i++)
			free(api->queued[i]);
		api->nr_queued = 0;
		pthread_mutex_destroy(&api->events_lock);
	}
	if (api->stop_fd >= 0)
		close(api->stop_fd);
	if (api->event_fd >= 0)
		close(api->event_fd);
	api->listen_fd = api->stop_fd = api->event_fd = -1;
}
