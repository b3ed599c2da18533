/*
 * The fault engine's unit-test fixture, shared by test_mmu.c,
 * test_mmu_budget.c and test_mmu_failures.c: one engine on a memfd (no
 * KVM), an owner that records what its fault_failed() saw, and host
 * threads that touch guest RAM the way vCPUs do.
 */
#ifndef FAULTLINE_TESTS_MMU_FIXTURE_H
#define FAULTLINE_TESTS_MMU_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mmu/mmu.h"

#define PAGE MMU_PAGE_SIZE

/*
 * What the owner's fault_failed() saw, and what it should do; written by
 * handler threads under failed_lock, read through F (a locked snapshot).
 */
struct failed_rec {
	int calls;
	fault_t result;
	enum fault_source source;
	uint64_t gpa;
	int err;
	char why[256];
	bool poison; /* poison the page, as --on-oom mce does */
	/* --on-oom pause: the owner refaults this many times, raising the budget to raise_to */
	int refaults;
	uint64_t raise_to;
	bool hold; /* wait until released (the VM paused until the operator resumes it) */
};

extern struct mmu mmu;
extern char log_buf[1024];
extern pthread_mutex_t failed_lock;
extern pthread_cond_t failed_cond;
extern struct failed_rec failed; /* under failed_lock; read through F */

/* A locked copy of what the owner saw. */
#define F (*failed_snapshot())

/* A counter of the engine's, read while its threads may update it. */
#define STAT(name) __atomic_load_n(&mmu.stats.name, __ATOMIC_RELAXED)

struct setup {
	uint64_t ram;
	uint64_t limit;
	const char *file;
	unsigned around;
	unsigned handlers;
	unsigned retries;
	unsigned retry_ms;
	unsigned spin_us;
	enum mmu_handler handler;
	unsigned ahead;
	bool track; /* --diff-snapshots */
	bool share; /* map a backing file on tmpfs (mmu_config.share) */
};

struct toucher {
	uint64_t first, count, stride; /* pages */
	bool write;
	uint64_t value;	       /* written to / expected in every word (read: 0 unless check_file) */
	const uint8_t *expect; /* when set: the bytes every page must hold (indexed by GPA) */
	bool pace;	       /* after each page, wait until no handler is in service */
	pthread_t thread;
	int bad;	 /* words that did not hold what was expected */
	int sigbus_code; /* si_code of a SIGBUS that ended the walk, 0 if none */
	uintptr_t sigbus_addr;
};

const struct failed_rec *failed_snapshot(void);
fault_t fault_at(uint64_t gpa, enum fault_access access, enum fault_source source,
		 struct fault_ctx *out);
void install_zero_outside(uint64_t gpa);
const char *make_file(uint64_t size, uint8_t **data);
void mmu_setup(const struct setup *s);
void mmu_teardown(void);
void quiesce(void);
uint64_t resident(void);
void settle(void);
void touch(struct toucher *t);
void touch_start(struct toucher *t);

#endif
