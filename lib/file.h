/* Reading a whole file into memory, for the kernel, the initrd and a snapshot's files. */
#ifndef FAULTLINE_FILE_H
#define FAULTLINE_FILE_H

#include <stddef.h>
#include <stdint.h>

/* What failed; the caller words the message. */
enum file_error {
	FILE_OK,
	FILE_OPEN,	  /* open() failed: errno in *err */
	FILE_NOT_REGULAR, /* fstat() failed (errno in *err), or not a regular file (*err 0) */
	FILE_TOO_BIG,	  /* more than @max bytes: *len is its size */
	FILE_READ,	  /* read() failed (errno in *err), or the file shrank (*err 0) */
	FILE_NO_MEMORY,
};

/*
 * All of @path, at most @max bytes, into a new buffer (*@buf, freed by
 * the caller) of *@len bytes and a NUL after them. FILE_OK, or what
 * failed, with nothing to free.
 */
enum file_error file__read_all(const char *path, uint64_t max, uint8_t **buf, size_t *len, int *err)
	__attribute__((warn_unused_result));

#endif
