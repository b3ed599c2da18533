#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "lib/status.h"
#include "mmu/uffd_compat.h"
#include "vmm/sys/seccomp.h"

/*
 * What a running VM calls, by thread: vCPUs (KVM_RUN and the other vCPU
 * ioctls, device emulation: pread/pwrite/fdatasync for disks, memory-slot
 * ioctls for BARs), fault handlers (userfaultfd ioctls, pread of a backing
 * file, mmap/mremap/fallocate for dedup and reclaim, /proc/self/maps through
 * an fd opened before; sched_setaffinity: dedup's scanner keeps itself and
 * its reader on one CPU for a batch), the serial input, channel and
 * control-socket threads (poll, read, write, accept4, send, setsockopt,
 * shutdown; recvmsg for the descriptors a snapshot request carries, which
 * it writes and ftruncates), the main thread (signalfd, joins, the stats, unlinking its own
 * sockets at the end), glibc underneath (futex, malloc's mmap/brk, thread
 * start and exit, clock_gettime and getcpu where the vDSO is not used).
 */
static const int allowed[] = {
	SCMP_SYS(read),
	SCMP_SYS(write),
	SCMP_SYS(pread64),
	SCMP_SYS(pwrite64),
	SCMP_SYS(readv),
	SCMP_SYS(writev),
	SCMP_SYS(close),
	SCMP_SYS(poll),
	SCMP_SYS(ppoll),
	SCMP_SYS(lseek),
	SCMP_SYS(fsync),
	SCMP_SYS(fdatasync),
	SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(mmap),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	SCMP_SYS(mprotect),
	SCMP_SYS(madvise),
	SCMP_SYS(brk),
	SCMP_SYS(mincore),
	SCMP_SYS(fallocate),
	SCMP_SYS(futex),
	SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(sched_setaffinity),
	SCMP_SYS(getcpu),
	SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
	SCMP_SYS(clock_gettime),
	SCMP_SYS(gettimeofday),
	SCMP_SYS(time),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(sigaltstack),
	SCMP_SYS(tgkill),
	SCMP_SYS(gettid),
	SCMP_SYS(getpid),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
	SCMP_SYS(set_robust_list),
	SCMP_SYS(rseq),
	SCMP_SYS(accept4),
	SCMP_SYS(setsockopt),
	SCMP_SYS(sendto),
	SCMP_SYS(recvfrom),
	SCMP_SYS(recvmsg),
	SCMP_SYS(ftruncate),
	SCMP_SYS(shutdown),
	SCMP_SYS(unlink),
	SCMP_SYS(getrandom),
	SCMP_SYS(restart_syscall),
};

/*
 * The ioctls a running VM makes, the only ones allowed: KVM's for the vCPU
 * loop, its messages (RIP), machine checks, BAR memory slots and interrupt
 * lines, the guest clock stopped while paused; userfaultfd's for the fault
 * engine and dedup; the terminal's for
 * stdio's first write to a terminal (TCGETS) and restoring it at the end.
 * Not TIOCSTI: a subverted monitor cannot type into the user's terminal.
 */
static const unsigned long allowed_ioctls[] = {
	KVM_RUN,
	KVM_GET_REGS,
	KVM_GET_SREGS,
	KVM_X86_SET_MCE,
	KVM_SET_USER_MEMORY_REGION,
	KVM_IRQ_LINE,
	KVM_GET_CLOCK,
	KVM_SET_CLOCK,
	/* A snapshot (vm_snapshot.c) reads every vCPU's state and the VM's chips. */
	KVM_GET_XSAVE,
	KVM_GET_XSAVE2,
	KVM_GET_XCRS,
	KVM_GET_DEBUGREGS,
	KVM_GET_VCPU_EVENTS,
	KVM_GET_LAPIC,
	KVM_GET_MP_STATE,
	KVM_GET_MSRS,
	KVM_GET_IRQCHIP,
	KVM_GET_PIT2,
	UFFDIO_COPY,
	UFFDIO_ZEROPAGE,
	UFFDIO_CONTINUE, /* a shared memory file (clones) */
	UFFDIO_WAKE,
	UFFDIO_WRITEPROTECT,
	UFFDIO_POISON,
	UFFDIO_REGISTER,
	TCGETS,
	TCSETS,
};

/* Decimal @v into @buf (at least 12 bytes), for the signal handler. */
static size_t seccomp_itoa(char *buf, long v)
{
	char tmp[24];
	size_t n = 0, i = 0;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;

	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < sizeof(tmp));
	if (v < 0)
		buf[i++] = '-';
	while (n)
		buf[i++] = tmp[--n];
	return i;
}

/*
 * A call outside the list: a bug of faultline's, or a subverted monitor.
 * Say which, with async-signal-safe calls only, and end with status 70.
 */
static void seccomp_sigsys(int sig, siginfo_t *si, void *uc)
{
	static const char a[] = "faultline: the seccomp filter stopped a system call that "
				"faultline does not allow: number ";
	static const char b[] = " (thread ";
	static const char c[] = "); this is a bug of faultline: --seccomp log lets it through "
				"and logs it\n";
	char num[24];
	ssize_t r;

	(void)sig;
	(void)uc;
	r = write(STDERR_FILENO, a, sizeof(a) - 1);
	r = write(STDERR_FILENO, num, seccomp_itoa(num, si->si_syscall));
	r = write(STDERR_FILENO, b, sizeof(b) - 1);
	r = write(STDERR_FILENO, num, seccomp_itoa(num, (long)gettid()));
	r = write(STDERR_FILENO, c, sizeof(c) - 1);
	(void)r;
	_exit(FL_EXIT_INTERNAL);
}

void seccomp__prepare(void)
{
	/*
	 * glibc's malloc opens files in threads' own arenas: it counts the CPUs
	 * (/sys/devices/system/cpu/online) for a thread's first arena, and reads
	 * /proc/sys/vm/overcommit_memory the first time such an arena shrinks
	 * (a thread that ends frees its data there). One arena, the main one,
	 * does neither; no thread of a running VM allocates on a fast path.
	 */
	mallopt(M_ARENA_MAX, 1);
	/* Likewise the time zone, read (/etc/localtime) on first use, gmtime_r() too (the CMOS). */
	tzset();
	/* And jansson's hash seed, read from /dev/urandom with the first object (--stats, --api).
	 */
	json_object_seed(0);
}

static int rename_dirfd = -1;

void seccomp__allow_renameat(int dirfd)
{
	rename_dirfd = dirfd;
}

int seccomp__install(enum seccomp_mode mode)
{
	struct sigaction sa;
	scmp_filter_ctx ctx;
	unsigned i;
	int ret;

	if (mode == SECCOMP_OFF)
		return 0;
	seccomp__prepare();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = seccomp_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if ((inject__fail("sigaction.seccomp") ?: sigaction(SIGSYS, &sa, NULL)) < 0) {
		ret = -errno;
		pr_err("cannot install the seccomp filter: sigaction for SIGSYS failed: %s",
		       strerror(-ret));
		return ret;
	}
	ctx = inject__check("seccomp_init")
		      ? NULL
		      : seccomp_init(mode == SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (!ctx) {
		pr_err("cannot install the seccomp filter: seccomp_init failed");
		return -ENOMEM;
	}
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	/* A binary tree of the calls, not a list: KVM_RUN and the fault path pay a few compares. */
	ret = ret ?: seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (i = 0; !ret && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	/* The request is an int to the kernel: compare its low 32 bits. */
	for (i = 0; !ret && i < sizeof(allowed_ioctls) / sizeof(allowed_ioctls[0]); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL,
					       allowed_ioctls[i] & 0xffffffffULL));
	/* Threads, not processes: clone only with CLONE_THREAD; glibc falls back from clone3. */
	ret = ret
		      ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
					  SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	ret = ret ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* Within one directory only, both ends (--record-ws). */
	if (rename_dirfd >= 0)
		ret = ret
			      ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(renameat), 2,
						  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)rename_dirfd, 0),
						  SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)rename_dirfd, 0))
			      ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(renameat2), 2,
						  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)rename_dirfd, 0),
						  SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)rename_dirfd, 0));
	ret = ret ?: -inject__check("seccomp.load");
	ret = ret ?: seccomp_load(ctx);
	seccomp_release(ctx);
	if (ret) {
		pr_err("cannot install the seccomp filter: %s", strerror(-ret));
		return ret;
	}
	return 0;
}
