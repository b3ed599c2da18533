# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there.

# ---- the seccomp filter (vmm/sys/seccomp.c; every other test runs under it too) ----

# Every thread of a running VM is filtered (TSYNC), and a call outside the
# list stops faultline with 70, naming it; off and log let it through.
t_seccomp_filter() {
	api_vm --guest-arg workload=spin
	i=0
	while ! grep -qxF "spin: looping forever" "$T/out" && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	n=0
	for f in /proc/$vm/task/*/status; do
		grep -qx "Seccomp:	2" "$f" || problem "thread $(basename "$(dirname "$f")") is not filtered: $(grep ^Seccomp "$f")"
		n=$((n + 1))
	done
	[ $n -ge 4 ] || problem "only $n threads seen" # main, fault handler, control socket, vCPU
	ctl stop
	bg_vm_end
	expect_rc 76
	FAULTLINE_INJECT=seccomp.probe:EPERM guest --guest-arg workload=hello
	expect_rc 70
	expect_err_first "faultline: the seccomp filter stopped a system call that faultline does not allow: number 110 (thread *); this is a bug of faultline: --seccomp log lets it through and logs it"
	FAULTLINE_INJECT=seccomp.probe:EPERM guest --guest-arg workload=hello --seccomp log
	expect_rc 0
	expect_out "hello: vCPU 0 up"
	FAULTLINE_INJECT=seccomp.probe:EPERM guest --guest-arg workload=hello --seccomp off
	expect_rc 0
	expect_no_err
	# A filter the kernel refuses: no VM runs without the filter asked for.
	FAULTLINE_INJECT=seccomp.load:EPERM guest --guest-arg workload=hello
	expect_rc 70
	expect_err_first "faultline: cannot install the seccomp filter: Operation not permitted"
	expect_err "faultline: cannot install the seccomp filter (--seccomp)"
	[ ! -s "$T/out" ] || problem "the guest ran without its filter: $(head -c 200 "$T/out")"
}

# A memory slot KVM refuses: the ioctl is named, the guest gets the error.
t_bar_memslot_refused() {
	FAULTLINE_INJECT=KVM_SET_USER_MEMORY_REGION:EIO:1 guest --vram size=64K \
		--guest-arg workload=vram --guest-arg mce=off
	expect_rc 74
	expect_err_first "faultline: KVM_SET_USER_MEMORY_REGION failed: Input/output error (slot 8, GPA 0xe0000000, 4096 bytes)"
	expect_err_has "device memory error: cannot map page 0x0 of device vram into the guest: Input/output error"
}
