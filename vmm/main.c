/*
 * faultline: a KVM microVM monitor. main() reads as the boot sequence:
 * parse the command line, read and validate the guest image, create the
 * VM, load it, run it, and turn the outcome into the exit status.
 * Only this file exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/status.h"
#include "vmm/api/vm_api.h"
#include "vmm/boot/elf.h"
#include "vmm/boot/linux.h"
#include "vmm/boot/x86_boot.h"
#include "vmm/cmd/bench.h"
#include "vmm/cmd/channel.h"
#include "vmm/cmd/cli.h"
#include "vmm/cmd/ctl.h"
#include "vmm/vm/snapshot.h"
#include "vmm/vm/ws.h"
#include "vmm/vm/vm.h"

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION "unknown"
#endif

/*
 * Read all of @path, the @what ("kernel image", "initrd"); at most @max
 * bytes. Returns 0 or an FL_EXIT_* status.
 */
static int read_file(const char *path, const char *what, uint64_t max, void **buf, size_t *len)
{
	int err = 0;

	switch (file__read_all(path, max, (uint8_t **)buf, len, &err)) {
	case FILE_OK: return 0;
	case FILE_OPEN:
		pr_err("cannot open the %s: %s (file: %s)", what, strerror(err), path);
		return FL_EXIT_NOINPUT;
	case FILE_NOT_REGULAR:
		pr_err("cannot read the %s: %s (file: %s)", what,
		       err ? strerror(err) : "not a regular file", path);
		return FL_EXIT_NOINPUT;
	case FILE_TOO_BIG:
		pr_err("invalid %s: %lld bytes is larger than guest RAM (file: %s)", what,
		       (long long)*len, path);
		return FL_EXIT_IMAGE;
	case FILE_READ:
		pr_err("cannot read the %s: %s (file: %s)", what,
		       err ? strerror(err) : "file shrank while reading", path);
		return FL_EXIT_NOINPUT;
	case FILE_NO_MEMORY: break;
	}
	pr_err("cannot read the %s: out of memory (file: %s)", what, path);
	return FL_EXIT_INTERNAL;
}

/* --stats: after the stop message, so that it stays the first line of stderr. */
static void print_stats(struct vm *vm, const struct run_config *cfg)
{
	if (cfg->stats != CLI_STATS_OFF)
		vm__print_stats(vm, cfg->stats == CLI_STATS_JSON, stderr);
}

static struct termios saved_tty;

static void restore_tty(void)
{
	tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
}

/*
 * A terminal on stdin goes to the guest's serial console a key at a time,
 * unechoed (the guest echoes); Ctrl-C still stops faultline. Restored at exit.
 */
static void raw_tty(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return;
	t = saved_tty;
	cfmakeraw(&t);
	t.c_lflag |= ISIG;
	t.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		atexit(restore_tty);
}

/*
 * The one map from a set-up error (-errno, already reported; vm.h, "Set-up
 * errors") to the exit status.
 */
static int setup_status(int err)
{
	switch (err) {
	case 0: return 0;
	case -ENODEV: return FL_EXIT_NOKVM;
	case -ENOENT:
	case -EACCES:
	case -EISDIR:
	case -ENOTDIR:
	case -ELOOP:
	case -EROFS:
	case -EMEDIUMTYPE: return FL_EXIT_NOINPUT;
	case -ERANGE:
	case -ENAMETOOLONG: return FL_EXIT_USAGE;
	case -EDQUOT: return FL_EXIT_OOM;
	case -EPROTO: return FL_EXIT_SNAPSHOT;
	default: return FL_EXIT_INTERNAL;
	}
}

/* The control socket, when --api asks for one: 0 or -errno (reported). */
static int open_api(struct vm *vm, const struct run_config *cfg)
{
	return cfg->api ? vm_api__open(vm, cfg->api) : 0;
}

/* Run the loaded VM (when @status is 0), report how it stopped, tear it down. */
static int finish(struct vm *vm, const struct run_config *cfg, int status)
{
	if (!status) {
		status = vm__run(vm);
		if (vm->stop_msg[0])
			pr_err("%s", vm->stop_msg);
		vm__print_where(vm);
		print_stats(vm, cfg);
	}
	vm__exit(vm);
	return status;
}

/*
 * Load and run a Linux bzImage or vmlinux (cfg->boot_linux). Where the kernel, initrd
 * and command line go is decided before KVM is opened: a VM that cannot
 * boot is refused without creating one.
 */
static int run_linux(struct run_config *cfg, const struct guest_ram *layout, const void *image,
		     size_t len)
{
	char why[LINUX_WHY_LEN], cmdline[LINUX_CMDLINE_MAX + 1];
	struct linux_layout lay;
	struct linux_image li;
	int n;
	void *initrd = NULL;
	size_t initrd_len = 0;
	struct vm vm;
	int status, ret;

	if (linux__parse(image, len, &li, why)) {
		pr_err("invalid kernel image: %s (file: %s)", why, cfg->kernel);
		return FL_EXIT_IMAGE;
	}
	if (cfg->initrd) {
		status = read_file(cfg->initrd, "initrd", cfg->mem, &initrd, &initrd_len);
		if (status)
			return status;
	}
	n = snprintf(cmdline, sizeof(cmdline), "%s %s", LINUX_CMDLINE_BASE, cfg->cmdline);
	if (n < 0 || (size_t)n >= sizeof(cmdline)) {
		pr_err("the kernel command line is longer than %d bytes (--cmdline)",
		       LINUX_CMDLINE_MAX - 1);
		free(initrd);
		return FL_EXIT_USAGE;
	}
	if (linux__place(&li, layout, initrd_len, cmdline, &lay, why)) {
		pr_err("cannot boot the kernel: %s (file: %s)", why, cfg->kernel);
		free(initrd);
		return FL_EXIT_USAGE;
	}
	ret = vm__init(&vm, cfg);
	ret = ret ?: open_api(&vm, cfg);
	ret = ret ?: vm__load_linux(&vm, cfg, &li, &lay, cmdline, initrd);
	status = setup_status(ret);
	free(initrd);
	if (!status)
		raw_tty();
	return finish(&vm, cfg, status);
}

/*
 * Start from a snapshot (--restore DIR): its manifest and state are checked
 * before KVM is opened; its memory is the fault engine's backing file.
 */
static int run_restore(struct run_config *cfg)
{
	struct snapshot snap;
	struct vm_ws ws = {.dir_fd = -1, .tmp_fd = -1, .done_fd = -1};
	uint32_t *pages = NULL;
	uint64_t nr_pages = 0;
	struct vm vm;
	int status, ret;

	status = snapshot__open(&snap, cfg->restore, cfg);
	/* The working set, read or created before the VM is: --prefetch, --record-ws. */
	status = status
			 ?: ws__load(snap.dir, snap.id, snap.mem / MMU_PAGE_SIZE, cfg->prefetch,
				     &pages, &nr_pages);
	if (!status && cfg->record_ws && cfg->record_until.kind == VM_WS_STOP_PORT &&
	    !snap.linux_board) {
		pr_err("usage: --record-ws=port stops at the guest's write to the boot timer, "
		       "which "
		       "only the Linux board has; give a time or a page count (--restore %s)",
		       snap.dir);
		status = FL_EXIT_USAGE;
	}
	if (!status && cfg->record_ws)
		status = ws__open(&ws, snap.dir, snap.id, &cfg->record_until);
	if (status) {
		free(pages);
		snapshot__close(&snap);
		return status;
	}
	/* Clones share a full snapshot's pages on tmpfs (mmu.h, shared); a diff's are copied. */
	cfg->share_memory = !cfg->private_memory && !snap.nr_layers;
	if (!cfg->clone_given)
		cfg->clone = (uint32_t)getpid(); /* clones of one snapshot tell themselves apart */
	ret = vm__init(&vm, cfg);
	vm.ws = ws; /* vm__exit() closes it from now on */
	ret = ret ?: open_api(&vm, cfg);
	snap.prefetch = cfg->prefetch;
	snap.ws_pages = pages;
	snap.ws_len = nr_pages;
	ret = ret ?: vm__restore(&vm, &snap);
	free(pages);
	status = setup_status(ret);
	if (!status && cfg->boot_linux)
		raw_tty();
	status = finish(&vm, cfg, status);
	snapshot__close(&snap); /* after the VM: the disks' paths are the manifest's */
	return status;
}

static int run(struct run_config *cfg)
{
	struct elf_image img;
	char why[ELF_WHY_LEN];
	void *image = NULL;
	size_t len = 0;
	struct guest_ram layout;
	struct vm vm;
	int status, ret;

	if (cfg->restore)
		return run_restore(cfg);
	if (guest_ram__layout(&layout, cfg->mem))
		return FL_EXIT_USAGE;
	status = read_file(cfg->kernel, "kernel image", cfg->mem, &image, &len);
	if (status)
		return status;
	cfg->boot_linux = linux__is_bzimage(image, len) || linux__is_vmlinux(image, len);
	if (cfg->boot_linux) {
		if (!cfg->cmdline)
			cfg->cmdline = LINUX_CMDLINE_DEFAULT;
		status = run_linux(cfg, &layout, image, len);
		free(image);
		return status;
	}
	if (!cfg->cmdline)
		cfg->cmdline = "";
	if (cfg->initrd || cfg->nr_disks || cfg->channel || cfg->balloon || cfg->boot_timeout_s) {
		pr_err("usage: %s needs a Linux kernel (bzImage or vmlinux); %s is an ELF guest",
		       cfg->initrd     ? "--initrd"
		       : cfg->nr_disks ? "--disk"
		       : cfg->channel  ? "--channel"
		       : cfg->balloon  ? "--balloon"
				       : "--boot-timeout",
		       cfg->kernel);
		free(image);
		return FL_EXIT_USAGE;
	}
	if (elf__parse(image, len, BOOT_IMAGE_MIN_GPA, layout.banks[0].size, &img, why)) {
		pr_err("invalid kernel image: %s (file: %s)", why, cfg->kernel);
		free(image);
		return FL_EXIT_IMAGE;
	}
	ret = vm__init(&vm, cfg);
	ret = ret ?: open_api(&vm, cfg);
	ret = ret ?: vm__load(&vm, cfg, image, &img);
	status = setup_status(ret);
	free(image);
	return finish(&vm, cfg, status);
}

static int bench(int argc, char **argv)
{
	struct bench_options o;
	int ret = bench__parse(argc, argv, &o);

	if (ret == 1) {
		bench__usage(stdout);
		return 0;
	}
	return ret ? FL_EXIT_USAGE : bench__main(&o);
}

/* The test-only fault injection (lib/inject.h): run and bench have sites. */
static int init_inject(void)
{
	if (!inject__init(getenv(INJECT_ENV)))
		return 0;
	pr_err("invalid test-only variable: expected SITE:ERRNO[:SKIP[:TIMES]],... (%s: %s)",
	       INJECT_ENV, getenv(INJECT_ENV));
	return FL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	int ret;

	struct run_config cfg;
	enum cli_command cmd;

	switch (cli__parse(argc, argv, &cmd, &cfg)) {
	case 0: break;
	case -ENOENT: return FL_EXIT_NOINPUT; /* the --config file */
	default: return FL_EXIT_USAGE;
	}
	switch (cmd) {
	case CLI_HELP: cli__usage(stdout); return 0;
	case CLI_VERSION: printf("faultline %s\n", FAULTLINE_VERSION); return 0;
	case CLI_RUN: break;
	case CLI_BENCH: return init_inject() ?: bench(argc - 1, argv + 1);
	case CLI_CHANNEL: return channel__main(argc - 1, argv + 1);
	case CLI_CTL: return ctl__main(argc - 1, argv + 1);
	}
	ret = init_inject();
	if (ret)
		return ret;
	/* Another KVM device node (containers, tests); see docs/cli.md. */
	if (getenv("FAULTLINE_KVM_DEVICE"))
		cfg.kvm_device = getenv("FAULTLINE_KVM_DEVICE");
	cfg.start_ns = mmu__now_ns();
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run(&cfg);
}
