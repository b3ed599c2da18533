#!/bin/sh
# bench/snapshot-diff.sh [SECONDS]: what a diff snapshot writes against a
# full one, in counts (they mean the same in the nested harness as on any
# host).
#
# Linux (configs/default.json) started with --diff-snapshots prints a tick
# every 0.1 s. At tick 20 it is snapshotted in full and runs on (--resume);
# SECONDS later (5 by default) a diff is taken on that snapshot and the VM
# stopped. The full snapshot is restored and stopped at tick 40, the diff
# after 20 more ticks than it had. Prints one
# line of JSON: the pages each snapshot wrote (the diff: the pages it holds,
# those with data, and its list's bytes), the memory files' blocks on disk,
# the write-protect faults the tracking took between the two snapshots, and
# each restore's reads of its memory files before its vCPUs ran and in all.
# Needs /dev/kvm and the Linux guest:
#   tests/nested/run --with build/linux/vmlinux --with bench/snapshot-diff.sh -- sh bench/snapshot-diff.sh
set -u
cd "$(dirname "$0")/.." || exit 1
FL=build/faultline
secs=${1:-5}
d=$(mktemp -d "${TMPDIR:-/tmp}/faultline-diffbench.XXXXXX")
trap 'rm -rf "$d"' EXIT

wait_for() { # FILE STRING: up to 300 s
	i=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null && [ $i -lt 3000 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -qF -- "$2" "$1" || { echo "bench/snapshot-diff.sh: no '$2' in $1" >&2; exit 1; }
}
num() { tr -d ' \n' <"$2" | sed -n 's/.*"'"$1"'":\([0-9]*\).*/\1/p' | head -n 1; }

"$FL" run --config configs/default.json --diff-snapshots --api "$d/api" --cmdline "console=ttyS0 quiet faultline.run='i=0; while :; do i=\$((i+1)); echo tick \$i; sleep 0.1; done'" >"$d/out" 2>"$d/err" &
vm=$!
wait_for "$d/out" "tick 20"
"$FL" ctl "$d/api" snapshot "$d/full" --resume >"$d/full.reply" || exit 1
"$FL" ctl "$d/api" stats >"$d/stats1"
sleep "$secs"
"$FL" ctl "$d/api" stats >"$d/stats2"
"$FL" ctl "$d/api" snapshot "$d/diff" --diff >"$d/diff.reply" || exit 1
"$FL" ctl "$d/api" stop >/dev/null
wait $vm
wp=$(($(num faults_wp "$d/stats2") - $(num faults_wp "$d/stats1")))

tr -d '\r' <"$d/out" | sed -n 's/^tick \([0-9]*\)$/\1/p' | tail -n 1 >"$d/last"
# restore DIR TICK: run it until tick TICK; its reads before the run and in all, in $before $reads
restore() {
	"$FL" run --restore "$1" --api "$d/api2" --stats=json >"$d/out2" 2>"$d/err2" &
	vm=$!
	wait_for "$d/out2" "tick $2"
	"$FL" ctl "$d/api2" stop >/dev/null
	wait $vm
	stats=$(tail -n 1 "$d/err2")
	before=$(printf '%s' "$stats" | sed -n 's/.*"backing_reads_before_run":\([0-9]*\).*/\1/p')
	reads=$(printf '%s' "$stats" | sed -n 's/.*"backing_reads":\([0-9]*\).*/\1/p')
}
restore "$d/full" 40
full_before=$before
full_reads=$reads
restore "$d/diff" $(($(cat "$d/last") + 20))
echo "{\"seconds_between\":$secs,\"full_pages_written\":$(num pages_written "$d/full.reply")," \
	"\"diff_pages\":$(num pages_in_diff "$d/diff.reply"),\"diff_pages_written\":$(num pages_written "$d/diff.reply")," \
	"\"diff_pages_file_bytes\":$(num pages "$d/diff.reply")," \
	"\"full_memory_kib_on_disk\":$(du -k "$d/full/memory" | cut -f1),\"diff_memory_kib_on_disk\":$(du -k "$d/diff/memory" | cut -f1)," \
	"\"wp_faults_between\":$wp,\"full_restore_reads_before_run\":${full_before:-null}," \
	"\"full_restore_reads\":${full_reads:-null},\"diff_restore_reads_before_run\":${before:-null}," \
	"\"diff_restore_reads\":${reads:-null}}"
