# Sourced by tests/host/run.

# Linux boots: what is checked before KVM is opened (vmm/boot/linux.c, vmm/cmd/config.c).
LK=build/linux/vmlinuz
t_linux_corrupt_bzimage() {
	cp "$LK" "$T/bad" && printf '\000\002' | dd of="$T/bad" bs=1 seek=$((0x206)) conv=notrunc 2>/dev/null
	cmd "$FL" run --kernel "$T/bad"
	expect_rc 65
	expect_err "faultline: invalid kernel image: boot protocol 2.00 is too old: faultline needs 2.12 or later (Linux 3.8) (file: $T/bad)"
	head -c 400 "$LK" >"$T/short"
	cmd "$FL" run --kernel "$T/short"
	expect_rc 65
	expect_err "faultline: invalid kernel image: not an ELF file (bad magic) (file: $T/short)"
}

# A vmlinux (the same kernel, uncompressed: guest/linux/build) is checked as
# an ELF and as a kernel before KVM is opened.
LX=build/linux/vmlinux
t_linux_corrupt_vmlinux() {
	head -c 1048576 "$LX" >"$T/short"
	cmd "$FL" run --kernel "$T/short"
	expect_rc 65
	expect_err_first "faultline: invalid kernel image: vmlinux: truncated: segment 0 (offset *, * bytes) extends beyond the end of the file (1048576 bytes) (file: $T/short)"
	cp "$LX" "$T/bad" && printf '\000\000\000\000' | dd of="$T/bad" bs=1 seek=24 conv=notrunc 2>/dev/null
	cmd "$FL" run --kernel "$T/bad" --mem 256M
	expect_rc 65
	expect_err "faultline: invalid kernel image: vmlinux: entry point 0x0 is not in an executable segment (file: $T/bad)"
	cmd "$FL" run --kernel "$LX" --mem 60M
	expect_rc 64
	expect_err_first "faultline: cannot boot the kernel: the kernel needs * MiB of RAM for its segments, the guest has 60 MiB below 3 GiB: raise --mem (file: $LX)"
}

t_linux_missing_initrd() {
	cmd "$FL" run --kernel "$LK" --initrd "$T/none.cpio"
	expect_rc 66
	expect_err "faultline: cannot open the initrd: No such file or directory (file: $T/none.cpio)"
}

# Linux's command line (with faultline's own entries) must fit in faultline's
# 4 KiB and in what the kernel takes (its boot header's cmdline_size),
# checked before KVM is opened.
t_linux_cmdline_too_long() {
	cmd "$FL" run --kernel "$LK" --cmdline "$(head -c 5000 /dev/zero | tr '\0' x)"
	expect_rc 64
	expect_err "faultline: the kernel command line is longer than 4095 bytes (--cmdline)"
	cmd "$FL" run --kernel "$LK" --cmdline "$(head -c 3000 /dev/zero | tr '\0' x)"
	expect_rc 64
	expect_err "faultline: cannot boot the kernel: the command line is 3037 bytes, this kernel takes at most 2047 (file: $LK)"
}

t_linux_options_need_linux() {
	cmd "$FL" run --kernel build/guest/faultline-guest.elf --initrd "$T/x"
	expect_rc 64
	expect_err "faultline: usage: --initrd needs a Linux kernel (bzImage or vmlinux); build/guest/faultline-guest.elf is an ELF guest"
	cmd "$FL" run --kernel build/guest/faultline-guest.elf --disk "$T/x"
	expect_rc 64
	expect_err "faultline: usage: --disk needs a Linux kernel (bzImage or vmlinux); build/guest/faultline-guest.elf is an ELF guest"
	cmd "$FL" run --kernel "$LK" --disk a --disk b --disk c --disk d --disk e,ro
	expect_rc 64
	expect_err "faultline: invalid option value: at most 4 disks (--disk: e,ro)"
	cmd "$FL" run --kernel build/guest/faultline-guest.elf --channel "$T/c.sock"
	expect_rc 64
	expect_err "faultline: usage: --channel needs a Linux kernel (bzImage or vmlinux); build/guest/faultline-guest.elf is an ELF guest"
	[ ! -e "$T/c.sock" ] || problem "the refused VM left its socket file"
	cmd "$FL" run --kernel build/guest/faultline-guest.elf --balloon
	expect_rc 64
	expect_err "faultline: usage: --balloon needs a Linux kernel (bzImage or vmlinux); build/guest/faultline-guest.elf is an ELF guest"
	cmd "$FL" run --kernel build/guest/faultline-guest.elf --boot-timeout 60
	expect_rc 64
	expect_err "faultline: usage: --boot-timeout needs a Linux kernel (bzImage or vmlinux); build/guest/faultline-guest.elf is an ELF guest"
}

t_boot_timeout_bad_value() {
	for v in 0 86401 -1 10s ''; do
		cmd "$FL" run --kernel "$LK" --boot-timeout "$v"
		expect_rc 64
		expect_err "faultline: invalid option value: expected a number from 1 to 86400 (--boot-timeout: $v)"
	done
}
