/*
 * The host memory a VM costs: /proc/self/status parsed, and the guest's
 * share of it taken out of the monitor's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/sys/host_mem.h"

/* The number of kB on the line "@key:   N kB" of @text. */
static int status_kib(const char *text, const char *key, uint64_t *v)
{
	size_t len = strlen(key);
	const char *p = text;
	char *end;

	while (p && *p) {
		if (!strncmp(p, key, len) && p[len] == ':') {
			p += len + 1;
			p += strspn(p, " \t");
			if (*p < '0' || *p > '9')
				return -EINVAL;
			errno = 0;
			*v = strtoull(p, &end, 10);
			if (errno || strncmp(end, " kB", 3))
				return -EINVAL;
			return 0;
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return -EINVAL;
}

int host_mem__parse_status(const char *text, struct host_mem_status *s)
{
	if (!text || status_kib(text, "RssAnon", &s->rss_anon) ||
	    status_kib(text, "RssFile", &s->rss_file) || status_kib(text, "VmPTE", &s->pte))
		return -EINVAL;
	return 0;
}

int host_mem__parse_smaps_anon(const char *text, uintptr_t start, uint64_t *kib)
{
	const char *p = text, *next;
	char *end;

	while (p && *p) {
		errno = 0;
		/* a mapping's first line: "START-END perms offset dev inode path" */
		if (strtoull(p, &end, 16) == start && !errno && end != p && *end == '-') {
			/* its fields, up to the next mapping's line */
			for (p = strchr(p, '\n'); p && p[1] && !strchr("0123456789abcdef", p[1]);
			     p = strchr(p + 1, '\n'))
				if (!strncmp(p + 1, "Anonymous:", 10))
					return status_kib(p + 1, "Anonymous", kib);
			return -EINVAL;
		}
		next = strchr(p, '\n');
		p = next ? next + 1 : NULL;
	}
	return -EINVAL;
}

void host_mem__combine(const struct host_mem_status *s, uint64_t guest_kib, uint64_t guest_anon_kib,
		       struct host_mem *m)
{
	uint64_t anon = guest_anon_kib;

	m->guest_kib = guest_kib;
	/* RssAnon and smaps are read apart: never below zero */
	m->monitor_kib = s->rss_anon > anon ? s->rss_anon - anon : 0;
	m->page_tables_kib = s->pte;
	m->program_kib = s->rss_file;
}
