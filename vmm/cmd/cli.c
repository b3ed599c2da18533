#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/size.h"
#include "lib/status.h"
#include "vmm/cmd/cli.h"
#include "vmm/cmd/config.h"
#include "vmm/vm/ws.h"

static int parse_mem(const char *s, uint64_t *mem)
{
	int ret = size__parse(s, mem);

	if (ret) {
		pr_err("invalid option value: %s (--mem: %s)",
		       ret == -ERANGE ? "too large" : "expected a size like 256M or 2G", s);
		return -EINVAL;
	}
	if (*mem < VM_MEM_MIN || *mem > VM_MEM_MAX) {
		pr_err("invalid option value: guest RAM must be 4M..63G (--mem: %s)", s);
		return -EINVAL;
	}
	if (*mem % VM_MEM_ALIGN) {
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
	if (*s < '0' || *s > '9' || *end || errno || v < 1 || v > VM_VCPUS_MAX) {
		pr_err("invalid option value: expected a number from 1 to %d (--vcpus: %s)",
		       VM_VCPUS_MAX, s);
		return -EINVAL;
	}
	*vcpus = (unsigned)v;
	return 0;
}

/* Keys become device-tree property names: keep to the characters those allow. */
static bool guest_key_valid(const char *key, size_t len)
{
	size_t i;

	if (len == 0 || len > FDT_GUEST_KEY_MAX)
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
		       FDT_GUEST_KEY_MAX, s);
		return -EINVAL;
	}
	for (i = 0; i < cfg->nr_guest_args; i++) {
		ga = &cfg->guest_args[i];
		if (ga->key_len == (size_t)(eq - s) && !strncmp(ga->key, s, ga->key_len)) {
			pr_err("invalid option value: key given twice (--guest-arg: %s)", s);
			return -EINVAL;
		}
	}
	if (cfg->nr_guest_args == VM_MAX_GUEST_ARGS) {
		pr_err("invalid option value: more than %d guest arguments (--guest-arg: %s)",
		       VM_MAX_GUEST_ARGS, s);
		return -EINVAL;
	}
	ga = &cfg->guest_args[cfg->nr_guest_args++];
	ga->key = s;
	ga->key_len = (size_t)(eq - s);
	ga->value = eq + 1;
	return 0;
}

static const struct option run_options[] = {
#define CLI_LONGOPT(name, short_name, has_arg, metavar, help) {name, has_arg, NULL, short_name},
	FL_RUN_OPTIONS(CLI_LONGOPT)
#undef CLI_LONGOPT
		{NULL, 0, NULL, 0},
};

static int parse_number(const char *opt, const char *s, unsigned long min, unsigned long max,
			unsigned *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < min || v > max) {
		pr_err("invalid option value: expected a number from %lu to %lu (--%s: %s)", min,
		       max, opt, s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* A number from 0 to 2^32 - 1 for --@opt. */
static int parse_number32(const char *opt, const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v > UINT32_MAX) {
		pr_err("invalid option value: expected a number from 0 to %u (--%s: %s)",
		       UINT32_MAX, opt, s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_mem_limit(const char *s, uint64_t *limit)
{
	if (size__parse(s, limit) || *limit < 4096 || *limit % 4096) {
		pr_err("invalid option value: expected a size of at least 4K, a multiple of 4K "
		       "(--mem-limit: %s)",
		       s);
		return -EINVAL;
	}
	return 0;
}

/* kill, mce, pause or pause,timeout=SECS */
static int parse_on_oom(const char *s, struct run_config *cfg)
{
	const char *t = "pause,timeout=";
	unsigned long secs;
	char *end;

	cfg->oom_pause_timeout_s = 0;
	if (!strcmp(s, "kill"))
		cfg->on_oom = VM_OOM_KILL;
	else if (!strcmp(s, "mce"))
		cfg->on_oom = VM_OOM_MCE;
	else if (!strcmp(s, "pause"))
		cfg->on_oom = VM_OOM_PAUSE;
	else if (!strncmp(s, t, strlen(t))) {
		errno = 0;
		secs = strtoul(s + strlen(t), &end, 10);
		if (errno || end == s + strlen(t) || *end || s[strlen(t)] == '-' || secs < 1 ||
		    secs > VM_OOM_PAUSE_TIMEOUT_MAX) {
			pr_err("invalid option value: expected a timeout of 1 to %d seconds "
			       "(--on-oom: %s)",
			       VM_OOM_PAUSE_TIMEOUT_MAX, s);
			return -EINVAL;
		}
		cfg->on_oom = VM_OOM_PAUSE;
		cfg->oom_pause_timeout_s = (unsigned)secs;
	} else {
		pr_err("invalid option value: expected kill, mce, pause or pause,timeout=SECS "
		       "(--on-oom: %s)",
		       s);
		return -EINVAL;
	}
	return 0;
}

static int parse_handler(const char *s, enum mmu_handler *handler)
{
	if (!strcmp(s, "faultline"))
		*handler = MMU_HANDLER_FAULTLINE;
	else if (!strcmp(s, "naive"))
		*handler = MMU_HANDLER_NAIVE;
	else if (!strcmp(s, "kernel"))
		*handler = MMU_HANDLER_KERNEL;
	else {
		pr_err("invalid option value: expected faultline, naive or kernel "
		       "(--fault-handler: %s)",
		       s);
		return -EINVAL;
	}
	return 0;
}

static int parse_backing(const char *s, const char **file)
{
	if (!strcmp(s, "zero")) {
		*file = NULL;
		return 0;
	}
	if (!strncmp(s, "file:", 5) && s[5]) {
		*file = s + 5;
		return 0;
	}
	pr_err("invalid option value: expected zero or file:PATH (--backing: %s)", s);
	return -EINVAL;
}

static int parse_stats(const char *s, enum cli_stats *stats)
{
	if (!s || !strcmp(s, "text"))
		*stats = CLI_STATS_TEXT;
	else if (!strcmp(s, "json"))
		*stats = CLI_STATS_JSON;
	else {
		pr_err("invalid option value: expected --stats, --stats=text or --stats=json "
		       "(--stats=%s)",
		       s);
		return -EINVAL;
	}
	return 0;
}

static int parse_seccomp(const char *s, enum seccomp_mode *mode)
{
	if (!strcmp(s, "on"))
		*mode = SECCOMP_ON;
	else if (!strcmp(s, "log"))
		*mode = SECCOMP_LOG;
	else if (!strcmp(s, "off"))
		*mode = SECCOMP_OFF;
	else {
		pr_err("invalid option value: expected on, off or log (--seccomp: %s)", s);
		return -EINVAL;
	}
	return 0;
}

/* A BAR size: 4K..256M, a multiple of 4K. */
static int parse_bar_size(const char *opt, const char *key, const char *s, uint64_t *size)
{
	if (size__parse(s, size) || !*size || *size % 4096 || *size > CLI_BAR_MAX) {
		pr_err("invalid option value: expected %s=SIZE of 4K..256M, a multiple of 4K "
		       "(--%s: %s=%s)",
		       key, opt, key, s);
		return -EINVAL;
	}
	return 0;
}

/*
 * The KEY=VALUE list after a device option's first field, split in place
 * (the strings stay in argv): calls @set for each; unknown keys are errors.
 */
static int parse_subopts(const char *opt, char *list,
			 int (*set)(const char *opt, const char *key, char *value,
				    struct run_config *cfg),
			 struct run_config *cfg)
{
	char *item, *next, *eq;
	int ret;

	for (item = list; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		eq = strchr(item, '=');
		if (!eq || eq == item || !eq[1]) {
			pr_err("invalid option value: expected KEY=VALUE (--%s: %s)", opt, item);
			return -EINVAL;
		}
		*eq = '\0';
		ret = set(opt, item, eq + 1, cfg);
		if (ret)
			return ret;
	}
	return 0;
}

static int set_device_key(const char *opt, const char *key, char *value, struct run_config *cfg)
{
	bool shm = !strcmp(opt, "shm");

	if (shm && !strcmp(key, "size"))
		return parse_bar_size(opt, key, value, &cfg->shm_size);
	if (shm && !strcmp(key, "doorbell")) {
		cfg->shm_doorbell = value;
		return 0;
	}
	if (!shm && !strcmp(key, "size"))
		return parse_bar_size(opt, key, value, &cfg->vram_size);
	if (!shm && !strcmp(key, "pool"))
		return parse_bar_size(opt, key, value, &cfg->vram_pool);
	pr_err("invalid option value: unknown key %s; expected %s (--%s)", key,
	       shm ? "size or doorbell" : "size or pool", opt);
	return -EINVAL;
}

/* --shm PATH,size=SIZE[,doorbell=PATH] */
static int parse_shm(char *arg, struct run_config *cfg)
{
	char *comma = strchr(arg, ',');

	if (comma)
		*comma = '\0';
	if (!arg[0]) {
		pr_err("invalid option value: expected PATH,size=SIZE (--shm)");
		return -EINVAL;
	}
	if (comma && parse_subopts("shm", comma + 1, set_device_key, cfg))
		return -EINVAL;
	if (!cfg->shm_size) {
		pr_err("invalid option value: --shm needs size=SIZE (--shm: %s)", arg);
		return -EINVAL;
	}
	cfg->shm_path = arg;
	return 0;
}

static int set_dedup_key(const char *opt, const char *key, char *value, struct run_config *cfg)
{
	int ret = dedup__set_knob(&cfg->dedup_knobs, key, value);

	(void)opt;
	if (ret == -ENOENT)
		pr_err("invalid option value: unknown dedup knob %s; expected one of"
#define DEDUP_KNOB_NAME(name, def, min, max, help) " " #name
		       DEDUP_KNOBS(DEDUP_KNOB_NAME) " (--dedup)",
#undef DEDUP_KNOB_NAME
		       key);
	else if (ret)
		pr_err("invalid option value: %s=%s is not a whole number in its range; see "
		       "faultline run --help (--dedup)",
		       key, value);
	return ret ? -EINVAL : 0;
}

/* --dedup off|zero|on[,KNOB=N...] */
static int parse_dedup(char *arg, struct run_config *cfg)
{
	char *comma = strchr(arg, ',');

	if (comma)
		*comma = '\0';
	if (!strcmp(arg, "off"))
		cfg->dedup = DEDUP_OFF;
	else if (!strcmp(arg, "zero"))
		cfg->dedup = DEDUP_ZERO;
	else if (!strcmp(arg, "on"))
		cfg->dedup = DEDUP_ON;
	else {
		pr_err("invalid option value: expected off, zero or on (--dedup: %s)", arg);
		return -EINVAL;
	}
	if (comma && cfg->dedup == DEDUP_OFF) {
		pr_err("invalid option value: knobs need --dedup zero or on (--dedup: off,%s)",
		       comma + 1);
		return -EINVAL;
	}
	return comma ? parse_subopts("dedup", comma + 1, set_dedup_key, cfg) : 0;
}

/* --vram size=SIZE[,pool=SIZE] */
static int parse_vram(char *arg, struct run_config *cfg)
{
	if (parse_subopts("vram", arg, set_device_key, cfg))
		return -EINVAL;
	if (!cfg->vram_size) {
		pr_err("invalid option value: --vram needs size=SIZE");
		return -EINVAL;
	}
	if (!cfg->vram_pool) {
		cfg->vram_pool = (cfg->vram_size / 4) & ~4095ULL;
		if (!cfg->vram_pool)
			cfg->vram_pool = 4096;
	}
	if (cfg->vram_pool > cfg->vram_size) {
		pr_err("invalid option value: the pool is larger than the BAR (--vram: pool %llu "
		       "bytes, size %llu bytes)",
		       (unsigned long long)cfg->vram_pool, (unsigned long long)cfg->vram_size);
		return -EINVAL;
	}
	return 0;
}

/* The options of the fault engine and memory budget. */
static int parse_fault_option(int c, const char *arg, struct run_config *cfg)
{
	switch (c) {
	case 'l': cfg->mem_limit_given = true; return parse_mem_limit(arg, &cfg->mem_limit);
	case 'o': cfg->on_oom_given = true; return parse_on_oom(arg, cfg);
	case 'b': return parse_backing(arg, &cfg->backing_file);
	case 'F': return parse_handler(arg, &cfg->fault_handler);
	case 'r': return parse_number("fault-retries", arg, 1, 1000, &cfg->fault_retries);
	case 't': return parse_number("fault-timeout", arg, 1, 3600000, &cfg->fault_timeout_ms);
	case 'T': return parse_number("fault-threads", arg, 1, 16, &cfg->fault_threads);
	case 'S': return parse_number("fault-spin", arg, 0, 10000, &cfg->fault_spin_us);
	case 'e':
		return parse_number("fault-ahead", arg, 0, MMU_FAULT_AHEAD_MAX, &cfg->fault_ahead);
	case 's': return parse_stats(arg, &cfg->stats);
	case 'f':
		if (parse_number("fault-around", arg, 1, 512, &cfg->fault_around))
			return -EINVAL;
		if (cfg->fault_around & (cfg->fault_around - 1)) {
			pr_err("invalid option value: expected a power of two (--fault-around: %s)",
			       arg);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

/* --record-ws[=port|MSms|Npages] */
static int parse_record_ws(const char *s, struct run_config *cfg)
{
	cfg->record_ws = true;
	if (!ws__parse_until(s, &cfg->record_until))
		return 0;
	pr_err("invalid option value: expected port, a number of milliseconds (250ms, at most "
	       "3600000ms) or of pages (1000pages) (--record-ws: %s)",
	       s);
	return -EINVAL;
}

static int parse_prefetch(const char *s, enum vm_prefetch *p)
{
	if (!strcmp(s, "off"))
		*p = VM_PREFETCH_OFF;
	else if (!strcmp(s, "ws"))
		*p = VM_PREFETCH_WS;
	else if (!strcmp(s, "seq"))
		*p = VM_PREFETCH_SEQ;
	else {
		pr_err("invalid option value: expected off, ws or seq (--prefetch: %s)", s);
		return -EINVAL;
	}
	return 0;
}

/* --disk PATH[,ro|,rw]: the path keeps pointing into argv, cut at the comma. */
static int parse_disk(char *arg, struct run_config *cfg)
{
	char *comma = strrchr(arg, ',');
	struct vm_disk *d;

	if (cfg->nr_disks == VM_MAX_DISKS) {
		pr_err("invalid option value: at most %d disks (--disk: %s)", VM_MAX_DISKS, arg);
		return -EINVAL;
	}
	if (comma && strcmp(comma, ",ro") && strcmp(comma, ",rw"))
		comma = NULL; /* a comma of the path's own */
	if (comma == arg || !arg[0]) {
		pr_err("invalid option value: expected PATH[,ro] (--disk: %s)", arg);
		return -EINVAL;
	}
	d = &cfg->disks[cfg->nr_disks];
	d->read_only = comma && comma[2] == 'o';
	if (comma)
		*comma = '\0';
	d->path = arg;
	cfg->nr_disks++;
	return 0;
}

/*
 * --hugepages: every fault is one whole 2 MiB page, so what works in 4 KiB
 * pages (a backing file's reclaim, dedup, the balloon's drops, fault-ahead's
 * runs, the poisoning of one page) does not go with it. Returns 0 or
 * -EINVAL after reporting.
 */
static int check_hugepages(struct run_config *cfg)
{
	const char *with = cfg->fault_handler == MMU_HANDLER_NAIVE    ? "--fault-handler naive"
			   : cfg->fault_handler == MMU_HANDLER_KERNEL ? "--fault-handler kernel"
			   : cfg->backing_file			      ? "--backing file"
			   : cfg->dedup != DEDUP_OFF		      ? "--dedup"
			   : cfg->diff_snapshots		      ? "--diff-snapshots"
			   : cfg->fault_ahead			      ? "--fault-ahead"
			   : cfg->on_oom == VM_OOM_MCE		      ? "--on-oom mce"
								      : NULL;

	if (with) {
		pr_err("invalid option value: guest RAM on huge pages is served 2 MiB at a time, "
		       "and %s works in pages of 4 KiB (--hugepages)",
		       with);
		return -EINVAL;
	}
	if (cfg->fault_around != CLI_FAULT_AROUND_DEFAULT &&
	    cfg->fault_around != MMU_FAULT_AROUND_MAX) {
		pr_err("invalid option value: with --hugepages every fault installs 512 pages "
		       "(--fault-around: %u)",
		       cfg->fault_around);
		return -EINVAL;
	}
	cfg->fault_around = MMU_FAULT_AROUND_MAX;
	return 0;
}

/* The options a snapshot fixes: refused with --restore. */
#define CLI_RESTORE_FIXED "CkiBWmcagpPHVDbF"

/* The long name of option @c. */
static const char *cli_option_name(int c)
{
	const struct option *o;

	for (o = run_options; o->name; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

/* Long options only, plus -h. */
static const char run_shortopts[] = ":h";

static int parse_run(int argc, char **argv, enum cli_command *cmd, struct run_config *cfg)
{
	int c, ret = 0;
	const char *fixed = NULL; /* an option a snapshot fixes (--restore) */
	bool disks_from_cli = false;

	/* First --config, so that the other options override what it says. */
	optind = 0; /* glibc: start over, forgetting a cluster a previous parse left */
	opterr = 0;
	while ((c = getopt_long(argc, argv, run_shortopts, run_options, NULL)) != -1) {
		if (c == 'C') {
			ret = config__load(optarg, cfg);
			if (ret)
				return ret;
		}
	}
	optind = 0; /* glibc: start over, forgetting a cluster a previous parse left */
	while ((c = getopt_long(argc, argv, run_shortopts, run_options, NULL)) != -1) {
		if (c > 0 && strchr(CLI_RESTORE_FIXED, c) && !fixed)
			fixed = cli_option_name(c);
		switch (c) {
		case 'C': break;
		case 'R': cfg->restore = optarg; break;
		case 'U': cfg->paused = true; break;
		case 'G': cfg->diff_snapshots = true; break;
		case 'w': ret = parse_record_ws(optarg, cfg); break;
		case 'j': ret = parse_prefetch(optarg, &cfg->prefetch); break;
		case 'y': cfg->private_memory = true; break;
		case 'N':
			ret = parse_number32("clone", optarg, &cfg->clone);
			cfg->clone_given = true;
			break;
		case 'k': cfg->kernel = optarg; break;
		case 'i': cfg->initrd = optarg; break;
		case 'n': cfg->channel = optarg; break;
		case 'A': cfg->api = optarg; break;
		case 'B': cfg->balloon = true; break;
		case 'W':
			ret = parse_number("boot-timeout", optarg, 1, CLI_BOOT_TIMEOUT_MAX,
					   &cfg->boot_timeout_s);
			break;
		case 'd':
			if (!disks_from_cli)
				cfg->nr_disks = 0; /* --disk replaces the config's disks */
			disks_from_cli = true;
			ret = parse_disk(optarg, cfg);
			break;
		case 'm': ret = parse_mem(optarg, &cfg->mem); break;
		case 'c': ret = parse_vcpus(optarg, &cfg->vcpus); break;
		case 'a': cfg->cmdline = optarg; break;
		case 'g': ret = parse_guest_arg(optarg, cfg); break;
		case 'p': cfg->prefault = true; break;
		case 'P': cfg->hugepages = true; break;
		case 'H': ret = parse_shm(optarg, cfg); break;
		case 'V': ret = parse_vram(optarg, cfg); break;
		case 'D': ret = parse_dedup(optarg, cfg); break;
		case 'Z': ret = parse_seccomp(optarg, &cfg->seccomp); break;
		case 'l':
		case 'o':
		case 'b':
		case 'F':
		case 'f':
		case 'r':
		case 't':
		case 'T':
		case 'S':
		case 'e':
		case 's': ret = parse_fault_option(c, optarg, cfg); break;
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
	if (cfg->restore && fixed) {
		pr_err("usage: the snapshot fixes the guest, its RAM, vCPUs and devices; --%s "
		       "cannot be given with --restore",
		       fixed);
		return -EINVAL;
	}
	if ((cfg->record_ws || cfg->prefetch != VM_PREFETCH_AUTO || cfg->private_memory) &&
	    !cfg->restore) {
		pr_err("usage: --%s works on a restore; give --restore DIR",
		       cfg->record_ws	     ? "record-ws"
		       : cfg->private_memory ? "private-memory"
					     : "prefetch");
		return -EINVAL;
	}
	if (cfg->record_ws && cfg->prefetch != VM_PREFETCH_AUTO &&
	    cfg->prefetch != VM_PREFETCH_OFF) {
		pr_err("usage: --record-ws records what the guest faults on, and --prefetch %s "
		       "would "
		       "install it first; give one of them",
		       cfg->prefetch == VM_PREFETCH_WS ? "ws" : "seq");
		return -EINVAL;
	}
	if (cfg->record_ws)
		cfg->prefetch = VM_PREFETCH_OFF; /* a recording sees every first touch */
	if (!cfg->kernel && !cfg->restore) {
		pr_err("usage: run needs --kernel FILE, a --config naming one, or --restore DIR; "
		       "see 'faultline --help'");
		return -EINVAL;
	}
	if (cfg->paused && !cfg->api) {
		pr_err("usage: --paused needs --api SOCKET, the control socket through which the "
		       "VM is resumed");
		return -EINVAL;
	}
	if (cfg->on_oom == VM_OOM_PAUSE && !cfg->api) {
		pr_err("invalid option value: pause needs --api SOCKET, the control socket through "
		       "which the VM is resumed (--on-oom: pause)");
		return -EINVAL;
	}
	if (cfg->mem_limit > cfg->mem && !cfg->restore) /* a snapshot's RAM: snapshot__open() */
		cfg->mem_limit = cfg->mem;
	if (cfg->fault_handler != MMU_HANDLER_FAULTLINE &&
	    ((cfg->mem_limit && cfg->mem_limit < cfg->mem) || cfg->backing_file ||
	     cfg->dedup != DEDUP_OFF || cfg->diff_snapshots)) {
		pr_err("invalid option value: the %s handler is a baseline without a budget, "
		       "backing file, dedup or diff snapshots (--fault-handler: %s)",
		       cfg->fault_handler == MMU_HANDLER_NAIVE ? "naive" : "kernel",
		       cfg->fault_handler == MMU_HANDLER_NAIVE ? "naive" : "kernel");
		return -EINVAL;
	}
	if (cfg->hugepages && check_hugepages(cfg))
		return -EINVAL;
	if (!cfg->fault_threads && !cfg->restore)
		cfg->fault_threads = 1 + (cfg->vcpus - 1) / 4;
	return 0;
}

int cli__parse(int argc, char **argv, enum cli_command *cmd, struct run_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kvm_device = KVM_DEVICE_DEFAULT;
	cfg->mem = CLI_MEM_DEFAULT;
	cfg->vcpus = 1;
	cfg->cmdline = NULL; /* main() picks the default for the kind of kernel */
	cfg->fault_around = CLI_FAULT_AROUND_DEFAULT;
	cfg->fault_ahead = CLI_FAULT_AHEAD_DEFAULT;
	dedup__default_knobs(&cfg->dedup_knobs);
	cfg->fault_retries = CLI_FAULT_RETRIES_DEFAULT;
	cfg->fault_timeout_ms = CLI_FAULT_TIMEOUT_DEFAULT;
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
	if (!strcmp(argv[1], "bench")) {
		*cmd = CLI_BENCH;
		return 0;
	}
	if (!strcmp(argv[1], "channel")) {
		*cmd = CLI_CHANNEL;
		return 0;
	}
	if (!strcmp(argv[1], "ctl")) {
		*cmd = CLI_CTL;
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
		     "       faultline run --config FILE [OPTIONS]\n"
		     "       faultline bench [OPTIONS]   (faultline bench --help)\n"
		     "       faultline channel SOCKET    (faultline channel --help)\n"
		     "       faultline ctl SOCKET COMMAND (faultline ctl --help)\n"
		     "       faultline version\n"
		     "       faultline help\n"
		     "\n"
		     "Boots a microVM on KVM whose RAM faultline backs lazily, page fault by\n"
		     "page fault: a Linux bzImage or vmlinux (with its initrd, virtio disks, a\n"
		     "channel to the host and a serial console on stdin/stdout), or a static\n"
		     "ELF guest such as the test guest, entered in 64-bit mode with %%rdi =\n"
		     "GPA of a flattened device tree. docs/usage.md walks through both.\n"
		     "\n"
		     "Options of run:\n");
#define CLI_HELPLINE(name, short_name, has_arg, metavar, help)                                     \
	do {                                                                                       \
		char opt[40];                                                                      \
		snprintf(opt, sizeof(opt), "%s%s%s", name, has_arg == 1 ? " " : "", metavar);      \
		fprintf(out, "  --%-22s %s\n", opt, help);                                         \
	} while (0);
	FL_RUN_OPTIONS(CLI_HELPLINE)
#undef CLI_HELPLINE
	fprintf(out, "\nKnobs of --dedup (KNOB=N, comma-separated after the mode):\n");
#define CLI_KNOBLINE(name, def, min, max, help)                                                    \
	fprintf(out, "  %-22s %s (default %llu; %llu..%llu)\n", #name, help,                       \
		(unsigned long long)(def), (unsigned long long)(min), (unsigned long long)(max));
	DEDUP_KNOBS(CLI_KNOBLINE)
#undef CLI_KNOBLINE
	fprintf(out, "\nCounters of --dedup in --stats (\"dedup\" in the JSON):\n");
#define CLI_COUNTERLINE(name, help) fprintf(out, "  %-24s %s\n", #name, help);
	DEDUP_COUNTERS(CLI_COUNTERLINE)
#undef CLI_COUNTERLINE
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
		     "Docs: README.md, docs/cli.md, docs/architecture.md, docs/dedup.md\n");
}
