/* Sizes as people write them: "256M", "2G", "4096K", "1048576", "1GiB". */
#ifndef FAULTLINE_SIZE_H
#define FAULTLINE_SIZE_H

#include <stdint.h>

/* Parse @s into bytes: K, M, G, T (powers of 1024), optionally followed by
 * "B" or "iB". 0, -EINVAL or -ERANGE. */
int size__parse(const char *s, uint64_t *bytes) __attribute__((warn_unused_result));

#endif
