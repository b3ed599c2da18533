#!/bin/sh
# bench/qemu-peer.sh: faultline and a peer, QEMU from Debian
# (bench/qemu-stage.sh copies it to build/qemu), each booting the default
# Linux guest (configs/default.json: 256 MiB, 2 vCPUs) to a serve loop,
# snapshotting it (QEMU: a migration to a file) and restoring it (QEMU:
# -incoming) to its first answer, in the same L1. Needs /dev/kvm:
#   bench/qemu-stage.sh && tests/nested/run --with build/linux/vmlinux \
#     --with build/qemu -- sh bench/qemu-peer.sh
# Prints one line of JSON: per monitor, boot to "serve: ready", the
# snapshot, the restore to its first answer (ms, the L1's clock: under
# TCG only their ratios mean anything), the snapshot's bytes on disk and
# the PSS of the restored VM once it answered (KiB).
set -u
cd "$(dirname "$0")/.." || exit 1
FL=build/faultline
Q=build/qemu
[ -x "$Q/qemu-system-x86_64" ] || { echo "bench/qemu-peer.sh: no $Q (bench/qemu-stage.sh)" >&2; exit 1; }
d=$(mktemp -d "${TMPDIR:-/tmp}/faultline-peer.XXXXXX")
mount -t tmpfs tmpfs "$d" 2>/dev/null # clones' sharing needs tmpfs; root in the L1
trap 'kill -KILL $pids 2>/dev/null; wait; exec 3>&- 4>&- 5>&- 6>&- 7>&-; umount "$d" 2>/dev/null; rm -rf "$d"' EXIT
pids=
# The serve loop of faultline bench --linux (vmm/cmd/bench_snap.c).
serve="console=ttyS0 quiet faultline.run='echo serve: ready;while read -r l;do n=\$(dd if=/dev/port bs=1 skip=1300 count=4 2>/dev/null|od -An -tu4);echo serve: request 1 of clone \$n;echo serve: request 2 of clone \$n;done'"
qemu() { # exec: $! is QEMU's PID, for its PSS
	exec "$Q/ld-linux-x86-64.so.2" --library-path "$Q/lib" "$Q/qemu-system-x86_64" -L "$Q/share" \
		-accel kvm -M microvm,pit=on,pic=on,rtc=on -cpu qemu64 -m 256 -smp 2 \
		-nodefaults -no-user-config -display none -serial stdio "$@"
}
# Milliseconds since the L1 booted, in steps of 10 (busybox date has no %N).
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
# Wait up to 600 s for FILE to hold STRING; feed FIFO a request line every 0.1 s when given.
wait_for() {
	i=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null && [ $i -lt 6000 ]; do
		[ -n "${3:-}" ] && echo go >&"$3"
		sleep 0.1
		i=$((i + 1))
	done
	grep -qF -- "$2" "$1" || { echo "bench/qemu-peer.sh: no '$2' in $1: $(tail -c 300 "$1")" >&2; exit 1; }
}
pss() { sed -n 's/^Pss: *\([0-9]*\) kB/\1/p' "/proc/$1/smaps_rollup"; }
# answered PID OUT STRING FD: once OUT holds STRING (a request line fed to
# FD every 0.1 s), $ms since $t0 and the PSS of PID in $kib; PID is killed.
answered() {
	wait_for "$2" "$3" "$4"
	ms=$(($(now_ms) - t0))
	kill -STOP "$1"
	kib=$(pss "$1")
	kill -KILL "$1"
}

# faultline: boot, snapshot, stop; restore to the first answer.
mkfifo "$d/fin" "$d/fin2" "$d/qin" "$d/qin2" "$d/qmon.in" "$d/qmon.out"
t0=$(now_ms)
"$FL" run --config configs/default.json --api "$d/api.sock" --cmdline "$serve" <"$d/fin" >"$d/fboot.out" 2>"$d/fboot.err" &
vm=$!
pids="$pids $vm"
exec 3<>"$d/fin"
wait_for "$d/fboot.out" "serve: ready"
f_boot=$(($(now_ms) - t0))
t0=$(now_ms)
"$FL" ctl "$d/api.sock" snapshot "$d/fsnap" >/dev/null || exit 1
f_snap=$(($(now_ms) - t0))
"$FL" ctl "$d/api.sock" stop >/dev/null
wait $vm
exec 3>&-
t0=$(now_ms)
"$FL" run --restore "$d/fsnap" --clone 7 <"$d/fin2" >"$d/frest.out" 2>"$d/frest.err" &
vm=$!
pids="$pids $vm"
exec 4<>"$d/fin2"
answered $vm "$d/frest.out" "serve: request 1 of clone 7" 4
f_rest=$ms f_pss=$kib
exec 4>&-
f_disk=$(du -sk "$d/fsnap" | cut -f1)

# QEMU: boot, migrate to a file (the VM stops there), quit; -incoming to the first answer.
t0=$(now_ms)
qemu -kernel build/linux/vmlinuz -initrd build/linux/initramfs.cpio.gz -append "$serve" \
	-chardev "pipe,id=mon,path=$d/qmon" -mon chardev=mon <"$d/qin" >"$d/qboot.out" 2>"$d/qboot.err" &
q=$!
pids="$pids $q"
exec 5<>"$d/qin"
cat "$d/qmon.out" >"$d/qmon.log" &
pids="$pids $!"
exec 7<>"$d/qmon.in"
wait_for "$d/qboot.out" "serve: ready"
q_boot=$(($(now_ms) - t0))
t0=$(now_ms)
echo "migrate \"exec:cat > $d/qemu.mig\"" >&7
i=0
while ! grep -q "Migration status: completed" "$d/qmon.log" && [ $i -lt 6000 ]; do
	echo "info migrate" >&7
	sleep 0.1
	i=$((i + 1))
done
q_snap=$(($(now_ms) - t0))
grep -q "Migration status: completed" "$d/qmon.log" ||
	{ echo "bench/qemu-peer.sh: QEMU's migration did not complete: $(tail -c 300 "$d/qmon.log")" >&2; exit 1; }
echo quit >&7
wait $q
exec 5>&- 7>&-
t0=$(now_ms)
qemu -kernel build/linux/vmlinuz -initrd build/linux/initramfs.cpio.gz -append "$serve" \
	-incoming "exec:cat $d/qemu.mig" <"$d/qin2" >"$d/qrest.out" 2>"$d/qrest.err" &
q=$!
pids="$pids $q"
exec 6<>"$d/qin2"
answered $q "$d/qrest.out" "serve: request 1 of clone" 6
q_rest=$ms q_pss=$kib
exec 6>&-
q_disk=$(du -sk "$d/qemu.mig" | cut -f1)
echo "{\"faultline\": {\"boot_ms\": $f_boot, \"snapshot_ms\": $f_snap, \"restore_to_answer_ms\": $f_rest, \"snapshot_kib\": $f_disk, \"pss_kib\": $f_pss}, \"qemu\": {\"version\": \"$("$Q/ld-linux-x86-64.so.2" --library-path "$Q/lib" "$Q/qemu-system-x86_64" --version | sed -n '1s/QEMU emulator version //p')\", \"boot_ms\": $q_boot, \"snapshot_ms\": $q_snap, \"restore_to_answer_ms\": $q_rest, \"snapshot_kib\": $q_disk, \"pss_kib\": $q_pss}}"
