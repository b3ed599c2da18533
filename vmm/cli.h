/*
 * Command line of faultline: `faultline run [OPTIONS]`, `faultline version`,
 * `faultline help`. The options of `run` come from one table,
 * FL_RUN_OPTIONS, which feeds the parser, `--help` and docs/cli.md.
 * Parsing never exits: it returns an error and reports with pr_err().
 */
#ifndef FAULTLINE_CLI_H
#define FAULTLINE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define KVM_DEVICE_DEFAULT "/dev/kvm"
#define CLI_MAX_GUEST_ARGS 64
#define CLI_GUEST_KEY_MAX  31
#define CLI_MEM_DEFAULT	   (128ULL << 20)
#define CLI_MEM_MIN	   (4ULL << 20)
#define CLI_MEM_MAX	   (63ULL << 30)
#define CLI_MEM_ALIGN	   (2ULL << 20)
#define CLI_VCPUS_MAX	   64

/* X(long name, short, takes an argument, metavar, help) */
#define FL_RUN_OPTIONS(X)                                                                          \
	X("kernel", 'k', 1, "FILE", "guest image to boot: a static x86-64 ELF (required)")         \
	X("mem", 'm', 1, "SIZE",                                                                   \
	  "guest RAM, e.g. 256M or 2G (default 128M; 4M..63G, a multiple of 2M)")                  \
	X("vcpus", 'c', 1, "N", "number of vCPUs (default 1, at most 64)")                         \
	X("cmdline", 'a', 1, "STR", "command line passed in /chosen/bootargs")                     \
	X("guest-arg", 'g', 1, "KEY=VALUE", "guest argument in /chosen/guest-args (repeatable)")   \
	X("help", 'h', 0, "", "show this help")

enum cli_command {
	CLI_RUN,
	CLI_VERSION,
	CLI_HELP,
};

struct guest_arg {
	const char *key; /* points into argv */
	size_t key_len;
	const char *value;
};

struct run_config {
	const char *kvm_device; /* /dev/kvm, or $FAULTLINE_KVM_DEVICE */
	const char *kernel;
	uint64_t mem;
	unsigned vcpus;
	const char *cmdline;
	unsigned nr_guest_args;
	struct guest_arg guest_args[CLI_MAX_GUEST_ARGS];
};

/*
 * Parse argv. Returns 0 and fills @cmd (and @cfg for CLI_RUN), or -EINVAL
 * after reporting the problem. @cfg keeps pointers into @argv.
 */
int cli__parse(int argc, char **argv, enum cli_command *cmd, struct run_config *cfg)
	__attribute__((warn_unused_result));

/* Parse "256M", "2G", "4096K", "1048576": bytes. 0 or -EINVAL / -ERANGE. */
int cli__parse_size(const char *s, uint64_t *bytes) __attribute__((warn_unused_result));

void cli__usage(FILE *out);

#endif
