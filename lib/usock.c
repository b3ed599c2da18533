#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/usock.h"

/* Fill @addr with @path; -ENAMETOOLONG (reported) when it does not fit. */
static int usock_addr(struct sockaddr_un *addr, const char *path, const char *verb,
		      const char *what)
{
	size_t len = strlen(path);

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (len >= sizeof(addr->sun_path)) {
		pr_err("cannot %s the %s: the path is longer than %zu bytes (file: %s)", verb, what,
		       sizeof(addr->sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	memcpy(addr->sun_path, path, len + 1);
	return 0;
}

/*
 * The socket file at @addr is one nobody accepts on: remove it. Returns 0,
 * or -1 with errno EADDRINUSE.
 */
static int usock_remove_stale(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret, err;

	if (lstat(addr->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		goto in_use;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto in_use;
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	err = errno;
	close(fd);
	if (ret < 0 && err == ECONNREFUSED && unlink(addr->sun_path) == 0)
		return 0;
in_use:
	errno = EADDRINUSE;
	return -1;
}

int usock__listen(const char *path, const char *what, int type_flags, int backlog)
{
	struct sockaddr_un addr;
	int fd, err;

	err = usock_addr(&addr, path, "listen on", what);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0 &&
	    (errno != EADDRINUSE || usock_remove_stale(&addr) < 0 ||
	     bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0))
		goto fail;
	if (listen(fd, backlog) < 0) {
		err = errno;
		unlink(path); /* ours: just bound */
		errno = err;
		goto fail;
	}
	return fd;
fail:
	err = errno;
	pr_err("cannot listen on the %s: %s (file: %s)", what,
	       err == EADDRINUSE ? "the file exists and is not a socket left without a listener"
				 : strerror(err),
	       path);
	if (fd >= 0)
		close(fd);
	return -err;
}

int usock__connect(const char *path, const char *what)
{
	struct sockaddr_un addr;
	int fd, err;

	err = usock_addr(&addr, path, "connect to", what ? what : "socket");
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0)
		return fd;
	err = errno;
	if (what)
		pr_err("cannot connect to the %s: %s (file: %s)", what, strerror(err), path);
	if (fd >= 0)
		close(fd);
	return -err;
}
