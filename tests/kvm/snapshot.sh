# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there,
# and api.sh's (api_vm, ctl, expect_ctl, expect_crc).

# ---- snapshots (faultline ctl SOCKET snapshot DIR, run --restore DIR; vmm/vm/vm_snapshot.c,
# vmm/vm/vm_restore.c, vmm/kvm/kvm_state.c) ----------------------------------------------------------

# Wait up to 120 s for a line of $T/out matching the fixed string $1.
wait_out() {
	i=0
	while ! grep -qF -- "$1" "$T/out" 2>/dev/null && [ $i -lt 1200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -qF -- "$1" "$T/out" || problem "no '$1' on stdout within 120 s: $(tail -n 3 "$T/out" | tr '\n' '|') $(tr '\n' '|' <"$T/err")"
}
# Stop the VM api_vm started and wait for it; its exit status in $vmrc.
stop_vm() {
	ctl stop
	wait $vm
	vmrc=$?
}
# A field of the manifest: `"$1": VALUE,` as json_dumpf indents it (by $2 spaces).
expect_manifest() {
	grep -qxF -- "$1" "$2/manifest.json" ||
		problem "the manifest lacks the line: $1 ($(tr -d ' \n' <"$2/manifest.json" | head -c 400))"
}
# No snapshot directory and no partial one is left under $T for the name $1.
expect_no_snapshot() {
	[ ! -e "$1" ] || problem "$1 exists after a failed snapshot"
	set -- "$1".partial-*
	[ ! -e "$1" ] || problem "a partial snapshot is left behind: $1"
}

SNAP_ARGS="--vcpus 2 --mem 64M --guest-arg workload=snap --guest-arg pages=16 --guest-arg rounds=2000"

# The test guest on 2 vCPUs writing and checking its pages round after
# round, snapshotted mid-run and stopped: restored twice from the same
# directory, it goes on from its round and finds every page as it was.
t_snapshot_test_guest_restores_mid_run() {
	# shellcheck disable=SC2086
	api_vm $SNAP_ARGS
	wait_out "snap: round 20"
	ctl snapshot "$T/snap"
	expect_crc 0
	expect_ctl '  "state": "paused",'
	stop_vm
	[ "$vmrc" = 76 ] || problem "the snapshotted VM exited $vmrc, expected 76 (ctl stop)"
	last=$(sed -n 's/^snap: round \([0-9]*\)$/\1/p' "$T/out" | tail -n 1)
	expect_manifest '  "faultline_snapshot": 1,' "$T/snap"
	expect_manifest '    "board": "test",' "$T/snap"
	expect_manifest '    "vcpus": 2,' "$T/snap"
	[ "$(ls -ln "$T/snap/memory" | awk '{print $5}')" = 67108864 ] || problem "the memory file is not 64 MiB"
	[ "$(du -k "$T/snap/memory" | cut -f1)" -lt 8192 ] ||
		problem "the memory file holds $(du -k "$T/snap/memory" | cut -f1) KiB: not sparse"
	for n in 1 2; do
		if [ $n = 1 ]; then
			cmd "$FL" run --restore "$T/snap" --stats=json
		else
			# --paused: it waits where the snapshot left it until resumed.
			S=$T/paused.sock
			"$FL" run --restore "$T/snap" --stats=json --paused --api "$S" >"$T/out" 2>"$T/err" &
			vm=$!
			ctl wait paused 90
			expect_crc 0
			expect_ctl '  "state": "paused",'
			grep -q "^snap: round" "$T/out" && problem "the paused VM printed: $(head -n 1 "$T/out")"
			ctl resume
			expect_crc 0
			wait $vm
			rc=$?
		fi
		expect_rc 0
		expect_out "snap: vCPU 0 checked 16 pages in 2000 rounds"
		expect_out "snap: vCPU 1 checked 16 pages in 2000 rounds"
		first=$(sed -n 's/^snap: round \([0-9]*\)$/\1/p' "$T/out" | head -n 1)
		[ -n "$first" ] && [ "$first" -ge "$last" ] ||
			problem "restore $n: the first round printed is '$first', the snapshot was after round $last"
		# On tmpfs the memory file is mapped (shared), elsewhere it is read.
		if grep -q '"memory_shared":true' "$T/err"; then
			[ "$(stat uffdio_continue)" -gt 0 ] || problem "restore $n: nothing mapped from the shared memory file"
		else
			[ "$(stat backing_reads)" -gt 0 ] || problem "restore $n: nothing read from the memory file"
		fi
	done
}

# A snapshot of a VM paused out of memory, restored with a larger budget:
# the fault that waited is served again and the guest loses nothing.
t_snapshot_paused_oom_restored_with_room() {
	api_vm --mem 128M --mem-limit 16M --on-oom pause --guest-arg workload=touch \
		--guest-arg pages=8192
	ctl wait paused-oom 90
	expect_crc 0
	ctl snapshot "$T/oom"
	expect_crc 0
	expect_ctl '  "state": "paused",'
	stop_vm
	expect_manifest '    "on_oom": "pause",' "$T/oom"
	cmd "$FL" run --restore "$T/oom" --mem-limit 128M --on-oom kill --stats=json
	expect_rc 0
	expect_out "touch: verified 8192 pages on 1 vCPUs"
}

# --resume: the VM runs on after the snapshot and finishes on its own.
t_snapshot_resume() {
	# shellcheck disable=SC2086
	api_vm $SNAP_ARGS
	wait_out "snap: round 10"
	ctl snapshot "$T/resumed" --resume
	expect_crc 0
	expect_ctl '  "state": "running",'
	wait $vm
	vmrc=$?
	[ "$vmrc" = 0 ] || problem "the VM exited $vmrc after the snapshot, expected 0"
	grep -qxF "snap: vCPU 0 checked 16 pages in 2000 rounds" "$T/out" ||
		problem "the resumed VM did not finish its rounds"
}

# Bad snapshots are refused before anything runs, naming the file and the
# field; the snapshot directory of the first test is the model.
t_snapshot_bad_input() {
	# shellcheck disable=SC2086
	api_vm $SNAP_ARGS
	wait_out "snap: round 10"
	ctl snapshot "$T/good"
	expect_crc 0
	# A directory that exists: refused, and nothing in it touched.
	ctl snapshot "$T/good"
	expect_crc 64
	grep -qxF "faultline: ctl: the snapshot directory exists; name a new one (file: $T/good)" "$T/ctl.err" ||
		problem "ctl snapshot into an existing directory: $(cat "$T/ctl.err")"
	stop_vm
	bad() { rm -rf "$T/bad" && cp -r "$T/good" "$T/bad"; }

	bad
	printf 'X' | dd of="$T/bad/state" bs=1 seek=100 conv=notrunc 2>/dev/null
	cmd "$FL" run --restore "$T/bad"
	expect_rc 78
	expect_err "faultline: cannot restore the snapshot: its checksum does not match: the file changed or is corrupt (field: files.state.xxh3) (file: $T/bad/state)"

	bad
	sed -i 's/"faultline_snapshot": 1/"faultline_snapshot": 2/' "$T/bad/manifest.json"
	cmd "$FL" run --restore "$T/bad"
	expect_rc 78
	expect_err "faultline: cannot restore the snapshot: a snapshot of version 2, this faultline reads 1 (field: faultline_snapshot) (file: $T/bad/manifest.json)"

	bad
	truncate -s 32M "$T/bad/memory"
	cmd "$FL" run --restore "$T/bad"
	expect_rc 78
	expect_err "faultline: cannot restore the snapshot: 33554432 bytes, the manifest says 67108864 (field: files.memory.bytes) (file: $T/bad/memory)"

	bad
	head -c 100 "$T/good/manifest.json" >"$T/bad/manifest.json"
	cmd "$FL" run --restore "$T/bad"
	expect_rc 78
	expect_err_has "faultline: cannot restore the snapshot: not a JSON object:"

	bad
	sed -i 's/"1.ecx": "0x[0-9a-f]*"/"1.ecx": "0xffffffff"/' "$T/bad/manifest.json"
	cmd "$FL" run --restore "$T/bad"
	expect_rc 78
	expect_err_has "faultline: cannot restore the snapshot: this host lacks CPU features the snapshot's vCPUs were given: CPUID 1.ecx bits"

	bad
	rm "$T/bad/state"
	cmd "$FL" run --restore "$T/bad"
	expect_rc 66
	expect_err "faultline: cannot restore the snapshot: cannot read it: No such file or directory (file: $T/bad/state)"

	# KVM refusing a vCPU's state: the restore stops there, naming the ioctl.
	FAULTLINE_INJECT=KVM_SET_MSRS:EINVAL cmd "$FL" run --restore "$T/good"
	expect_rc 78
	expect_err "faultline: KVM_SET_MSRS failed: Invalid argument (vCPU 0)"

	cmd "$FL" run --restore "$T/good" --mem 128M
	expect_rc 64
	expect_err "faultline: usage: the snapshot fixes the guest, its RAM, vCPUs and devices; --mem cannot be given with --restore"
	cmd "$FL" run --restore "$T/nothing-here"
	expect_rc 66
}

# A snapshot that cannot be taken leaves the VM running as it was and no
# directory behind: a VM with the kernel's fault handler, and a write that
# fails (injected).
t_snapshot_refused_leaves_nothing() {
	api_vm --fault-handler kernel --guest-arg workload=spin
	ctl snapshot "$T/kern"
	expect_crc 1
	grep -qxF "faultline: ctl: snapshot: cannot snapshot this VM: the baseline fault handlers keep no page state (--fault-handler) (socket: $S)" "$T/ctl.err" ||
		problem "ctl snapshot of a VM with the kernel's handler: $(cat "$T/ctl.err")"
	expect_no_snapshot "$T/kern"
	ctl status
	expect_ctl '  "state": "running",'
	stop_vm
	for f in "snapshot.write:ENOSPC|cannot write the state file: No space left on device" \
		"snapshot.fsync:EIO:1|cannot write the memory file: Input/output error" \
		"KVM_GET_MSRS:EIO|cannot save the VM's state: Input/output error"; do
		FAULTLINE_INJECT=${f%%|*} api_vm --guest-arg workload=spin
		ctl snapshot "$T/full"
		expect_crc 1
		grep -qxF "faultline: ctl: snapshot: ${f#*|} (socket: $S)" "$T/ctl.err" ||
			problem "ctl snapshot with ${f%%|*}: $(cat "$T/ctl.err")"
		expect_no_snapshot "$T/full"
		ctl status
		expect_ctl '  "state": "running",'
		stop_vm
	done
	grep -qxF "faultline: KVM_GET_MSRS failed: Input/output error (vCPU 0)" "$T/err" ||
		problem "the VM did not name the ioctl that failed: $(head -n 3 "$T/err")"
}

# The done-when of the snapshot issue: Linux on 2 vCPUs printing ticks,
# snapshotted at tick 20 and stopped, restored twice from the directory,
# the two at once: each prints the ticks from where it was to 300, has
# reseeded its random numbers once, and exits 0.
t_snapshot_linux_ticks() {
	S=$T/linux.sock
	"$FL" run --config configs/default.json --api "$S" --cmdline "console=ttyS0 quiet faultline.run='i=0; while [ \$i -lt 300 ]; do i=\$((i+1)); echo tick \$i; sleep 0.1; done; echo forks=\$(dmesg | grep -c [v]irtual.machine.fork)'" >"$T/out" 2>"$T/err" &
	vm=$!
	wait_out "tick 20"
	ctl snapshot "$T/linux"
	expect_crc 0
	stop_vm
	expect_manifest '    "board": "linux",' "$T/linux"
	timeout 300 "$FL" run --restore "$T/linux" >"$T/out2" 2>"$T/err2" &
	second=$!
	cmd "$FL" run --restore "$T/linux"
	wait $second
	rc2=$?
	for n in 1 2; do
		if [ $n = 2 ]; then
			rc=$rc2
			mv "$T/out2" "$T/out"
			mv "$T/err2" "$T/err"
		fi
		tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
		expect_rc 0
		expect_out "tick 300"
		first=$(sed -n 's/^tick \([0-9]*\)$/\1/p' "$T/out" | head -n 1)
		[ -n "$first" ] && [ "$first" -ge 20 ] && [ "$first" -le 40 ] ||
			problem "restore $n: the first tick is '$first', the snapshot was at about tick 20"
		# A new VM generation ID: the guest's random numbers were reseeded. The
		# pattern's brackets keep it from matching the command line dmesg has.
		expect_out "forks=1"
	done
}

# Linux with a disk it has mounted and written, snapshotted and stopped:
# the disk is the snapshot's, so one that changed since is refused; a copy
# given with --disk is taken, and the restored guest reads and writes it
# through the queues it had.
t_snapshot_linux_disk() {
	cp build/linux/test-disk.img "$T/sdisk.img"
	S=$T/disk.sock
	"$FL" run --config configs/default.json --disk "$T/sdisk.img" --api "$S" --cmdline "console=ttyS0 quiet faultline.run='mount /dev/vda /mnt && echo before-snapshot >/mnt/b.txt && sync && i=0; while [ \$i -lt 60 ]; do i=\$((i+1)); echo tick \$i; sleep 0.1; done; cat /mnt/b.txt /mnt/hello.txt; echo after-restore-\$i >/mnt/a.txt; umount /mnt'" >"$T/out" 2>"$T/err" &
	vm=$!
	wait_out "tick 10"
	ctl snapshot "$T/dsnap"
	expect_crc 0
	stop_vm
	expect_manifest "      \"path\": \"$T/sdisk.img\"," "$T/dsnap"
	cp "$T/sdisk.img" "$T/copy.img"
	touch -d '2001-01-01' "$T/sdisk.img"
	cmd "$FL" run --restore "$T/dsnap"
	expect_rc 78
	expect_err "faultline: cannot restore the snapshot: disk 0 changed since the snapshot (field: disks[0].mtime_ns) (file: $T/sdisk.img)"
	cmd "$FL" run --restore "$T/dsnap" --disk "$T/copy.img" --disk "$T/copy.img"
	expect_rc 64
	expect_err "faultline: usage: the snapshot has 1 disks; --disk gave 2 (--restore $T/dsnap)"
	cmd "$FL" run --restore "$T/dsnap" --disk "$T/copy.img"
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	expect_rc 0
	expect_out "tick 60"
	expect_out "before-snapshot"
	expect_out "hello from the host disk"
	[ "$(grep -c after-restore-60 "$T/copy.img")" -ge 1 ] ||
		problem "the restored guest's write is not in the disk image"
}

# Linux with a balloon holding 32 MiB, snapshotted and stopped: restored, the
# balloon still holds them, and it deflates on request through the queues
# it had.
t_snapshot_linux_balloon() {
	S=$T/bal.sock
	"$FL" run --config configs/default.json --balloon --api "$S" --cmdline "console=ttyS0 quiet faultline.run='i=0; while [ \$i -lt 150 ]; do i=\$((i+1)); echo tick \$i; sleep 0.1; done'" >"$T/out" 2>"$T/err" &
	vm=$!
	wait_out "tick 5"
	ctl balloon 32M
	expect_crc 0
	balloon_actual 8192
	ctl snapshot "$T/bsnap"
	expect_crc 0
	stop_vm
	grep -qE '^    "balloon": true,?$' "$T/bsnap/manifest.json" ||
		problem "the manifest does not say the VM has a balloon"
	S=$T/bal2.sock
	"$FL" run --restore "$T/bsnap" --api "$S" >"$T/out" 2>"$T/err" &
	vm=$!
	ctl wait running 90
	balloon_actual 8192
	ctl balloon 0
	expect_crc 0
	balloon_actual 0
	wait $vm
	vmrc=$?
	[ "$vmrc" = 0 ] || problem "the restored VM exited $vmrc: $(tail -n 2 "$T/err" | tr '\n' '|')"
	tr -d '\r' <"$T/out" | grep -qx "tick 150" || problem "the restored guest did not reach tick 150"
}

# A VM whose pages dedup merged, snapshotted once they are: each merged
# page is written whole, as the guest sees it, and the restored guest's
# check of every byte comes out as without a snapshot.
t_snapshot_dedup_merged_pages() {
	api_vm --mem 64M --dedup "$DEDUP" --guest-arg workload=dedup --guest-arg scans=10
	wait_out "dedup: merged:"
	ctl snapshot "$T/dd"
	expect_crc 0
	written=$(sed -n 's/^  "pages_written": \([0-9]*\),$/\1/p' "$T/ctl")
	stop_vm
	expect_manifest '      "mode": "on",' "$T/dd"
	[ "${written:-0}" -ge 4096 ] || problem "$written pages written: the merged pages are not all there"
	cmd "$FL" run --restore "$T/dd" --stats=json
	expect_rc 0
	expect_out "dedup: verified 4096 pages, crc32 65cb51bf"
}

# Linux talking over its channel, snapshotted and stopped: restored on a
# new socket (a restore without --channel is refused), the guest sees its
# host program leave and the port open again when one connects; what it
# writes meanwhile waits for that program, and the exchange goes on.
t_snapshot_linux_channel() {
	C=$T/ch1.sock
	S=$T/chapi.sock
	# Under 32 words: the kernel panics on more init arguments.
	"$FL" run --config configs/default.json --channel "$C" --api "$S" --cmdline "console=ttyS0 quiet faultline.run='until exec 3<>$P&&read -r a<&3;do sleep .2;done;echo pong:\$a>&3;for i in \$(seq 40);do echo tick \$i;sleep .1;done;echo late:\$a>&3;read -r b<&3;echo got:\$b;echo pong:\$b>&3'" >"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while [ ! -S "$C" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	printf 'one\n' | timeout 300 "$FL" channel "$C" >"$T/chan1" 2>"$T/chan1.err" &
	chan=$!
	wait_out "tick 10"
	ctl snapshot "$T/csnap"
	expect_crc 0
	stop_vm
	wait $chan
	[ "$(cat "$T/chan1")" = "pong:one" ] || problem "the first host program got '$(cat "$T/chan1")', expected pong:one"
	grep -qE '^    "channel": true,?$' "$T/csnap/manifest.json" ||
		problem "the manifest does not say the VM has a channel"
	cmd "$FL" run --restore "$T/csnap"
	expect_rc 64
	expect_err "faultline: usage: the snapshot has a channel: give --channel SOCKET, a new socket for its host side (--restore $T/csnap)"
	C=$T/ch2.sock
	"$FL" run --restore "$T/csnap" --channel "$C" --stats=json >"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while [ ! -S "$C" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	printf 'two\n' | timeout 300 "$FL" channel "$C" >"$T/chan2" 2>"$T/chan2.err"
	crc=$?
	wait $vm
	rc=$?
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	expect_rc 0
	[ "$crc" = 0 ] || problem "faultline channel: exit status $crc: $(cat "$T/chan2.err")"
	[ "$(tr '\n' ' ' <"$T/chan2")" = "late:one pong:two " ] ||
		problem "the second host program got '$(tr '\n' ' ' <"$T/chan2")', expected late:one pong:two"
	expect_out "tick 40"
	expect_out "got:two"
	expect_stat connections 1
	expect_stat tx_dropped 0
}

# The test guest checking every word of a vram BAR pass after pass, with
# pages moving between the pool and system memory under it, and an shm
# BAR whose doorbell it rang: snapshotted mid-run and restored, it finds
# every page of the pass before, and the shm file must still be there.
t_snapshot_bar_devices() {
	dd if=/dev/zero of="$T/shm.bin" bs=4096 count=2 2>/dev/null
	api_vm --vcpus 2 --vram size=256K,pool=16K --shm "$T/shm.bin",size=8K \
		--guest-arg workload=vram --guest-arg passes=60
	wait_out "vram: BAR of 64 pages"
	ctl snapshot "$T/vsnap"
	expect_crc 0
	stop_vm
	grep -q "verified" "$T/out" && problem "the workload ended before the snapshot: $(grep verified "$T/out")"
	grep -qE "^      \"path\": \"$T/shm.bin\",?$" "$T/vsnap/manifest.json" ||
		problem "the manifest does not name the shm file"
	mv "$T/shm.bin" "$T/shm.moved"
	cmd "$FL" run --restore "$T/vsnap"
	expect_rc 66
	expect_err "faultline: cannot open the shm file: No such file or directory (file: $T/shm.bin)"
	mv "$T/shm.moved" "$T/shm.bin"
	cmd "$FL" run --restore "$T/vsnap" --stats=json
	expect_rc 0
	expect_out "vram: vCPU 0 verified 32 pages after 60 passes"
	expect_out "vram: vCPU 1 verified 32 pages after 60 passes"
}

# A diff snapshot (--diff-snapshots): the test guest snapshotted in full
# and run on, then a diff taken: it holds only the pages written since,
# and restored on its base the guest goes on and every page checks. A
# restored VM takes a diff on the snapshot it came from. A diff without
# tracking, without a snapshot to build on, or whose base is gone is
# refused, naming why.
t_snapshot_diff() {
	# shellcheck disable=SC2086
	api_vm $SNAP_ARGS
	ctl snapshot "$T/nodiff" --diff
	expect_crc 1
	grep -qxF "faultline: ctl: snapshot: cannot snapshot this VM: a diff needs the VM started with --diff-snapshots, which tracks the pages written between snapshots (socket: $S)" "$T/ctl.err" ||
		problem "a diff without --diff-snapshots: $(cat "$T/ctl.err")"
	expect_no_snapshot "$T/nodiff"
	stop_vm
	# shellcheck disable=SC2086
	api_vm --diff-snapshots $SNAP_ARGS
	ctl snapshot "$T/nobase" --diff
	expect_crc 1
	grep -qxF "faultline: ctl: snapshot: cannot snapshot this VM: no snapshot of this VM to build a diff on: take a full one first, or restore the VM from one (socket: $S)" "$T/ctl.err" ||
		problem "a diff without a base: $(cat "$T/ctl.err")"
	wait_out "snap: round 20"
	ctl snapshot "$T/full" --resume
	expect_crc 0
	full=$(sed -n 's/^  "pages_written": \([0-9]*\),$/\1/p' "$T/ctl")
	n=$(sed -n 's/^snap: round \([0-9]*\)$/\1/p' "$T/out" | tail -n 1)
	wait_out "snap: round $((n + 20))"
	ctl snapshot "$T/diff" --diff
	expect_crc 0
	in_diff=$(sed -n 's/^  "pages_in_diff": \([0-9]*\),$/\1/p' "$T/ctl")
	stop_vm
	last=$(sed -n 's/^snap: round \([0-9]*\)$/\1/p' "$T/out" | tail -n 1)
	[ -n "$in_diff" ] && [ -n "$full" ] && [ "$in_diff" -gt 0 ] && [ "$in_diff" -lt "$full" ] ||
		problem "the diff holds '$in_diff' pages, the full snapshot wrote '$full': expected fewer, not none"
	expect_manifest "    \"dir\": \"$T/full\"," "$T/diff"
	[ -s "$T/diff/pages" ] || problem "the diff has no list of pages"
	# vCPU 1 prints no rounds: it may have checked all of its before the diff.
	cp "$T/out" "$T/out.src"
	cmd "$FL" run --restore "$T/diff" --stats=json
	expect_rc 0
	expect_out "snap: vCPU 0 checked 16 pages in 2000 rounds"
	cat "$T/out.src" "$T/out" | grep -qx "snap: vCPU 1 checked 16 pages in 2000 rounds" ||
		problem "vCPU 1 did not finish, before the diff or after its restore"
	first=$(sed -n 's/^snap: round \([0-9]*\)$/\1/p' "$T/out" | head -n 1)
	[ -n "$first" ] && [ "$first" -ge "$last" ] ||
		problem "the diff's restore printed round '$first' first, the diff was after round $last"
	# A restored VM's diff builds on the snapshot it came from.
	S=$T/r.sock
	"$FL" run --restore "$T/full" --diff-snapshots --api "$S" --stats=json >"$T/out" 2>"$T/err" &
	vm=$!
	wait_out "snap: round $((n + 10))"
	ctl snapshot "$T/rdiff" --diff
	expect_crc 0
	stop_vm
	expect_manifest "    \"dir\": \"$T/full\"," "$T/rdiff"
	cmd "$FL" run --restore "$T/rdiff"
	expect_rc 0
	expect_out "snap: vCPU 0 checked 16 pages in 2000 rounds"
	mv "$T/full" "$T/full.moved"
	cmd "$FL" run --restore "$T/diff"
	expect_rc 66
	expect_err "faultline: cannot restore the snapshot: cannot read it: No such file or directory (file: $T/full/manifest.json)"
	mv "$T/full.moved" "$T/full"
}

# The value of "$1" in the last `ctl stats` reply.
ctl_stat() { sed -n 's/^ *"'"$1"'": \([0-9]*\),*$/\1/p' "$T/ctl" | head -n 1; }

WS_ARGS="--vcpus 2 --mem 64M --guest-arg workload=snap --guest-arg pages=256 --guest-arg rounds=600"

# A snapshot's working set (--record-ws, --prefetch; vmm/vm/vm_ws.c,
# mmu/prefetch.c): one restore records what the guest is given; a restore
# that prefetches it before the guest runs takes under 5% of the
# userfaultfd faults of the recording one, and the guest checks every
# page; so does one that prefetches while the guest runs, and seq. A
# recording of another snapshot or a corrupt one exits 78, a read-only
# DIR 66, and the recording there is left as it was.
t_snapshot_working_set() {
	rm -rf "$T/wsnap" "$T/wother" "$T/wslog"
	# shellcheck disable=SC2086
	api_vm $WS_ARGS
	wait_out "snap: round 10"
	ctl snapshot "$T/wsnap" --resume
	expect_crc 0
	ctl snapshot "$T/wother"
	expect_crc 0
	stop_vm
	done_line="snap: vCPU 1 checked 256 pages in 600 rounds"
	cmd "$FL" run --restore "$T/wsnap" --record-ws --stats=json
	expect_rc 0
	expect_out "$done_line"
	expect_err_has "faultline: recorded the working set: "
	expect_err_has "until the VM's end (file: $T/wsnap/ws)"
	set -- "$T"/wsnap/ws.tmp.*
	[ -f "$T/wsnap/ws" ] && [ ! -e "$1" ] || problem "no $T/wsnap/ws, or $1 left"
	recorded=$(stat pages_recorded)
	plain=$(stat faults_uffd)
	[ "${recorded:-0}" -ge 512 ] || problem "recorded ${recorded:-none} pages, the guest owns 512"
	[ "$((WS_HEADER + 4 * recorded))" = "$(wc -c <"$T/wsnap/ws")" ] ||
		problem "$T/wsnap/ws is $(wc -c <"$T/wsnap/ws") bytes for $recorded pages"
	cp "$T/wsnap/ws" "$T/ws.saved"

	# Paused until the prefetch is done: what the guest touches is there.
	S=$T/ws.sock
	"$FL" run --restore "$T/wsnap" --stats=json --paused --api "$S" >"$T/out" 2>"$T/err" &
	vm=$!
	ctl wait paused 90
	i=0
	while ctl stats && [ "$(ctl_stat pages_prefetched)" -lt $((recorded - 16)) ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	# A few recorded pages are resident before the handlers idle (the restore's own).
	[ "$(ctl_stat pages_prefetched)" -ge $((recorded - 16)) ] ||
		problem "prefetched $(ctl_stat pages_prefetched) of $recorded pages in 30 s"
	ctl resume
	expect_crc 0
	wait $vm
	rc=$?
	expect_rc 0
	expect_out "$done_line"
	prefetched=$(stat faults_uffd)
	[ "$((prefetched * 20))" -lt "$plain" ] ||
		problem "with the working set prefetched $prefetched userfaultfd faults, without $plain: not under 5%"
	expect_stat prefetch_late 0

	# While the guest runs, and seq: the same pages, whoever gets there first.
	for mode in ws seq off; do
		cmd "$FL" run --restore "$T/wsnap" --prefetch $mode --stats=json
		expect_rc 0
		expect_out "$done_line"
		echo "working set: --prefetch $mode: faults_uffd $(stat faults_uffd) (recording: $plain, prefetched first: $prefetched), pages_prefetched $(stat pages_prefetched), prefetch_late $(stat prefetch_late), prefetch_waits $(stat prefetch_waits)" >>"$T/wslog"
	done
	[ "$(stat pages_prefetched)" = 0 ] || problem "--prefetch off prefetched $(stat pages_prefetched) pages"
	sed 's/^/    /' "$T/wslog" # the counts, for docs/snapshots.md

	# A recording stopped by its page count.
	cp "$T/ws.saved" "$T/wsnap/ws"
	cmd "$FL" run --restore "$T/wsnap" --record-ws=50pages --stats=json
	expect_rc 0
	expect_err_has "faultline: recorded the working set: 50 pages in "
	expect_err_has "until the page count given (file: $T/wsnap/ws)"
	expect_stat pages_recorded 50
	cp "$T/ws.saved" "$T/wsnap/ws"

	# Refusals: another snapshot's recording, a corrupt one, none with --prefetch ws.
	cp "$T/ws.saved" "$T/wother/ws"
	cmd "$FL" run --restore "$T/wother" --stats=json
	expect_rc 78
	expect_err_has "faultline: cannot prefetch the working set: recorded for snapshot '"
	expect_err_has "(field: id); record it again, or give --prefetch off (file: $T/wother/ws)"
	rm "$T/wother/ws"
	cmd "$FL" run --restore "$T/wother" --prefetch ws
	expect_rc 66
	expect_err "faultline: cannot prefetch the working set: No such file or directory; record one with --record-ws, or give --prefetch off or seq (file: $T/wother/ws)"
	printf '\377' | dd of="$T/wsnap/ws" bs=1 seek=$WS_HEADER conv=notrunc 2>/dev/null
	cmd "$FL" run --restore "$T/wsnap"
	expect_rc 78
	expect_err "faultline: cannot prefetch the working set: the pages do not match their checksum (field: checksum); record it again, or give --prefetch off (file: $T/wsnap/ws)"
	cp "$T/ws.saved" "$T/wsnap/ws"
	cmd "$FL" run --restore "$T/wsnap" --record-ws=port
	expect_rc 64
	expect_err_has "faultline: usage: --record-ws=port stops at the guest's write to the boot timer"

	# A DIR on a read-only file system: 66 before the VM is made, DIR as it was.
	mkdir "$T/wro"
	if mount -o bind "$T/wsnap" "$T/wro" && mount -o remount,bind,ro "$T/wro"; then
		cmd "$FL" run --restore "$T/wro" --record-ws
		expect_rc 66
		expect_err_has "faultline: cannot record the working set: cannot create it: Read-only file system (file: $T/wro/ws.tmp."
		set -- "$T"/wsnap/ws.tmp.*
		[ ! -e "$1" ] || problem "$1 left after a refused --record-ws"
		cmp -s "$T/ws.saved" "$T/wsnap/ws" || problem "the recording changed after a refused --record-ws"
		umount "$T/wro"
	else
		problem "cannot make a read-only bind mount of $T/wsnap"
	fi
}
WS_HEADER=88

# The PSS of process $1 in KiB (smaps_rollup), 0 when it is gone.
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

CLONE_ARGS="--vcpus 1 --mem 64M --guest-arg workload=snap --guest-arg pages=16 --guest-arg shared=2048 --guest-arg rounds=100000000"
CLONES=20

# Clones (mmu.h, shared): 20 restores at once of one snapshot on tmpfs map
# its memory file. Each checks the 8 MiB vCPU 0 wrote before the snapshot
# and only reads since, and its own 16 pages it rewrites each round with a
# pattern of its clone number's (--clone; a clone that saw another's writes
# would stop, 1). Their summed PSS stays under one clone's alone plus 1 MiB
# each; killing one leaves the others; one over its own budget meets its
# own --on-oom; the memory file is never written.
t_snapshot_clones() {
	mkdir -p "$T/cshm"
	mount -t tmpfs tmpfs "$T/cshm" || { problem "cannot mount a tmpfs on $T/cshm"; return; }
	# shellcheck disable=SC2086
	api_vm $CLONE_ARGS
	wait_out "snap: round 10"
	ctl snapshot "$T/cshm/snap"
	expect_crc 0
	stop_vm
	sum_before=$(md5sum <"$T/cshm/snap/memory")
	i=0
	while [ $i -lt $CLONES ]; do
		"$FL" run --restore "$T/cshm/snap" --clone $((i + 1)) --stats=json \
			>"$T/clone$i.out" 2>"$T/clone$i.err" &
		eval "clone$i=\$!"
		# The first alone, until it runs: one VM's memory.
		if [ $i = 0 ]; then
			wait_file_line "$T/clone0.out" "snap: round" "$clone0"
			sleep 2
			one=$(pss_kib "$clone0")
		fi
		i=$((i + 1))
	done
	i=0
	while [ $i -lt $CLONES ]; do
		eval "p=\$clone$i"
		wait_file_line "$T/clone$i.out" "snap: round" "$p"
		i=$((i + 1))
	done
	sleep 2
	total=0
	i=0
	while [ $i -lt $CLONES ]; do
		eval "p=\$clone$i"
		kill -0 "$p" 2>/dev/null || problem "clone $i ended: $(tail -n 2 "$T/clone$i.out" "$T/clone$i.err" | tr '\n' '|')"
		total=$((total + $(pss_kib "$p")))
		i=$((i + 1))
	done
	echo "    clones: $CLONES of a 64 MiB snapshot: PSS $total KiB in all, one alone $one KiB, $(((total - one) / (CLONES - 1))) KiB more per clone"
	[ "$total" -lt $((one + CLONES * 1024)) ] ||
		problem "$CLONES clones hold $total KiB (PSS), more than one VM's $one KiB + $CLONES MiB"
	# One killed: the others run on.
	kill -KILL "$clone3"
	wait "$clone3"
	# One over its own budget: its --on-oom, nobody else's.
	cmd "$FL" run --restore "$T/cshm/snap" --mem-limit 64K --on-oom kill --stats=json
	[ "$rc" = 75 ] || problem "a clone over its 64 KiB: exit status $rc, expected 75: $(tail -n 3 "$T/err" | tr '\n' '|')"
	expect_err "faultline: guest out of memory: budget of 16 pages exhausted: the guest's pages do not fit, 1024 more faults on pages reclaim had just dropped than on others (GPA 0x$(sed -n 's/.*(GPA 0x\([0-9a-f]*\), vCPU 0, .*/\1/p' "$T/err" | head -n 1), vCPU 0, budget 16 pages, resident $(sed -n 's/.*budget 16 pages, resident \([0-9]*\) pages).*/\1/p' "$T/err" | head -n 1) pages)"
	sleep 1
	i=0
	while [ $i -lt $CLONES ]; do
		eval "p=\$clone$i"
		if [ $i != 3 ]; then
			kill -0 "$p" 2>/dev/null || problem "clone $i ended after clone 3 was killed"
			kill -TERM "$p"
			wait "$p"
			rc=$?
			[ $rc = 143 ] || problem "clone $i exited $rc, expected 143 (SIGTERM)"
			grep -q "holds" "$T/clone$i.out" && problem "clone $i: $(grep holds "$T/clone$i.out" | head -n 1)"
			grep -q "^snap: clone $((i + 1)) from round " "$T/clone$i.out" ||
				problem "clone $i did not read its number: $(grep '^snap: clone' "$T/clone$i.out" | tr '\n' '|')"
			grep -q '"memory_shared":true' "$T/clone$i.err" || problem "clone $i did not share the memory file"
			grep -q "\"clone\":$((i + 1))[,}]" "$T/clone$i.err" || problem "clone $i: --stats lacks \"clone\":$((i + 1))"
		fi
		i=$((i + 1))
	done
	[ "$(md5sum <"$T/cshm/snap/memory")" = "$sum_before" ] || problem "a clone wrote the memory file"
	# --private-memory: every page copied, as from a disk.
	"$FL" run --restore "$T/cshm/snap" --private-memory --stats=json >"$T/priv.out" 2>"$T/priv.err" &
	p=$!
	wait_file_line "$T/priv.out" "snap: round" "$p"
	kill -TERM "$p"
	wait "$p"
	grep -q '"memory_shared":false' "$T/priv.err" || problem "--private-memory shared the memory file"
	grep -q "\"clone\":$p[,}]" "$T/priv.err" || problem "a restore without --clone is not clone $p (its PID)"
	rm -rf "$T/cshm/snap"
	umount "$T/cshm"
}
# Wait up to 120 s for a line of file $1 holding the fixed string $2, while process $3 lives.
wait_file_line() {
	j=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null && [ $j -lt 1200 ] && kill -0 "$3" 2>/dev/null; do
		sleep 0.1
		j=$((j + 1))
	done
	grep -qF -- "$2" "$1" || problem "no '$2' in $1 within 120 s: $(tail -n 2 "$1" | tr '\n' '|') $(tail -n 2 "${1%.out}.err" | tr '\n' '|')"
}
