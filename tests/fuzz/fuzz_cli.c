/*
 * Fuzz target: what a user types and the files they name, the way main()
 * takes them: `faultline run` options (cli__parse()), the JSON of a
 * --config file (config__load(), faultline's format and Firecracker's),
 * and `faultline bench` options (bench__parse()).
 *
 * The input is NUL-separated: the first field is the config file's text,
 * the second picks the parser ("run" or "bench"), the rest are arguments;
 * an argument "CFG" becomes the config file's path.
 *
 * Invariants, beyond "no crash, no sanitizer report": a command line that
 * is accepted describes a VM main() can build (memory, vCPUs, disks, the
 * budget and the handler within their documented limits, a kernel named),
 * and every refusal prints a message.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/cmd/bench.h"
#include "vmm/cmd/cli.h"

#define ARGS_MAX 64

static char cfg_path[64];
static int cfg_fd = -1;
static char log_buf[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log__capture(log_buf, sizeof(log_buf));
	cfg_fd = memfd_create("fuzz-config", 0);
	fuzz__check(cfg_fd >= 0, "memfd_create");
	snprintf(cfg_path, sizeof(cfg_path), "/proc/self/fd/%d", cfg_fd);
	return 0;
}

static void check_run(const struct run_config *c)
{
	unsigned i;

	fuzz__check(c->kernel || c->restore, "accepted without a kernel or a snapshot");
	fuzz__check(c->mem >= VM_MEM_MIN && c->mem <= VM_MEM_MAX && !(c->mem % VM_MEM_ALIGN),
		    "accepted --mem %llu", (unsigned long long)c->mem);
	fuzz__check(c->vcpus >= 1 && c->vcpus <= VM_VCPUS_MAX, "accepted %u vCPUs", c->vcpus);
	fuzz__check(c->nr_disks <= VM_MAX_DISKS, "accepted %u disks", c->nr_disks);
	for (i = 0; i < c->nr_disks; i++)
		fuzz__check(c->disks[i].path, "disk %u without a path", i);
	fuzz__check(c->nr_guest_args <= VM_MAX_GUEST_ARGS, "%u guest arguments", c->nr_guest_args);
	fuzz__check(c->restore || c->mem_limit <= c->mem, "a budget of %llu over --mem %llu",
		    (unsigned long long)c->mem_limit, (unsigned long long)c->mem);
	fuzz__check(c->on_oom != VM_OOM_PAUSE || c->api, "--on-oom pause without --api");
}

static void check_bench(const struct bench_options *o)
{
	unsigned i;

	fuzz__check(o->nr_vcpus <= BENCH_MAX_VCPU_COUNTS, "%u vCPU counts", o->nr_vcpus);
	for (i = 0; i < o->nr_vcpus; i++)
		fuzz__check(o->vcpus[i] >= 1 && o->vcpus[i] <= VM_VCPUS_MAX, "%u vCPUs",
			    o->vcpus[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *p, *end, *argv[ARGS_MAX + 2];
	const char *cfg_text;
	struct bench_options bo;
	struct run_config rc;
	enum cli_command cmd;
	int argc = 0, ret;
	bool bench;

	fuzz__check(buf, "out of memory");
	memcpy(buf, data, size);
	buf[size] = '\0';
	end = buf + size;
	cfg_text = buf;
	p = buf + strlen(buf) + 1;
	fuzz__check(ftruncate(cfg_fd, 0) == 0 && pwrite(cfg_fd, cfg_text, strlen(cfg_text), 0) ==
							 (ssize_t)strlen(cfg_text),
		    "cannot write the config file");
	bench = p < end && !strcmp(p, "bench");
	argv[argc++] = (char *)"faultline";
	if (!bench)
		argv[argc++] = (char *)"run";
	if (p < end)
		p += strlen(p) + 1;
	for (; p < end && argc < ARGS_MAX; p += strlen(p) + 1)
		argv[argc++] = strcmp(p, "CFG") ? p : cfg_path;
	argv[argc] = NULL;
	log_buf[0] = '\0';
	if (bench) {
		ret = bench__parse(argc - 1, argv + 1, &bo);
		if (!ret)
			check_bench(&bo);
	} else {
		ret = cli__parse(argc, argv, &cmd, &rc);
		if (!ret && cmd == CLI_RUN)
			check_run(&rc);
	}
	fuzz__check(ret >= 0 || log_buf[0], "refused (%d) without a message", ret);
	fuzz__check(!strstr(log_buf, "(null)") || memmem(data, size, "null", 4),
		    "a message printed (null): %s", log_buf);
	free(buf);
	return 0;
}
