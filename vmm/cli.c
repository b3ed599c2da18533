#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli.h"
#include "vmm/log.h"
#include "vmm/status.h"

int cli__parse_size(const char *s, uint64_t *bytes)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default: break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = (uint64_t)v << shift;
	return 0;
}

static int parse_mem(const char *s, uint64_t *mem)
{
	int ret = cli__parse_size(s, mem);

	if (ret) {
		pr_err("invalid option value: %s (--mem: %s)",
		       ret == -ERANGE ? "too large" : "expected a size like 256M or 2G", s);
		return -EINVAL;
	}
	if (*mem < CLI_MEM_MIN || *mem > CLI_MEM_MAX) {
		pr_err("invalid option value: guest RAM must be 4M..63G (--mem: %s)", s);
		return -EINVAL;
	}
	if (*mem % CLI_MEM_ALIGN) {
		pr_err("invalid option value: guest RAM must be a multiple of 2M (--mem: %s)", s);
		return -EINVAL;
	}
	return 0;
}

static int parse_vcpus(const char *s, unsigned *vcpus)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < 1 || v > CLI_VCPUS_MAX) {
		pr_err("invalid option value: expected a number from 1 to %d (--vcpus: %s)",
		       CLI_VCPUS_MAX, s);
		return -EINVAL;
	}
	*vcpus = (unsigned)v;
	return 0;
}

/* Keys become device-tree property names: keep to the characters those allow. */
static bool guest_key_valid(const char *key, size_t len)
{
	size_t i;

	if (len == 0 || len > CLI_GUEST_KEY_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(",._+-", c)))
			return false;
	}
	return !(len == 4 && !strncmp(key, "name", 4));
}

static int parse_guest_arg(const char *s, struct run_config *cfg)
{
	const char *eq = strchr(s, '=');
	struct guest_arg *ga;
	unsigned i;

	if (!eq || !guest_key_valid(s, (size_t)(eq - s))) {
		pr_err("invalid option value: expected KEY=VALUE, KEY of 1-%d letters, digits or "
		       ",._+- and not 'name' (--guest-arg: %s)",
		       CLI_GUEST_KEY_MAX, s);
		return -EINVAL;
	}
	for (i = 0; i < cfg->nr_guest_args; i++) {
		ga = &cfg->guest_args[i];
		if (ga->key_len == (size_t)(eq - s) && !strncmp(ga->key, s, ga->key_len)) {
			pr_err("invalid option value: key given twice (--guest-arg: %s)", s);
			return -EINVAL;
		}
	}
	if (cfg->nr_guest_args == CLI_MAX_GUEST_ARGS) {
		pr_err("invalid option value: more than %d guest arguments (--guest-arg: %s)",
		       CLI_MAX_GUEST_ARGS, s);
		return -EINVAL;
	}
	ga = &cfg->guest_args[cfg->nr_guest_args++];
	ga->key = s;
	ga->key_len = (size_t)(eq - s);
	ga->value = eq + 1;
	return 0;
}

static const struct option run_options[] = {
#define CLI_LONGOPT(name, short_name, has_arg, metavar, help)                                      \
	{name, has_arg ? required_argument : no_argument, NULL, short_name},
	FL_RUN_OPTIONS(CLI_LONGOPT)
#undef CLI_LONGOPT
		{NULL, 0, NULL, 0},
};

/* Long options only, plus -h. */
static const char run_shortopts[] = ":h";

static int parse_run(int argc, char **argv, enum cli_command *cmd, struct run_config *cfg)
{
	int c, ret = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, run_shortopts, run_options, NULL)) != -1) {
		switch (c) {
		case 'k': cfg->kernel = optarg; break;
		case 'm': ret = parse_mem(optarg, &cfg->mem); break;
		case 'c': ret = parse_vcpus(optarg, &cfg->vcpus); break;
		case 'a': cfg->cmdline = optarg; break;
		case 'g': ret = parse_guest_arg(optarg, cfg); break;
		case 'h': *cmd = CLI_HELP; return 0;
		case ':':
			pr_err("usage: option needs a value (%s)", argv[optind - 1]);
			return -EINVAL;
		default:
			pr_err("usage: unknown option (%s); see 'faultline --help'",
			       argv[optind - 1]);
			return -EINVAL;
		}
		if (ret)
			return ret;
	}
	if (optind < argc) {
		pr_err("usage: unexpected argument (%s); see 'faultline --help'", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		pr_err("usage: run needs --kernel FILE; see 'faultline --help'");
		return -EINVAL;
	}
	return 0;
}

int cli__parse(int argc, char **argv, enum cli_command *cmd, struct run_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kvm_device = KVM_DEVICE_DEFAULT;
	cfg->mem = CLI_MEM_DEFAULT;
	cfg->vcpus = 1;
	cfg->cmdline = "";
	*cmd = CLI_HELP;
	if (argc < 2) {
		pr_err("usage: no command given; see 'faultline --help'");
		return -EINVAL;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return 0;
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		*cmd = CLI_VERSION;
		return 0;
	}
	if (!strcmp(argv[1], "run")) {
		*cmd = CLI_RUN;
		return parse_run(argc - 1, argv + 1, cmd, cfg);
	}
	pr_err("usage: unknown command (%s); see 'faultline --help'", argv[1]);
	return -EINVAL;
}

void cli__usage(FILE *out)
{
	fprintf(out, "Usage: faultline run --kernel FILE [OPTIONS]\n"
		     "       faultline version\n"
		     "       faultline help\n"
		     "\n"
		     "Boots a microVM on KVM: guest RAM, vCPU threads, a serial console on\n"
		     "port 0x3f8 and an exit device on port 0x501. The guest is entered in\n"
		     "64-bit mode at its ELF entry with %%rdi = GPA of a flattened device tree.\n"
		     "\n"
		     "Options of run:\n");
#define CLI_HELPLINE(name, short_name, has_arg, metavar, help)                                     \
	do {                                                                                       \
		char opt[40];                                                                      \
		snprintf(opt, sizeof(opt), "%s%s%s", name, has_arg ? " " : "", metavar);           \
		fprintf(out, "  --%-22s %s\n", opt, help);                                         \
	} while (0);
	FL_RUN_OPTIONS(CLI_HELPLINE)
#undef CLI_HELPLINE
	fprintf(out,
		"\n"
		"Exit status:\n"
		"  0-%d  the guest's own status, written to the exit device\n",
		FL_GUEST_STATUS_MAX);
#define CLI_STATUSLINE(name, value, text) fprintf(out, "  %-5d %s\n", value, text);
	FL_EXIT_STATUSES(CLI_STATUSLINE)
#undef CLI_STATUSLINE
	fprintf(out, "  128+N killed by signal N (SIGINT, SIGTERM, SIGHUP)\n"
		     "\n"
		     "Without /dev/kvm, run inside the nested harness:\n"
		     "  tests/nested/run -- build/faultline run --kernel "
		     "build/guest/faultline-guest.elf\n"
		     "\n"
		     "Docs: README.md, docs/cli.md, docs/architecture.md\n");
}
