#!/bin/sh
# bench/snapshot.sh [PAGES]: what a snapshot writes and a restore reads, in
# counts (they mean the same in the nested harness as on any host).
#
# The test guest on 2 vCPUs with 256 MiB writes PAGES pages per vCPU (4096
# by default: 32 MiB in all) round after round. After its first round it is
# snapshotted and stopped, then restored and stopped after its next round.
# Prints one line of JSON: the pages resident when the snapshot was taken,
# the pages and bytes the snapshot wrote (memory file blocks on disk), the
# size of the state file, the phases' times (ms; mean nothing under TCG),
# and the restore's reads of the memory file before its vCPUs ran and in
# all. Needs /dev/kvm: tests/nested/run --with bench/snapshot.sh -- sh bench/snapshot.sh
set -u
cd "$(dirname "$0")/.." || exit 1
FL=build/faultline
G=build/guest/faultline-guest.elf
pages=${1:-4096}
d=$(mktemp -d "${TMPDIR:-/tmp}/faultline-snapbench.XXXXXX")
trap 'rm -rf "$d"' EXIT

wait_for() { # FILE STRING: up to 300 s
	i=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null && [ $i -lt 3000 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -qF -- "$2" "$1" || { echo "bench/snapshot.sh: no '$2' in $1" >&2; exit 1; }
}
num() { sed -n 's/.*"'"$1"'": *\([0-9]*\).*/\1/p' "$2" | head -n 1; }

"$FL" run --kernel "$G" --vcpus 2 --mem 256M --api "$d/api" --guest-arg workload=snap \
	--guest-arg pages="$pages" --guest-arg rounds=1000000 >"$d/out" 2>"$d/err" &
vm=$!
wait_for "$d/out" "snap: round 10"
"$FL" ctl "$d/api" pause >/dev/null
"$FL" ctl "$d/api" status >"$d/status"
"$FL" ctl "$d/api" snapshot "$d/snap" >"$d/reply" || exit 1
"$FL" ctl "$d/api" stop >/dev/null
wait $vm
resident=$(num resident "$d/status")
blocks=$(du -k "$d/snap/memory" | cut -f1)

"$FL" run --restore "$d/snap" --api "$d/api2" --stats=json >"$d/out2" 2>"$d/err2" &
vm=$!
wait_for "$d/out2" "snap: round 20"
"$FL" ctl "$d/api2" stop >/dev/null
wait $vm
stats=$(tail -n 1 "$d/err2")
before=$(printf '%s' "$stats" | sed -n 's/.*"backing_reads_before_run":\([0-9]*\).*/\1/p')
reads=$(printf '%s' "$stats" | sed -n 's/.*"backing_reads":\([0-9]*\).*/\1/p')
r=$(tr -d ' \n' <"$d/reply")
files=$(printf '%s' "$r" | sed -n 's/.*"files":\({[^}]*}\).*/\1/p')
times=$(printf '%s' "$r" | sed -n 's/.*"times_ms":\({[^}]*}\).*/\1/p')
written=$(printf '%s' "$r" | sed -n 's/.*"pages_written":\([0-9]*\).*/\1/p')
echo "{\"pages_per_vcpu\":$pages,\"resident_pages\":$resident,\"pages_written\":$written," \
	"\"memory_kib_on_disk\":$blocks,\"files\":$files,\"times_ms\":$times," \
	"\"restore_reads_before_run\":${before:-null},\"restore_reads\":${reads:-null}}"
