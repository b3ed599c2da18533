/*
 * pty-run CMD [ARG...]: run CMD with its standard input, output and error
 * on a new pseudo-terminal, copy what it writes there to our standard
 * output, and exit with its exit status (128 + N for signal N). The KVM
 * tests run faultline on a terminal with it: the terminal's ioctls (stdio's
 * TCGETS, the console's raw mode and its restoring) must pass the seccomp
 * filter. SIGTERM, SIGINT and SIGHUP are passed on to CMD's session (it
 * has one of its own), so that a time limit stops faultline as it would
 * stop on a terminal. Built static, for the nested harness's L1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void pass_on(int sig)
{
	if (child > 0)
		kill(-child, sig);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = pass_on};
	char buf[4096];
	int master, status;
	const char *name;
	ssize_t n;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: pty-run CMD [ARG...]\n");
		return 64;
	}
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) || unlockpt(master) || !(name = ptsname(master))) {
		perror("pty-run: cannot make a pseudo-terminal");
		return 70;
	}
	pid = fork();
	if (pid < 0) {
		perror("pty-run: fork");
		return 70;
	}
	child = pid;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (pid == 0) {
		int slave;

		setsid();
		slave = open(name, O_RDWR);
		if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 ||
		    dup2(slave, 1) < 0 || dup2(slave, 2) < 0) {
			perror("pty-run: cannot take the terminal");
			_exit(70);
		}
		if (slave > 2)
			close(slave);
		execvp(argv[1], argv + 1);
		perror("pty-run: exec");
		_exit(127);
	}
	/* Until the last holder of the terminal closes it: EIO (Linux) or EOF. */
	while ((n = read(master, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (write(1, buf, (size_t)n) != n)
			break;
	}
	if (waitpid(pid, &status, 0) < 0)
		return 70;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
