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

#include "vmm/vm/vm_config.h"

#define CLI_MEM_DEFAULT		  (128ULL << 20)
#define CLI_FAULT_AROUND_DEFAULT  64 /* measured: docs/benchmarks.md */
#define CLI_FAULT_AHEAD_DEFAULT	  0  /* off until measured on real KVM: docs/benchmarks.md */
#define CLI_FAULT_RETRIES_DEFAULT 8
#define CLI_FAULT_TIMEOUT_DEFAULT 2000
#define CLI_BAR_MAX		  (256ULL << 20)
#define VM_OOM_PAUSE_TIMEOUT_MAX  86400
#define CLI_BOOT_TIMEOUT_MAX	  86400
#define LINUX_CMDLINE_DEFAULT	  "console=ttyS0"
#define LINUX_CMDLINE_BASE	  "reboot=k panic=1 pci=off i8042.noaux"

/* X(long name, value, argument (0 none, 1 required, 2 optional), metavar, help) */
#define FL_RUN_OPTIONS(X)                                                                          \
	X("config", 'C', 1, "FILE",                                                                \
	  "read the microVM from a JSON file (configs/default.json; also a Firecracker config's "  \
	  "boot-source, machine-config and drives); options given here override it")               \
	X("kernel", 'k', 1, "FILE",                                                                \
	  "guest image to boot: a Linux bzImage or vmlinux, or a static x86-64 ELF such as the "   \
	  "test guest (required, here or in --config)")                                            \
	X("initrd", 'i', 1, "FILE", "initial ramdisk for a Linux kernel")                          \
	X("disk", 'd', 1, "PATH[,ro]",                                                             \
	  "a raw disk image as a virtio-blk disk of a Linux guest (/dev/vda, vdb, ...; "           \
	  "repeatable, at most 4; read-write unless ,ro)")                                         \
	X("channel", 'n', 1, "SOCKET",                                                             \
	  "a host<->guest byte channel for a Linux guest: faultline listens on the Unix socket "   \
	  "SOCKET, the guest sees the virtio-console port /dev/virtio-ports/faultline.channel; "   \
	  "talk to it with 'faultline channel SOCKET'")                                            \
	X("balloon", 'B', 0, "",                                                                   \
	  "a virtio-balloon for a Linux guest's free page reports: the pages it frees are "        \
	  "dropped from its memory and its budget, and come back as zeros when touched again")     \
	X("boot-timeout", 'W', 1, "SECS",                                                          \
	  "stop a Linux guest whose init has not written the boot timer within SECS seconds "      \
	  "(1..86400) with status 77, saying where each vCPU was (default: no limit)")             \
	X("api", 'A', 1, "SOCKET",                                                                 \
	  "the control socket: faultline listens on the Unix socket SOCKET for 'faultline ctl "    \
	  "SOCKET COMMAND' (status, pause, resume, mem-limit, stats, stop, events, wait, "         \
	  "snapshot)")                                                                             \
	X("mem", 'm', 1, "SIZE",                                                                   \
	  "guest RAM, e.g. 256M or 2G (default 128M; 4M..63G, a multiple of 2M)")                  \
	X("vcpus", 'c', 1, "N", "number of vCPUs (default 1, at most 64)")                         \
	X("cmdline", 'a', 1, "STR",                                                                \
	  "kernel command line (Linux: default " LINUX_CMDLINE_DEFAULT                             \
	  ", after " LINUX_CMDLINE_BASE                                                            \
	  " and before the virtio devices' entries; the test guest gets it in /chosen/bootargs)")  \
	X("guest-arg", 'g', 1, "KEY=VALUE", "guest argument in /chosen/guest-args (repeatable)")   \
	X("mem-limit", 'l', 1, "SIZE", "resident guest memory at most (default: --mem)")           \
	X("on-oom", 'o', 1, "kill|mce|pause[,timeout=SECS]",                                       \
	  "when the limit is reached and nothing can be reclaimed: kill stops the VM (default), "  \
	  "mce injects a machine check for the page, pause pauses the VM until 'faultline ctl "    \
	  "SOCKET resume' (needs --api), and with a timeout stops it as kill would when nobody "   \
	  "resumed it within SECS seconds")                                                        \
	X("backing", 'b', 1, "zero|file:PATH",                                                     \
	  "where first-touched pages come from (default zero); clean file pages are reclaimable")  \
	X("fault-around", 'f', 1, "N",                                                             \
	  "pages served per fault, a power of two 1..512 (default 64)")                            \
	X("prefault", 'p', 0, "", "make all guest RAM resident before the guest starts")           \
	X("hugepages", 'P', 0, "",                                                                 \
	  "back guest RAM with 2 MiB huge pages (hugetlbfs; reserve them first with sysctl "       \
	  "vm.nr_hugepages): each fault installs a whole huge page, which KVM maps with one "      \
	  "fault of its own instead of 512; --balloon gives back whole huge pages; not with "      \
	  "--backing file, --dedup, --fault-ahead or --on-oom mce")                                \
	X("fault-handler", 'F', 1, "faultline|naive|kernel",                                       \
	  "who serves first touches: faultline, the fault engine (default); naive, one thread "    \
	  "woken by poll() copying one page per fault; kernel, anonymous memory and the kernel's " \
	  "demand paging without userfaultfd. The baselines (for faultline bench) take no "        \
	  "--mem-limit, --backing file or --dedup")                                                \
	X("fault-retries", 'r', 1, "N", "attempts per fault before giving up (default 8)")         \
	X("fault-timeout", 't', 1, "MS", "time per fault before giving up (default 2000)")         \
	X("fault-threads", 'T', 1, "N",                                                            \
	  "userfaultfd handler threads, 1..16 (default: 1 per 4 vCPUs)")                           \
	X("fault-spin", 'S', 1, "US",                                                              \
	  "a handler thread polls for the next fault for US microseconds before sleeping "         \
	  "(0..10000, default 0)")                                                                 \
	X("fault-ahead", 'e', 1, "N",                                                              \
	  "after a fault that continues a vCPU's sequential run of faults, install up to N more "  \
	  "pages past its window before the vCPU gets there (0..4096, default 0: off)")            \
	X("shm", 'H', 1, "PATH,size=SIZE[,doorbell=PATH]",                                         \
	  "a shared-memory BAR backed by the existing file PATH (SIZE: 4K..256M, a multiple of "   \
	  "4K); guest rings are written as lines to the doorbell path (a FIFO or file)")           \
	X("vram", 'V', 1, "size=SIZE[,pool=SIZE]",                                                 \
	  "a device-memory BAR of SIZE (4K..256M) whose pages migrate into a pool of the given "   \
	  "size (default SIZE/4) on access")                                                       \
	X("dedup", 'D', 1, "off|zero|on[,KNOB=N...]",                                              \
	  "merge equal guest pages (on) or only release zero pages (zero) inside the monitor, "    \
	  "copy-on-write; default off; knobs below, docs/dedup.md")                                \
	X("stats", 's', 2, "[=json]",                                                              \
	  "print fault statistics to stderr at exit, as text or one JSON line")                    \
	X("seccomp", 'Z', 1, "on|off|log",                                                         \
	  "the monitor's system-call filter: on (default) lets each thread make only the calls "   \
	  "running a VM needs and stops faultline (70) on any other; log lets every call through " \
	  "and has the kernel log the others; off installs none")                                  \
	X("paused", 'U', 0, "",                                                                    \
	  "start with the vCPUs paused, until 'faultline ctl SOCKET resume' (needs --api): a "     \
	  "restored VM then waits where the snapshot left it")                                     \
	X("diff-snapshots", 'G', 0, "",                                                            \
	  "track the pages the VM writes between snapshots, so that 'faultline ctl SOCKET "        \
	  "snapshot DIR --diff' writes only those: each page's first write after a snapshot "      \
	  "takes a write-protect fault (also with --restore)")                                     \
	X("restore", 'R', 1, "DIR",                                                                \
	  "start from the snapshot in DIR ('faultline ctl SOCKET snapshot DIR') instead of "       \
	  "booting: its memory is read as the guest touches it; --api, --paused, --mem-limit, "    \
	  "--on-oom, --stats, --seccomp, --diff-snapshots, the --fault-* tuning, --disk (a copy "  \
	  "of each disk) and "                                                                     \
	  "--channel (a new socket, needed when the snapshot has a channel), --record-ws, "        \
	  "--prefetch, --private-memory and --clone may be given, the rest is the snapshot's")     \
	X("record-ws", 'w', 2, "[=port|MSms|Npages]",                                              \
	  "with --restore: record the pages the restored VM touches, in order, into DIR/ws, "      \
	  "until the guest writes the boot-timer port, MS milliseconds, N pages, or the VM's "     \
	  "end, whichever comes first; later restores of DIR prefetch them")                       \
	X("private-memory", 'y', 0, "",                                                            \
	  "with --restore: copy each page of the memory file into the VM's own memory, even when " \
	  "DIR is on tmpfs, where restores otherwise share the file's pages (copy-on-write)")      \
	X("clone", 'N', 1, "N",                                                                    \
	  "the clone number the guest reads from port 0x514 (0 to 4294967295); default: the "      \
	  "monitor's PID on a restore, so that clones of one snapshot tell themselves apart, 0 "   \
	  "on a boot")                                                                             \
	X("prefetch", 'j', 1, "off|ws|seq",                                                        \
	  "with --restore: install pages while the guest runs, faults first: ws the recorded "     \
	  "working set (the default when DIR/ws exists), seq every page of the memory file in "    \
	  "order, off none")                                                                       \
	X("help", 'h', 0, "", "show this help")

enum cli_command {
	CLI_RUN,
	CLI_VERSION,
	CLI_HELP,
	CLI_BENCH,   /* the options after "bench" are bench__parse()'s */
	CLI_CHANNEL, /* the arguments after "channel" are channel__main()'s */
	CLI_CTL,     /* the arguments after "ctl" are ctl__main()'s */
};

/*
 * Parse argv. Returns 0 and fills @cmd (and @cfg for CLI_RUN), or -EINVAL
 * after reporting the problem. @cfg keeps pointers into @argv.
 */
int cli__parse(int argc, char **argv, enum cli_command *cmd, struct run_config *cfg)
	__attribute__((warn_unused_result));

void cli__usage(FILE *out);

#endif
