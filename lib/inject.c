#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/inject.h"

struct inject_rule {
	char site[48];
	int err;
	unsigned long skip;
	unsigned long times; /* 0: forever */
	unsigned long calls; /* atomic */
};

static struct inject_rule rules[INJECT_MAX_RULES];
static unsigned nr_rules;

static const struct {
	const char *name;
	int err;
} errno_names[] = {
	{"EPERM", EPERM},   {"EINTR", EINTR},	{"EIO", EIO},	    {"EAGAIN", EAGAIN},
	{"ENOMEM", ENOMEM}, {"EFAULT", EFAULT}, {"EEXIST", EEXIST}, {"EINVAL", EINVAL},
	{"ENOSPC", ENOSPC}, {"ENOSYS", ENOSYS}, {"E2BIG", E2BIG},   {"EBUSY", EBUSY},
	{"EMFILE", EMFILE}, {"ENFILE", ENFILE}, {"ENOTTY", ENOTTY}, {"EROFS", EROFS},
};

static int parse_errno(const char *s)
{
	char *end;
	long v;
	size_t i;

	for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (!strcmp(s, errno_names[i].name))
			return errno_names[i].err;
	v = strtol(s, &end, 10);
	return *s && !*end && v > 0 && v < 4096 ? (int)v : -1;
}

static int parse_count(const char *s, unsigned long *out)
{
	char *end;

	if (!s)
		return 0;
	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end ? 0 : -1;
}

/* SITE:ERRNO[:SKIP[:TIMES]]; @rule is modified in place. */
static int parse_rule(char *text, struct inject_rule *r)
{
	char *field[4] = {NULL};
	unsigned n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(text, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		if (n == 4)
			return -EINVAL;
		field[n++] = tok;
	}
	if (n < 2 || strlen(field[0]) >= sizeof(r->site))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	strcpy(r->site, field[0]);
	r->err = parse_errno(field[1]);
	r->times = 1;
	if (r->err < 0 || parse_count(field[2], &r->skip) || parse_count(field[3], &r->times))
		return -EINVAL;
	return 0;
}

int inject__init(const char *spec)
{
	char buf[512], *save = NULL, *item;

	nr_rules = 0;
	if (!spec || !*spec)
		return 0;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (nr_rules == INJECT_MAX_RULES || parse_rule(item, &rules[nr_rules]))
			return -EINVAL;
		nr_rules++;
	}
	return nr_rules ? 0 : -EINVAL;
}

/* Whether rule @r names @site, or "@site@@scope" when @scope is given. */
static bool rule_matches(const struct inject_rule *r, const char *site, const char *scope)
{
	size_t n = strlen(site);

	if (!scope)
		return !strcmp(r->site, site);
	return !strncmp(r->site, site, n) && r->site[n] == '@' && !strcmp(r->site + n + 1, scope);
}

static int inject_match(const char *site, const char *scope)
{
	unsigned i;

	for (i = 0; i < nr_rules; i++) {
		struct inject_rule *r = &rules[i];
		unsigned long call;

		if (!rule_matches(r, site, scope))
			continue;
		call = __atomic_fetch_add(&r->calls, 1, __ATOMIC_RELAXED);
		if (call >= r->skip && (r->times == 0 || call - r->skip < r->times))
			return r->err;
	}
	return 0;
}

int inject__check(const char *site)
{
	return nr_rules ? inject_match(site, NULL) : 0;
}

int inject__check_scoped(const char *site, const char *scope)
{
	int err;

	if (!nr_rules)
		return 0;
	err = inject_match(site, NULL);
	return err || !scope ? err : inject_match(site, scope);
}

int inject__fail(const char *site)
{
	int err = inject__check(site);

	if (!err)
		return 0;
	errno = err;
	return -1;
}
