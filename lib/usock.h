/*
 * Unix stream sockets by path: the channel's (devices/virtio/virtio_console.c)
 * and the control socket's (vmm/api/api.c) listeners, and their clients.
 */
#ifndef FAULTLINE_USOCK_H
#define FAULTLINE_USOCK_H

/*
 * Listen on @path with a backlog of @backlog. A socket file there that
 * nobody accepts on (left by a faultline that was killed) is replaced; any
 * other file is left alone. @type_flags adds SOCK_NONBLOCK and the like.
 * Returns the listening fd, or -errno after reporting "cannot listen on the
 * @what: ... (file: @path)".
 */
int usock__listen(const char *path, const char *what, int type_flags, int backlog)
	__attribute__((warn_unused_result));

/*
 * Connect to @path. Returns the fd, or -errno after reporting "cannot
 * connect to the @what: ... (file: @path)"; with @what NULL, only a path
 * too long is reported.
 */
int usock__connect(const char *path, const char *what) __attribute__((warn_unused_result));

#endif
