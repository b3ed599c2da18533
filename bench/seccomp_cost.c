/*
 * bench/seccomp_cost: what faultline's seccomp filter (vmm/sys/seccomp.c) adds
 * to the system calls of a running VM's fast paths, measured in one run:
 * the same calls without the filter (the baseline), then with it. The calls
 * are the vCPU loop's KVM_RUN and the fault engine's UFFDIO_ZEROPAGE, made
 * on fd -1 so that the kernel answers EBADF at once: what is left is the
 * system call's entry and exit, and the filter. No KVM needed.
 *
 *   build/bench/seccomp-cost [--calls N] [--repeat R]
 */
#define _GNU_SOURCE
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmm/sys/seccomp.h"

struct call {
	const char *name;
	unsigned long req;
	double ns[2]; /* without, with the filter: the median per call */
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median over @repeat runs of @calls calls of ns per call. */
static double measure(unsigned long req, long calls, int repeat)
{
	double runs[64];
	int r;

	for (r = 0; r < repeat; r++) {
		uint64_t t0 = now_ns();

		for (long i = 0; i < calls; i++)
			syscall(SYS_ioctl, -1, req, 0);
		runs[r] = (double)(now_ns() - t0) / (double)calls;
	}
	qsort(runs, (size_t)repeat, sizeof(runs[0]), cmp_double);
	return runs[repeat / 2];
}

int main(int argc, char **argv)
{
	struct call calls[] = {{"ioctl KVM_RUN", KVM_RUN, {0, 0}},
			       {"ioctl UFFDIO_ZEROPAGE", UFFDIO_ZEROPAGE, {0, 0}}};
	long n = 1000000;
	int repeat = 5, i, k;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calls") && i + 1 < argc)
			n = atol(argv[++i]);
		else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: seccomp-cost [--calls N] [--repeat R (1..64)]\n");
			return 64;
		}
	}
	if (n < 1 || repeat < 1 || repeat > 64) {
		fprintf(stderr, "usage: seccomp-cost [--calls N] [--repeat R (1..64)]\n");
		return 64;
	}
	for (k = 0; k < 2; k++) {
		if (k == 1 && seccomp__install(SECCOMP_ON))
			return 70;
		for (i = 0; i < 2; i++)
			calls[i].ns[k] = measure(calls[i].req, n, repeat);
	}
	printf("%-24s %14s %14s %8s\n", "call", "ns, no filter", "ns, filter", "ratio");
	for (i = 0; i < 2; i++)
		printf("%-24s %14.1f %14.1f %7.2fx\n", calls[i].name, calls[i].ns[0],
		       calls[i].ns[1], calls[i].ns[1] / calls[i].ns[0]);
	return 0;
}
