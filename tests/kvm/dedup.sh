# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there.

# ---- dedup (mmu/dedup.c, devices/bar/dedup_dev.c) ----------------------------------------

# A counter at least N (integer compare of the last JSON value).
expect_stat_ge() {
	v=$(stat "$1")
	[ -n "$v" ] && [ "$v" -ge "$2" ] || problem "stats: $1 is '$v', expected at least $2"
}

DEDUP=on,pages_to_scan=4096,sleep_ms=1

# The issue's test: 4096 pages of 16 contents; the guest sees the merge
# through its register page, rewrites 64 pages and verifies every byte.
t_dedup_merges_4096_pages_of_16_contents() {
	guest --mem 64M --dedup $DEDUP --guest-arg workload=dedup --stats=json
	expect_rc 0
	expect_out "dedup: wrote 4096 pages of 16 contents and 0 zero pages"
	expect_out "dedup: rewrote 64 pages"
	expect_out "dedup: verified 4096 pages, crc32 65cb51bf"
	merged=$(sed -n 's/^dedup: merged: pages_shared [0-9]* pages_sharing \([0-9]*\) .*/\1/p' "$T/out")
	[ "${merged:-0}" -ge 4000 ] || problem "the guest saw pages_sharing '$merged' after the merge"
	expect_stat_ge pages_sharing 4000 # 4032 pages of 16 contents, 64 of their own
	expect_stat_ge cow_breaks 64
	expect_stat cow_break_failures 0
	expect_stat merge_errors 0
	res=$(stat resident)
	[ "${res:-99999}" -lt 1024 ] || problem "resident pages $res: the merge freed nothing"
	# the host holds what the budget counts: the shared pages and the rest
	hm=$(host_memory)
	[ "${hm%% *}" = $((res * 4)) ] || problem "host memory '$hm' KiB, $res pages resident"
}

# run=2 from the guest: every page gets its own copy back, contents intact.
t_dedup_unmerge_from_the_guest() {
	guest --mem 32M --dedup $DEDUP --guest-arg workload=dedup --guest-arg pages=1024 \
		--guest-arg unmerge=1 --stats=json
	expect_rc 0
	grep -q "^dedup: unmerged: pages_shared 0 pages_sharing 0 " "$T/out" ||
		problem "the guest did not see everything unmerged"
	expect_out "dedup: verified 1024 pages, crc32 6580f2b4"
	expect_stat_ge unmerged 950 # the 64 rewritten pages have contents of their own
	expect_stat pages_shared 0
	expect_stat pages_sharing 0
}

# A copy-on-write break over budget: --on-oom kill, with the documented message.
t_dedup_cow_break_over_budget_kills() {
	guest --mem 16M --mem-limit 8M --dedup $DEDUP --guest-arg workload=dedup \
		--guest-arg pages=1024 --guest-arg kinds=4 --guest-arg fresh=1536 \
		--guest-arg rewrite=1024
	expect_rc 75
	expect_err_first "faultline: dedup: stopped merging: a copy-on-write break failed at GPA 0x*: out of memory"
	expect_err_has "faultline: guest out of memory: copy-on-write break of a shared page: budget of 2048 pages exhausted (GPA 0x"
	grep -q "^dedup: merged: pages_shared 4 pages_sharing 1020 " "$T/out" ||
		problem "the guest did not see 1020 pages merged"
}

# ... and --on-oom pause: the break waits for room; once the budget is
# raised every page is still what the guest wrote (copy-on-write that
# survives OOM).
t_dedup_cow_break_over_budget_pauses() {
	api_vm --mem 16M --mem-limit 8M --dedup $DEDUP --on-oom pause --guest-arg workload=dedup \
		--guest-arg pages=1024 --guest-arg kinds=4 --guest-arg fresh=1536 \
		--guest-arg rewrite=1024 --guest-arg rearm=1
	ctl wait paused-oom 120
	expect_crc 0
	grep -q '^  "oom": "guest out of memory: copy-on-write break of a shared page: budget of 2048 pages exhausted (GPA 0x' "$T/ctl" ||
		problem "the status names no copy-on-write OOM: $(cat "$T/ctl")"
	ctl mem-limit 16M
	ctl resume
	expect_crc 0
	bg_vm_end
	expect_rc 0
	expect_out "dedup: rewrote 1024 pages"
	expect_out "dedup: the monitor stopped merging; asking for run=1"
	grep -q "^dedup: verified 2560 pages, crc32 [0-9a-f]*$" "$T/out" || problem "the guest did not verify its pages"
	expect_stat_ge refaults 1
	expect_stat cow_break_failures 1
}

# ... and --on-oom mce: the guest takes a machine check for the page. The
# copy fails by injection here: with a really full budget, the guest's own
# #MC handler may need a page too (docs/dedup.md, limits).
t_dedup_cow_break_failure_mce() {
	FAULTLINE_INJECT=dedup.cow:ENOMEM guest --mem 32M --dedup $DEDUP --on-oom mce \
		--guest-arg workload=dedup --guest-arg pages=256 --stats=json
	expect_rc 0
	expect_err_first "faultline: dedup: stopped merging: a copy-on-write break failed at GPA 0x*: out of memory"
	expect_err_has "copy-on-write break of a shared page: budget of 8192 pages exhausted"
	expect_err_has "poisoning the page so that the guest takes a machine check (--on-oom mce)"
	gpa=$(sed -n 's/^faultline: injected a machine check into vCPU 0 for GPA \(0x[0-9a-f]*\)$/\1/p' "$T/err")
	[ -n "$gpa" ] || problem "no machine check injected"
	expect_out "guest: machine check on vCPU 0: GPA $gpa (bank 1, status 0xbd80000000000134)"
	expect_stat cow_break_failures 1
	expect_stat pages_poisoned 1
}

# An injected copy failure is the same OOM, not a loop.
t_dedup_injected_cow_failure() {
	FAULTLINE_INJECT=dedup.cow:ENOMEM guest --mem 32M --dedup $DEDUP \
		--guest-arg workload=dedup --guest-arg pages=256 --stats=json
	expect_rc 75
	expect_err_first "faultline: dedup: stopped merging: a copy-on-write break failed at GPA 0x*: out of memory"
	expect_stat cow_break_failures 1
}

# --dedup zero: zero pages are released and read back as zeros; nothing merged.
t_dedup_zero_pages_only() {
	guest --mem 32M --dedup zero,pages_to_scan=4096,sleep_ms=1 --guest-arg workload=dedup \
		--guest-arg pages=256 --guest-arg zeros=512 --stats=json
	expect_rc 0
	expect_out "dedup: verified 768 pages, crc32 45ee0f17"
	expect_stat_ge zero_pages 512
	expect_stat pages_shared 0
}

# A file-backed VM: clean file pages merge too; zeroed pages stay zero.
t_dedup_file_backed() {
	head -c 8388608 /dev/zero | tr '\0' 'a' >"$T/backing"
	guest --mem 8M --backing "file:$T/backing" --dedup $DEDUP --guest-arg workload=dedup \
		--guest-arg pages=512 --guest-arg zeros=64 --stats=json
	expect_rc 0
	expect_out "dedup: verified 576 pages, crc32 54a6b292"
	expect_stat_ge zero_pages 64
	expect_stat_ge pages_sharing 440
}

# Past the mapping limit nothing is merged, and that is counted.
t_dedup_map_limit() {
	guest --dedup on,pages_to_scan=4096,sleep_ms=1,map_limit=1 --guest-arg workload=dedup \
		--guest-arg pages=512 --stats=json
	expect_rc 0
	expect_stat pages_sharing 0
	expect_stat_ge merges_skipped_map_limit 1
}

# The register page rejects a bad RUN value: the guest misbehaved (73).
t_dedup_bad_run_register() {
	guest --dedup $DEDUP --guest-arg workload=dedup --guest-arg run=3
	expect_rc 73
	expect_err_first "faultline: register write at offset 0x8 (8 bytes) rejected by device dedup-regs: Invalid argument (GPA 0xd8000000, vCPU 0)"
}

# Without --dedup there is no register page (and no write-protect cost).
t_dedup_off_by_default() {
	guest --guest-arg workload=dedup
	expect_rc 4
	expect_out "dedup: no faultline,dedup device in the device tree (--dedup on)"
}
