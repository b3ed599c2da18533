# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there.

# ---- the baselines of faultline bench, and the benchmark itself ----------------

t_fault_handler_naive() {
	guest --fault-handler naive --stats=json --guest-arg workload=touch --guest-arg pages=1024
	expect_rc 0
	expect_out "touch: verified 1024 pages on 1 vCPUs"
	expect_stat faults_uffd 1024 # one event per page: no fault-around
	expect_stat uffdio_copy 1024 # one page copied per event (the image went through the engine)
}

t_fault_handler_kernel() {
	guest --fault-handler kernel --stats=json --guest-arg workload=touch --guest-arg pages=1024
	expect_rc 0
	expect_out "touch: verified 1024 pages on 1 vCPUs"
	expect_stat faults 0 # no userfaultfd: the kernel backs the pages
	expect_stat_ge resident 1024
}

t_bench_workload_bad_kind() {
	guest --guest-arg workload=bench --guest-arg kind=sideways
	expect_rc 2
	expect_out "bench: kind=sideways: expected touch, mmio, pio, bar or cow"
}

t_bench_workload_mmio_needs_the_bar() {
	guest --guest-arg workload=bench --guest-arg kind=mmio
	expect_rc 2
	expect_out "bench: kind=mmio needs the dedup-regs BAR (--dedup)"
}

# touch scans=S waits for dedup's scans after the touch: without dedup it
# cannot, and a scanner that does not run (run=0) is waited for only P polls.
t_bench_workload_scans_needs_dedup() {
	guest --guest-arg workload=bench --guest-arg pages=16 --guest-arg scans=3
	expect_rc 2
	expect_out "bench: scans=3 needs the dedup-regs BAR (--dedup)"
	cmd "$FL" run --kernel "$G" --dedup zero,run=0 --guest-arg workload=bench \
		--guest-arg pages=16 --guest-arg scans=3 --guest-arg polls=10
	expect_rc 1
	expect_out "bench: dedup finished 0 of 3 scans within 10 polls"
}

# fa-64, the default fault-around size, is measured as faultline, not again.
BENCH_MODES="floor kernel naive faultline fa-1 fa-2 fa-4 fa-8 fa-16 fa-32 fa-128 fa-256 fa-512 spin-50 ahead-1024 zero mmio pio bar cow"

# The issue's "done when": every mode runs, the JSON reads back, the
# counters agree with the pages the guest touched. No timing is asserted.
# SIGINT in the middle: the run in progress ends, what was measured is
# reported, marked interrupted, and the status is the signal's (130).
t_bench_interrupted() {
	# five runs a result: seconds of work after the signal on any host
	"$FL" bench --quick --vcpus 1,2 --repeat 5 --json >"$T/out" 2>"$T/err" &
	pid=$!
	sleep 6
	kill -INT $pid
	wait $pid
	rc=$?
	expect_rc 130
	expect_err_first "faultline: interrupted by signal 2 after * of * measurements: reporting those"
	# the quick plan: the 90 results t_bench_quick counts
	done_n=$(sed -n 's/^faultline: interrupted by signal 2 after \([0-9]*\) of 90 measurements: .*/\1/p' "$T/err")
	# the L1 has no Python: faultline's own pretty JSON, one key a line
	grep -qx ' "interrupted": true,' "$T/out" || problem "the document is not marked interrupted"
	results=$(grep -c '"mode":' "$T/out")
	[ -n "$done_n" ] && [ "$results" = "$done_n" ] && [ "$done_n" -lt 90 ] ||
		problem "$results results, the message says '$(head -n 1 "$T/err")'"
}

# scripts/perf-host, the runs planned for the performance host, on a real
# KVM: the probe step measures one floor VM and leaves two files (the
# device tool brings 8 back), the document and the log it printed: the
# host, the command, the table and every result's phases.
t_perf_host_probe() {
	cmd scripts/perf-host "$T/ph" probe 150
	expect_rc 0
	[ "$(ls "$T/ph" | tr '\n' ' ')" = "probe.json probe.log " ] ||
		problem "perf-host left: $(ls "$T/ph" | tr '\n' ' ')"
	expect_out_count "^host: Linux .*, [0-9]* CPUs, " 1
	expect_out_count "^kvm: .*kvm_amd" 1
	expect_out "command: build/faultline bench --json --pages 4096 --repeat 1 --timeout 60 --modes floor --patterns seq-write --vcpus 1"
	expect_out_count "^floor  *seq-write  *1  *[0-9][0-9]*  *1.00x " 1
	expect_out_count "^faultline bench on .* kvm_amd, THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled)), TSC " 1
	expect_out_count "^phases: floor 1 vCPUs: wall [0-9.]* s; setup [0-9.]* guest [0-9.]* loop [0-9.]* verify [0-9.]* guest_other [0-9.]* stop [0-9.]* exit [0-9.]*$" 1
	expect_out_count "^kvm-stats: floor 1 vCPUs: exits [0-9]* pf_taken [0-9]* pf_fixed [0-9]* .*pages_4k [0-9]*" 1
	expect_out "perf-host: probe: faultline bench exited with 0; results in $T/ph/probe.json"
	cmp -s "$T/out" "$T/ph/probe.log" || problem "the log is not what perf-host printed"
	[ "$(grep -c '"mode": "floor"' "$T/ph/probe.json")" = 1 ] || problem "the document lacks the floor's result"
}

# The huge step reserves its huge pages (vm.nr_hugepages) and says so; cut
# short here, it keeps what it measured.
t_perf_host_huge() {
	old=$(cat /proc/sys/vm/nr_hugepages)
	cmd scripts/perf-host "$T/ph" huge 25
	[ "$rc" = 0 ] || [ "$rc" = 143 ] || problem "exit status $rc, expected 0 or 143"
	expect_out "command: build/faultline bench --json --pages 4096 --repeat 1 --timeout 60 --modes floor,kernel,faultline,huge --patterns seq-write,random-write --vcpus 1,4"
	expect_out_count "^hugepages: 64 reserved, 64 free$" 1
	grep -q '"mode": "floor"' "$T/ph/huge.json" || problem "the document lacks the floor's result"
	grep -q '"status": [1-9]' "$T/ph/huge.json" && problem "a run failed: $(grep -m1 '"error"' "$T/ph/huge.json")"
	hugepages_reserve "$old"
}

# A step cut by its time limit keeps what was measured: faultline gets
# SIGTERM, reports the results before it and exits 143, and the log says so.
t_perf_host_cut_short() {
	cmd scripts/perf-host "$T/ph" goals 10
	expect_rc 143
	expect_out "perf-host: goals: faultline bench exited with 143; results in $T/ph/goals.json"
	# 6 modes in 2 patterns on 1 vCPU, the same 6 on 4 and on 16 vCPUs
	done_n=$(sed -n 's/^faultline: interrupted by signal 15 after \([0-9]*\) of 24 measurements: .*/\1/p' "$T/out")
	results=$(grep -c '"mode":' "$T/ph/goals.json")
	[ -n "$done_n" ] && [ "$results" = "$done_n" ] && [ "$done_n" -lt 24 ] ||
		problem "$results results in the document; the log says '$(grep -m1 interrupted "$T/out")'"
	grep -qx ' "interrupted": true,' "$T/ph/goals.json" || problem "the document is not marked interrupted"
}

# A run's output the parent cannot keep (no memory for it): that result
# fails with the reason, never a parse error of half a line.
t_bench_output_lost() {
	FAULTLINE_INJECT=realloc.bench_output:ENOMEM:0:0 cmd "$FL" bench --modes floor \
		--patterns seq-write --vcpus 1 --pages 64 --repeat 1 --json
	expect_rc 70
	expect_out_count '"status": 70,' 1
	expect_out_count "\"error\": \"faultline run's output could not be kept (over 1024 KiB, or out of memory)\"" 1
}

t_bench_quick() {
	cmd "$FL" bench --quick --vcpus 1,2 --json --csv "$T/bench.csv"
	expect_rc 0
	for m in $BENCH_MODES; do
		grep -qF "\"mode\": \"$m\"" "$T/out" || problem "no result of mode $m"
	done
	grep -qF '"status": 0' "$T/out" || problem "no successful result"
	grep -q '"status": [1-9]' "$T/out" && problem "a run failed: $(grep -m1 '"error"' "$T/out")"
	cp "$T/out" "$T/bench.json"
	# 17 touch modes less fa-64 (the default) in 5 patterns, 6 scaling modes on 2 vCPUs, 4 more
	rows=$(($(wc -l <"$T/bench.csv") - 1))
	[ "$rows" = 90 ] || problem "the CSV has $rows results, expected 90"
	awk -F, 'NR > 1 && $19 != 0 { print "status " $19 " of " $1 " " $3 "-" $4 }
		# the baselines without userfaultfd take no fault in the monitor
		NR > 1 && ($1 == "floor" || $1 == "kernel") && $15 != 0 { print $1 " took " $15 " faults" }
		# the naive handler: at least one fault per page touched
		NR > 1 && $1 == "naive" && $15 < $6 { print "naive: " $15 " faults for " $6 " pages" }
		# fault-around N: at least pages/N faults, and every page installed
		NR > 1 && $1 ~ /^fa-/ { n = substr($1, 4); if ($15 * n < $6 || $16 < $6) print $1 ": " $15 " faults, " $16 " installs for " $6 " pages" }
		# fault-ahead: every page installed
		NR > 1 && $1 ~ /^ahead-/ && $16 < $6 { print $1 ": " $16 " installs for " $6 " pages" }
		# where the wall time went: every phase there, and no more than the wall time
		NR > 1 && ($20 == "" || $27 == "" || $22 <= 0 || $21 + $22 + $26 + $27 > $20 + 0.001) {
			print $1 " " $3 "-" $4 ": wall " $20 " s, setup " $21 ", guest " $22 ", stop " $26 ", exit " $27 }
		# host memory: every VM has some; a touch VM whose RAM is a memfd holds exactly
		# the pages its monitor counts resident, anonymous RAM no more (the zero page of
		# reads is resident, not held)
		NR > 1 && ($28 <= 0 || $29 <= 0 || $30 <= 0) { print $1 " " $3 "-" $4 ": host memory " $28 " " $29 " " $30 " KiB" }
		NR > 1 && $2 == "touch" && ($1 == "floor" || $1 == "kernel" ? $28 > 4 * $32 : $28 != 4 * $32) {
			print $1 " " $3 "-" $4 ": guest " $28 " KiB, " $32 " pages resident" }
		# KVM saw every VM exit; with EPT/NPT, a first touch of guest RAM that is a memfd
		# (not the anonymous RAM of floor and kernel, which may be mapped 2 MiB at a time)
		# is one guest page fault KVM fixed, whoever filled the page
		NR > 1 && ($33 <= 0 || $34 < $35) { print $1 " " $3 "-" $4 ": kvm exits " $33 ", pf_taken " $34 ", pf_fixed " $35 }
		NR > 1 && tdp && $2 == "touch" && $1 != "floor" && $1 != "kernel" && $35 < $6 {
			print $1 " " $3 "-" $4 ": kvm fixed " $35 " page faults for " $6 " pages" }
		# sparse: 256 pages, every 16th of 16 MiB, in 32 MiB of RAM; the floor holds it all,
		# one page per fault holds what was touched and the image, far less; so does
		# --dedup zero, once its scans gave back the pages fault-around filled for nothing
		$3 == "sparse" { mem[$1] = $28 }
		END { if (mem["floor"] != 32768 || mem["fa-1"] < 1024 || mem["fa-1"] * 4 > mem["floor"] || mem["faultline"] > mem["floor"] ||
			  mem["zero"] < 1024 || mem["zero"] * 4 > mem["faultline"])
			print "sparse: floor " mem["floor"] " KiB, fa-1 " mem["fa-1"] ", faultline " mem["faultline"] ", zero " mem["zero"] }' \
		tdp="$(kvm_tdp && echo 1)" "$T/bench.csv" >"$T/bad"
	[ ! -s "$T/bad" ] || problem "inconsistent results: $(head -3 "$T/bad" | tr '\n' ';')"
	# the saved document renders again, without KVM
	cmd "$FL" bench --input "$T/bench.json"
	expect_rc 0
	expect_out_count "^faultline  *seq-write  *1 " 1
}

# The huge mode runs only when named, with huge pages reserved: a fault
# installs 2 MiB, and with EPT/NPT KVM maps it with one fault of its own,
# where faultline's default takes one per 4 KiB page.
t_bench_huge() {
	old=$(cat /proc/sys/vm/nr_hugepages)
	hugepages_reserve 64
	cmd "$FL" bench --quick --vcpus 1,2 --modes floor,faultline,huge --patterns seq-write,sparse-write \
		--csv "$T/bench.csv"
	expect_rc 0
	rows=$(($(wc -l <"$T/bench.csv") - 1))
	# 3 modes in 2 patterns on 1 vCPU, the 3 on 2 vCPUs
	[ "$rows" = 9 ] || problem "the CSV has $rows results, expected 9"
	awk -F, 'NR > 1 && $19 != 0 { print "status " $19 " of " $1 " " $3 "-" $4 }
		# a fault per huge page: the pages touched and 16 MiB more, 8 at most ahead of them
		NR > 1 && $1 == "huge" && ($15 > $6 / 512 + 16 || $16 % 512) { print "huge: " $15 " faults, " $16 " pages installed for " $6 }
		NR > 1 && tdp && $1 == "huge" && $35 * 8 > $6 { print "huge: kvm fixed " $35 " page faults for " $6 " pages" }
		NR > 1 && tdp && $1 == "faultline" && $35 < $6 { print "faultline: kvm fixed " $35 " page faults for " $6 " pages" }' \
		tdp="$(kvm_tdp && echo 1)" "$T/bench.csv" >"$T/bad"
	[ ! -s "$T/bad" ] || problem "inconsistent results: $(head -3 "$T/bad" | tr '\n' ';')"
	hugepages_reserve "$old"
}

# --modes and --patterns choose the measurements; the scaling runs come with
# seq-write only, so none here although --vcpus names 2.
t_bench_patterns() {
	cmd "$FL" bench --quick --csv "$T/bench.csv" --modes floor,faultline,mmio \
		--patterns random-write --vcpus 1,2
	expect_rc 0
	rows=$(($(wc -l <"$T/bench.csv") - 1))
	[ "$rows" = 3 ] || problem "the CSV has $rows results, expected 3"
	awk -F, 'NR > 1 { print $1 " " $3 " " $4 " " $5 }' "$T/bench.csv" >"$T/rows"
	printf 'floor random write 1\nfaultline random write 1\nmmio - - 1\n' >"$T/want"
	cmp -s "$T/rows" "$T/want" || problem "results: $(tr '\n' ';' <"$T/rows")"
}

# The snapshot modes (vmm/cmd/bench_snap.c): with the recorded working set
# a restore takes fewer than 5% of the userfaultfd faults it takes without;
# 8 clones of one snapshot hold less than one VM plus 1 MiB each (PSS) and
# less than 8 copies; --input renders both tables.
t_bench_snapshots() {
	# Its scratch directory on tmpfs (/dev/shm when it is one, else TMPDIR).
	mkdir -p "$T/bench-tmpfs"
	mount -t tmpfs tmpfs "$T/bench-tmpfs" || { problem "cannot mount a tmpfs on $T/bench-tmpfs"; return; }
	TMPDIR=$T/bench-tmpfs cmd "$FL" bench --quick --modes restore,clones --json
	umount "$T/bench-tmpfs"
	expect_rc 0
	grep -q '"on_tmpfs": true' "$T/out" || problem "the snapshot was not on tmpfs"
	cp "$T/out" "$T/snap.json"
	for k in restore_to_answer_ms first_answer_ms warm_answer_ms fault_reduction_ws pss_kib_one pss_kib_shared pss_kib_private kib_per_clone start_ms_shared; do
		[ -n "$(bench_num "$k")" ] || problem "no number \"$k\" in the document"
	done
	grep -q '"error"' "$T/out" && problem "a snapshot mode failed: $(grep -m1 '"error"' "$T/out")"
	faults=$(sed -n 's/^ *"faults_uffd": \([0-9]*\),*$/\1/p' "$T/out" | tr '\n' ' ')
	set -- $faults
	[ $# = 3 ] && [ $(($3 * 20)) -lt "$1" ] ||
		problem "faults_uffd after the restores (off, seq, ws): $faults; ws should take under 5% of off's"
	echo "    restore: faults_uffd off, seq, ws: $faults; restore to answer $(bench_num restore_to_answer_ms) ms (TCG)"
	one=$(bench_num pss_kib_one)
	shared=$(bench_num pss_kib_shared)
	private=$(bench_num pss_kib_private)
	echo "    clones: 8 shared $shared KiB, 8 copies $private KiB, one $one KiB (PSS)"
	[ "$shared" -lt $((one + 8 * 1024)) ] || problem "8 clones hold $shared KiB, more than one VM's $one KiB + 8 MiB"
	[ "$shared" -lt "$private" ] || problem "8 clones hold $shared KiB, no less than 8 copies' $private KiB"
	cmd "$FL" bench --input "$T/snap.json"
	expect_rc 0
	grep -q "^ws  *[0-9.]* " "$T/out" || problem "the table has no ws row: $(head -c 600 "$T/out")"
	grep -q "^clones: 8 at once of one snapshot of the test guest's serve workload, 1024 pages: PSS $shared KiB in all" "$T/out" ||
		problem "the table has no clones line: $(grep clones "$T/out")"
}
# Number $1 of the bench document in $T/out (the first one of that name).
bench_num() { sed -n "s/^ *\"$1\": \([0-9.e+-]*\),*$/\1/p" "$T/out" | head -n 1; }

# The clones mode of Linux (--linux): clones of a 256 MiB Linux snapshot,
# each answering with the clone number it read from port 0x514 (the bench
# refuses another), hold less than one alone plus 4 MiB each (they held
# 3.1 MiB in 2026-12-08's runs, 5-7 MiB before a clone's window ended at a
# hole; the goal of 1 MiB is docs/benchmarks.md's) and less than half as
# many copies; the table names the guest.
t_bench_linux_clones() {
	mkdir -p "$T/bench-tmpfs"
	mount -t tmpfs tmpfs "$T/bench-tmpfs" || { problem "cannot mount a tmpfs on $T/bench-tmpfs"; return; }
	TMPDIR=$T/bench-tmpfs cmd "$FL" bench --modes clones --linux configs/default.json --clones 8 --json
	umount "$T/bench-tmpfs"
	expect_rc 0
	grep -q '"error"' "$T/out" && problem "the clones mode failed: $(grep -m1 '"error"' "$T/out")"
	grep -q '"guest": "Linux (--linux configs/default.json)"' "$T/out" ||
		problem "the document does not name the Linux guest: $(grep -m1 '"guest"' "$T/out")"
	cp "$T/out" "$T/linux.json"
	one=$(bench_num pss_kib_one)
	shared=$(bench_num pss_kib_shared)
	private=$(bench_num pss_kib_private)
	echo "    Linux clones: 8 shared $shared KiB, 8 copies $private KiB, one $one KiB (PSS), $(bench_num kib_per_clone) KiB per clone"
	[ -n "$one" ] && [ "$shared" -lt $((one + 8 * 4096)) ] ||
		problem "8 Linux clones hold $shared KiB, more than one VM's $one KiB + 8 x 4 MiB"
	[ "$((shared * 2))" -lt "$private" ] ||
		problem "8 Linux clones hold $shared KiB, not under half of 8 copies' $private KiB"
	cmd "$FL" bench --input "$T/linux.json"
	expect_rc 0
	grep -q "^clones: 8 at once of one snapshot of Linux (--linux configs/default.json): PSS $shared KiB in all" "$T/out" ||
		problem "the table has no clones line: $(grep clones "$T/out")"
}

# A snapshot mode whose VM cannot start: the document says which step and
# why, nothing is left in the scratch directory, and the status is 70.
t_bench_snapshot_vm_fails() {
	printf '{"kernel": "%s/nonexistent-vmlinux", "mem": "64M"}\n' "$T" >"$T/bad-vm.json"
	mkdir -p "$T/bench-scratch"
	TMPDIR=$T/bench-scratch cmd "$FL" bench --modes clones --linux "$T/bad-vm.json" --json
	expect_rc 70
	grep -q "\"error\": \"the VM to snapshot: faultline: .*$T/nonexistent-vmlinux" "$T/out" ||
		problem "the document does not say why: $(grep -m1 '"error"' "$T/out")"
	[ -z "$(ls -A "$T/bench-scratch")" ] || problem "left in the scratch directory: $(ls -A "$T/bench-scratch")"
	# the test guest's serve workload on a kernel that is no test guest: the same
	TMPDIR=$T/bench-scratch cmd "$FL" bench --modes restore --kernel "$T/bad-vm.json" --json
	expect_rc 70
	grep -q '"error": "the VM to snapshot: ' "$T/out" ||
		problem "the document does not say why: $(grep -m1 '"error"' "$T/out")"
	[ -z "$(ls -A "$T/bench-scratch")" ] || problem "left in the scratch directory: $(ls -A "$T/bench-scratch")"
	set -- /dev/shm/faultline-bench-*
	[ ! -e "$1" ] || problem "left in /dev/shm: $*"
}
