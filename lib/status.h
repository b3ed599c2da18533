/*
 * Exit statuses of faultline. 0-63 are the guest's own status, passed
 * through unchanged when it exits through the exit device; the monitor's
 * own outcomes use the values below (128+N means killed by signal N).
 * One table feeds the code, `faultline --help` and docs/cli.md.
 */
#ifndef FAULTLINE_STATUS_H
#define FAULTLINE_STATUS_H

#define FL_GUEST_STATUS_MAX 63

#define FL_EXIT_STATUSES(X)                                                                        \
	X(FL_EXIT_USAGE, 64, "bad command line or option value")                                   \
	X(FL_EXIT_IMAGE, 65, "the kernel image is not a valid guest")                              \
	X(FL_EXIT_NOINPUT, 66,                                                                     \
	  "a file named on the command line cannot be read, or the one --record-ws writes "        \
	  "cannot be created")                                                                     \
	X(FL_EXIT_NOKVM, 69,                                                                       \
	  "no usable KVM: /dev/kvm missing, inaccessible or lacking a capability")                 \
	X(FL_EXIT_INTERNAL, 70, "a host call failed (ioctl, mmap, thread, userfaultfd)")           \
	X(FL_EXIT_CRASH, 72,                                                                       \
	  "the guest crashed: triple fault, failed VM entry, KVM internal error, kernel panic "    \
	  "(pvpanic)")                                                                             \
	X(FL_EXIT_GUEST, 73,                                                                       \
	  "the guest misbehaved: a device rejected an access, unhandled exit, bad exit status, "   \
	  "all vCPUs halted")                                                                      \
	X(FL_EXIT_FAULT, 74,                                                                       \
	  "a guest page fault could not be served: backing file error, install or "                \
	  "copy-on-write failure, retries exhausted, a device memory error the guest cannot be "   \
	  "told of")                                                                               \
	X(FL_EXIT_OOM, 75, "the guest ran out of memory and was not told by a machine check")      \
	X(FL_EXIT_STOPPED, 76, "stopped through the control socket (faultline ctl SOCKET stop)")   \
	X(FL_EXIT_BOOT, 77, "the Linux guest's init did not start within --boot-timeout")          \
	X(FL_EXIT_SNAPSHOT, 78,                                                                    \
	  "the snapshot of --restore is corrupt, of another version, or for another host")

enum fl_exit_status {
#define FL_EXIT_ENUM(name, value, text) name = value,
	FL_EXIT_STATUSES(FL_EXIT_ENUM)
#undef FL_EXIT_ENUM
};

#endif
