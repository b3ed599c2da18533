/*
 * Fault results and the fault context.
 *
 * A fault handler returns a fault_t, a bitmask modelled on the kernel's
 * vm_fault_t, never a bool or an errno. Exactly one helper turns an errno
 * into a result (fault__from_errno) and one turns a result back
 * (fault__to_errno). Every form in which a guest access to unbacked RAM
 * surfaces (a userfaultfd event, an MMIO exit inside RAM, SIGBUS, -EFAULT
 * from KVM_RUN, the monitor's own access) is described by one struct
 * fault_ctx and handled by mmu__handle_fault().
 */
#ifndef FAULTLINE_FAULT_H
#define FAULTLINE_FAULT_H

#include <stdbool.h>
#include <stdint.h>

typedef unsigned int fault_t;

#define FAULT_DONE     0x0001u /* the page is present (installed here or by a sibling) */
#define FAULT_RETRY    0x0002u /* transient: try again, with FAULT_FLAG_TRIED */
#define FAULT_OOM      0x0004u /* the VM's budget or the host's memory is exhausted */
#define FAULT_SIGBUS   0x0008u /* nothing can back this address (I/O error, outside RAM) */
#define FAULT_FALLBACK 0x0010u /* a fault-around window could not be served: do one page */
#define FAULT_MMIO     0x0020u /* not RAM: emulate the access */
#define FAULT_HWPOISON 0x0040u /* the page is poisoned: a machine check for the guest */
#define FAULT_ERROR    (FAULT_OOM | FAULT_SIGBUS | FAULT_HWPOISON)

enum fault_access {
	FAULT_READ,
	FAULT_WRITE,
};

/* Where the fault came from; all reach mmu__handle_fault(). */
enum fault_source {
	FAULT_SRC_UFFD,	     /* a userfaultfd page-fault event */
	FAULT_SRC_MMIO_EXIT, /* KVM_EXIT_MMIO whose GPA lies in RAM */
	FAULT_SRC_SIGBUS,    /* SIGBUS on a vCPU thread */
	FAULT_SRC_EFAULT,    /* -EFAULT from KVM_RUN */
	FAULT_SRC_MONITOR,   /* the monitor's own access (mmu__access) */
};

#define FAULT_FLAG_ALLOW_RETRY	 0x1u  /* RETRY may be retried */
#define FAULT_FLAG_TRIED	 0x2u  /* this is a retry */
#define FAULT_FLAG_NO_AROUND	 0x4u  /* serve exactly one page */
#define FAULT_FLAG_WP		 0x8u  /* a write to a write-protected resident page */
#define FAULT_FLAG_INTERRUPTIBLE 0x10u /* a guest fault: stopping the VM ends its retries */
#define FAULT_FLAG_COW		 0x20u /* out: it failed breaking a shared page (dedup) */
#define FAULT_FLAG_DIRTY	 0x40u /* prefetch: install the whole window writable, dirty */

struct mmu;

struct fault_ctx {
	struct mmu *mmu;
	uint64_t gpa; /* page-aligned */
	uint8_t *hva; /* guest-view address of the page */
	enum fault_access access;
	int vcpu; /* -1 when not known or the monitor */
	unsigned flags;
	unsigned attempt; /* 0 on the first try */
	enum fault_source source;
	int err; /* out: the errno behind the last attempt's failure, 0 if none */
	/* out: with err, the step that failed, for the report; NULL: the install */
	const char *failed;
	bool resume;  /* out: the owner dealt with a failed fault; the vCPU may go on */
	bool refault; /* out: the owner made room for a failed fault; serve it again */
	bool thrash;  /* out: the OOM was refaults without end (mmu__thrashing()) */
	uint64_t win_first, win_pages; /* out: the host pages this fault installed (DONE) */
};

/*
 * -ENOMEM -> OOM, -EAGAIN -> RETRY, -EEXIST (UFFDIO_COPY: a sibling won)
 * and 0 -> DONE, -ENOSPC -> OOM, anything else -> SIGBUS.
 */
fault_t fault__from_errno(int err);

/*
 * DONE -> 0, RETRY -> -EAGAIN, OOM -> -ENOMEM, MMIO -> -ENXIO,
 * HWPOISON -> -EHWPOISON, else -EFAULT.
 */
int fault__to_errno(fault_t result);

/* "oom", "hwpoison", "sigbus", "mmio", "retry", "fallback" or "done": the first that is set. */
const char *fault__name(fault_t result);

const char *fault__source_name(enum fault_source source);

#endif
