/*
 * The seccomp filter (vmm/sys/seccomp.c) in a child process: installed, it
 * lets the calls of its list through (write, a thread's start and end)
 * and stops any other with status 70 and its number on stderr; in log
 * mode every call goes through. Every KVM test runs under it as well.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/status.h"
#include "tests/unit/unit.h"
#include "vmm/sys/seccomp.h"

static void *thread_body(void *arg)
{
	return arg;
}

enum forbidden {
	CALL_GETPPID, /* a call outside the list */
	CALL_TIOCSTI, /* an ioctl outside the list: typing into a terminal */
};

/*
 * Fork; the child installs the filter in @mode (with FAULTLINE_INJECT's
 * rules @inject, or none), starts and joins a thread, makes an allowed ioctl
 * (TCGETS on a pipe: ENOTTY, not stopped), then the forbidden call @what,
 * and exits 0 (99: the install failed). Returns the child's exit status, its
 * stderr in @err.
 */
static int child_calls(enum seccomp_mode mode, const char *inject, enum forbidden what, char *err,
		       size_t len)
{
	struct termios tio;
	char c = 'x';
	int fds[2], status;
	ssize_t n, used = 0;
	pthread_t t;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		if (inject && inject__init(inject))
			_exit(96);
		if (seccomp__install(mode))
			_exit(99);
		if (pthread_create(&t, NULL, thread_body, NULL) || pthread_join(t, NULL))
			_exit(98);
		if (ioctl(fds[1], TCGETS, &tio) == 0 || errno != ENOTTY)
			_exit(97);
		if (what == CALL_GETPPID)
			syscall(SYS_getppid);
		else
			ioctl(fds[1], TIOCSTI, &c);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], err + used, len - 1 - (size_t)used)) > 0)
		used += n;
	err[used] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(stops_a_call_outside_the_list)
{
	char err[512];
	const char *want = "faultline: the seccomp filter stopped a system call that faultline "
			   "does not allow: number 110 (thread ";

	ck_assert_int_eq(child_calls(SECCOMP_ON, NULL, CALL_GETPPID, err, sizeof(err)),
			 FL_EXIT_INTERNAL);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "stderr: %s", err);
	ck_assert_ptr_nonnull(strstr(err, "); this is a bug of faultline: --seccomp log lets it "
					  "through and logs it\n"));
}
END_TEST

START_TEST(stops_an_ioctl_outside_the_list)
{
	char err[512];
	const char *want = "faultline: the seccomp filter stopped a system call that faultline "
			   "does not allow: number 16 (thread ";

	ck_assert_int_eq(child_calls(SECCOMP_ON, NULL, CALL_TIOCSTI, err, sizeof(err)),
			 FL_EXIT_INTERNAL);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "stderr: %s", err);
}
END_TEST

START_TEST(log_and_off_let_it_through)
{
	char err[512];

	ck_assert_int_eq(child_calls(SECCOMP_LOG, NULL, CALL_GETPPID, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(child_calls(SECCOMP_OFF, NULL, CALL_GETPPID, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
}
END_TEST

/*
 * The filter cannot be installed: the kernel refuses it, the SIGSYS handler
 * or libseccomp's context cannot be set up. faultline says which and the
 * install fails, so that no VM runs without the filter it asked for (vm.c
 * stops with 70).
 */
START_TEST(refused_filter_fails_the_install)
{
	static const struct {
		const char *inject, *log;
	} cases[] = {
		{"seccomp.load:EPERM",
		 "faultline: cannot install the seccomp filter: Operation not permitted\n"},
		{"sigaction.seccomp:EINVAL", "faultline: cannot install the seccomp filter: "
					     "sigaction for SIGSYS failed: Invalid "
					     "argument\n"},
		{"seccomp_init:ENOMEM",
		 "faultline: cannot install the seccomp filter: seccomp_init failed\n"},
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(
			child_calls(SECCOMP_ON, cases[i].inject, CALL_GETPPID, err, sizeof(err)),
			99);
		ck_assert_str_eq(err, cases[i].log);
	}
}
END_TEST

Suite *seccomp_suite(void)
{
	Suite *s = suite_create("seccomp");
	TCase *tc = tcase_create("filter");

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	/* The sanitizers' runtimes make calls of their own that no list allows. */
	(void)stops_a_call_outside_the_list;
	(void)stops_an_ioctl_outside_the_list;
	(void)log_and_off_let_it_through;
	(void)refused_filter_fails_the_install;
#else
	tcase_add_test(tc, stops_a_call_outside_the_list);
	tcase_add_test(tc, stops_an_ioctl_outside_the_list);
	tcase_add_test(tc, log_and_off_let_it_through);
	tcase_add_test(tc, refused_filter_fails_the_install);
#endif
	suite_add_tcase(s, tc);
	return s;
}
