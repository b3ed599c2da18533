/*
 * The monitor's seccomp filter: once a VM is loaded, before its first
 * thread that serves the guest starts, every thread of faultline may make
 * only the system calls that running a VM needs (vmm/sys/seccomp.c lists
 * them). The guest is untrusted; a monitor it subverts through a device
 * cannot open files, execute programs, make sockets or processes.
 */
#ifndef FAULTLINE_SECCOMP_H
#define FAULTLINE_SECCOMP_H

enum seccomp_mode {
	SECCOMP_ON,  /* a call outside the list stops faultline (70), naming it */
	SECCOMP_LOG, /* every call goes ahead; the kernel logs those outside the list */
	SECCOMP_OFF,
};

/*
 * What must happen before the first thread that may run under the filter
 * starts: one malloc arena, the time zone and jansson's seed read now, so
 * that no file is opened for them later. seccomp__install() calls it; a
 * restore, which starts the fault handlers early, calls it first.
 */
void seccomp__prepare(void);

/*
 * Let renameat() within directory @dirfd through the filter installed
 * next (--record-ws renames DIR/ws.tmp to DIR/ws); -1: none.
 */
void seccomp__allow_renameat(int dirfd);

/*
 * Install the filter on every thread of the process (TSYNC) and the SIGSYS
 * handler that reports a call it stopped. Returns 0 or -errno (reported).
 */
int seccomp__install(enum seccomp_mode mode) __attribute__((warn_unused_result));

#endif
