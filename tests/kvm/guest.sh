# The test guest on real KVM: the exit dispatch (vmm/vm/vcpu_exit.c), the vCPU
# and VM lifecycle (vmm/kvm/, vmm/vm/), injected failures of every set-up
# step, and the fault engine (mmu/mmu.c, mmu/uffd.c): lazy faults, --on-oom,
# file backing, retries, huge pages, stalls.
# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there.

t_hello_one_vcpu() {
	guest --cmdline "quiet a=b"
	expect_rc 0
	expect_out "hello: faultline test guest, 1 vCPUs, cmdline 'quiet a=b'"
	expect_out "hello: vCPU 0 up"
	expect_no_err
}

# On a terminal (build/tools/pty-run): the guest's output and the --stats
# table reach it with the seccomp filter in place, and the terminal is as
# it was afterwards. (Without TCGETS in the filter's list this still
# passes: stdio has asked the terminal before the filter is installed.)
t_hello_on_a_terminal() {
	cmd build/tools/pty-run sh -c 'stty -g >"$1/tty.before"; "$2" run --kernel "$3" --stats; rc=$?; stty -g >"$1/tty.after"; exit $rc' \
		sh "$T" "$FL" "$G"
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	expect_rc 0
	expect_out "hello: vCPU 0 up"
	grep -q "^  faults  *[0-9]" "$T/out" || problem "no --stats table on the terminal: $(head -c 300 "$T/out")"
	grep -q "^  guest_s  *[0-9][0-9]*\.[0-9][0-9][0-9]  seconds the guest ran" "$T/out" || problem "no guest_s in the --stats table"
	! grep -q "seccomp" "$T/out" || problem "the seccomp filter stopped a call: $(grep seccomp "$T/out")"
	cmp -s "$T/tty.before" "$T/tty.after" || problem "the terminal settings changed: $(cat "$T/tty.before") -> $(cat "$T/tty.after")"
}

t_hello_four_vcpus() {
	guest --vcpus 4 --guest-arg workload=hello
	expect_rc 0
	expect_out "hello: faultline test guest, 4 vCPUs, cmdline ''"
	expect_out "hello: vCPU 3 up"
	expect_out_count "^hello: vCPU [0-3] up$" 4
	expect_no_err
}

t_touch_seq_write() {
	guest --guest-arg workload=touch --guest-arg pages=1024
	expect_rc 0
	expect_out "touch: vCPU 0 verified 1024 pages at GPA 0x400000 (seq, write)"
	expect_out "touch: verified 1024 pages on 1 vCPUs"
	expect_no_err
}

# --fault-ahead on two vCPUs writing 4096 pages each in order: every page
# verified by the guest, pages installed ahead of both streams, and fewer
# faults than fault-around alone would take (8192 / 64 = 128).
t_touch_fault_ahead_two_vcpus() {
	guest --vcpus 2 --fault-ahead 1024 --stats=json --guest-arg workload=touch --guest-arg pages=4096
	expect_rc 0
	expect_out "touch: vCPU 0 verified 4096 pages at GPA 0x400000 (seq, write)"
	expect_out "touch: vCPU 1 verified 4096 pages at GPA 0x1400000 (seq, write)"
	expect_out "touch: verified 8192 pages on 2 vCPUs"
	[ "$(stat pages_ahead)" -ge 1024 ] || problem "pages_ahead is '$(stat pages_ahead)', expected at least 1024"
	[ "$(stat faults_uffd)" -lt 128 ] || problem "$(stat faults_uffd) userfaultfd faults, expected fewer than 128"
	expect_stat result_done "$(stat faults)"
}

# Random order never continues a stream: nothing is installed ahead.
t_touch_fault_ahead_random() {
	guest --fault-ahead 1024 --stats=json --guest-arg workload=touch --guest-arg pages=2048 --guest-arg order=random
	expect_rc 0
	expect_out "touch: verified 2048 pages on 1 vCPUs"
	expect_stat pages_ahead 0
}

t_touch_two_vcpus_4096() {
	guest --vcpus 2 --guest-arg workload=touch --guest-arg pages=4096
	expect_rc 0
	expect_out "touch: vCPU 1 verified 4096 pages at GPA 0x1400000 (seq, write)"
	expect_out "touch: verified 8192 pages on 2 vCPUs"
	expect_no_err
}

t_touch_random_read_three_vcpus() {
	guest --vcpus 3 --guest-arg workload=touch --guest-arg pages=512 \
		--guest-arg order=random --guest-arg access=read
	expect_rc 0
	expect_out "touch: vCPU 2 verified 512 pages at GPA 0x800000 (random, read)"
	expect_out "touch: verified 1536 pages on 3 vCPUs"
}

t_touch_random_write_above_4g() {
	# 4 GiB of RAM: two memory slots around the MMIO hole.
	guest --mem 4G --vcpus 2 --guest-arg workload=touch --guest-arg pages=2048 \
		--guest-arg order=random
	expect_rc 0
	expect_out "touch: verified 4096 pages on 2 vCPUs"
}

t_touch_does_not_fit() {
	guest --mem 8M --guest-arg workload=touch --guest-arg pages=100000
	expect_rc 3
	expect_out "touch: 100000 pages on 1 vCPUs do not fit in 4194304 free bytes"
}

t_touch_bad_argument() {
	guest --guest-arg workload=touch --guest-arg order=sideways
	expect_rc 2
	expect_out "guest: order=sideways: expected seq or random"
}

t_unknown_workload() {
	guest --guest-arg workload=nope
	expect_rc 2
	expect_out "guest: unknown workload 'nope'"
}

t_guest_exit_status() {
	guest --guest-arg workload=exit --guest-arg status=7
	expect_rc 7
	expect_no_err
}

t_guest_exit_status_out_of_range() {
	guest --guest-arg workload=exit --guest-arg status=200
	expect_rc 73
	expect_err "faultline: guest exit status out of range: 200, the guest may use 0-63 (port: 0x501)"
}

t_triple_fault() {
	guest --guest-arg workload=crash
	expect_rc 72
	expect_out "crash: raising #UD, which has no handler"
	expect_err_first "faultline: guest crashed: triple fault (KVM_EXIT_SHUTDOWN) (vCPU 0, RIP 0x*)"
}

t_triple_fault_two_vcpus() {
	guest --vcpus 2 --guest-arg workload=crash
	expect_rc 72
	expect_err_first "faultline: guest crashed: triple fault (KVM_EXIT_SHUTDOWN) (vCPU 0, RIP 0x*)"
}

# An access no device claims: reported, counted, and the guest goes on
# with all ones.
t_unclaimed_mmio() {
	guest --guest-arg workload=badio --stats=json
	expect_rc 0
	expect_out "badio: reading GPA 0xd0000000 1 times"
	expect_out "badio: read 0xffffffff"
	expect_err_first "faultline: unclaimed MMIO read: no device at GPA 0xd0000000, 4 bytes; the read returns all ones (vCPU 0, RIP 0x*)"
	expect_stat mmio 1
	expect_stat pio 0
}

t_unclaimed_pio() {
	guest --vcpus 2 --guest-arg workload=badio --guest-arg kind=pio --guest-arg port=0x2f8 \
		--stats=json
	expect_rc 0
	expect_out "badio: read 0xff"
	expect_err_first "faultline: unclaimed port I/O read: no device at port 0x2f8, 1 bytes; the read returns all ones (vCPU 0, RIP 0x*)"
	expect_stat pio 1
}

# A write no device claims is dropped and counted; one to the clone
# number's read-only port stops the VM as the guest's error.
t_guest_writes_ports() {
	guest --guest-arg workload=badio --guest-arg kind=pio --guest-arg port=0x2f8 \
		--guest-arg write=0x41 --guest-arg count=3 --stats=json
	expect_rc 0
	expect_out "badio: writing 0x41 to port 0x2f8 3 times"
	expect_out "badio: wrote 3 times"
	expect_err_first "faultline: unclaimed port I/O write: no device at port 0x2f8, 1 bytes; the write is dropped (vCPU 0, RIP 0x*)"
	expect_stat pio 3
	guest --guest-arg workload=badio --guest-arg kind=pio --guest-arg port=0x515 \
		--guest-arg write=7 --clone 9
	expect_rc 73
	expect_out "badio: writing 0x7 to port 0x515 1 times"
	! grep -q "^badio: wrote" "$T/out" || problem "the write to the clone port went on"
	expect_err_first "faultline: port I/O write rejected by device clone: Invalid argument (port 0x515, 1 bytes) (vCPU 0, RIP 0x*)"
}

# Rate-limited: 8 reports, the last saying so; the counter has them all.
t_unclaimed_rate_limited() {
	guest --guest-arg workload=badio --guest-arg count=50 --stats=json
	expect_rc 0
	n=$(grep -c "^faultline: unclaimed MMIO read" "$T/err")
	[ "$n" = 8 ] || problem "$n unclaimed reports, expected 8"
	expect_err_has "; further ones are only counted (--stats)"
	expect_stat mmio 50
}

t_all_vcpus_halted() {
	guest --guest-arg workload=halt
	expect_rc 73
	expect_out "halt: vCPU 0 halting"
	expect_err "faultline: all vCPUs halted and the guest did not exit (last: vCPU 0)"
}

# SIGTERM stops a guest that never exits, and faultline says where it was:
# vCPU 0 looping inside KVM_RUN since the line it wrote (a port write),
# vCPU 1 halted in faultline, no fault waiting.
t_sigterm_stops_spinning_guest() {
	"$FL" run --kernel "$G" --vcpus 2 --guest-arg workload=spin >"$T/out" 2>"$T/err" &
	pid=$!
	i=0
	while ! grep -q "spin: looping forever" "$T/out" && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 1
	kill -TERM $pid
	wait $pid
	rc=$?
	expect_rc 143
	expect_err_first "faultline: stopped by signal Terminated"
	# The loop's RIP, inside the guest image (loaded at 1 MiB).
	grep -qx "faultline: where the VM was: vCPU 0 inside KVM_RUN for the last [1-9][0-9]*\.[0-9] s ([1-9][0-9]* exits\{0,1\}; the last: KVM_EXIT_IO; stopped at RIP 0x10[0-9a-f]\{4\})" "$T/err" ||
		problem "no vCPU 0 looping inside KVM_RUN for a second or more: $(grep "vCPU 0" "$T/err")"
	grep -qx "faultline: where the VM was: vCPU 1 in faultline, out of KVM_RUN ([1-9][0-9]* exits\{0,1\}; the last: KVM_EXIT_HLT; stopped at RIP 0x10[0-9a-f]\{4\})" "$T/err" ||
		problem "no vCPU 1 halted in faultline: $(grep "vCPU 1" "$T/err")"
	expect_err "faultline: where the VM was: no guest fault waiting for the fault handlers"
}

t_missing_kernel() {
	cmd "$FL" run --kernel /nonexistent/guest.elf
	expect_rc 66
	expect_err "faultline: cannot open the kernel image: No such file or directory (file: /nonexistent/guest.elf)"
}

t_kernel_not_elf() {
	cmd "$FL" run --kernel /etc/passwd
	expect_rc 65
	expect_err "faultline: invalid kernel image: not an ELF file (bad magic) (file: /etc/passwd)"
}

t_kernel_truncated() {
	head -c 5000 "$G" >"$T/trunc.elf"
	cmd "$FL" run --kernel "$T/trunc.elf"
	expect_rc 65
	expect_err_first "faultline: invalid kernel image: truncated: segment 0 (offset 4096, * bytes) extends beyond the end of the file (5000 bytes) (file: $T/trunc.elf)"
}

t_too_many_vcpus() {
	guest --vcpus 65
	expect_rc 64
	expect_err "faultline: invalid option value: expected a number from 1 to 64 (--vcpus: 65)"
}

t_huge_cmdline_does_not_fit() {
	# Two arguments of 120 000 bytes each (one argument may be at most 128 KiB).
	long=$(head -c 120000 /dev/zero | tr '\0' x)
	guest --cmdline "$long" --guest-arg "big=$long"
	expect_rc 64
	expect_err "faultline: the device tree does not fit in 192 KiB: shorten --cmdline or the guest arguments"
}

# Injected host failures (FAULTLINE_INJECT, docs/testing.md): each path
# reports what failed, naming the ioctl or call, and exits with its status.
inject() {
	spec=$1
	shift
	FAULTLINE_INJECT=$spec cmd "$FL" run --kernel "$G" "$@"
}

t_inject_missing_capability() {
	inject KVM_CHECK_EXTENSION:EINVAL:2
	expect_rc 69
	expect_err "faultline: KVM lacks a capability faultline needs: KVM_CAP_IMMEDIATE_EXIT (device: /dev/kvm)"
}

t_inject_supported_cpuid() {
	inject KVM_GET_SUPPORTED_CPUID:E2BIG
	expect_rc 70
	expect_err "faultline: KVM_GET_SUPPORTED_CPUID failed: Argument list too long"
}

t_inject_create_vm() {
	inject KVM_CREATE_VM:ENOMEM
	expect_rc 70
	expect_err "faultline: KVM_CREATE_VM failed: Cannot allocate memory"
}

t_inject_guest_ram_mmap() {
	inject mmap.guest_ram:ENOMEM --mem 256M
	expect_rc 70
	expect_err "faultline: cannot map guest RAM: Cannot allocate memory (size: 268435456 bytes)"
}

t_inject_second_memslot() {
	inject KVM_SET_USER_MEMORY_REGION:EEXIST:1 --mem 4G
	expect_rc 70
	expect_err "faultline: KVM_SET_USER_MEMORY_REGION failed: File exists (slot 1, GPA 0x100000000, 1073741824 bytes)"
}

t_inject_create_second_vcpu() {
	inject KVM_CREATE_VCPU:EINVAL:1 --vcpus 2
	expect_rc 70
	expect_err "faultline: KVM_CREATE_VCPU failed: Invalid argument (vCPU 1)"
}

t_inject_set_cpuid() {
	inject KVM_SET_CPUID2:EINVAL
	expect_rc 70
	expect_err "faultline: KVM_SET_CPUID2 failed: Invalid argument (vCPU 0)"
}

t_inject_set_sregs() {
	inject KVM_SET_SREGS:EINVAL:1 --vcpus 3
	expect_rc 70
	expect_err "faultline: KVM_SET_SREGS failed: Invalid argument (vCPU 1)"
}

t_inject_kvm_run_efault() {
	inject KVM_RUN:EFAULT
	expect_rc 70
	expect_err "faultline: KVM_RUN failed: Bad address (vCPU 0, RIP 0x100000)"
}

t_inject_kvm_run_eintr_retried() {
	inject KVM_RUN:EINTR:0:5 --guest-arg workload=touch --guest-arg pages=64
	expect_rc 0
	expect_out "touch: verified 64 pages on 1 vCPUs"
	expect_no_err
}

t_inject_vcpu_thread() {
	inject pthread_create.vcpu:EAGAIN:1 --vcpus 2
	expect_rc 70
	expect_err "faultline: cannot start the thread of vCPU 1: Resource temporarily unavailable"
}

# The other set-up calls of the VM and its vCPUs: each failure stops
# faultline before the guest runs (nothing on stdout), naming the call and
# the vCPU, with status 70. $1: the spec; $2: the first stderr line; the
# rest: faultline run's options (the test guest unless they name a kernel).
inject_setup() {
	spec=$1 line=$2
	shift 2
	FAULTLINE_INJECT=$spec cmd "$FL" run --kernel "$G" "$@"
	expect_rc 70
	expect_err_first "$line"
	[ ! -s "$T/out" ] || problem "$spec: the guest ran: $(head -c 200 "$T/out")"
}

t_inject_vm_and_vcpu_setup() {
	inject_setup KVM_GET_VCPU_MMAP_SIZE:EIO "faultline: KVM_GET_VCPU_MMAP_SIZE failed: Input/output error"
	inject_setup KVM_SET_TSS_ADDR:EIO "faultline: KVM_SET_TSS_ADDR failed: Input/output error (GPA: 0xfffbd000)"
	inject_setup mmap.kvm_run:ENOMEM:1 "faultline: mmap of kvm_run failed: Cannot allocate memory (vCPU 1)" --vcpus 2
	inject_setup KVM_GET_SREGS:EIO "faultline: KVM_GET_SREGS failed: Input/output error (vCPU 0)"
	inject_setup KVM_SET_REGS:EINVAL:1 "faultline: KVM_SET_REGS failed: Invalid argument (vCPU 1)" --vcpus 2
}

# The monitor's own plumbing: eventfds (the VM's, the fault engine's,
# dedup's, the control socket's), the stop signals' signalfd, and the signal
# handlers of the vCPUs and the seccomp filter. Each is named, the VM does
# not run, and the sockets asked for are gone afterwards.
t_inject_signals_and_eventfds() {
	inject_setup eventfd.vm:EMFILE "faultline: cannot create the VM: eventfd failed: Too many open files"
	inject_setup eventfd.fault:ENFILE "faultline: cannot set up guest RAM: eventfd failed: Too many open files in system"
	inject_setup eventfd.dedup:EMFILE "faultline: cannot set up dedup: eventfd failed: Too many open files" --dedup on
	inject_setup eventfd.api:EMFILE:1 "faultline: cannot set up the control socket: eventfd failed: Too many open files (file: $T/api.sock)" --api "$T/api.sock"
	[ ! -e "$T/api.sock" ] || problem "the control socket was left behind"
	inject_setup signalfd:ENOMEM "faultline: signalfd failed: Cannot allocate memory"
	expect_err "faultline: cannot set up signal handling"
	inject_setup sigaction.vcpu:EINVAL "faultline: sigaction for the vCPU kick signal failed: Invalid argument"
	inject_setup sigaction.vcpu:EINVAL:1 "faultline: sigaction for SIGBUS failed: Invalid argument"
	expect_err "faultline: cannot set up signal handling"
	inject_setup sigaction.seccomp:EINVAL "faultline: cannot install the seccomp filter: sigaction for SIGSYS failed: Invalid argument"
	inject_setup seccomp_init:ENOMEM "faultline: cannot install the seccomp filter: seccomp_init failed"
	expect_err "faultline: cannot install the seccomp filter (--seccomp)"
}

# What a Linux guest needs besides: the in-kernel interrupt controllers and
# the state a PC's firmware leaves (local APIC, FPU, XCR0, MSRs).
t_inject_linux_setup() {
	for spec in KVM_CREATE_IRQCHIP KVM_CREATE_PIT2; do
		inject_setup $spec:ENOMEM "faultline: $spec failed: Cannot allocate memory" --kernel "$LK" --initrd "$LI"
	done
	for spec in KVM_GET_LAPIC KVM_SET_LAPIC KVM_SET_FPU KVM_SET_XCRS; do
		inject_setup $spec:EINVAL:1 "faultline: $spec failed: Invalid argument (vCPU 1)" --kernel "$LK" --initrd "$LI" --vcpus 2
	done
	inject_setup KVM_SET_MSRS:EIO "faultline: KVM_SET_MSRS failed: Input/output error (vCPU 0, MSR 0x1a0)" --kernel "$LK" --initrd "$LI"
}

t_inject_malformed() {
	inject KVM_RUN:ENOTANERRNO
	expect_rc 64
	expect_err "faultline: invalid test-only variable: expected SITE:ERRNO[:SKIP[:TIMES]],... (FAULTLINE_INJECT: KVM_RUN:ENOTANERRNO)"
}

# The MMU: lazily backed RAM, the budget and its OOM policy, interruption.
t_oom_kill() {
	guest --mem 256M --mem-limit 32M --guest-arg workload=touch --guest-arg pages=16384
	expect_rc 75
	expect_err_first "faultline: guest out of memory: budget of 8192 pages exhausted (GPA 0x*, vCPU 0, budget 8192 pages, resident 8192 pages)"
}

t_lazy_faults_counted() {
	guest --guest-arg workload=touch --guest-arg pages=1024 --fault-around 1 --stats=json
	expect_rc 0
	expect_out "touch: verified 1024 pages on 1 vCPUs"
	n=$(sed -n 's/.*"faults_uffd":\([0-9]*\).*/\1/p' "$T/err")
	# Every touched page faulted once, plus the guest's own stack and data pages.
	[ -n "$n" ] && [ "$n" -ge 1024 ] && [ "$n" -le 1100 ] ||
		problem "faults_uffd is '$n', expected 1024..1100"
	# where the time went: every part there, none negative, and they add up
	times=$(sed -n 's/.*"times_s":{"setup":\([0-9.e-]*\),"guest":\([0-9.e-]*\),"stop":\([0-9.e-]*\),"total":\([0-9.e-]*\)}.*/\1 \2 \3 \4/p' "$T/err")
	echo "$times" | awk 'NF != 4 || $1 <= 0 || $2 <= 0 || $3 < 0 || $1 + $2 + $3 > $4 { exit 1 }' ||
		problem "times_s is '$times', expected setup, guest, stop and a total at least their sum"
}

t_oom_mce() {
	guest --mem 256M --mem-limit 32M --guest-arg workload=touch --guest-arg pages=16384 \
		--on-oom mce --stats=json
	expect_rc 0
	expect_err_first "faultline: guest out of memory: budget of 8192 pages exhausted (GPA 0x*, vCPU 0, budget 8192 pages, resident 8192 pages); poisoning the page so that the guest takes a machine check (--on-oom mce)"
	oom=$(head -n 1 "$T/err" | sed -n 's/.*(GPA \(0x[0-9a-f]*\), vCPU.*/\1/p')
	mce=$(sed -n 's/^faultline: injected a machine check into vCPU 0 for GPA \(0x[0-9a-f]*\)$/\1/p' "$T/err")
	[ -n "$oom" ] && [ "$oom" = "$mce" ] ||
		problem "machine check for GPA '$mce', but the budget ran out at '$oom'"
	# The guest's #MC handler reads the GPA back from the bank.
	expect_out "guest: machine check on vCPU 0: GPA $oom (bank 1, status 0xbd80000000000134)"
	expect_stat machine_checks 1
	expect_stat pages_poisoned 1
	expect_stat result_hwpoison 1
	expect_stat faults_sigbus 1
}

t_oom_mce_guest_cannot_take_it() {
	guest --mem 256M --mem-limit 32M --guest-arg workload=touch --guest-arg pages=16384 \
		--on-oom mce --guest-arg mce=off
	expect_rc 75
	expect_err_has "faultline: guest out of memory: the page is poisoned: it was touched after the budget ran out: the guest has not enabled machine checks (CR4.MCE clear), so it cannot be told (GPA 0x"
}

t_oom_mce_host_cannot_inject() {
	FAULTLINE_INJECT=KVM_X86_SETUP_MCE:EINVAL guest --mem 256M --mem-limit 32M \
		--guest-arg workload=touch --guest-arg pages=16384 --on-oom mce
	expect_rc 75
	expect_err_first "faultline: --on-oom mce: this host cannot inject machine checks into the guest (KVM_X86_SETUP_MCE failed: Invalid argument (vCPU 0)); a guest out of memory stops the VM as with --on-oom kill"
	expect_err_has "faultline: guest out of memory: budget of 8192 pages exhausted (GPA 0x"
}

# The machine check cannot be injected when the page is touched: the VM
# stops as with --on-oom kill, saying why, with the ioctl named.
t_oom_mce_injection_fails() {
	FAULTLINE_INJECT=KVM_X86_SET_MCE:EIO guest --mem 256M --mem-limit 32M \
		--guest-arg workload=touch --guest-arg pages=16384 --on-oom mce
	expect_rc 75
	expect_err "faultline: KVM_X86_SET_MCE failed: Input/output error (vCPU 0)"
	expect_err_has "faultline: guest out of memory: budget of 8192 pages exhausted (GPA 0x"
	expect_err_has ": the machine check could not be injected (GPA 0x"
	[ "$(grep -c 'injected a machine check' "$T/err")" = 0 ] || problem "a machine check was said to be injected"
}

t_oom_mce_no_mce_cap() {
	FAULTLINE_INJECT=KVM_X86_GET_MCE_CAP_SUPPORTED:EIO guest --mem 64M --mem-limit 8M \
		--guest-arg workload=touch --guest-arg pages=4096 --on-oom mce
	expect_rc 75
	expect_err_first "faultline: --on-oom mce: this host cannot inject machine checks into the guest (KVM_X86_GET_MCE_CAP_SUPPORTED failed: Input/output error); a guest out of memory stops the VM as with --on-oom kill"
}

t_oom_mce_poison_fails() {
	FAULTLINE_INJECT=UFFDIO_POISON:ENOMEM guest --mem 64M --mem-limit 8M \
		--guest-arg workload=touch --guest-arg pages=4096 --on-oom mce
	expect_rc 75
	expect_err_has "; cannot poison the page for --on-oom mce: Cannot allocate memory"
}

# A file of random bytes ($1 pages of 4 KiB) and the CRC-32 of a piece of it.
make_backing() { dd if=/dev/urandom of="$T/backing" bs=4096 count="$1" 2>/dev/null; }
crc32_of() { # skip count, in pages
	dd if="$T/backing" bs=4096 skip="$1" count="$2" 2>/dev/null |
		{ if command -v crc32 >/dev/null; then crc32; else busybox crc32; fi; }
}

t_file_backing_read_back() {
	make_backing 2048
	want=$(crc32_of 1024 256)
	guest --mem 64M --backing "file:$T/backing" --guest-arg workload=crc32 \
		--guest-arg addr=0x400000 --guest-arg len=1048576 --stats=json
	expect_rc 0
	expect_out "crc32: $want 1048576 bytes at GPA 0x400000"
	expect_stat pages_reclaimed 0
}

# Reading 12 MiB of a file within an 8 MiB budget: clean pages are reclaimed.
t_file_backing_reclaim() {
	make_backing 4096
	want=$(crc32_of 1024 3072)
	guest --mem 64M --mem-limit 8M --backing "file:$T/backing" --guest-arg workload=crc32 \
		--guest-arg addr=0x400000 --guest-arg len=12582912 --stats=json
	expect_rc 0
	expect_out "crc32: $want 12582912 bytes at GPA 0x400000"
	expect_stat result_oom 0
	n=$(stat pages_reclaimed)
	[ -n "$n" ] && [ "$n" -ge 1024 ] || problem "pages_reclaimed is '$n', expected >= 1024"
}

# Past the end of a short file, RAM reads as zeros.
t_file_backing_short_file() {
	make_backing 1
	guest --mem 64M --backing "file:$T/backing" --guest-arg workload=touch \
		--guest-arg pages=256 --guest-arg access=read
	expect_rc 0
	expect_out "touch: verified 256 pages on 1 vCPUs"
}

t_file_backing_eio() {
	make_backing 2048
	FAULTLINE_INJECT=backing.read@guest:EIO guest --mem 64M --backing "file:$T/backing" \
		--guest-arg workload=crc32
	expect_rc 74
	expect_err_first "faultline: guest page fault failed: the backing file could not be read: Input/output error (GPA 0x*, vCPU 0, source: userfaultfd, file: $T/backing)"
}

t_file_backing_missing() {
	guest --backing "file:$T/nonexistent"
	expect_rc 66
	expect_err "faultline: cannot open the backing file: No such file or directory (file: $T/nonexistent)"
	mkdir "$T/dir"
	guest --backing "file:$T/dir"
	expect_rc 66
	expect_err "faultline: cannot use the backing file: not a regular file (file: $T/dir)"
}

# Boot state that does not fit in the budget stops the VM before it runs (75).
t_boot_state_over_budget() {
	guest --mem-limit 8K
	expect_rc 75
	expect_err_first "faultline: guest out of memory: no room in the budget for the * (budget 2 pages, resident * pages)"
	[ ! -s "$T/out" ] || problem "the guest ran: $(head -c 200 "$T/out")"
}

t_copy_enomem_is_oom() {
	make_backing 64
	FAULTLINE_INJECT=UFFDIO_COPY@guest:ENOMEM:0:0 guest --backing "file:$T/backing" \
		--guest-arg workload=touch --guest-arg pages=64
	expect_rc 75
	expect_err_first "faultline: guest out of memory: the host could not allocate the page: Cannot allocate memory (GPA 0x*, vCPU 0, budget * pages, resident * pages)"
}

t_zeropage_eagain_retried() {
	FAULTLINE_INJECT=UFFDIO_ZEROPAGE@guest:EAGAIN:0:3 guest --guest-arg workload=touch \
		--guest-arg pages=64 --stats=json
	expect_rc 0
	expect_out "touch: verified 64 pages on 1 vCPUs"
	expect_stat retries 3
	expect_stat result_retry_exhausted 0
}

t_zeropage_eagain_exhausted() {
	FAULTLINE_INJECT=UFFDIO_ZEROPAGE@guest:EAGAIN:0:0 guest --guest-arg workload=touch \
		--guest-arg pages=64
	expect_rc 74
	expect_err_first "faultline: guest page fault failed: still RETRY after 8 attempts in * ms (GPA 0x*, vCPU 0, source: userfaultfd)"
}

t_budget_charge_fails_for_guest() {
	FAULTLINE_INJECT=budget.charge@guest:ENOMEM:0:0 guest --guest-arg workload=touch
	expect_rc 75
	expect_err_first "faultline: guest out of memory: budget of * pages exhausted (GPA 0x*, vCPU 0, budget * pages, resident * pages)"
}

t_fault_spin() {
	guest --guest-arg workload=touch --guest-arg pages=256 --fault-around 1 \
		--fault-spin 10000 --stats=json
	expect_rc 0
	expect_out "touch: verified 256 pages on 1 vCPUs"
	n=$(stat spin_hits)
	[ -n "$n" ] && [ "$n" -ge 1 ] || problem "spin_hits is '$n', expected at least 1"
}

t_prefault_takes_no_guest_faults() {
	guest --mem 64M --prefault --guest-arg workload=touch --guest-arg pages=1024 --stats=json
	expect_rc 0
	expect_out "touch: verified 1024 pages on 1 vCPUs"
	expect_stat faults_uffd 0
	expect_stat pages_installed 16384
}

# --stats: the host memory the VM holds (guest RAM, the monitor's own, page
# tables). Guest RAM in the memfd is exactly the pages the budget counts.
host_memory() {
	sed -n 's/.*"host_memory_kib":{"guest":\([0-9]*\),"monitor":\([0-9]*\),"page_tables":\([0-9]*\),"program":[0-9]*}.*/\1 \2 \3/p' "$T/err"
}
t_host_memory_in_stats() {
	guest --mem 64M --guest-arg workload=touch --guest-arg pages=1024 --stats=json
	expect_rc 0
	set -- $(host_memory)
	[ "$#" = 3 ] || problem "no host_memory_kib in --stats: $(grep -o '"host_memory[^}]*}' "$T/err")"
	[ "${1:-0}" = $(($(stat resident) * 4)) ] || problem "guest $1 KiB, $(stat resident) pages resident"
	[ "${1:-0}" -ge 4096 ] && [ "${1:-0}" -lt 65536 ] || problem "guest $1 KiB of 64 MiB after touching 4 MiB"
	[ "${2:-0}" -gt 0 ] && [ "${3:-0}" -gt 0 ] || problem "monitor $2 KiB, page tables $3 KiB"
	# pre-populated anonymous RAM (the floor of faultline bench): all of it
	guest --mem 64M --fault-handler kernel --prefault --guest-arg workload=touch \
		--guest-arg pages=1024 --stats=json
	expect_rc 0
	set -- $(host_memory)
	[ "${1:-0}" = 65536 ] || problem "prefaulted guest $1 KiB, expected 65536"
	[ "${2:-0}" -gt 0 ] || problem "monitor $2 KiB: the guest's anonymous RAM not taken out?"
	# kernel demand paging maps the zero page for reads: resident, not held
	guest --mem 64M --fault-handler kernel --guest-arg workload=touch --guest-arg pages=1024 \
		--guest-arg access=read --stats=json
	expect_rc 0
	set -- $(host_memory)
	[ "${1:-0}" -gt 0 ] && [ "${1:-0}" -lt $(($(stat resident) * 4)) ] ||
		problem "kernel, reads: guest $1 KiB, $(stat resident) pages resident"
	guest --mem 64M --guest-arg workload=touch --guest-arg pages=16 --stats
	expect_rc 0
	grep -qE "^  host_guest_kib +[0-9]+  KiB of host memory holding guest RAM$" "$T/err" ||
		problem "no host_guest_kib in the --stats table"
}

# KVM maps guest memory with EPT/NPT (two-dimensional paging), not shadow paging.
kvm_tdp() {
	case "$(cat /sys/module/kvm_amd/parameters/npt /sys/module/kvm_intel/parameters/ept 2>/dev/null)" in
	1 | Y) return 0 ;;
	esac
	return 1
}

# KVM's own counters (--stats "kvm"): a touch of a page the guest never had
# is a guest page fault that KVM's MMU takes, and fixes once the monitor
# filled the page; with EPT/NPT one per 4 KiB page (shadow paging may map
# several per fault), and KVM maps each of them.
t_kvm_stats() {
	guest --mem 64M --guest-arg workload=touch --guest-arg pages=2048 --stats=json
	expect_rc 0
	expect_err_has '"kvm":{"vm":{'
	exits=$(stat exits) taken=$(stat pf_taken) fixed=$(stat pf_fixed) io=$(stat io_exits)
	mapped=$(stat pages_4k)
	[ "${exits:-0}" -gt "${io:-0}" ] && [ "${io:-0}" -gt 0 ] ||
		problem "kvm: $exits exits, $io of them port I/O (the serial console's)"
	[ "${taken:-0}" -ge "${fixed:-0}" ] && [ "${fixed:-0}" -gt 0 ] ||
		problem "kvm: $fixed of $taken guest page faults fixed"
	if kvm_tdp; then
		[ "$fixed" -ge 2048 ] && [ "${mapped:-0}" -ge 2048 ] ||
			problem "kvm with EPT/NPT: $fixed page faults fixed, $mapped pages mapped for 2048 touched"
	fi
	guest --mem 64M --guest-arg workload=touch --guest-arg pages=16 --stats
	expect_rc 0
	grep -qE "^  kvm_pf_fixed +[0-9]+  of them, fixed by a mapping KVM made$" "$T/err" ||
		problem "no kvm_pf_fixed in the --stats table"
}

# A KVM without binary statistics (before Linux 5.14), or one that cannot
# give them: the statistics say why, the VM is unharmed.
t_kvm_stats_unavailable() {
	FAULTLINE_INJECT=KVM_GET_STATS_FD:ENOTTY guest --guest-arg workload=touch --guest-arg pages=16 --stats=json
	expect_rc 0
	expect_err_has '"kvm":null,"kvm_error":"KVM_GET_STATS_FD failed: Inappropriate ioctl for device (the VM)"'
	# the VM's file opened, vCPU 0's too, vCPU 1's refused: both closed again
	FAULTLINE_INJECT=KVM_GET_STATS_FD:EMFILE:2 guest --vcpus 2 --guest-arg workload=touch \
		--guest-arg pages=16 --stats
	expect_rc 0
	grep -qxF "$(printf '  %-24s %12s  %s' kvm - 'KVM_GET_STATS_FD failed: Too many open files (vCPU 1)')" "$T/err" ||
		problem "no 'KVM_GET_STATS_FD failed' line in the --stats table"
}

# --hugepages needs 2 MiB pages reserved (vm.nr_hugepages); a test reserves
# what it needs and gives them back.
hugepages_reserve() {
	echo "$1" >/proc/sys/vm/nr_hugepages 2>/dev/null
	[ "$(cat /proc/sys/vm/nr_hugepages)" = "$1" ] ||
		problem "cannot reserve $1 huge pages (/proc/sys/vm/nr_hugepages: $(cat /proc/sys/vm/nr_hugepages))"
}

# Guest RAM on huge pages: a fault installs 2 MiB, so 16 MiB of random
# touches by 2 vCPUs take 8 userfaultfd faults, and KVM (EPT/NPT) maps each
# huge page with one fault of its own instead of 512; the guest checks
# every page. So does --prefault.
t_hugepages() {
	old=$(cat /proc/sys/vm/nr_hugepages)
	hugepages_reserve 32
	guest --mem 64M --hugepages --vcpus 2 --guest-arg workload=touch --guest-arg pages=2048 \
		--guest-arg order=random --stats=json
	expect_rc 0
	expect_out "touch: verified 4096 pages on 2 vCPUs"
	uffd=$(stat faults_uffd) installed=$(stat pages_installed)
	[ "${uffd:-0}" -ge 8 ] && [ "$uffd" -le 16 ] || problem "$uffd userfaultfd faults for 8 huge pages"
	[ "${installed:-0}" -ge 4096 ] && [ $((installed % 512)) = 0 ] ||
		problem "$installed pages installed: not whole huge pages"
	[ "$(host_memory | cut -d' ' -f1)" = $((installed * 4)) ] ||
		problem "host memory: guest $(host_memory | cut -d' ' -f1) KiB for $installed pages"
	if kvm_tdp; then
		[ "$(stat pages_2m)" -ge 8 ] && [ "$(stat pf_fixed)" -le 32 ] ||
			problem "kvm: $(stat pf_fixed) page faults fixed, $(stat pages_2m) pages of 2 MiB mapped"
	fi
	guest --mem 64M --hugepages --prefault --guest-arg workload=touch --guest-arg pages=1024 --stats=json
	expect_rc 0
	expect_stat faults_uffd 0
	expect_stat pages_installed 16384
	hugepages_reserve "$old"
}

# Out of memory on huge pages goes to the VM's policy too: with --on-oom
# pause the VM waits for a larger budget, then every page reads back.
t_hugepages_oom_pause() {
	old=$(cat /proc/sys/vm/nr_hugepages)
	hugepages_reserve 32
	api_vm --mem 64M --hugepages --mem-limit 8M --on-oom pause --guest-arg workload=touch \
		--guest-arg pages=4096
	ctl wait paused-oom 90
	expect_crc 0
	ctl mem-limit 64M
	expect_crc 0
	ctl resume
	expect_crc 0
	bg_vm_end
	expect_rc 0
	expect_out "touch: verified 4096 pages on 1 vCPUs"
	expect_err_first "faultline: guest out of memory: budget of 2048 pages exhausted (GPA 0x800000, vCPU 0, budget 2048 pages, resident 2048 pages); the VM is paused (--on-oom pause): raise the budget with 'faultline ctl $T/api.sock mem-limit SIZE', then 'faultline ctl $T/api.sock resume'"
	[ "$(stat refaults)" -ge 1 ] || problem "stats: refaults is '$(stat refaults)', expected 1 or more"
	hugepages_reserve "$old"
}

# Its failures: a budget of 4 huge pages for 8 (out of memory, 75), an
# install that fails (74), and too few huge pages reserved, at start (70).
t_hugepages_errors() {
	old=$(cat /proc/sys/vm/nr_hugepages)
	hugepages_reserve 32
	guest --mem 64M --hugepages --mem-limit 8M --guest-arg workload=touch --guest-arg pages=4096
	expect_rc 75
	expect_err "faultline: guest out of memory: budget of 2048 pages exhausted (GPA 0x800000, vCPU 0, budget 2048 pages, resident 2048 pages)"
	FAULTLINE_INJECT=UFFDIO_COPY@guest:EIO guest --mem 64M --hugepages --guest-arg workload=touch \
		--guest-arg pages=16
	expect_rc 74
	expect_err "faultline: guest page fault failed: the page could not be installed: Input/output error (GPA 0x400000, vCPU 0, source: userfaultfd)"
	hugepages_reserve 16
	guest --mem 64M --hugepages --guest-arg workload=touch --guest-arg pages=16
	expect_rc 70
	expect_err "faultline: cannot map guest RAM on huge pages: Cannot allocate memory (32 huge pages of 2 MiB needed; reserve them with sysctl vm.nr_hugepages)"
	hugepages_reserve "$old"
}

# The host memory cannot be read: the statistics say why, the VM is unharmed.
t_host_memory_unreadable() {
	FAULTLINE_INJECT=open.proc:EPERM guest --guest-arg workload=touch --guest-arg pages=16 --stats=json
	expect_rc 0
	expect_err_has '"host_memory_kib":null,"host_memory_error":"Operation not permitted"'
	for site in pread.proc fstat.guest_ram; do
		FAULTLINE_INJECT=$site:EIO guest --guest-arg workload=touch --guest-arg pages=16 --stats
		expect_rc 0
		grep -qE "^  host_memory +-  host memory cannot be read: Input/output error$" "$T/err" ||
			problem "$site: no 'cannot be read' line in the --stats table"
	done
}

t_stalled_fault_interrupted() {
	FAULTLINE_INJECT=resolver.stall:EIO:0:0 "$FL" run --kernel "$G" \
		--guest-arg workload=touch >"$T/out" 2>"$T/err" &
	pid=$!
	sleep 1
	kill -TERM $pid
	i=0
	while kill -0 $pid 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 $pid 2>/dev/null; then
		problem "still running 5 s after SIGTERM"
		kill -KILL $pid
	fi
	wait $pid
	rc=$?
	expect_rc 143
	expect_err "faultline: stopped by signal Terminated"
}

# A guest exit on one vCPU while another waits for a fault that is never
# resolved: the waiting vCPU is kicked out and faultline ends, within 5 s.
t_guest_exit_reaches_stalled_vcpu() {
	FAULTLINE_INJECT=resolver.stall:EIO:0:0 "$FL" run --kernel "$G" --vcpus 2 \
		--guest-arg workload=exit --guest-arg status=7 --guest-arg cpu=1 \
		--guest-arg touch=1 >"$T/out" 2>"$T/err" &
	pid=$!
	i=0
	while kill -0 $pid 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 $pid 2>/dev/null; then
		problem "still running 5 s after the guest exited"
		kill -KILL $pid
	fi
	wait $pid
	rc=$?
	expect_rc 7
	expect_no_err
}
