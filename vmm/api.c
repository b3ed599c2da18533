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

#include "mmu/inject.h"
#include "mmu/mmu.h"
#include "vmm/api.h"
#include "vmm/log.h"
#include "vmm/usock.h"

static char *api__refuse(struct api *api, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A refusal: {"ok": false, "error": why}. NULL only without memory. */
static char *api__refuse(struct api *api, const char *fmt, ...)
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
static void api__names(const struct api *api, char *buf, size_t len)
{
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < api->nr_commands && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 api->commands[i].name);
}

char *api__reply(struct api *api, const char *line, size_t len)
{
	const struct api_command *cmd = NULL;
	char why[API_WHY_LEN] = "", names[API_WHY_LEN];
	json_t *request, *reply;
	json_error_t jerr;
	const char *name;
	char *text;
	unsigned i;

	__atomic_add_fetch(&api->requests, 1, __ATOMIC_RELAXED);
	request = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!request)
		return api__refuse(api, "the request is not JSON: %s (at byte %d)", jerr.text,
				   jerr.position);
	name = json_string_value(json_object_get(request, "command"));
	if (!json_is_object(request) || !name) {
		json_decref(request);
		return api__refuse(api,
				   "the request is not a JSON object with a \"command\" string");
	}
	for (i = 0; i < api->nr_commands && !cmd; i++)
		if (!strcmp(api->commands[i].name, name))
			cmd = &api->commands[i];
	if (!cmd) {
		api__names(api, names, sizeof(names));
		text = api__refuse(api, "unknown command: %s (commands: %s)", name, names);
		json_decref(request);
		return text;
	}
	reply = json_pack("{s:b}", "ok", 1);
	if (!reply) {
		json_decref(request);
		return NULL;
	}
	if (cmd->run(api->ctx, request, reply, why))
		text = api__refuse(api, "%s: %s", name, why[0] ? why : "refused");
	else
		text = json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(reply);
	json_decref(request);
	return text;
}

/*
 * Read one request line from @fd within API_REQUEST_MS: up to a newline, or
 * the end of the stream. Returns its length, -EMSGSIZE when longer than
 * API_REQUEST_MAX, -ETIMEDOUT, -ECANCELED when the thread is told to end,
 * or -errno.
 */
static ssize_t api__read_request(struct api *api, int fd, char *buf)
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
		n = read(fd, buf + used, API_REQUEST_MAX + 1 - used);
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
static void api__send(int fd, const char *text)
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

static void api__serve(struct api *api, int fd)
{
	char buf[API_REQUEST_MAX + 1];
	ssize_t len = api__read_request(api, fd, buf);
	char *text;

	if (len == -ECANCELED || len == -ECONNRESET)
		return;
	if (len < 0)
		__atomic_add_fetch(&api->requests, 1, __ATOMIC_RELAXED);
	if (len == -EMSGSIZE)
		text = api__refuse(api, "the request is longer than %d bytes", API_REQUEST_MAX);
	else if (len == -ETIMEDOUT)
		text = api__refuse(api, "no whole request line within %d ms", API_REQUEST_MS);
	else if (len < 0)
		text = api__refuse(api, "cannot read the request: %s", strerror((int)-len));
	else
		text = api__reply(api, buf, (size_t)len);
	if (!text)
		return; /* out of memory: the client sees the connection close */
	api__send(fd, text);
	free(text);
}

static void *api__thread(void *arg)
{
	struct api *api = arg;

	for (;;) {
		struct pollfd fds[2] = {{.fd = api->listen_fd, .events = POLLIN},
					{.fd = api->stop_fd, .events = POLLIN}};
		int fd;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("control socket: poll failed: %s (file: %s)", strerror(errno),
			       api->path);
			return NULL;
		}
		if (fds[1].revents)
			return NULL;
		fd = accept4(api->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue; /* the client left before its turn, or EAGAIN */
		api__serve(api, fd);
		close(fd);
	}
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
	api->stop_fd = -1;
	api->listen_fd = usock__listen(path, "control socket", SOCK_NONBLOCK, 8);
	if (api->listen_fd < 0)
		return api->listen_fd;
	api->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (api->stop_fd < 0) {
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
	ret = ret ?: pthread_create(&api->thread, NULL, api__thread, api);
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
	api__stop(api);
	if (api->listen_fd >= 0) {
		close(api->listen_fd);
		unlink(api->path); /* ours: bound by api__open() */
	}
	if (api->stop_fd >= 0)
		close(api->stop_fd);
	api->listen_fd = api->stop_fd = -1;
}
