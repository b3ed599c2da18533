#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/status.h"
#include "lib/usock.h"
#include "vmm/cmd/channel.h"

static void channel_usage(FILE *out)
{
	fprintf(out, "Usage: faultline channel SOCKET\n"
		     "\n"
		     "Connects to the Unix socket of a VM's channel (faultline run --channel\n"
		     "SOCKET), copies standard input to the guest's port\n"
		     "/dev/virtio-ports/"
		     "faultline.channel"
		     " and what the guest writes there to\n"
		     "standard output, until the VM ends (the socket closes). The end of\n"
		     "standard input does not end it. One program is connected at a time;\n"
		     "others wait until it leaves.\n"
		     "\n"
		     "Exit status: 0 when the socket closed, 64 bad usage, 66 the socket cannot\n"
		     "be connected to, 70 a read or write failed.\n");
}

/* Write all of @len bytes at @p to @fd. Returns 0 or -errno. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int channel__main(int argc, char **argv)
{
	struct pollfd fds[2];
	const char *path;
	char buf[16384];
	int fd, err;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		channel_usage(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		pr_err("usage: faultline channel SOCKET; see 'faultline channel --help'");
		return FL_EXIT_USAGE;
	}
	path = argv[1];
	fd = usock__connect(path, "channel socket");
	if (fd < 0)
		return fd == -ENAMETOOLONG ? FL_EXIT_USAGE : FL_EXIT_NOINPUT;
	fds[0] = (struct pollfd){.fd = fd, .events = POLLIN};
	fds[1] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
	for (;;) {
		ssize_t n;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n == 0) {
				close(fd);
				return 0;
			}
			if (n < 0 && errno != EINTR)
				break;
			if (n > 0 && (err = write_all(STDOUT_FILENO, buf, (size_t)n))) {
				errno = -err;
				break;
			}
		}
		if (fds[1].revents) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				fds[1].fd = -1; /* end of input: keep reading the guest */
			if (n > 0 && (err = write_all(fd, buf, (size_t)n))) {
				errno = -err;
				break;
			}
		}
	}
	pr_err("channel: %s (file: %s)", strerror(errno), path);
	close(fd);
	return FL_EXIT_INTERNAL;
}
