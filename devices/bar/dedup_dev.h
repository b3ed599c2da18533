/*
 * dedup-regs: a register page through which the guest can see what the
 * monitor's dedup did to its memory, and ask for an unmerge.
 *
 * One page, every access traps (nopage answers NONRAM). Registers (64-bit,
 * little endian):
 *   0x00 MAGIC  "FLDEDUP\1" (read)
 *   0x08 RUN    the run knob: 0 pauses the scanner, 1 merges, 2 unmerges
 *               every page (read, write 0..2; anything else is rejected)
 *   0x10 MODE   1: zero pages only, 2: merging (read)
 *   0x40 + 8*i  counter i of DEDUP_COUNTERS, in the table's order (read):
 *               0x40 pages_shared, 0x48 pages_sharing, ... 0x60 full_scans
 * The guest may only steer its own VM's dedup within what the host allowed
 * with --dedup: the device exists only when dedup is on.
 */
#ifndef FAULTLINE_DEDUP_DEV_H
#define FAULTLINE_DEDUP_DEV_H

#include <stdint.h>

#include "mmu/bar.h"
#include "mmu/dedup.h"

#define DEDUP_DEV_MAGIC	   0x0100505544454c46ULL /* "FLDEDUP\1" */
#define DEDUP_REG_MAGIC	   0x00
#define DEDUP_REG_RUN	   0x08
#define DEDUP_REG_MODE	   0x10
#define DEDUP_REG_COUNTERS 0x40
#define DEDUP_DEV_SIZE	   BAR_PAGE_SIZE

struct dedup_dev {
	struct bar bar;
	struct dedup *dedup;
};

/* Set up the register page at @gpa for @dedup. 0 or -errno (from bar__init). */
int dedup_dev__init(struct dedup_dev *dev, struct dedup *dedup, uint64_t gpa,
		    const struct bar_mapper *mapper) __attribute__((warn_unused_result));
void dedup_dev__exit(struct dedup_dev *dev);

#endif
