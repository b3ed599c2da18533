/*
 * Fault injection for tests: make a named call site fail on demand, so that
 * every failure path (ioctl errors, allocation failure, ...) has a test.
 *
 * Enabled by the test-only environment variable FAULTLINE_INJECT, a comma-
 * separated list of SITE:ERRNO[:SKIP[:TIMES]] — the site fails with ERRNO
 * (a name such as ENOMEM, or a number) after SKIP successful calls, TIMES
 * times (default 1; 0 means every call from then on). Sites are the names of
 * what they wrap: "KVM_CREATE_VCPU", "KVM_RUN", "mmap.guest_ram", ...
 * docs/testing.md lists them. Without the variable every check is one
 * predictable branch.
 */
#ifndef FAULTLINE_INJECT_H
#define FAULTLINE_INJECT_H

#define INJECT_MAX_RULES 8
#define INJECT_ENV	 "FAULTLINE_INJECT"

/*
 * Parse @spec (NULL or "" disables injection). Returns 0, or -EINVAL for a
 * malformed spec (the caller reports it). Call once, before any thread.
 */
int inject__init(const char *spec) __attribute__((warn_unused_result));

/* 0 when @site should go ahead, else the positive errno to fail with. Any thread. */
int inject__check(const char *site);

/*
 * As inject__check(@site), and also the rule "@site@@scope" when @scope is
 * not NULL: "UFFDIO_COPY@guest" fails only the guest's faults, not the
 * monitor's own accesses that load the image ("@load") or that devices
 * make while the VM runs ("@device").
 */
int inject__check_scoped(const char *site, const char *scope);

/*
 * For calls that fail with -1 and errno: 0 when @site should go ahead, else
 * -1 with errno set to the rule's. So "inject__fail(site) ?: call(...)" is
 * the call, or its failure.
 */
int inject__fail(const char *site);

#endif
