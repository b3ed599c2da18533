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
 *
 * One request keeps its connection: {"command": "events"} is answered with
 * the owner's "status" reply plus "event": "status", and then every event
 * the owner publishes (api__publish()) follows as a line of its own, until
 * the VM ends and the socket closes. A stream that does not take its line
 * at once (a client that stopped reading) is closed, never waited for.
 *
 * A request may carry up to API_FDS_MAX file descriptors (SCM_RIGHTS with
 * its bytes): files the VM writes without opening anything itself (a
 * snapshot's). A command takes them with api__take_fd(); the rest are
 * closed after the reply.
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
#define API_STREAMS	16  /* event streams open at a time */
#define API_QUEUED	256 /* events published and not yet sent */
#define API_FDS_MAX	4   /* file descriptors a request may carry (SCM_RIGHTS) */

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

	/* Event streams: the fds are the thread's; the queue is under events_lock. */
	int streams[API_STREAMS];
	unsigned nr_streams; /* atomic: read by publishers */
	int event_fd;	     /* eventfd: something was queued */
	pthread_mutex_t events_lock;
	char *queued[API_QUEUED];
	unsigned nr_queued;
	uint64_t lost;		  /* under events_lock: the queue was full */
	uint64_t streams_dropped; /* atomic: streams closed for not reading */

	/* The request being served: the descriptors it carried. Thread only. */
	int req_fds[API_FDS_MAX];
	unsigned nr_req_fds;
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
 * Send the event @name, with the fields of @fields (taken over; may be
 * NULL), to every open stream: {"event": @name, ...}. Any thread, with any
 * of the owner's locks held; it never waits on a client. Publish under the
 * lock that guards the state the event reports, so that the events of two
 * changes go out in the order of the changes.
 */
void api__publish(struct api *api, const char *name, json_t *fields);

/*
 * The reply to the request @line (@len bytes, no newline) as a JSON text
 * without a newline, to free(); NULL only without memory. The serving
 * thread's, and the unit tests'. @fd is the connection it came on (-1:
 * none, and "events" is refused): an "events" request makes it a stream.
 */
char *api__reply(struct api *api, const char *line, size_t len, int fd);

/*
 * The request's descriptor @i, now the caller's to close; -1 when it
 * carried fewer. From a command's run(), on the serving thread.
 */
int api__take_fd(struct api *api, unsigned i);

#endif
