#!/bin/sh
# bench/snapshot-ws.sh [RUNS]: what prefetching a snapshot's working set
# saves a restored Linux guest, against a restore that prefetches nothing,
# in the same run. Counts (userfaultfd faults, pages) mean the same in the
# nested harness as on any host; the guest's times only as ratios.
#
# Linux (configs/default.json: 256 MiB, 2 vCPUs) prints "ready", sleeps
# 2 s, then does a piece of work twice (md5sum of busybox, find /), timing
# each from /proc/uptime: the first is cold, the second warm. It is
# snapshotted during the sleep and stopped. The snapshot is restored once
# with --record-ws (to the VM's end), then RUNS times (3 by default) each
# with --prefetch off, ws and seq. Prints one line of JSON per restore:
# the mode, faults_uffd, faults_wp, pages_prefetched, prefetch_late, and
# the guest's cold and warm times of the work in centiseconds.
# Needs /dev/kvm and the Linux guest:
#   tests/nested/run --with build/linux/vmlinux --with bench/snapshot-ws.sh -- sh bench/snapshot-ws.sh
set -u
cd "$(dirname "$0")/.." || exit 1
FL=build/faultline
runs=${1:-3}
d=$(mktemp -d "${TMPDIR:-/tmp}/faultline-wsbench.XXXXXX")
trap 'rm -rf "$d"' EXIT

wait_for() { # FILE STRING: up to 300 s
	i=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null && [ $i -lt 3000 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -qF -- "$2" "$1" || { echo "bench/snapshot-ws.sh: no '$2' in $1" >&2; exit 1; }
}
num() { sed -n 's/.*"'"$1"'":\([0-9]*\).*/\1/p' "$2" | tail -n 1; }

"$FL" run --config configs/default.json --api "$d/api" --cmdline "console=ttyS0 quiet faultline.run='echo ready;sleep 2;for i in 1 2;do read a x </proc/uptime;md5sum /bin/busybox >/dev/null;find / >/dev/null;read b x </proc/uptime;echo t\$i \$a \$b;done'" >"$d/out" 2>"$d/err" &
vm=$!
wait_for "$d/out" "ready"
"$FL" ctl "$d/api" snapshot "$d/snap" >/dev/null || exit 1
"$FL" ctl "$d/api" stop >/dev/null
wait $vm

# restore MODE [OPTIONS]: one restore to the guest's end, and its line.
restore() {
	mode=$1
	shift
	"$FL" run --restore "$d/snap" --stats=json "$@" >"$d/out" 2>"$d/err" </dev/null
	rc=$?
	[ $rc = 0 ] || { echo "bench/snapshot-ws.sh: the $mode restore exited $rc: $(tail -n 2 "$d/err")" >&2; exit 1; }
	# "t1 A B": seconds of uptime, two decimals; the work took B - A.
	cold=$(tr -d '\r.' <"$d/out" | awk '$1 == "t1" { print $3 - $2 }')
	warm=$(tr -d '\r.' <"$d/out" | awk '$1 == "t2" { print $3 - $2 }')
	printf '{"mode":"%s","faults_uffd":%s,"faults_wp":%s,"pages_recorded":%s,"pages_prefetched":%s,"prefetch_late":%s,"prefetch_waits":%s,"work_cold_cs":%s,"work_warm_cs":%s}\n' \
		"$mode" "$(num faults_uffd "$d/err")" "$(num faults_wp "$d/err")" \
		"$(num pages_recorded "$d/err")" "$(num pages_prefetched "$d/err")" \
		"$(num prefetch_late "$d/err")" "$(num prefetch_waits "$d/err")" "$cold" "$warm"
}
restore record --record-ws
i=0
while [ $i -lt "$runs" ]; do
	restore off --prefetch off
	restore ws --prefetch ws
	restore seq --prefetch seq
	i=$((i + 1))
done
