#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"

static char *capture_buf;
static size_t capture_len;

void log__capture(char *buf, size_t len)
{
	capture_buf = buf;
	capture_len = len;
	if (buf && len)
		buf[0] = '\0';
}

int log__why(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}

void pr_err(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "faultline: ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (capture_buf) {
		size_t used = strlen(capture_buf);

		if (used < capture_len)
			snprintf(capture_buf + used, capture_len - used, "%s\n", line);
		return;
	}
	fprintf(stderr, "%s\n", line);
}
