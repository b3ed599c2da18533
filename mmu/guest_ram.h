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
 * Lay out and map @size bytes of anonymous memory, not pre-populated.
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

/* One past the highest guest-physical RAM address. */
uint64_t guest_ram__top(const struct guest_ram *ram);

#endif
