/*
 * uffd-share: what clones of one snapshot could hold of the host, without
 * KVM: the mechanism docs/snapshots.md plans for clones that share pages,
 * measured against what a restore does today.
 *
 * The parent fills a memfd of --mib MiB (the snapshot's memory, every page
 * data) and forks --clones children per mode. Each child maps guest RAM,
 * registers it with userfaultfd, reads every page through its handler
 * thread, writes --write-pct percent of them, checks every byte, reports
 * ready and waits; the parent then sums their PSS (/proc/PID/smaps_rollup).
 *   copy:   RAM is a memfd of the child's own, MAP_SHARED; each fault
 *           preads the snapshot page and installs it with UFFDIO_COPY
 *           (faultline's restore, Firecracker's and Cloud Hypervisor's).
 *   shared: RAM is the snapshot memfd mapped MAP_PRIVATE, registered
 *           MISSING, MINOR and WP; a read fault is resolved with
 *           UFFDIO_CONTINUE in write-protect mode (the shared page-cache
 *           page, mapped read-only), the first write is a write-protect
 *           fault the handler lifts, and the kernel's copy-on-write gives
 *           the child its own page. The snapshot memfd is never written.
 *   one:    a single copy child: one VM's memory.
 * Prints one JSON line: per mode the summed PSS in KiB, the faults its
 * handlers served, and the ratios. Needs userfaultfd with MINOR faults on
 * shared memory (Linux 5.13) and write-protect on it (5.19;
 * UFFDIO_CONTINUE_MODE_WP, 6.2). Exit: 0, 1 on a failure, 64 on a bad
 * option.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#define MAX_CLONES 200

enum mode { MODE_COPY, MODE_SHARED };

static int snap_fd, uffd;
static uint8_t *ram;
static size_t ram_len;
static enum mode mode;
static uint64_t faults;

static uint8_t pattern(size_t pi, size_t off)
{
	return (uint8_t)(pi * 131 + off * 7 + 1);
}

static void die(const char *what)
{
	fprintf(stderr, "uffd-share: %s: %s\n", what, strerror(errno));
	_exit(1);
}

/* The child's handler: one thread, every event served as its mode says. */
static void *handler(void *arg)
{
	static uint8_t buf[PAGE], zero[PAGE];
	struct pollfd p = {.fd = uffd, .events = POLLIN};
	struct uffd_msg m;

	(void)arg;
	for (;;) {
		if (poll(&p, 1, -1) < 0 || read(uffd, &m, sizeof(m)) != sizeof(m))
			continue;
		uint64_t a = m.arg.pagefault.address & ~(PAGE - 1);
		uint64_t f = m.arg.pagefault.flags;

		faults++;
		if (f & UFFD_PAGEFAULT_FLAG_WP) {
			struct uffdio_writeprotect wp = {.range = {a, PAGE}, .mode = 0};

			if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
				die("UFFDIO_WRITEPROTECT");
		} else if (f & UFFD_PAGEFAULT_FLAG_MINOR) {
			struct uffdio_continue c = {.range = {a, PAGE},
						    .mode = UFFDIO_CONTINUE_MODE_WP};

			if (ioctl(uffd, UFFDIO_CONTINUE, &c) && errno != EEXIST)
				die("UFFDIO_CONTINUE");
		} else {
			struct uffdio_copy c = {
				.dst = a, .src = (uint64_t)(uintptr_t)zero, .len = PAGE};

			if (mode == MODE_COPY) {
				if (pread(snap_fd, buf, PAGE,
					  (off_t)(a - (uint64_t)(uintptr_t)ram)) != (ssize_t)PAGE)
					die("pread");
				c.src = (uint64_t)(uintptr_t)buf;
			}
			if (ioctl(uffd, UFFDIO_COPY, &c) && errno != EEXIST)
				die("UFFDIO_COPY");
		}
	}
	return NULL;
}

/* A clone: map, touch, check, say ready on @ready_fd, wait for the parent to close @wait_fd. */
static void child(unsigned write_pct, int ready_fd, int wait_fd)
{
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};
	size_t pi, off, pages = ram_len / PAGE, bad = 0;
	pthread_t t;
	char c;
	int fd;

	if (mode == MODE_SHARED) {
		api.features = UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP;
		ram = mmap(NULL, ram_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, snap_fd, 0);
	} else {
		fd = memfd_create("ram", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)ram_len))
			die("memfd");
		ram = mmap(NULL, ram_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	}
	if (ram == MAP_FAILED)
		die("mmap");
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
		die("userfaultfd");
	reg.range.start = (uint64_t)(uintptr_t)ram;
	reg.range.len = ram_len;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	if (pthread_create(&t, NULL, handler, NULL))
		die("pthread_create");
	for (pi = 0; pi < pages; pi++) /* every page read */
		bad += ram[pi * PAGE] != pattern(pi, 0);
	for (pi = 0; pi < pages * write_pct / 100; pi++) /* the first pages written */
		ram[pi * PAGE + 1] = 0xee;
	for (pi = 0; pi < pages; pi++)
		for (off = 0; off < PAGE; off++)
			bad += ram[pi * PAGE + off] !=
			       (pi < pages * write_pct / 100 && off == 1 ? 0xee : pattern(pi, off));
	if (bad) {
		fprintf(stderr, "uffd-share: %zu bytes do not hold what they should\n", bad);
		_exit(1);
	}
	if (write(ready_fd, &faults, sizeof(faults)) != sizeof(faults))
		_exit(1);
	if (read(wait_fd, &c, 1) < 0) /* until the parent has measured */
		_exit(1);
	_exit(0);
}

static long pss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* @n clones of @m: their summed PSS in KiB and faults; -1 on a failure. */
static long run(enum mode m, unsigned n, unsigned write_pct, uint64_t *nr_faults)
{
	pid_t pids[MAX_CLONES];
	int ready[2], hold[2], st;
	long sum = 0, k;
	uint64_t f;
	unsigned i, ok = 1;

	if (pipe(ready) || pipe(hold))
		die("pipe");
	mode = m;
	*nr_faults = 0;
	for (i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i] == 0) {
			close(ready[0]);
			close(hold[1]);
			child(write_pct, ready[1], hold[0]);
		}
	}
	close(ready[1]);
	close(hold[0]);
	for (i = 0; i < n; i++) {
		if (read(ready[0], &f, sizeof(f)) != sizeof(f)) {
			ok = 0;
			break;
		}
		*nr_faults += f;
	}
	for (i = 0; ok && i < n; i++) {
		k = pss_kib(pids[i]);
		if (k < 0)
			ok = 0;
		sum += k;
	}
	close(hold[1]); /* the clones end */
	close(ready[0]);
	for (i = 0; i < n; i++)
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			ok = 0;
	return ok ? sum : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"mib", 1, NULL, 'm'},
					     {"clones", 1, NULL, 'n'},
					     {"write-pct", 1, NULL, 'w'},
					     {NULL, 0, NULL, 0}};
	unsigned mib = 64, n = 20, write_pct = 1;
	uint64_t f_copy, f_shared, f_one;
	long copy, shared, one;
	size_t pi, off;
	uint8_t *p;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;

		if (c == 'm' && v >= 1 && v <= 4096)
			mib = (unsigned)v;
		else if (c == 'n' && v >= 1 && v <= MAX_CLONES)
			n = (unsigned)v;
		else if (c == 'w' && optarg[0] >= '0' && optarg[0] <= '9' && v <= 100)
			write_pct = (unsigned)v;
		else {
			fprintf(stderr,
				"usage: uffd-share [--mib 1..4096] [--clones 1..%d] "
				"[--write-pct 0..100]\n",
				MAX_CLONES);
			return 64;
		}
	}
	ram_len = (size_t)mib << 20;
	snap_fd = memfd_create("snapshot", MFD_CLOEXEC);
	if (snap_fd < 0 || ftruncate(snap_fd, (off_t)ram_len))
		die("memfd");
	p = mmap(NULL, ram_len, PROT_READ | PROT_WRITE, MAP_SHARED, snap_fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	for (pi = 0; pi < ram_len / PAGE; pi++)
		for (off = 0; off < PAGE; off++)
			p[pi * PAGE + off] = pattern(pi, off);
	munmap(p, ram_len);
	one = run(MODE_COPY, 1, write_pct, &f_one);
	copy = run(MODE_COPY, n, write_pct, &f_copy);
	shared = run(MODE_SHARED, n, write_pct, &f_shared);
	if (one < 0 || copy < 0 || shared < 0) {
		fprintf(stderr, "uffd-share: a clone failed\n");
		return 1;
	}
	printf("{\"mib\":%u,\"clones\":%u,\"write_pct\":%u,"
	       "\"one_pss_kib\":%ld,\"copy_pss_kib\":%ld,\"shared_pss_kib\":%ld,"
	       "\"one_faults\":%llu,\"copy_faults\":%llu,\"shared_faults\":%llu,"
	       "\"shared_vs_copy\":%.4f,\"shared_over_one_per_clone_kib\":%.1f}\n",
	       mib, n, write_pct, one, copy, shared, (unsigned long long)f_one,
	       (unsigned long long)f_copy, (unsigned long long)f_shared,
	       (double)shared / (double)copy, (double)(shared - one) / n);
	return 0;
}
