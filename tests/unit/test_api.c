/*
 * The control socket's protocol (vmm/api/api.c) without a VM: a table of fake
 * commands, requests as lines and over a real Unix socket, and every way a
 * request is refused: not JSON, no command, an unknown command, a command
 * that refuses, a line too long, a client that sends nothing; the listener
 * (lib/usock.c) with a file in its way. The VM's own
 * commands on real KVM: tests/kvm/run (t_api_*, t_oom_pause_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "tests/unit/unit.h"
#include "vmm/api/api.h"

static char log_buf[1024];
static int echoes;
static char the_ctx[] = "the-ctx";

/* echo: puts its "value" back into the reply. */
static int fake_echo(void *ctx, json_t *request, json_t *reply, char *why)
{
	json_t *v = json_object_get(request, "value");

	(void)why;
	echoes++;
	json_object_set(reply, "value", v ? v : json_null());
	json_object_set_new(reply, "ctx", json_string(ctx));
	return 0;
}

static int fake_refuse(void *ctx, json_t *request, json_t *reply, char *why)
{
	(void)ctx;
	(void)request;
	(void)reply;
	snprintf(why, API_WHY_LEN, "not now");
	return -1;
}

/* block: holds the socket's thread until the test lets it go. */
static pthread_mutex_t block_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cond = PTHREAD_COND_INITIALIZER;
static int blocked; /* 1: the thread is in block; 2: let it go */

static int fake_block(void *ctx, json_t *request, json_t *reply, char *why)
{
	(void)ctx;
	(void)request;
	(void)reply;
	(void)why;
	pthread_mutex_lock(&block_lock);
	blocked = 1;
	pthread_cond_broadcast(&block_cond);
	while (blocked != 2)
		pthread_cond_wait(&block_cond, &block_lock);
	blocked = 0;
	pthread_mutex_unlock(&block_lock);
	return 0;
}

static int fake_status(void *ctx, json_t *request, json_t *reply, char *why)
{
	(void)ctx;
	(void)request;
	(void)why;
	json_object_set_new(reply, "state", json_string("fake"));
	return 0;
}

static struct api api;

/* take: writes "taken" into the request's first descriptor; says how many it had. */
static int fake_take(void *ctx, json_t *request, json_t *reply, char *why)
{
	int fd = api__take_fd(&api, 0), n = fd >= 0, more;

	(void)ctx;
	(void)request;
	(void)why;
	if (fd >= 0) {
		ck_assert_int_eq(write(fd, "taken", 5), 5);
		close(fd);
	}
	while ((more = api__take_fd(&api, (unsigned)n)) >= 0) {
		close(more);
		n++;
	}
	json_object_set_new(reply, "fds", json_integer(n));
	return 0;
}

static const struct api_command fake_commands[] = {
	{"echo", fake_echo},	 {"refuse", fake_refuse}, {"block", fake_block},
	{"status", fake_status}, {"take", fake_take},
};
static char sock_path[64];

static void api_open(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/faultline-api-%d.sock", getpid());
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(api__open(&api, sock_path, fake_commands, 5, the_ctx), 0);
	echoes = 0;
}

/* The reply to @line, checked against @want. */
static void expect_reply(const char *line, const char *want)
{
	char *text = api__reply(&api, line, strlen(line), -1);

	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, want);
	free(text);
}

START_TEST(replies)
{
	api_open();
	expect_reply("{\"command\":\"echo\",\"value\":[1,2]}",
		     "{\"ok\":true,\"value\":[1,2],\"ctx\":\"the-ctx\"}");
	expect_reply("{\"command\":\"refuse\"}", "{\"ok\":false,\"error\":\"refuse: not now\"}");
	expect_reply("{\"command\":\"frob\"}",
		     "{\"ok\":false,\"error\":\"unknown command: frob (commands: echo, refuse, "
		     "block, status, take, events)\"}");
	expect_reply("[\"echo\"]", "{\"ok\":false,\"error\":\"the request is not a JSON object "
				   "with a \\\"command\\\" string\"}");
	expect_reply("{\"command\":7}", "{\"ok\":false,\"error\":\"the request is not a JSON "
					"object with a \\\"command\\\" string\"}");
	expect_reply("status", "{\"ok\":false,\"error\":\"the request is not JSON: '[' or '{' "
			       "expected near 'status' (at byte 6)\"}");
	expect_reply("{\"command\":\"echo\",\"command\":\"echo\"}",
		     "{\"ok\":false,\"error\":\"the request is not JSON: duplicate object key near "
		     "'\\\"command\\\"' (at byte 27)\"}");
	ck_assert_int_eq(echoes, 1);
	ck_assert_uint_eq(api.requests, 7);
	ck_assert_uint_eq(api.refused, 6);
	api__close(&api);
	ck_assert_int_eq(access(sock_path, F_OK), -1); /* the socket file is gone */
	ck_assert_str_eq(log_buf, "");
}
END_TEST

/* Send @req (as is) on a new connection; the reply line, or "" when none came. */
static void exchange(const char *req, bool shut, char *out, size_t len)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t used = 0;
	ssize_t n;
	int fd;

	memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (const struct sockaddr *)&addr, sizeof(addr)), 0);
	if (req[0])
		ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	if (shut)
		shutdown(fd, SHUT_WR);
	while ((n = read(fd, out + used, len - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(fd);
}

START_TEST(over_the_socket)
{
	char reply[8192], *big;

	api_open();
	ck_assert_int_eq(api__start(&api), 0);
	/* A line ends at its newline; what follows it is not read. */
	exchange("{\"command\":\"echo\",\"value\":\"x\"}\n{\"command\":\"refuse\"}\n", false, reply,
		 sizeof(reply));
	ck_assert_str_eq(reply, "{\"ok\":true,\"value\":\"x\",\"ctx\":\"the-ctx\"}\n");
	/* Without a newline, the end of the stream ends the request. */
	exchange("{\"command\":\"echo\"}", true, reply, sizeof(reply));
	ck_assert_str_eq(reply, "{\"ok\":true,\"value\":null,\"ctx\":\"the-ctx\"}\n");
	big = malloc(API_REQUEST_MAX + 100);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', API_REQUEST_MAX + 99);
	big[API_REQUEST_MAX + 99] = '\0';
	exchange(big, true, reply, sizeof(reply));
	free(big);
	ck_assert_str_eq(reply, "{\"ok\":false,\"error\":\"the request is longer than 4096 "
				"bytes\"}\n");
	/* A client that sends nothing is answered after API_REQUEST_MS and let go. */
	exchange("", false, reply, sizeof(reply));
	ck_assert_str_eq(reply, "{\"ok\":false,\"error\":\"no whole request line within 2000 "
				"ms\"}\n");
	exchange("", true, reply, sizeof(reply));
	ck_assert_str_eq(reply, "{\"ok\":false,\"error\":\"the request is not JSON: '[' or '{' "
				"expected near end of file (at byte 0)\"}\n");
	ck_assert_uint_eq(api.requests, 5);
	ck_assert_uint_eq(api.refused, 3);
	api__close(&api);
	ck_assert_int_eq(access(sock_path, F_OK), -1);
	ck_assert_str_eq(log_buf, "");
}
END_TEST

/* Send @req with @n copies of @fd (SCM_RIGHTS); the reply in @out. */
static void exchange_fds(const char *req, int fd, unsigned n, char *out, size_t len)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = (void *)req, .iov_len = strlen(req)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int))};
	struct cmsghdr *c;
	size_t used = 0;
	unsigned i;
	ssize_t got;
	int s;

	memset(&ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	for (i = 0; i < n; i++)
		memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(connect(s, (const struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(sendmsg(s, &msg, MSG_NOSIGNAL), (ssize_t)strlen(req));
	shutdown(s, SHUT_WR);
	while ((got = read(s, out + used, len - 1 - used)) > 0)
		used += (size_t)got;
	out[used] = '\0';
	close(s);
}

/*
 * A request may carry descriptors: the command takes them; more than
 * API_FDS_MAX are refused, every one closed.
 */
START_TEST(descriptors_with_a_request)
{
	char tmpl[] = "/tmp/faultline-api-fd-XXXXXX", reply[512], buf[16] = "";
	int fd = mkstemp(tmpl);

	ck_assert_int_ge(fd, 0);
	unlink(tmpl);
	api_open();
	ck_assert_int_eq(api__start(&api), 0);
	exchange_fds("{\"command\":\"take\"}\n", fd, 2, reply, sizeof(reply));
	ck_assert_str_eq(reply, "{\"ok\":true,\"fds\":2}\n");
	ck_assert_int_eq(pread(fd, buf, sizeof(buf) - 1, 0), 5);
	ck_assert_str_eq(buf, "taken");
	exchange_fds("{\"command\":\"take\"}\n", fd, 5, reply, sizeof(reply));
	ck_assert_str_eq(reply, "{\"ok\":false,\"error\":\"the request carries more than 4 file "
				"descriptors\"}\n");
	exchange_fds("{\"command\":\"echo\"}\n", fd, 1, reply, sizeof(reply));
	ck_assert_str_eq(reply, "{\"ok\":true,\"value\":null,\"ctx\":\"the-ctx\"}\n");
	api__close(&api);
	close(fd);
}
END_TEST

/* Connect and send @req; the fd, for the test to read. */
static int connect_send(const char *req)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (const struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	return fd;
}

/* The next line on @fd (without its newline) within 10 s; "" at the end. */
static void read_line(int fd, char *out, size_t len)
{
	size_t used = 0;

	while (used + 1 < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		ck_assert_int_eq(poll(&p, 1, 10000), 1);
		n = read(fd, out + used, 1);
		ck_assert_int_ge(n, 0);
		if (n == 0 || out[used] == '\n')
			break;
		used++;
	}
	out[used] = '\0';
}

static int open_stream(void)
{
	char line[256];
	int fd = connect_send("{\"command\":\"events\"}\n");

	read_line(fd, line, sizeof(line));
	ck_assert_str_eq(line, "{\"ok\":true,\"event\":\"status\",\"state\":\"fake\"}");
	return fd;
}

static unsigned streams(void)
{
	return __atomic_load_n(&api.nr_streams, __ATOMIC_ACQUIRE);
}

static void publish_n(const char *name, int n)
{
	int i;

	for (i = 0; i < n; i++)
		api__publish(&api, name, json_pack("{s:i}", "n", i));
}

/* Hold the socket's thread in the block command; the connection to release it by. */
static int hold_thread(void)
{
	int c = connect_send("{\"command\":\"block\"}\n");

	pthread_mutex_lock(&block_lock);
	while (blocked != 1)
		pthread_cond_wait(&block_cond, &block_lock);
	pthread_mutex_unlock(&block_lock);
	return c;
}

static void release_thread(int c)
{
	char line[64];

	pthread_mutex_lock(&block_lock);
	blocked = 2;
	pthread_cond_broadcast(&block_cond);
	pthread_mutex_unlock(&block_lock);
	read_line(c, line, sizeof(line));
	ck_assert_str_eq(line, "{\"ok\":true}");
	close(c);
}

/*
 * events: a stream opens with the status, then gets every event in order;
 * without a stream nothing is queued; a stream that closes is let go; the
 * end of the socket ends the streams after the last event.
 */
START_TEST(event_streams)
{
	char line[256];
	int a, b;

	api_open();
	ck_assert_int_eq(api__start(&api), 0);
	publish_n("before", 3); /* nobody listens: nothing is kept */
	ck_assert_uint_eq(api.nr_queued, 0);
	a = open_stream();
	b = open_stream();
	ck_assert_uint_eq(streams(), 2);
	api__publish(&api, "paused", json_pack("{s:s}", "state", "paused"));
	api__publish(&api, "resumed", NULL);
	read_line(a, line, sizeof(line));
	ck_assert_str_eq(line, "{\"event\":\"paused\",\"state\":\"paused\"}");
	read_line(a, line, sizeof(line));
	ck_assert_str_eq(line, "{\"event\":\"resumed\"}");
	read_line(b, line, sizeof(line));
	ck_assert_str_eq(line, "{\"event\":\"paused\",\"state\":\"paused\"}");
	close(b); /* the thread sees it leave */
	while (streams() != 1)
		usleep(1000);
	/* Other requests are served as before while a stream is open. */
	exchange("{\"command\":\"echo\",\"value\":1}\n", false, line, sizeof(line));
	ck_assert_str_eq(line, "{\"ok\":true,\"value\":1,\"ctx\":\"the-ctx\"}\n");
	api__publish(&api, "stopping", json_pack("{s:i}", "status", 76));
	api__close(&api);
	read_line(a, line, sizeof(line));
	ck_assert_str_eq(line, "{\"event\":\"stopping\",\"status\":76}");
	read_line(a, line, sizeof(line));
	ck_assert_str_eq(line, ""); /* the end */
	close(a);
	ck_assert_uint_eq(api.streams_dropped, 0);
	ck_assert_str_eq(log_buf, "");
}
END_TEST

/*
 * A thread held up while more than API_QUEUED events are published: the
 * first API_QUEUED go out, then one "lost" event counts the rest.
 */
START_TEST(event_queue_overflow_is_counted)
{
	char line[256], want[64];
	int a, b, i;

	api_open();
	ck_assert_int_eq(api__start(&api), 0);
	a = open_stream();
	b = hold_thread();
	publish_n("e", API_QUEUED + 5);
	ck_assert_uint_eq(api.nr_queued, API_QUEUED);
	ck_assert_uint_eq(api.lost, 5);
	release_thread(b);
	for (i = 0; i < API_QUEUED; i++) {
		snprintf(want, sizeof(want), "{\"event\":\"e\",\"n\":%d}", i);
		read_line(a, line, sizeof(line));
		ck_assert_str_eq(line, want);
	}
	read_line(a, line, sizeof(line));
	ck_assert_str_eq(line, "{\"event\":\"lost\",\"count\":5}");
	close(a);
	api__close(&api);
}
END_TEST

/*
 * A client that stops reading is closed once its socket is full, never
 * waited for; a stream too many, and events off a socket, are refused.
 */
START_TEST(event_streams_refused_and_dropped)
{
	int fds[API_STREAMS], i, slow;
	char line[256], *big;
	json_t *fields;

	api_open();
	ck_assert_int_eq(api__start(&api), 0);
	expect_reply("{\"command\":\"events\"}",
		     "{\"ok\":false,\"error\":\"events: a stream needs a connection of its own\"}");
	slow = open_stream();
	for (i = 1; i < API_STREAMS; i++)
		fds[i] = open_stream();
	exchange("{\"command\":\"events\"}\n", false, line, sizeof(line));
	ck_assert_str_eq(line,
			 "{\"ok\":false,\"error\":\"events: 16 streams are open already\"}\n");
	for (i = 1; i < API_STREAMS; i++)
		close(fds[i]);
	while (streams() != 1)
		usleep(1000);
	big = malloc(3000);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 2999);
	big[2999] = '\0';
	/* 3000-byte events until the slow client's socket is full (a few MB at most) */
	for (i = 0; i < 10000 && !__atomic_load_n(&api.streams_dropped, __ATOMIC_RELAXED); i++) {
		fields = json_pack("{s:s}", "pad", big);
		api__publish(&api, "big", fields);
		if (i % 32 == 31)
			usleep(1000); /* let the thread send */
	}
	free(big);
	for (i = 0; i < 5000 && streams(); i++)
		usleep(1000);
	ck_assert_uint_eq(streams(), 0);
	ck_assert_uint_eq(api.streams_dropped, 1);
	close(slow);
	api__close(&api);
	ck_assert_str_eq(log_buf, "");
}
END_TEST

/*
 * Streams the flush drops (one left, one not reading) while poll() also saw
 * them stir: the thread must not look at them again by their old places.
 */
START_TEST(event_streams_dropped_while_polled)
{
	char line[256], *big;
	int a, b, c, i;

	api_open();
	ck_assert_int_eq(api__start(&api), 0);
	a = open_stream();
	b = open_stream();
	ck_assert_int_eq(send(a, "x", 1, MSG_NOSIGNAL), 1); /* ignored, but a's fd is readable */
	c = hold_thread();
	close(b);
	big = malloc(3000);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 2999);
	big[2999] = '\0';
	for (i = 0; i < API_QUEUED; i++)
		api__publish(&api, "big", json_pack("{s:s}", "pad", big));
	free(big);
	release_thread(c);
	for (i = 0; i < 5000 && streams(); i++)
		usleep(1000);
	ck_assert_uint_eq(streams(), 0);
	ck_assert_uint_eq(api.streams_dropped, 2);
	exchange("{\"command\":\"echo\",\"value\":2}\n", false, line, sizeof(line));
	ck_assert_str_eq(line, "{\"ok\":true,\"value\":2,\"ctx\":\"the-ctx\"}\n");
	close(a);
	api__close(&api);
	ck_assert_str_eq(log_buf, "");
}
END_TEST

START_TEST(socket_errors)
{
	char path[200];
	FILE *f;
	int i;

	snprintf(sock_path, sizeof(sock_path), "/tmp/faultline-api-%d.file", getpid());
	f = fopen(sock_path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(api__open(&api, sock_path, fake_commands, 2, NULL), -EADDRINUSE);
	snprintf(path, sizeof(path),
		 "faultline: cannot listen on the control socket: the file exists and is not a "
		 "socket left without a listener (file: %s)\n",
		 sock_path);
	ck_assert_log(log_buf, path);
	ck_assert_int_eq(access(sock_path, F_OK), 0); /* not ours: left alone */
	unlink(sock_path);
	api__close(&api);

	/* A thread that cannot start is reported, and the socket still closes. */
	api_open();
	ck_assert_int_eq(inject__init("pthread_create.api:EAGAIN"), 0);
	ck_assert_int_eq(api__start(&api), -EAGAIN);
	ck_assert_int_eq(inject__init(NULL), 0);
	snprintf(path, sizeof(path),
		 "faultline: cannot start the control socket's thread: Resource temporarily "
		 "unavailable (file: %s)\n",
		 sock_path);
	ck_assert_log(log_buf, path);
	api__close(&api);
	ck_assert_int_eq(access(sock_path, F_OK), -1);

	/* Its eventfds (the stop's, then the events'): the socket is closed and removed. */
	for (i = 0; i < 2; i++) {
		snprintf(sock_path, sizeof(sock_path), "/tmp/faultline-api-%d.sock", getpid());
		ck_assert_int_eq(inject__init(i ? "eventfd.api:EMFILE:1" : "eventfd.api:ENFILE"),
				 0);
		log__capture(log_buf, sizeof(log_buf));
		ck_assert_int_eq(api__open(&api, sock_path, fake_commands, 4, NULL),
				 i ? -EMFILE : -ENFILE);
		ck_assert_int_eq(inject__init(NULL), 0);
		snprintf(path, sizeof(path),
			 "faultline: cannot set up the control socket: eventfd failed: %s (file: "
			 "%s)\n",
			 strerror(i ? EMFILE : ENFILE), sock_path);
		ck_assert_log(log_buf, path);
		ck_assert_int_eq(access(sock_path, F_OK), -1);
	}
	log__capture(NULL, 0);
}
END_TEST

Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("protocol");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, replies);
	tcase_add_test(tc, descriptors_with_a_request);
	tcase_add_test(tc, over_the_socket);
	tcase_add_test(tc, socket_errors);
	tcase_add_test(tc, event_streams);
	tcase_add_test(tc, event_queue_overflow_is_counted);
	tcase_add_test(tc, event_streams_refused_and_dropped);
	tcase_add_test(tc, event_streams_dropped_while_polled);
	suite_add_tcase(s, tc);
	return s;
}
