# The command line without KVM: help, usage errors, image validation, the
# no-KVM message, --stats and --dedup options.
# Sourced by tests/host/run.

t_help() {
	cmd "$FL" --help
	expect_rc 0
	expect_out "Usage: faultline run --kernel FILE [OPTIONS]"
	expect_out "  73    the guest misbehaved: a device rejected an access, unhandled exit, bad exit status, all vCPUs halted"
	expect_no_err
	# Every option of run and every exit status is in docs/cli.md.
	for o in $(sed -n 's/^  --\([a-z-]*\).*/\1/p' "$T/out"); do
		grep -q "^| \`--$o[ =\`\[]" docs/cli.md || problem "docs/cli.md has no row for --$o"
	done
	for n in $(sed -n 's/^  \([0-9][0-9]\)  .*/\1/p' "$T/out"); do
		grep -q "^| $n |" docs/cli.md || problem "docs/cli.md has no row for exit status $n"
	done
}

t_version() {
	cmd "$FL" version
	expect_rc 0
	grep -q "^faultline " "$T/out" || problem "version line missing"
}

t_no_command() {
	cmd "$FL"
	expect_rc 64
	expect_err "faultline: usage: no command given; see 'faultline --help'"
}

t_bad_option() {
	cmd "$FL" run --kernel "$G" --frobnicate
	expect_rc 64
	expect_err "faultline: usage: unknown option (--frobnicate); see 'faultline --help'"
	cmd "$FL" run --kernel "$G" --disk ""
	expect_rc 64
	expect_err "faultline: invalid option value: expected PATH[,ro] (--disk: )"
	cmd "$FL" run --kernel "$G" --disk ",ro"
	expect_rc 64
	expect_err "faultline: invalid option value: expected PATH[,ro] (--disk: ,ro)"
}

t_kernel_passwd() {
	cmd "$FL" run --kernel /etc/passwd
	expect_rc 65
	expect_err "faultline: invalid kernel image: not an ELF file (bad magic) (file: /etc/passwd)"
}

t_kernel_directory() {
	cmd "$FL" run --kernel /
	expect_rc 66
	expect_err "faultline: cannot read the kernel image: not a regular file (file: /)"
}

t_kernel_too_big_for_ram() {
	head -c $((5 * 1024 * 1024)) /dev/zero >"$T/big"
	cmd "$FL" run --kernel "$T/big" --mem 4M
	expect_rc 65
	expect_err "faultline: invalid kernel image: 5242880 bytes is larger than guest RAM (file: $T/big)"
}

t_kernel_dynamic_elf() {
	# A host program: a position-independent, dynamically linked ELF.
	cmd "$FL" run --kernel /bin/dash
	expect_rc 65
	expect_err "faultline: invalid kernel image: ELF type 3: need a statically linked executable (ET_EXEC) (file: /bin/dash)"
}

t_no_kvm_points_to_harness() {
	if [ -e /dev/kvm ]; then
		echo "    (skipped: this machine has /dev/kvm)" >&2
		return
	fi
	cmd "$FL" run --kernel "$G"
	expect_rc 69
	expect_err "faultline: cannot open /dev/kvm: No such file or directory; without KVM, run faultline inside the nested harness: tests/nested/run -- build/faultline run ..."
}

t_kvm_device_not_kvm() {
	FAULTLINE_KVM_DEVICE=/dev/null cmd "$FL" run --kernel "$G"
	expect_rc 69
	expect_err "faultline: KVM_GET_API_VERSION failed: Inappropriate ioctl for device (device: /dev/null)"
}

t_kvm_device_missing() {
	FAULTLINE_KVM_DEVICE=/nonexistent/kvm cmd "$FL" run --kernel "$G"
	expect_rc 69
	expect_err "faultline: cannot open /nonexistent/kvm: No such file or directory; without KVM, run faultline inside the nested harness: tests/nested/run -- build/faultline run ..."
}

# --stats=json, parsed by a JSON parser here: its fault counts follow the
# pages the guest touches. With one page per fault, touching 2000 more pages
# takes exactly 2000 more faults, all on vCPU 0, all resolved; KVM fixes
# at least 2000 more guest page faults and maps 2000 more pages.
t_stats_json_counts_touched_pages() {
	cmd tests/kvm/with-kvm sh -c 'for p in 1000 3000; do
		build/faultline run --kernel build/guest/faultline-guest.elf --fault-around 1 \
			--guest-arg workload=touch --guest-arg pages=$p --stats=json 2>&1 >/dev/null |
			tail -n 1
	done'
	expect_rc 0
	python3 - "$T/out" >>"$T/why" 2>&1 <<-'EOF'
		import json, sys
		runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
		assert len(runs) == 2, "expected 2 JSON objects, got %d" % len(runs)
		a, b = (r["counters"] for r in runs)
		for r in runs:
		    c = r["counters"]
		    assert c["faults"] == c["result_done"], c
		    assert r["vcpu_faults"] == [c["faults_uffd"]], r["vcpu_faults"]
		    assert r["pages"]["resident"] == c["pages_installed"], r["pages"]
		    assert sum(r["fault_latency_ns"]["log2_buckets"]) == c["faults"]
		assert b["faults_uffd"] - a["faults_uffd"] == 2000, (a["faults_uffd"], b["faults_uffd"])
		assert b["pages_installed"] - a["pages_installed"] == 2000
		assert a["faults_monitor"] == b["faults_monitor"]
		# KVM's own view (the harness's KVM has NPT): each page touched is one
		# guest page fault it fixed, and a page it maps
		ka, kb = (r["kvm"] for r in runs)
		for k in (ka, kb):
		    assert k["vcpus"]["pf_taken"] >= k["vcpus"]["pf_fixed"] > 0, k["vcpus"]
		    assert k["vcpus"]["exits"] > k["vcpus"]["io_exits"] > 0, k["vcpus"]
		assert kb["vcpus"]["pf_fixed"] - ka["vcpus"]["pf_fixed"] >= 2000, (ka["vcpus"], kb["vcpus"])
		assert kb["vm"]["pages_4k"] - ka["vm"]["pages_4k"] >= 2000, (ka["vm"], kb["vm"])
	EOF
}

# The dedup table (DEDUP_KNOBS, DEDUP_COUNTERS) feeds --help; docs/dedup.md
# must name every knob and counter --help lists, and bad knobs are usage errors.
t_dedup_help_matches_docs() {
	cmd "$FL" run --help
	expect_rc 0
	names=$(sed -n '/^Knobs of --dedup/,/^Exit status/s/^  \([a-z_]*\) .*/\1/p' "$T/out")
	[ "$(echo "$names" | wc -w)" -eq 17 ] || problem "--help lists $(echo "$names" | wc -w) dedup knobs and counters, expected 17"
	for n in $names; do
		grep -q "^| \`$n\` |" docs/dedup.md || problem "docs/dedup.md lacks a table row for $n"
	done
}

t_dedup_bad_knob() {
	cmd "$FL" run --kernel "$G" --dedup on,pages_to_scan=0
	expect_rc 64
	expect_err "faultline: invalid option value: pages_to_scan=0 is not a whole number in its range; see faultline run --help (--dedup)"
}
