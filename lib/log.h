/*
 * Messages to the user, in one style:
 *   faultline: <what failed>: <why> (<object>: <value>)
 * Library code reports with pr_err() and returns an error; only main()
 * decides to exit. Tests capture messages with log__capture().
 */
#ifndef FAULTLINE_LOG_H
#define FAULTLINE_LOG_H

#include <stddef.h>

/* Print "faultline: " + the message + "\n" to stderr (or the capture buffer). */
void pr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Send the following messages to @buf (NUL-terminated, truncated at @len)
 * instead of stderr; @buf == NULL restores stderr. Tests only.
 */
void log__capture(char *buf, size_t len);

/*
 * For checks of untrusted input that say what is wrong rather than print
 * it (elf__parse(), linux__parse(), virtqueue chains): format the reason
 * into @why (@len bytes) and return @err.
 */
int log__why(char *why, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
