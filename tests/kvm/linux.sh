# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there.

# Linux (guest/linux/build): the default microVM on 2 vCPUs with the test
# disk, read and written back; lazily backed RAM, the boot timer.
LK=build/linux/vmlinuz
LI=build/linux/initramfs.cpio.gz
# The guest's tty ends lines with CR LF: compare without the CRs.
linux() {
	cmd "$FL" run --config configs/default.json --stats=json "$@"
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
}

t_linux_boot_disk_two_vcpus() {
	cp build/linux/test-disk.img "$T/disk.img"
	linux --disk "$T/disk.img" --stats=json --boot-timeout 600 --cmdline "console=ttyS0 quiet faultline.run='echo cpus=\$(grep -c ^processor /proc/cpuinfo); mount /dev/vda /mnt && cat /mnt/hello.txt && echo written-by-guest >/mnt/out.txt && umount /mnt'"
	expect_rc 0
	expect_out "cpus=2"
	expect_out "hello from the host disk"
	[ "$(grep -c written-by-guest "$T/disk.img")" -ge 1 ] || problem "the guest's file is not in the disk image"
	[ "$(stat faults)" -gt 0 ] || problem "no faults counted: $(stat faults)"
	[ "$(stat resident)" -lt "$(stat ram)" ] ||
		problem "resident $(stat resident) of $(stat ram) pages: not lazily backed"
	[ "$(stat boot_time_us)" -gt 0 ] || problem "boot_time_us is '$(stat boot_time_us)'"
	[ "$(stat reads)" -gt 0 ] && [ "$(stat writes)" -gt 0 ] && [ "$(stat flushes)" -gt 0 ] ||
		problem "disk counters: reads $(stat reads), writes $(stat writes), flushes $(stat flushes)"
	expect_stat malformed 0
}

# --boot-timeout: an init that never writes the boot timer (busybox sleep
# as the kernel's init) is stopped at the limit with 77, and faultline says
# where each vCPU was.
t_linux_boot_timeout() {
	linux --boot-timeout 2 --cmdline "console=ttyS0 quiet rdinit=/bin/busybox -- sleep 1000"
	expect_rc 77
	expect_err "faultline: the guest's init did not start within 2 s (no write to the boot timer, port 0x510: --boot-timeout)"
	[ "$(grep -c "^faultline: where the VM was: vCPU [01] " "$T/err")" = 2 ] ||
		problem "not one 'where the VM was' line for each vCPU: $(grep -c "where the VM was" "$T/err")"
	expect_stat boot_time_us 0
}

# The default microVM on huge pages: Linux boots and reads its disk, every
# fault a whole 2 MiB page that KVM maps as one.
t_linux_hugepages() {
	old=$(cat /proc/sys/vm/nr_hugepages)
	hugepages_reserve 128
	cp build/linux/test-disk.img "$T/disk.img"
	linux --hugepages --disk "$T/disk.img" --cmdline "console=ttyS0 quiet faultline.run='mount /dev/vda /mnt && cat /mnt/hello.txt && umount /mnt'"
	expect_rc 0
	expect_out "hello from the host disk"
	installed=$(stat pages_installed)
	[ "${installed:-0}" -gt 0 ] && [ $((installed % 512)) = 0 ] ||
		problem "$installed pages installed: not whole huge pages"
	if kvm_tdp; then
		[ "$(stat pages_2m)" -gt 0 ] && [ "$(stat pages_4k)" = 0 ] ||
			problem "kvm maps $(stat pages_2m) pages of 2 MiB and $(stat pages_4k) of 4 KiB"
	fi
	hugepages_reserve "$old"
}

# A device's buffer that the budget cannot back (virtio-blk reading into a
# page the guest never touched: init_on_alloc=0, or Debian's kernel zeroes
# every page it allocates first; the injection makes the first such buffer
# find no room, whatever the budget): --on-oom pause holds the device's
# access on the vCPU that notified it, and the disk's bytes arrive whole
# once the VM resumes.
t_linux_device_buffer_oom_pauses() {
	cp build/linux/test-disk.img "$T/disk.img"
	md5=$(md5sum <"$T/disk.img" | cut -d' ' -f1)
	S=$T/api.sock
	FAULTLINE_INJECT=budget.charge@device:ENOMEM:0:2 "$FL" run --config configs/default.json \
		--stats=json --api "$S" --on-oom pause --disk "$T/disk.img" \
		--cmdline "console=ttyS0 quiet init_on_alloc=0 faultline.run='md5sum /dev/vda && mount /dev/vda /mnt && cat /mnt/hello.txt && umount /mnt'" \
		>"$T/out" 2>"$T/err" &
	vm=$!
	ctl wait paused-oom 150
	expect_crc 0
	grep -q "^  \"oom\": \"guest out of memory: budget of 65536 pages exhausted (GPA 0x[0-9a-f]*, a device's access, budget 65536 pages, resident [0-9]* pages)\"\$" "$T/ctl" ||
		problem "the status names no device's access: $(cat "$T/ctl")"
	ctl resume
	expect_crc 0
	bg_vm_end
	expect_rc 0
	expect_out "$md5  /dev/vda"
	expect_out "hello from the host disk"
	expect_err_first "faultline: guest out of memory: budget of 65536 pages exhausted (GPA 0x*, a device's access, budget 65536 pages, resident * pages); the VM is paused (--on-oom pause)*"
	expect_stat refaults 1
	expect_stat malformed 0
}

# ... and with --on-oom kill the VM stops with the same message first (75);
# the disk, whose guest did nothing wrong, neither stops nor counts a
# malformed chain.
t_linux_device_buffer_oom_kills() {
	cp build/linux/test-disk.img "$T/disk.img"
	FAULTLINE_INJECT=budget.charge@device:ENOMEM:0:2 linux --disk "$T/disk.img" \
		--cmdline "console=ttyS0 quiet init_on_alloc=0 faultline.run='md5sum /dev/vda && mount /dev/vda /mnt && cat /mnt/hello.txt && umount /mnt'"
	expect_rc 75
	expect_err_first "faultline: guest out of memory: budget of 65536 pages exhausted (GPA 0x*, a device's access, budget 65536 pages, resident * pages)"
	! grep -q "the device stops" "$T/err" || problem "the disk stopped: $(cat "$T/err")"
	expect_stat malformed 0
}

# The interrupt line of a device cannot be raised: the VM stops (70)
# naming the ioctl, the GSI and the device, instead of a guest that waits
# for an interrupt forever.
t_linux_irq_line_fails() {
	FAULTLINE_INJECT=KVM_IRQ_LINE:EIO linux --vcpus 1 --cmdline "console=ttyS0 quiet faultline.run='true'"
	expect_rc 70
	expect_err_first "faultline: KVM_IRQ_LINE failed: Input/output error (GSI 4, device serial)"
}

# The same kernel as an uncompressed ELF vmlinux (guest/linux/build takes it
# out of the bzImage), brought in a Firecracker config as Firecracker users
# have them: its segments load at their physical addresses and it is
# entered at e_entry with the zero page faultline made up.
t_linux_vmlinux_firecracker_config() {
	[ -f build/linux/vmlinux ] || { problem "build/linux/vmlinux is missing (guest/linux/build; the harness needs --with)"; return; }
	cat >"$T/fc.json" <<-EOF
	{ "boot-source": { "kernel_image_path": "build/linux/vmlinux", "initrd_path": "$LI",
	    "boot_args": "console=ttyS0 quiet faultline.run='echo cpus=\$(grep -c ^processor /proc/cpuinfo) kernel=\$(uname -r)'" },
	  "machine-config": { "vcpu_count": 2, "mem_size_mib": 256 } }
	EOF
	cmd "$FL" run --config "$T/fc.json" --stats=json
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	expect_rc 0
	expect_out "cpus=2 kernel=$(strings build/linux/vmlinux | sed -n 's/^Linux version \([^ ]*\) .*/\1/p' | head -n 1)"
	[ "$(stat faults)" -gt 0 ] || problem "no faults counted: $(stat faults)"
	[ "$(stat resident)" -lt "$(stat ram)" ] ||
		problem "resident $(stat resident) of $(stat ram) pages: not lazily backed"
	[ "$(stat boot_time_us)" -gt 0 ] || problem "boot_time_us is '$(stat boot_time_us)'"
}

# The command's status is the VM's; poweroff (ACPI S5) and reboot (i8042) end it.
t_linux_exit_poweroff_reboot() {
	linux --cmdline "console=ttyS0 quiet faultline.run='exit 7'"
	expect_rc 7
	linux --vcpus 1 --cmdline "console=ttyS0 quiet faultline.run='poweroff -f'"
	expect_rc 0
	expect_err "faultline: the guest powered off (ACPI S5): the VM ends"
	linux --vcpus 1 --cmdline "console=ttyS0 quiet faultline.run='reboot -f'"
	expect_rc 0
	expect_err "faultline: the guest reset the machine (keyboard controller): the VM ends"
}

# A pause does not pass for a Linux guest: its clock (kvm-clock) stops once
# every vCPU is out, so the uptime it reads across a 6 s pause moves on by
# what it ran (a 0.2 s sleep), not by the pause.
t_linux_pause_stops_the_guest_clock() {
	S=$T/api.sock
	"$FL" run --config configs/default.json --vcpus 1 --api "$S" \
		--cmdline "console=ttyS0 quiet faultline.run='i=0; while [ \$i -lt 30 ]; do read up idle </proc/uptime; echo up=\$up; sleep 0.2; i=\$((i + 1)); done'" \
		>"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while ! grep -q '^up=' "$T/out" && [ $i -lt 1500 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	ctl pause
	expect_crc 0
	expect_parked 1
	expect_ctl '  "guest_clock": "stopped",'
	before=$(grep -c '^up=' "$T/out")
	sleep 6
	[ "$(grep -c '^up=' "$T/out")" = "$before" ] || problem "the guest ran while paused"
	ctl resume
	expect_crc 0
	bg_vm_end
	expect_rc 0
	tr -d '\r' <"$T/out" | sed -n 's/^up=//p' >"$T/up"
	[ "$(wc -l <"$T/up")" -gt "$before" ] || problem "no uptime read after the pause: $before lines before, $(wc -l <"$T/up") in all"
	gap=$(awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf "%.2f", m }' "$T/up")
	awk -v g="$gap" 'BEGIN { exit !(g < 4) }' ||
		problem "the guest's uptime jumped by $gap s across the pause: $(tr '\n' ' ' <"$T/up")"
}

# --balloon: the guest reports the 64 MiB it freed (a tmpfs file removed),
# faultline drops those pages from its memory and budget, and the guest
# loses nothing: a file written before reads back intact, and the memory
# reused after the report reads what was written. One vCPU: with two, an L2
# Linux whose pages are taken away (this, or --dedup zero) crashes in the
# nested harness about one boot in three (docs/testing.md).
t_linux_balloon_reports_free_pages() {
	linux --vcpus 1 --balloon --cmdline "console=ttyS0 quiet faultline.run='head -c 16777216 /dev/urandom >/tmp/keep; md5sum /tmp/keep >/tmp/keep.md5; dd if=/dev/zero of=/tmp/x bs=1M count=64 2>/dev/null; rm /tmp/x; sleep 8; md5sum -c /tmp/keep.md5; dd if=/dev/zero of=/tmp/y bs=1M count=64 2>/dev/null; md5sum /tmp/y'"
	expect_rc 0
	expect_out "/tmp/keep: OK"
	expect_out "7f614da9329cd3aebf59b91aadc30bf0  /tmp/y"
	sed -n 's/.*"balloon":{\([^}]*\)}.*/\1/p' "$T/err" >"$T/balloon"
	reports=$(sed -n 's/.*"reports":\([0-9]*\).*/\1/p' "$T/balloon")
	dropped=$(sed -n 's/.*"pages_dropped":\([0-9]*\).*/\1/p' "$T/balloon")
	[ "${reports:-0}" -ge 1 ] || problem "no free page report: $(cat "$T/balloon")"
	[ "${dropped:-0}" -ge 8192 ] || problem "fewer than 8192 pages (32 MiB of the 64 freed) dropped: $(cat "$T/balloon")"
	expect_stat pages_discarded "$dropped"
	grep -q '"malformed":0' "$T/balloon" || problem "malformed reports: $(cat "$T/balloon")"
	grep -q '"errors":0' "$T/balloon" || problem "reports that could not be dropped: $(cat "$T/balloon")"
}

# On huge pages the balloon gives back whole huge pages: Linux reports free
# memory in blocks of 2 MiB, and each reported block that is one resident
# huge page is dropped whole. Inflating (ctl balloon) would hand back pages
# of 4 KiB, so it is refused.
t_linux_balloon_hugepages() {
	old=$(cat /proc/sys/vm/nr_hugepages)
	hugepages_reserve 128
	S=$T/api.sock
	"$FL" run --config configs/default.json --vcpus 1 --hugepages --balloon --api "$S" --stats=json \
		--cmdline "console=ttyS0 quiet faultline.run='head -c 16777216 /dev/urandom >/tmp/keep; md5sum /tmp/keep >/tmp/keep.md5; dd if=/dev/zero of=/tmp/x bs=1M count=64 2>/dev/null; rm /tmp/x; sleep 8; md5sum -c /tmp/keep.md5'" \
		>"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while [ ! -S "$S" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	ctl balloon 64M
	expect_crc 1
	grep -qxF "faultline: ctl: balloon: the balloon inflates with pages of 4 KiB, and guest RAM is on huge pages (--hugepages): only its free page reports give memory back (socket: $S)" "$T/ctl.err" ||
		problem "ctl balloon: $(cat "$T/ctl.err")"
	bg_vm_end
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	expect_rc 0
	expect_out "/tmp/keep: OK"
	sed -n 's/.*"balloon":{\([^}]*\)}.*/\1/p' "$T/err" >"$T/balloon"
	dropped=$(sed -n 's/.*"pages_dropped":\([0-9]*\).*/\1/p' "$T/balloon")
	[ "${dropped:-0}" -ge 8192 ] && [ $((dropped % 512)) = 0 ] ||
		problem "not whole huge pages, or fewer than 8192 pages (32 MiB of the 64 freed), dropped: $(cat "$T/balloon")"
	expect_stat pages_discarded "$dropped"
	[ $(($(stat resident) % 512)) = 0 ] || problem "$(stat resident) pages resident: not whole huge pages"
	grep -q '"errors":0' "$T/balloon" || problem "reports that could not be dropped: $(cat "$T/balloon")"
	hugepages_reserve "$old"
}

# Pages a device used for I/O can go once their request is done: the guest
# reads its whole disk (virtio-blk fills page cache pages, held only for
# the request), drops its caches, and the free page reports drop every
# page they name (before, such pages were kept for good: 512 of them in
# this run).
t_linux_balloon_drops_pages_used_for_io() {
	cp build/linux/test-disk.img "$T/disk.img"
	md5=$(md5sum <"$T/disk.img" | cut -d' ' -f1)
	linux --vcpus 1 --balloon --disk "$T/disk.img" --cmdline "console=ttyS0 quiet faultline.run='md5sum /dev/vda; sleep 1; echo 3 >/proc/sys/vm/drop_caches; sleep 8'"
	expect_rc 0
	expect_out "$md5  /dev/vda"
	sed -n 's/.*"balloon":{\([^}]*\)}.*/\1/p' "$T/err" >"$T/balloon"
	dropped=$(sed -n 's/.*"pages_dropped":\([0-9]*\).*/\1/p' "$T/balloon")
	[ "${dropped:-0}" -ge 4096 ] || problem "fewer than 4096 pages dropped: $(cat "$T/balloon")"
	grep -q '"pages_kept":0,' "$T/balloon" || problem "reported pages were kept: $(cat "$T/balloon")"
	grep -q '"errors":0,' "$T/balloon" || problem "reports that could not be dropped: $(cat "$T/balloon")"
}

# ctl balloon: the host asks a Linux guest for 64 MiB; its driver fills the
# balloon with pages, which faultline drops; 0 gives them back. One vCPU,
# as t_linux_balloon_reports_free_pages.
t_linux_balloon_inflate_and_deflate() {
	S=$T/api.sock
	"$FL" run --config configs/default.json --vcpus 1 --balloon --api "$S" --stats=json \
		--cmdline "console=ttyS0 quiet faultline.run='echo up; sleep 600'" >"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while ! grep -q '^up' "$T/out" && [ $i -lt 1500 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if ! grep -q '^up' "$T/out"; then
		problem "the guest printed no 'up' within 150 s"
		ctl stop
		bg_vm_end
		return
	fi
	follow_events
	ctl balloon 64M
	expect_crc 0
	expect_ctl '  "target_pages": 16384,'
	balloon_actual 16384
	ctl stats
	sed -n '/"balloon": {/,/}/p' "$T/ctl" | tr -d ' \n' >"$T/ctl.balloon"
	inflated=$(sed -n 's/.*"inflated":\([0-9]*\).*/\1/p' "$T/ctl.balloon")
	dropped=$(sed -n 's/.*"pages_dropped":\([0-9]*\).*/\1/p' "$T/ctl.balloon")
	[ "${inflated:-0}" -ge 16384 ] || problem "fewer than 16384 pages inflated: $(cat "$T/ctl.balloon")"
	[ "${dropped:-0}" -ge 8192 ] || problem "fewer than 8192 inflated pages dropped: $(cat "$T/ctl.balloon")"
	ctl balloon 0
	expect_crc 0
	balloon_actual 0
	ctl balloon 1G
	expect_crc 1
	grep -qxF "faultline: ctl: balloon: 1073741824 bytes is more than guest RAM (268435456 bytes) (socket: $S)" "$T/ctl.err" ||
		problem "balloon above RAM: $(cat "$T/ctl.err")"
	ctl stop
	bg_vm_end
	expect_rc 76
	grep -q '"malformed":0,"target_pages"' "$T/err" || problem "malformed balloon chains: $(grep -o '"balloon":{[^}]*}' "$T/err")"
	# The stream saw the target set, the driver's count reach it, then both go back to 0.
	wait $evpid
	for e in '{"event":"balloon","target_pages":16384,"actual_pages":0}' \
		'{"event":"balloon","target_pages":16384,"actual_pages":16384}' \
		'{"event":"balloon","target_pages":0,"actual_pages":16384}' \
		'{"event":"balloon","target_pages":0,"actual_pages":0}'; do
		grep -qxF "$e" "$T/events" || problem "ctl events: no line $e: $(grep -c balloon "$T/events") balloon events"
	done
}
# The guest's memory statistics (STATS_VQ) in ctl status: asked for when a
# second old, so 64 MiB written to tmpfs shows in free_memory on the next
# statuses.
t_linux_balloon_guest_stats() {
	S=$T/api.sock
	"$FL" run --config configs/default.json --vcpus 1 --balloon --api "$S" --stats=json \
		--cmdline "console=ttyS0 quiet faultline.run='echo up; sleep 6; dd if=/dev/zero of=/tmp/x bs=1M count=64 2>/dev/null; echo filled; sleep 600'" \
		>"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while ! grep -q '^up' "$T/out" && [ $i -lt 1500 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if ! grep -q '^up' "$T/out"; then
		problem "the guest printed no 'up' within 150 s"
		ctl stop
		bg_vm_end
		return
	fi
	# The guest's free memory right after its init started still grows (a CI
	# run read 66 MB, and 129 MB after the fill): the baseline is the most
	# it reports in the first 4 s of its 6 s sleep.
	free1=$(guest_stat free_memory)
	total=$(guest_stat total_memory)
	[ -n "$free1" ] || problem "no guest statistics in ctl status: $(tr '\n' ' ' <"$T/ctl")"
	n=0
	while [ $n -lt 8 ] && ! grep -q '^filled' "$T/out"; do
		sleep 0.5
		f=$(guest_stat free_memory)
		[ "${f:-0}" -le "${free1:-0}" ] || free1=$f
		n=$((n + 1))
	done
	[ "${total:-0}" -gt $((200 << 20)) ] && [ "${total:-0}" -le $((256 << 20)) ] ||
		problem "total_memory is '$total', expected 200..256 MiB"
	[ "${free1:-0}" -lt "${total:-0}" ] || problem "free_memory $free1 is not below total_memory $total"
	i=0
	while ! grep -q '^filled' "$T/out" && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	i=0
	free2=$free1
	while [ $i -lt 30 ] && [ "${free2:-0}" -gt $((${free1:-0} - (48 << 20))) ]; do
		sleep 0.5
		free2=$(guest_stat free_memory)
		i=$((i + 1))
	done
	[ "${free2:-0}" -le $((${free1:-0} - (48 << 20))) ] ||
		problem "free_memory went from $free1 to $free2 after 64 MiB were written to tmpfs"
	ctl stop
	bg_vm_end
	expect_rc 76
	updates=$(sed -n 's/.*"balloon":{[^}]*"stats_updates":\([0-9]*\).*/\1/p' "$T/err")
	[ "${updates:-0}" -ge 2 ] || problem "stats_updates is '$updates', expected at least 2"
	# the last statistics are in --stats at the end too
	total_end=$(sed -n 's/.*"balloon":{[^}]*"guest_stats":{[^}]*"total_memory":\([0-9]*\).*/\1/p' "$T/err")
	[ "${total_end:-0}" = "$total" ] || problem "total_memory at the end is '$total_end', in status $total"
	grep -q '"actual_pages":0,"guest_stats":{' "$T/err" ||
		problem "no balloon sizes or guest_stats in --stats: $(grep -o '"balloon":{[^}]*}' "$T/err")"
	grep -q '"malformed":0,"target_pages"' "$T/err" || problem "malformed balloon chains: $(grep -o '"balloon":{[^}]*}' "$T/err")"
}
# The guest statistic $1 from ctl status, after up to 10 s of asking; empty if none.
guest_stat() {
	i=0
	while ctl status && ! grep -q "^      \"$1\": " "$T/ctl" && [ $i -lt 50 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	sed -n "s/^      \"$1\": \([0-9]*\),\{0,1\}\$/\1/p" "$T/ctl"
}

# Within 60 s the driver says the balloon holds $1 pages.
balloon_actual() {
	i=0
	while ctl status && ! grep -qxE "    \"actual_pages\": $1,?" "$T/ctl" && [ $i -lt 300 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	grep -qxE "    \"actual_pages\": $1,?" "$T/ctl" || problem "the balloon does not hold $1 pages: $(tr '\n' ' ' <"$T/ctl")"
}

# A Linux console on a terminal: faultline puts the terminal in raw mode for
# the serial console's input and restores it at the end (TCSETS, under the
# seccomp filter: without it in the list this stops faultline with 70);
# what the guest prints reaches the terminal.
t_linux_console_on_a_terminal() {
	rm -f "$T/fl.err"
	cmd build/tools/pty-run sh -c 'stty -g >"$1/tty.before"; "$2" run --config configs/default.json --vcpus 1 --stats=json --cmdline "console=ttyS0 quiet faultline.run='"'"'echo on-a-terminal'"'"'" 2>"$1/fl.err"; rc=$?; stty -g >"$1/tty.after"; exit $rc' \
		sh "$T" "$FL"
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	# faultline's stderr, in a file: its stats
	cat "$T/fl.err" >>"$T/err" 2>/dev/null
	expect_rc 0
	expect_out "on-a-terminal"
	! grep -q "seccomp" "$T/err" || problem "the seccomp filter stopped a call: $(grep seccomp "$T/err")"
	cmp -s "$T/tty.before" "$T/tty.after" || problem "the terminal settings changed: $(cat "$T/tty.before") -> $(cat "$T/tty.after")"
}

# A kernel panic is a crash (72) through pvpanic, not a reboot that would end the VM with 0.
t_linux_panic_is_a_crash() {
	linux --vcpus 1 --cmdline "console=ttyS0 quiet faultline.run='echo c >/proc/sysrq-trigger'"
	expect_rc 72
	expect_err "faultline: guest crashed: kernel panic, reported through pvpanic (port: 0x505)"
	grep -q "Kernel panic - not syncing: sysrq triggered crash" "$T/out" ||
		problem "stdout lacks the kernel's panic message"
}

# The serial console's input: the shell reads what faultline's stdin gives
# once its prompt is out (busybox ash drops what is typed before it starts).
t_linux_serial_shell() {
	rm -f "$T/in"
	mkfifo "$T/in"
	"$FL" run --config configs/default.json --vcpus 1 --stats=json --cmdline "console=ttyS0 quiet" \
		<"$T/in" >"$T/out" 2>"$T/err" &
	vm=$!
	exec 4>"$T/in"
	i=0
	while ! grep -qF '~ # ' "$T/out" && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if grep -qF '~ # ' "$T/out"; then
		printf 'echo typed-$((6*7))\nexit 5\n' >&4
	else
		problem "no shell prompt after 60 s"
		kill $vm
	fi
	exec 4>&-
	wait $vm
	rc=$?
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	expect_rc 5
	expect_out "faultline: a shell on ttyS0; 'exit' (or Ctrl-D) ends the VM"
	expect_out "typed-42"
}

# The channel (--channel): the Linux guest in the background with the guest
# command $1, its socket waited for; the host side is the caller's.
P=/dev/virtio-ports/faultline.channel
channel_vm() {
	S=$T/ch.sock
	"$FL" run --config configs/default.json --vcpus 1 --channel "$S" --stats=json \
		--cmdline "console=ttyS0 quiet faultline.run='$1'" >"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while [ ! -S "$S" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -S "$S" ] || problem "no channel socket after 30 s"
}
# The end of a VM started in the background as $vm whose socket is $S.
bg_vm_end() {
	# Bounded: a guest that hangs must fail this test, not stall the suite.
	i=0
	while kill -0 $vm 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 $vm 2>/dev/null; then
		problem "the VM had not ended 30 s after its host side did"
		kill $vm
	fi
	wait $vm
	rc=$?
	tr -d '\r' <"$T/out" >"$T/out.lf" && mv "$T/out.lf" "$T/out"
	[ ! -e "$S" ] || problem "the socket file is still there after the VM ended"
}

# SIGTERM ends a VM with a channel as any other: its message, its stats,
# and the socket file removed. (The channel's thread, started before the
# stop signals were blocked, used to take the signal and die with the process.)
t_linux_channel_sigterm() {
	channel_vm "sleep 1000"
	kill -TERM $vm
	bg_vm_end
	expect_rc 143
	expect_err "faultline: stopped by signal Terminated"
	expect_stat connections 0
}

# A line from the host, held until the guest opens the port; the guest's
# answer, sent before the VM's end closes the socket.
t_linux_channel_request_reply() {
	channel_vm "until exec 3<>$P && read -r line <&3; do exec 3<&-; sleep 0.2; done; echo got:\$line; echo pong:\$line >&3"
	printf 'ping\n' | timeout 150 "$FL" channel "$S" >"$T/chan" 2>"$T/chan.err"
	crc=$?
	bg_vm_end
	expect_rc 0
	[ "$crc" = 0 ] || problem "faultline channel: exit status $crc: $(cat "$T/chan.err")"
	[ "$(cat "$T/chan")" = "pong:ping" ] || problem "the host got '$(cat "$T/chan")', expected pong:ping"
	expect_out "got:ping"
	expect_stat connections 1
	expect_stat rx_bytes 5
	expect_stat tx_bytes 10
	expect_stat tx_dropped 0
	expect_stat malformed 0
}

# A paused VM's channel touches nothing of the guest's: the host program
# waits in the socket's backlog with its line (connections and rx_bytes
# stay 0 while paused), and the line arrives once the VM is resumed.
t_linux_channel_waits_while_paused() {
	S=$T/ch.sock
	A=$T/api.sock
	"$FL" run --config configs/default.json --vcpus 1 --channel "$S" --api "$A" --stats=json \
		--cmdline "console=ttyS0 quiet faultline.run='until [ -e $P ]; do sleep 0.2; done; echo ready; until exec 3<>$P && read -r line <&3; do exec 3<&-; sleep 0.2; done; echo got:\$line'" \
		>"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while ! grep -q '^ready' "$T/out" && [ $i -lt 1500 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	S=$A
	ctl pause
	expect_crc 0
	expect_parked 1
	printf 'ping\n' | timeout 150 "$FL" channel "$T/ch.sock" >"$T/chan" 2>"$T/chan.err" &
	chan=$!
	sleep 2
	ctl stats
	expect_crc 0
	# Not even accepted: that would tell the guest (a control message).
	sed -n '/"channel": {/,/}/p' "$T/ctl" | tr -d ' \n' >"$T/ctl.chan"
	grep -q '"connections":0,"rx_bytes":0,' "$T/ctl.chan" || problem "the channel touched a paused guest: $(cat "$T/ctl.chan")"
	ctl resume
	expect_crc 0
	bg_vm_end
	wait $chan
	expect_rc 0
	expect_out "got:ping"
	expect_stat connections 1
	expect_stat rx_bytes 5
}

# The channel's thread starts with the vCPUs (after a restore gave the
# device its state): one that cannot start ends the VM before it runs.
t_linux_channel_thread_fails() {
	S=$T/ch.sock
	FAULTLINE_INJECT=pthread_create.channel:EAGAIN cmd "$FL" run --config configs/default.json --channel "$S"
	expect_rc 70
	expect_err "faultline: cannot start the channel thread: Resource temporarily unavailable (file: $S)"
	expect_err "faultline: cannot start a device's thread (above)"
	[ ! -e "$S" ] || problem "the channel socket is left behind"
}

# 300000 bytes each way, in more pieces than any buffer holds.
t_linux_channel_bulk() {
	channel_vm "until exec 3<>$P && read -r go <&3; do exec 3<&-; sleep 0.2; done; head -c 300000 <&3 | md5sum; yes 01234567 | head -c 300000 >&3"
	{
		echo go
		yes abcdefgh | head -c 300000
	} | timeout 150 "$FL" channel "$S" 2>"$T/chan.err" | md5sum >"$T/chan"
	bg_vm_end
	expect_rc 0
	want_in=$(yes abcdefgh | head -c 300000 | md5sum | cut -d' ' -f1)
	want_out=$(yes 01234567 | head -c 300000 | md5sum | cut -d' ' -f1)
	grep -q "^$want_in " "$T/out" || problem "the guest's md5 of what it read is not $want_in"
	[ "$(cut -d' ' -f1 "$T/chan")" = "$want_out" ] ||
		problem "the host's md5 of what it read is $(cat "$T/chan"), not $want_out"
	expect_stat rx_bytes 300003
	expect_stat tx_bytes 300000
	expect_stat tx_dropped 0
}

t_linux_disk_errors() {
	linux --disk "$T/none.img"
	expect_rc 66
	expect_err "faultline: cannot open the disk image: No such file or directory (file: $T/none.img)"
	linux --disk "$T"
	expect_rc 66
	expect_err "faultline: cannot open the disk image: Is a directory (file: $T)"
	linux --disk "$T,ro"
	expect_rc 66
	expect_err "faultline: cannot use the disk image: not a regular file (file: $T)"
	: >"$T/file"
	linux --channel "$T/file"
	expect_rc 70
	expect_err "faultline: cannot listen on the channel socket: the file exists and is not a socket left without a listener (file: $T/file)"
	long=$T/$(printf '%0120d' 0).sock
	linux --channel "$long"
	expect_rc 64
	expect_err "faultline: cannot listen on the channel socket: the path is longer than 107 bytes (file: $long)"
	linux --mem 32M
	expect_rc 64
	expect_err_first "faultline: cannot boot the kernel: the kernel needs * MiB of RAM to decompress itself, the guest has 32 MiB below 3 GiB: raise --mem (file: build/linux/vmlinuz)"
}
