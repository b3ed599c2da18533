/*
 * shm: a shared-memory BAR backed by a host file, for exchanging data
 * between a host program and its sandbox.
 *
 * BAR layout: page 0 holds the registers (nopage answers NONRAM: every
 * access traps here); pages 1.. are the file, page N at file offset
 * (N - 1) * 4096, mapped lazily through nopage (PAGE: the file's own page,
 * MAP_SHARED, so the host sees the guest's writes and the guest the
 * host's). An offset at or past the file's current end answers SIGBUS,
 * as mmap does.
 *
 * Registers (64-bit, little endian):
 *   0x00 MAGIC     "FLSHM\0\0\1" (read)
 *   0x08 SIZE      bytes of the data window (read)
 *   0x10 DOORBELL  write: ring with a value; read: the last value rung
 *   0x18 RINGS     rings so far (read)
 * A ring is counted (stats: doorbells) and, with doorbell=PATH, written as
 * one line "VALUE\n" to PATH (a FIFO a host program reads, or a file it
 * watches). A FIFO nobody drains never blocks the guest: the line is
 * dropped and counted (doorbells_dropped).
 */
#ifndef FAULTLINE_SHM_H
#define FAULTLINE_SHM_H

#include <stdint.h>

#include "lib/blob.h"
#include "mmu/bar.h"

#define SHM_MAGIC	    0x0100004d48534c46ULL /* "FLSHM\0\0\1" */
#define SHM_REG_MAGIC	    0x00
#define SHM_REG_SIZE	    0x08
#define SHM_REG_DOORBELL    0x10
#define SHM_REG_RINGS	    0x18
#define SHM_DATA_OFFSET	    BAR_PAGE_SIZE
#define SHM_COUNTER_RINGS   0 /* bar.stats.dev[] */
#define SHM_COUNTER_DROPPED 1

struct shm_dev {
	struct bar bar;
	const char *path;
	const char *doorbell_path;
	int fd;
	int doorbell_fd;
	uint64_t size; /* data window */
	uint8_t *map;  /* the file, MAP_SHARED, size bytes */
	uint64_t last_ring;
};

/*
 * Open @path (it must exist; size must be a positive multiple of 4 KiB)
 * and the doorbell (NULL: none), map the file, and set up the BAR at @gpa
 * (size + one register page). Returns 0, or -errno after reporting with
 * the file's name. Undo with shm__exit().
 */
int shm__init(struct shm_dev *shm, const char *path, uint64_t size, const char *doorbell,
	      uint64_t gpa, const struct bar_mapper *mapper, unsigned max_retries,
	      unsigned retry_ms) __attribute__((warn_unused_result));
void shm__exit(struct shm_dev *shm);

/*
 * Its state as blob section "shm": the doorbell's last value and the rings
 * so far (both registers the guest reads). The file is the host's: a
 * snapshot syncs it (shm__sync()), and a restore maps it as it is then.
 */
void shm__save(struct shm_dev *shm, struct blob *b);
int shm__restore(struct shm_dev *shm, struct blob_reader *r) __attribute__((warn_unused_result));
/* What the guest wrote into the file, on the disk. 0, or -errno after reporting. */
int shm__sync(struct shm_dev *shm) __attribute__((warn_unused_result));

#endif
