#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/size.h"
#include "tests/unit/unit.h"
#include "vmm/cmd/bench.h"
#include "vmm/cmd/cli.h"

static char log_buf[1024];

static int parse(enum cli_command *cmd, struct run_config *cfg, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	va_start(ap, cfg);
	argv[argc++] = (char *)"faultline";
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	log__capture(log_buf, sizeof(log_buf));
	return cli__parse(argc, argv, cmd, cfg);
}

#define PARSE(...) parse(&cmd, &cfg, __VA_ARGS__, (char *)NULL)

START_TEST(size_units)
{
	uint64_t v;

	ck_assert_int_eq(size__parse("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(size__parse("256M", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(size__parse("2g", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(size__parse("64KiB", &v), 0);
	ck_assert_uint_eq(v, 64ULL << 10);
	ck_assert_int_eq(size__parse("1T", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 40);
}
END_TEST

START_TEST(size_rejects)
{
	uint64_t v = 7;

	ck_assert_int_eq(size__parse("", &v), -EINVAL);
	ck_assert_int_eq(size__parse("-1M", &v), -EINVAL);
	ck_assert_int_eq(size__parse("12Q", &v), -EINVAL);
	ck_assert_int_eq(size__parse("M", &v), -EINVAL);
	ck_assert_int_eq(size__parse("1MB2", &v), -EINVAL);
	ck_assert_int_eq(size__parse(" 1M", &v), -EINVAL);
	ck_assert_int_eq(size__parse("99999999999999999999", &v), -ERANGE);
	ck_assert_int_eq(size__parse("17179869184G", &v), -ERANGE);
	ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(run_defaults)
{
	enum cli_command cmd;
	struct run_config cfg;

	ck_assert_int_eq(PARSE("run", "--kernel", "k.elf"), 0);
	ck_assert_int_eq(cmd, CLI_RUN);
	ck_assert_str_eq(cfg.kernel, "k.elf");
	ck_assert_uint_eq(cfg.mem, 128ULL << 20);
	ck_assert_uint_eq(cfg.vcpus, 1);
	ck_assert_ptr_null(cfg.cmdline); /* main() picks the default */
	ck_assert_uint_eq(cfg.nr_guest_args, 0);
	ck_assert_log(log_buf, "");
}
END_TEST

START_TEST(run_all_options)
{
	enum cli_command cmd;
	struct run_config cfg;

	ck_assert_int_eq(PARSE("run", "--kernel=g.elf", "--mem", "1G", "--vcpus", "4", "--cmdline",
			       "console=ttyS0", "--guest-arg", "workload=touch", "--guest-arg",
			       "pages=16", "--guest-arg", "empty="),
			 0);
	ck_assert_uint_eq(cfg.mem, 1ULL << 30);
	ck_assert_uint_eq(cfg.vcpus, 4);
	ck_assert_str_eq(cfg.cmdline, "console=ttyS0");
	ck_assert_uint_eq(cfg.nr_guest_args, 3);
	ck_assert_uint_eq(cfg.guest_args[0].key_len, 8);
	ck_assert_int_eq(strncmp(cfg.guest_args[0].key, "workload", 8), 0);
	ck_assert_str_eq(cfg.guest_args[0].value, "touch");
	ck_assert_str_eq(cfg.guest_args[1].value, "16");
	ck_assert_str_eq(cfg.guest_args[2].value, "");
	/* MMU defaults, and a limit above RAM is cut to RAM. */
	ck_assert_uint_eq(cfg.fault_around, 64);
	ck_assert_uint_eq(cfg.fault_handler, MMU_HANDLER_FAULTLINE);
	ck_assert_uint_eq(cfg.fault_threads, 1);
	ck_assert_uint_eq(cfg.fault_spin_us, 0);
	ck_assert_int_eq(cfg.stats, CLI_STATS_OFF);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--mem", "64M", "--mem-limit", "1G",
			       "--vcpus", "9", "--stats", "--backing", "file:/snap", "--prefault",
			       "--fault-spin", "50"),
			 0);
	ck_assert_uint_eq(cfg.fault_spin_us, 50);
	ck_assert_uint_eq(cfg.mem_limit, 64ULL << 20);
	ck_assert_uint_eq(cfg.fault_threads, 3);
	ck_assert_int_eq(cfg.stats, CLI_STATS_TEXT);
	ck_assert_str_eq(cfg.backing_file, "/snap");
	ck_assert(cfg.prefault);
	ck_assert_ptr_null(cfg.api);
	ck_assert_int_eq(cfg.on_oom, VM_OOM_KILL);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--on-oom", "pause", "--api", "/run/a.sock"),
			 0);
	ck_assert_int_eq(cfg.on_oom, VM_OOM_PAUSE);
	ck_assert_uint_eq(cfg.oom_pause_timeout_s, 0);
	ck_assert_str_eq(cfg.api, "/run/a.sock");
	ck_assert_int_eq(
		PARSE("run", "--kernel", "k", "--on-oom", "pause,timeout=30", "--api", "s"), 0);
	ck_assert_int_eq(cfg.on_oom, VM_OOM_PAUSE);
	ck_assert_uint_eq(cfg.oom_pause_timeout_s, 30);
	ck_assert_uint_eq(cfg.boot_timeout_s, 0); /* the default: no limit */
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--boot-timeout", "120"), 0);
	ck_assert_uint_eq(cfg.boot_timeout_s, 120);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--boot-timeout", "86400"), 0);
	ck_assert_uint_eq(cfg.boot_timeout_s, 86400);
	ck_assert_int_eq(cfg.seccomp, SECCOMP_ON); /* the default */
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--seccomp", "log"), 0);
	ck_assert_int_eq(cfg.seccomp, SECCOMP_LOG);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--seccomp", "off"), 0);
	ck_assert_int_eq(cfg.seccomp, SECCOMP_OFF);
	ck_assert_int_eq(PARSE("ctl", "/run/a.sock", "status"), 0);
	ck_assert_int_eq(cmd, CLI_CTL);
}
END_TEST

START_TEST(run_errors)
{
	static const struct {
		const char *argv[4];
		const char *msg;
	} cases[] = {
		{{"run", NULL},
		 "faultline: usage: run needs --kernel FILE, a --config naming one, or --restore "
		 "DIR; see 'faultline --help'\n"},
		{{"run", "--restore", "D", "--vcpus"},
		 "faultline: usage: option needs a value (--vcpus)\n"},
		{{"run", "--kernel", "k", "--bogus"},
		 "faultline: usage: unknown option (--bogus); see 'faultline --help'\n"},
		{{"run", "--kernel", NULL}, "faultline: usage: option needs a value (--kernel)\n"},
		{{"run", "--kernel", "k", "extra"},
		 "faultline: usage: unexpected argument (extra); see 'faultline --help'\n"},
		{{"run", "--mem", "3M", "--kernel"},
		 "faultline: invalid option value: guest RAM must be 4M..63G (--mem: 3M)\n"},
		{{"run", "--fault-spin", "10001", NULL},
		 "faultline: invalid option value: expected a number from 0 to 10000 "
		 "(--fault-spin: "
		 "10001)\n"},
		{{"run", "--mem", "64G", NULL},
		 "faultline: invalid option value: guest RAM must be 4M..63G (--mem: 64G)\n"},
		{{"run", "--mem", "5M", NULL},
		 "faultline: invalid option value: guest RAM must be a multiple of 2M (--mem: "
		 "5M)\n"},
		{{"run", "--mem", "lots", NULL},
		 "faultline: invalid option value: expected a size like 256M or 2G (--mem: "
		 "lots)\n"},
		{{"run", "--vcpus", "0", NULL},
		 "faultline: invalid option value: expected a number from 1 to 64 (--vcpus: 0)\n"},
		{{"run", "--vcpus", "65", NULL},
		 "faultline: invalid option value: expected a number from 1 to 64 (--vcpus: 65)\n"},
		{{"run", "--vcpus", "2x", NULL},
		 "faultline: invalid option value: expected a number from 1 to 64 (--vcpus: 2x)\n"},
		{{"run", "--guest-arg", "novalue", NULL},
		 "faultline: invalid option value: expected KEY=VALUE, KEY of 1-31 letters, digits "
		 "or ,._+- and not 'name' (--guest-arg: novalue)\n"},
		{{"run", "--guest-arg", "bad key=1", NULL},
		 "faultline: invalid option value: expected KEY=VALUE, KEY of 1-31 letters, digits "
		 "or ,._+- and not 'name' (--guest-arg: bad key=1)\n"},
		{{"run", "--guest-arg", "name=x", NULL},
		 "faultline: invalid option value: expected KEY=VALUE, KEY of 1-31 letters, digits "
		 "or ,._+- and not 'name' (--guest-arg: name=x)\n"},
		{{"run", "--kernel", "k", "--on-oom=pause"},
		 "faultline: invalid option value: pause needs --api SOCKET, the control socket "
		 "through which the VM is resumed (--on-oom: pause)\n"},
		{{"run", "--on-oom", "panic", NULL},
		 "faultline: invalid option value: expected kill, mce, pause or "
		 "pause,timeout=SECS (--on-oom: panic)\n"},
		{{"run", "--seccomp", "strict", NULL},
		 "faultline: invalid option value: expected on, off or log (--seccomp: strict)\n"},
		{{"run", "--on-oom", "pause,timeout=0", NULL},
		 "faultline: invalid option value: expected a timeout of 1 to 86400 seconds "
		 "(--on-oom: pause,timeout=0)\n"},
		{{"run", "--on-oom", "pause,timeout=-5", NULL},
		 "faultline: invalid option value: expected a timeout of 1 to 86400 seconds "
		 "(--on-oom: pause,timeout=-5)\n"},
		{{"run", "--on-oom", "pause,timeout=86401", NULL},
		 "faultline: invalid option value: expected a timeout of 1 to 86400 seconds "
		 "(--on-oom: pause,timeout=86401)\n"},
		{{"run", "--fault-around", "3", NULL},
		 "faultline: invalid option value: expected a power of two (--fault-around: 3)\n"},
		{{"run", "--fault-around", "1024", NULL},
		 "faultline: invalid option value: expected a number from 1 to 512 "
		 "(--fault-around: 1024)\n"},
		{{"run", "--mem-limit", "100", NULL},
		 "faultline: invalid option value: expected a size of at least 4K, a multiple of "
		 "4K (--mem-limit: 100)\n"},
		{{"run", "--backing", "disk:x", NULL},
		 "faultline: invalid option value: expected zero or file:PATH (--backing: "
		 "disk:x)\n"},
		{{"run", "--stats=xml", NULL},
		 "faultline: invalid option value: expected --stats, --stats=text or --stats=json "
		 "(--stats=xml)\n"},
		{{"frobnicate", NULL},
		 "faultline: usage: unknown command (frobnicate); see 'faultline --help'\n"},
	};
	enum cli_command cmd;
	struct run_config cfg;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(parse(&cmd, &cfg, cases[i].argv[0], cases[i].argv[1],
				    cases[i].argv[2], cases[i].argv[3], (char *)NULL) == -EINVAL,
			      "case %zu parsed", i);
		ck_assert_log(log_buf, cases[i].msg);
	}
}
END_TEST

/*
 * --disk PATH[,ro|,rw]: the suffix is cut off the path (argv is written);
 * a comma of the path's own stays; a suffix alone is refused, as given.
 */
START_TEST(disk_paths)
{
	char a[] = "a.img,ro", b[] = "b,c.img", c[] = "d.img,rw", e[] = ",ro";
	enum cli_command cmd;
	struct run_config cfg;

	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--disk", a, "--disk", b, "--disk", c), 0);
	ck_assert_uint_eq(cfg.nr_disks, 3);
	ck_assert_str_eq(cfg.disks[0].path, "a.img");
	ck_assert(cfg.disks[0].read_only);
	ck_assert_str_eq(cfg.disks[1].path, "b,c.img");
	ck_assert(!cfg.disks[1].read_only);
	ck_assert_str_eq(cfg.disks[2].path, "d.img");
	ck_assert(!cfg.disks[2].read_only);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--disk", e), -EINVAL);
	ck_assert_log(log_buf,
		      "faultline: invalid option value: expected PATH[,ro] (--disk: ,ro)\n");
	ck_assert_str_eq(e, ",ro");
}
END_TEST

START_TEST(guest_arg_limits)
{
	enum cli_command cmd;
	struct run_config cfg;
	char *argv[4 + 2 * (VM_MAX_GUEST_ARGS + 1)];
	char keys[VM_MAX_GUEST_ARGS + 1][16];
	int argc = 0, i;

	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--guest-arg", "a=1", "--guest-arg", "a=2"),
			 -EINVAL);
	ck_assert_log(log_buf,
		      "faultline: invalid option value: key given twice (--guest-arg: a=2)\n");
	ck_assert_int_eq(
		PARSE("run", "--kernel", "k", "--guest-arg", "0123456789012345678901234567890=1"),
		0);
	ck_assert_int_eq(
		PARSE("run", "--kernel", "k", "--guest-arg", "01234567890123456789012345678901=1"),
		-EINVAL);

	argv[argc++] = (char *)"faultline";
	argv[argc++] = (char *)"run";
	argv[argc++] = (char *)"--kernel=k";
	for (i = 0; i <= VM_MAX_GUEST_ARGS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d=v", i);
		argv[argc++] = (char *)"--guest-arg";
		argv[argc++] = keys[i];
	}
	log__capture(log_buf, sizeof(log_buf));
	ck_assert_int_eq(cli__parse(argc, argv, &cmd, &cfg), -EINVAL);
	ck_assert_log(log_buf, "faultline: invalid option value: more than 64 guest arguments "
			       "(--guest-arg: k64=v)\n");
	ck_assert_uint_eq(cfg.nr_guest_args, VM_MAX_GUEST_ARGS);
}
END_TEST

/* --dedup MODE[,KNOB=N...]: the knobs come from DEDUP_KNOBS. */
START_TEST(dedup_option)
{
	static const struct {
		const char *arg, *msg;
	} bad[] = {
		{"maybe", "faultline: invalid option value: expected off, zero or on (--dedup: "
			  "maybe)\n"},
		{"off,run=1", "faultline: invalid option value: knobs need --dedup zero or on "
			      "(--dedup: off,run=1)\n"},
		{"on,pages=1",
		 "faultline: invalid option value: unknown dedup knob pages; expected "
		 "one of run pages_to_scan sleep_ms max_page_sharing map_limit "
		 "(--dedup)\n"},
		{"on,run=3", "faultline: invalid option value: run=3 is not a whole number in its "
			     "range; see faultline run --help (--dedup)\n"},
		{"zero,sleep_ms=fast", "faultline: invalid option value: sleep_ms=fast is not a "
				       "whole number in its range; see faultline run --help "
				       "(--dedup)\n"},
		{"on,run", "faultline: invalid option value: expected KEY=VALUE (--dedup: run)\n"},
	};
	enum cli_command cmd;
	struct run_config cfg;
	char a[64];
	unsigned i;

	ck_assert_int_eq(PARSE("run", "--kernel", "k"), 0);
	ck_assert_int_eq(cfg.dedup, DEDUP_OFF);
	ck_assert_uint_eq(cfg.dedup_knobs.pages_to_scan, 256);
	snprintf(a, sizeof(a), "on,pages_to_scan=4096,sleep_ms=0,max_page_sharing=8");
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--dedup", a), 0);
	ck_assert_int_eq(cfg.dedup, DEDUP_ON);
	ck_assert_uint_eq(cfg.dedup_knobs.pages_to_scan, 4096);
	ck_assert_uint_eq(cfg.dedup_knobs.sleep_ms, 0);
	ck_assert_uint_eq(cfg.dedup_knobs.max_page_sharing, 8);
	ck_assert_uint_eq(cfg.dedup_knobs.run, 1);
	snprintf(a, sizeof(a), "zero");
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--dedup", a), 0);
	ck_assert_int_eq(cfg.dedup, DEDUP_ZERO);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(a, sizeof(a), "%s", bad[i].arg);
		ck_assert_int_eq(PARSE("run", "--kernel", "k", "--dedup", a), -EINVAL);
		ck_assert_str_eq(log_buf, bad[i].msg);
	}
}
END_TEST

/*
 * --hugepages: 512 pages a fault, and nothing that works in 4 KiB pages
 * beside it (each refusal names the option).
 */
START_TEST(hugepages_option)
{
	static const struct {
		const char *opt, *val, *with;
	} bad[] = {
		{"--fault-handler", "naive", "--fault-handler naive"},
		{"--fault-handler", "kernel", "--fault-handler kernel"},
		{"--backing", "file:/snap", "--backing file"},
		{"--dedup", "zero", "--dedup"},
		{"--fault-ahead", "1024", "--fault-ahead"},
		{"--on-oom", "mce", "--on-oom mce"},
		{"--diff-snapshots", "--stats", "--diff-snapshots"},
	};
	enum cli_command cmd;
	struct run_config cfg;
	char want[256];
	unsigned i;

	ck_assert_int_eq(PARSE("run", "--kernel", "k"), 0);
	ck_assert(!cfg.hugepages);
	ck_assert_uint_eq(cfg.fault_around, CLI_FAULT_AROUND_DEFAULT);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--hugepages", "--mem-limit", "64M"), 0);
	ck_assert(cfg.hugepages);
	ck_assert_uint_eq(cfg.fault_around, 512);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--hugepages", "--fault-around", "512"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(
			PARSE("run", "--kernel", "k", "--hugepages", bad[i].opt, bad[i].val),
			-EINVAL);
		snprintf(want, sizeof(want),
			 "faultline: invalid option value: guest RAM on huge pages is served 2 MiB "
			 "at a time, and %s works in pages of 4 KiB (--hugepages)\n",
			 bad[i].with);
		ck_assert_str_eq(log_buf, want);
	}
	/* the balloon gives back whole huge pages (mmu__discard) */
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--balloon", "--hugepages"), 0);
	ck_assert(cfg.balloon && cfg.hugepages);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--hugepages", "--fault-around", "16"),
			 -EINVAL);
	ck_assert_str_eq(log_buf, "faultline: invalid option value: with --hugepages every fault "
				  "installs 512 pages (--fault-around: 16)\n");
}
END_TEST

/* --shm and --vram: KEY=VALUE lists, split in place (so writable copies here). */
START_TEST(device_options)
{
	static const struct {
		const char *opt, *arg, *msg;
	} bad[] = {
		{"--shm", "/f",
		 "faultline: invalid option value: --shm needs size=SIZE (--shm: /f)\n"},
		{"--shm", ",size=4K",
		 "faultline: invalid option value: expected PATH,size=SIZE (--shm)\n"},
		{"--shm", "/f,size=5000",
		 "faultline: invalid option value: expected size=SIZE of 4K..256M, a multiple of "
		 "4K "
		 "(--shm: size=5000)\n"},
		{"--shm", "/f,size=512M",
		 "faultline: invalid option value: expected size=SIZE of 4K..256M, a multiple of "
		 "4K "
		 "(--shm: size=512M)\n"},
		{"--shm", "/f,size=4K,colour=red",
		 "faultline: invalid option value: unknown key colour; expected size or doorbell "
		 "(--shm)\n"},
		{"--shm", "/f,size",
		 "faultline: invalid option value: expected KEY=VALUE (--shm: size)\n"},
		{"--vram", "pool=8K", "faultline: invalid option value: --vram needs size=SIZE\n"},
		{"--vram", "size=8K,pool=16K",
		 "faultline: invalid option value: the pool is larger than the BAR (--vram: pool "
		 "16384 "
		 "bytes, size 8192 bytes)\n"},
		{"--vram", "size=8K,doorbell=/x",
		 "faultline: invalid option value: unknown key doorbell; expected size or pool "
		 "(--vram)\n"},
	};
	enum cli_command cmd;
	struct run_config cfg;
	char a[64], b[64];
	unsigned i;

	snprintf(a, sizeof(a), "/tmp/x,size=64K,doorbell=/tmp/bell");
	snprintf(b, sizeof(b), "size=256K,pool=16K");
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--shm", a, "--vram", b), 0);
	ck_assert_str_eq(cfg.shm_path, "/tmp/x");
	ck_assert_uint_eq(cfg.shm_size, 64 << 10);
	ck_assert_str_eq(cfg.shm_doorbell, "/tmp/bell");
	ck_assert_uint_eq(cfg.vram_size, 256 << 10);
	ck_assert_uint_eq(cfg.vram_pool, 16 << 10);
	snprintf(b, sizeof(b), "size=8K");
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--vram", b), 0);
	ck_assert_uint_eq(cfg.vram_pool, 4096); /* a quarter, at least a page */
	ck_assert_ptr_null(cfg.shm_path);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(a, sizeof(a), "%s", bad[i].arg);
		ck_assert_int_eq(PARSE("run", "--kernel", "k", bad[i].opt, a), -EINVAL);
		ck_assert_str_eq(log_buf, bad[i].msg);
	}
}
END_TEST

/* --restore: what may change is taken, what the snapshot fixes is refused by name. */
START_TEST(restore_option)
{
	static char shm[] = "f,size=4K", vram[] = "size=8K"; /* split in place */
	const char *const fixed[][2] = {
		{"--mem", "256M"},	{"--vcpus", "2"},  {"--kernel", "k"}, {"--balloon", NULL},
		{"--cmdline", "x"},	{"--dedup", "on"}, {"--config", "c"}, {"--backing", "zero"},
		{"--guest-arg", "a=1"}, {"--shm", shm},	   {"--vram", vram},
	};
	enum cli_command cmd;
	struct run_config cfg;
	char want[256];
	unsigned i;

	ck_assert_int_eq(PARSE("run", "--restore", "D", "--mem-limit", "64M", "--on-oom", "mce",
			       "--api", "S", "--fault-around", "16", "--stats"),
			 0);
	ck_assert_str_eq(cfg.restore, "D");
	ck_assert_ptr_null(cfg.kernel);
	ck_assert(cfg.mem_limit_given && cfg.on_oom_given);
	ck_assert_uint_eq(cfg.mem_limit, 64 << 20);
	ck_assert_int_eq(cfg.on_oom, VM_OOM_MCE);
	ck_assert_uint_eq(cfg.fault_around, 16);
	ck_assert_int_eq(PARSE("run", "--restore", "D"), 0);
	ck_assert(!cfg.mem_limit_given && !cfg.on_oom_given);
	/* The disks' paths may change: a copy of each image. */
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--disk", "copy.img"), 0);
	ck_assert_uint_eq(cfg.nr_disks, 1);
	/* --diff-snapshots: a restored VM tracks what it writes too. */
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--diff-snapshots"), 0);
	ck_assert(cfg.diff_snapshots);
	ck_assert_int_eq(
		PARSE("run", "--kernel", "k", "--fault-handler", "naive", "--diff-snapshots"),
		-EINVAL);
	/* So may the channel's socket: its host side is a new one. */
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--channel", "new.sock"), 0);
	ck_assert_str_eq(cfg.channel, "new.sock");
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		/* --config reads its file first: one that is not there fails before. */
		if (!strcmp(fixed[i][0], "--config"))
			continue;
		if (fixed[i][1])
			ck_assert_msg(PARSE("run", "--restore", "D", fixed[i][0], fixed[i][1]) ==
					      -EINVAL,
				      "%s accepted", fixed[i][0]);
		else
			ck_assert_msg(PARSE("run", "--restore", "D", fixed[i][0]) == -EINVAL,
				      "%s accepted", fixed[i][0]);
		snprintf(want, sizeof(want),
			 "faultline: usage: the snapshot fixes the guest, its RAM, vCPUs and "
			 "devices; "
			 "%s cannot be given with --restore\n",
			 fixed[i][0]);
		ck_assert_str_eq(log_buf, want);
	}
}
END_TEST

/* --record-ws[=STOP] and --prefetch: a restore's, and not together. */
START_TEST(working_set_options)
{
	enum cli_command cmd;
	struct run_config cfg;

	ck_assert_int_eq(PARSE("run", "--restore", "D"), 0);
	ck_assert(!cfg.record_ws);
	ck_assert_int_eq(cfg.prefetch, VM_PREFETCH_AUTO);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--record-ws"), 0);
	ck_assert(cfg.record_ws);
	ck_assert_int_eq(cfg.record_until.kind, VM_WS_STOP_END);
	ck_assert_int_eq(cfg.prefetch, VM_PREFETCH_OFF);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--record-ws=port"), 0);
	ck_assert_int_eq(cfg.record_until.kind, VM_WS_STOP_PORT);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--record-ws=500ms"), 0);
	ck_assert_int_eq(cfg.record_until.kind, VM_WS_STOP_MS);
	ck_assert_uint_eq(cfg.record_until.value, 500);
	ck_assert_int_eq(
		PARSE("run", "--restore", "D", "--record-ws=1000pages", "--prefetch", "off"), 0);
	ck_assert_uint_eq(cfg.record_until.value, 1000);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--prefetch", "seq"), 0);
	ck_assert_int_eq(cfg.prefetch, VM_PREFETCH_SEQ);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--prefetch", "ws"), 0);
	ck_assert_int_eq(cfg.prefetch, VM_PREFETCH_WS);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--record-ws=5s"), -EINVAL);
	ck_assert_str_eq(log_buf, "faultline: invalid option value: expected port, a number of "
				  "milliseconds (250ms, at most 3600000ms) or of pages (1000pages) "
				  "(--record-ws: 5s)\n");
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--prefetch", "all"), -EINVAL);
	ck_assert_str_eq(log_buf,
			 "faultline: invalid option value: expected off, ws or seq (--prefetch: "
			 "all)\n");
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--record-ws", "--prefetch", "ws"),
			 -EINVAL);
	ck_assert_str_eq(log_buf, "faultline: usage: --record-ws records what the guest faults on, "
				  "and --prefetch ws would install it first; give one of them\n");
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--record-ws"), -EINVAL);
	ck_assert_str_eq(log_buf,
			 "faultline: usage: --record-ws works on a restore; give --restore DIR\n");
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--private-memory"), 0);
	ck_assert(cfg.private_memory);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--private-memory"), -EINVAL);
	ck_assert_str_eq(log_buf, "faultline: usage: --private-memory works on a restore; give "
				  "--restore DIR\n");
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--prefetch", "seq"), -EINVAL);
	ck_assert_str_eq(log_buf,
			 "faultline: usage: --prefetch works on a restore; give --restore DIR\n");
}
END_TEST

START_TEST(clone_option)
{
	enum cli_command cmd;
	struct run_config cfg;

	ck_assert_int_eq(PARSE("run", "--restore", "D"), 0);
	ck_assert(!cfg.clone_given);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--clone", "4294967295"), 0);
	ck_assert(cfg.clone_given);
	ck_assert_uint_eq(cfg.clone, 4294967295U);
	ck_assert_int_eq(PARSE("run", "--kernel", "k", "--clone", "0"), 0);
	ck_assert_uint_eq(cfg.clone, 0);
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--clone", "4294967296"), -EINVAL);
	ck_assert_str_eq(log_buf, "faultline: invalid option value: expected a number from 0 to "
				  "4294967295 (--clone: 4294967296)\n");
	ck_assert_int_eq(PARSE("run", "--restore", "D", "--clone", "-1"), -EINVAL);
	ck_assert_str_eq(log_buf, "faultline: invalid option value: expected a number from 0 to "
				  "4294967295 (--clone: -1)\n");
}
END_TEST

START_TEST(help_and_version)
{
	enum cli_command cmd;
	struct run_config cfg;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(PARSE("--help"), 0);
	ck_assert_int_eq(cmd, CLI_HELP);
	ck_assert_int_eq(PARSE("run", "--help"), 0);
	ck_assert_int_eq(cmd, CLI_HELP);
	ck_assert_int_eq(PARSE("version"), 0);
	ck_assert_int_eq(cmd, CLI_VERSION);
	ck_assert_int_eq(parse(&cmd, &cfg, (char *)NULL), -EINVAL);
	ck_assert_log(log_buf, "faultline: usage: no command given; see 'faultline --help'\n");

	f = open_memstream(&text, &len);
	cli__usage(f);
	fclose(f);
	/* Every option and every exit status of the tables appears in --help. */
	ck_assert_ptr_nonnull(strstr(text, "  --kernel FILE "));
	ck_assert_ptr_nonnull(strstr(text, "  --guest-arg KEY=VALUE "));
	ck_assert_ptr_nonnull(strstr(text, "  64    bad command line"));
	ck_assert_ptr_nonnull(strstr(text, "  69    no usable KVM"));
	ck_assert_ptr_nonnull(strstr(text, "  72    the guest crashed"));
	ck_assert_ptr_nonnull(strstr(text, "  73    the guest misbehaved"));
	ck_assert_ptr_nonnull(strstr(text, "  76    stopped through the control socket"));
	ck_assert_ptr_nonnull(strstr(text, "  --api SOCKET "));
	ck_assert_ptr_nonnull(strstr(text, "faultline ctl SOCKET COMMAND (faultline ctl --help)"));
	free(text);
}
END_TEST

/*
 * A parse that stops inside "-hh" leaves glibc's getopt there; the next one
 * (bench's: one pass) must start afresh, not read on from that string.
 */
START_TEST(a_parse_starts_afresh)
{
	char *bench_argv[] = {(char *)"bench", (char *)"--quick", NULL};
	struct bench_options o;
	enum cli_command cmd;
	struct run_config cfg;

	ck_assert_int_eq(PARSE("run", "-hh"), 0);
	ck_assert_int_eq(cmd, CLI_HELP);
	ck_assert_int_eq(bench__parse(2, bench_argv, &o), 0);
	ck_assert(o.quick);
}
END_TEST

Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, size_units);
	tcase_add_test(tc, a_parse_starts_afresh);
	tcase_add_test(tc, size_rejects);
	tcase_add_test(tc, run_defaults);
	tcase_add_test(tc, run_all_options);
	tcase_add_test(tc, run_errors);
	tcase_add_test(tc, disk_paths);
	tcase_add_test(tc, guest_arg_limits);
	tcase_add_test(tc, device_options);
	tcase_add_test(tc, dedup_option);
	tcase_add_test(tc, hugepages_option);
	tcase_add_test(tc, help_and_version);
	tcase_add_test(tc, restore_option);
	tcase_add_test(tc, working_set_options);
	tcase_add_test(tc, clone_option);
	suite_add_tcase(s, tc);
	return s;
}
