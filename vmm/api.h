/*
 * The control socket (`faultline run --api SOCKET`): a Unix stream socket
 * on which a running VM takes requests, one per connection. A request is
 * one line holding a JSON object, {"command": NAME, ...arguments}; the
 * reply is one line holding a JSON object, {"ok": true, ...} or
 * {"ok": false, "error": "why"}, and the connection closes. The commands
 * are the owner's table (vm_api.c); `faultline ctl` is the client (ctl.c).
 *
 * One thread serves the socket, one connection at a time: a request must
 * arrive whole within API_REQUEST_MS, and no command waits on the guest.
 */
#ifndef FAULTLINE_API_H
#define FAULTLINE_API_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_REQUEST_MAX 4096 /* bytes in a request line */
#define API_REQUEST_MS	2000 /* for a request to arrive, and for its reply to leave */
#define API_WHY_LEN	256

struct api_command {
	const char *name;
	/*
	 * Carry out @request (the whole JSON object). Returns 0 after adding
	 * what it has to say to @reply, or -1 after writing why it refused into
	 * @why (API_WHY_LEN bytes).
	 */
	int (*run)(void *ctx, json_t *request, json_t *reply, char *why);
};

struct api {
	const char *path;
	const struct api_command *commands;
	unsigned nr_commands;
	void *ctx;
	int listen_fd;
	int stop_fd; /* eventfd: the thread ends */
	pthread_t thread;
	bool started;
	uint64_t requests; /* atomic: requests answered */
	uint64_t refused;  /* atomic: of them, answered with "ok": false */
};

/*
 * Listen on @path for @commands (the table lives as long as @api). Returns
 * 0 or -errno after reporting what failed, naming the file. Undo with
 * api__close(), which also removes the socket file.
 */
int api__open(struct api *api, const char *path, const struct api_command *commands,
	      unsigned nr_commands, void *ctx) __attribute__((warn_unused_result));

/* Start the thread that serves the socket. Returns 0 or -errno (reported). */
int api__start(struct api *api) __attribute__((warn_unused_result));

/* End and join the thread; the socket file stays until api__close(). */
void api__stop(struct api *api);
void api__close(struct api *api);

/*
 * The reply to the request @line (@len bytes, no newline) as a JSON text
 * without a newline, to free(); NULL only without memory. The serving
 * thread's, and the unit tests'.
 */
char *api__reply(struct api *api, const char *line, size_t len);

#endif
