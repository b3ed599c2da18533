/*
 * Guest RAM: one host mapping split into at most two guest-physical banks,
 * [0, 3 GiB) and [4 GiB, ...), leaving [3 GiB, 4 GiB) for MMIO.
 *
 * Every access the monitor makes to guest memory on a guest-supplied
 * address goes through guest_ram__ptr(), which checks the whole range with
 * overflow-safe arithmetic. No KVM headers here.
 */
#ifndef FAULTLINE_GUEST_RAM_H
#define FAULTLINE_GUEST_RAM_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_RAM_LOW_MAX   (3ULL << 30) /* MMIO hole starts here */
#define GUEST_RAM_HIGH_BASE (4ULL << 30)
#define GUEST_MMIO_BASE	    GUEST_RAM_LOW_MAX
#define GUEST_RAM_MAX_BANKS 2

struct guest_ram_bank {
	uint64_t gpa;
	uint64_t size;
	uint64_t host_offset; /* into the host mapping */
};

struct guest_ram {
	uint8_t *host; /* start of the host mapping */
	uint64_t size; /* total bytes of RAM */
	unsigned nr_banks;
	struct guest_ram_bank banks[GUEST_RAM_MAX_BANKS];
};

/*
 * Compute the bank layout for @size bytes without mapping anything.
 * Returns 0, or -EINVAL for a size of 0 or one not page-aligned.
 */
int guest_ram__layout(struct guest_ram *ram, uint64_t size) __attribute__((warn_unused_result));

/*
 * Lay out and map @size bytes of plain anonymous memory, not pre-populated:
 * RAM for code that runs without an MMU (the unit tests). A VM's RAM comes
 * from mmu__init().
 * Returns 0 or -errno (from mmap). Undo with guest_ram__exit().
 */
int guest_ram__init(struct guest_ram *ram, uint64_t size) __attribute__((warn_unused_result));
void guest_ram__exit(struct guest_ram *ram);

/*
 * Host pointer for [gpa, gpa + len) when that whole range lies inside one
 * bank; NULL otherwise (overflow, a hole, past the end, len == 0).
 * Any thread; the mapping never moves while the VM exists.
 */
void *guest_ram__ptr(const struct guest_ram *ram, uint64_t gpa, uint64_t len);

/* The GPA at host offset @off (which must be inside RAM). */
uint64_t guest_ram__gpa(const struct guest_ram *ram, uint64_t off);

/*
 * How the monitor reaches guest memory: a function that returns a host
 * pointer for [gpa, gpa + len) or NULL with *err set (-EFAULT: not RAM,
 * -ENOMEM: the page could not be made resident). The VM's is the MMU's
 * checked accessor (mmu__guest_access); tests use plain RAM.
 *
 * A device buffer it keeps only until a request is done is taken with
 * hold() and given back with release() (a page the guest gives back can go
 * once nobody holds it); ptr()'s pointers may be kept for good (rings).
 * Both optional: without them, ptr() serves.
 */
struct guest_access {
	void *(*ptr)(void *ctx, uint64_t gpa, uint64_t len, int *err);
	void *ctx;
	void *(*hold)(void *ctx, uint64_t gpa, uint64_t len, int *err);
	void (*release)(void *ctx, uint64_t gpa, uint64_t len);
};

/* A guest_access straight onto @ram's host mapping, for RAM with no MMU. */
struct guest_access guest_ram__direct(struct guest_ram *ram);

/* One past the highest guest-physical RAM address. */
uint64_t guest_ram__top(const struct guest_ram *ram);

#endif
