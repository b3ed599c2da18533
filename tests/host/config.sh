# The JSON config (vmm/cmd/config.c), ours and Firecracker's.
# Sourced by tests/host/run.

t_config_errors() {
	printf '{"kernel": "%s", "memory": 5}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: unknown key \"memory\"; faultline knows kernel, initrd, cmdline, mem, vcpus, disks, channel, api, balloon and hugepages (file: $T/c.json)"
	printf '{"kernel": "%s", "balloon": "yes"}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: balloon: expected true or false (file: $T/c.json)"
	printf '{"kernel": "%s", "hugepages": 1}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: hugepages: expected true or false (file: $T/c.json)"
	# a config's huge pages meet the command line's --dedup: refused as on the command line
	printf '{"kernel": "%s", "hugepages": true}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json" --dedup on
	expect_rc 64
	expect_err "faultline: invalid option value: guest RAM on huge pages is served 2 MiB at a time, and --dedup works in pages of 4 KiB (--hugepages)"
	printf '{"kernel": "%s", "vcpus": 0}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: vcpus: expected a number from 1 to 64 (file: $T/c.json)"
	printf '{"kernel": "%s", "mem": "3M"}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: mem: guest RAM must be 4M..63G, a multiple of 2M (file: $T/c.json)"
	printf '{"kernel": "%s",\n "disks": [{"path": "d", "cache": 1}]}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: disks: unknown key \"cache\" (file: $T/c.json)"
	printf '{"kernel": "%s", "channel": 5}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: channel: expected a string (file: $T/c.json)"
	printf '{"kernel": "%s", "api": ["a.sock"]}\n' "$LK" >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err "faultline: invalid config: api: expected a string (file: $T/c.json)"
	# The config's control socket is the one --on-oom pause needs: past the
	# options, the run fails only for want of KVM.
	printf '{"kernel": "%s", "api": "%s"}\n' "$LK" "$T/c.sock" >"$T/c.json"
	cmd env FAULTLINE_KVM_DEVICE="$T/nokvm" "$FL" run --config "$T/c.json" --on-oom pause
	expect_rc 69
	[ ! -e "$T/c.sock" ] || problem "a VM that did not start left its control socket"
	printf '{"kernel": \n' >"$T/c.json"
	cmd "$FL" run --config "$T/c.json"
	expect_rc 64
	expect_err_first "faultline: invalid config: * at line * (file: $T/c.json)"
	cmd "$FL" run --config "$T/none.json"
	expect_rc 66
	expect_err "faultline: cannot open the config file: No such file or directory (file: $T/none.json)"
}

# The default config names the Linux guest, and the command line overrides it.
t_config_default_and_override() {
	cmd "$FL" run --config configs/default.json --kernel "$T/none"
	expect_rc 66
	expect_err "faultline: cannot open the kernel image: No such file or directory (file: $T/none)"
	cmd "$FL" run --config configs/default.json --initrd "$T/none.cpio"
	expect_rc 66
	expect_err "faultline: cannot open the initrd: No such file or directory (file: $T/none.cpio)"
}

# A Firecracker config: the keys faultline cannot honour are named, the rest is used.
t_config_firecracker() {
	cat >"$T/fc.json" <<-EOF
	{ "boot-source": { "kernel_image_path": "$LK", "boot_args": "console=ttyS0" },
	  "machine-config": { "vcpu_count": 2, "mem_size_mib": 256, "smt": false },
	  "drives": [ { "drive_id": "rootfs", "path_on_host": "$T/none.img",
	                "is_root_device": true, "is_read_only": false } ],
	  "network-interfaces": [] }
	EOF
	cmd env FAULTLINE_KVM_DEVICE="$T/nokvm" "$FL" run --config "$T/fc.json" --initrd "$T/none.cpio"
	expect_rc 66
	expect_err "faultline: config: ignoring the Firecracker key machine-config.\"smt\": faultline has no such setting (file: $T/fc.json)"
	expect_err "faultline: config: ignoring the Firecracker key \"network-interfaces\": faultline has no such setting (file: $T/fc.json)"
	expect_err "faultline: cannot open the initrd: No such file or directory (file: $T/none.cpio)"
	printf '{"boot-source": {"kernel_image_path": 7}}\n' >"$T/fc.json"
	cmd "$FL" run --config "$T/fc.json"
	expect_rc 64
	expect_err "faultline: invalid config: boot-source.kernel_image_path: expected a string (file: $T/fc.json)"
}
