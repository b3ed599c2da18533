# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there.

# ---- BAR devices: shm and vram (devices/, mmu/bar.c) --------------------------------

crc32_file() { head -c "$2" "$1" | { if command -v crc32 >/dev/null; then crc32; else busybox crc32; fi; }; }

# The guest's records land in the host file, byte for byte; 5 data pages are
# mapped through nopage (PAGE), the register page traps (NONRAM).
t_shm_guest_writes_reach_the_file() {
	dd if=/dev/zero of="$T/shm" bs=4096 count=16 2>/dev/null
	guest --shm "$T/shm,size=64K" --guest-arg workload=shm --guest-arg write=20000 --stats=json
	expect_rc 0
	crc=$(crc32_file "$T/shm" 20000)
	expect_out "shm: wrote 20000 bytes at offset 0x0, crc32 $crc"
	rec=$(dd if="$T/shm" bs=16 skip=1000 count=1 2>/dev/null)
	[ "$rec" = "shm:00000003e80" ] || problem "record 1000 is '$rec'"
	rest=$(dd if="$T/shm" bs=4096 skip=5 2>/dev/null | tr -d '\0' | wc -c)
	[ "$rest" = 0 ] || problem "$rest non-zero bytes past the pattern"
	expect_stat nopage_page 5
	expect_stat nopage_nonram 1
	expect_stat maps 5
	expect_stat refault_exhausted 0
}

# Bytes the host wrote are what the guest reads.
t_shm_host_bytes_read_by_guest() {
	make_backing 16
	cp "$T/backing" "$T/shm"
	want=$(crc32_of 4 8)
	guest --shm "$T/shm,size=64K" --guest-arg workload=shm --guest-arg read=32768 \
		--guest-arg roff=16384
	expect_rc 0
	expect_out "shm: read 32768 bytes at offset 0x4000, crc32 $want"
}

# The doorbell: the guest rings, a host program reading the FIFO gets the value.
t_shm_doorbell() {
	dd if=/dev/zero of="$T/shm" bs=4096 count=1 2>/dev/null
	mkfifo "$T/bell"
	head -n 1 "$T/bell" >"$T/bell.out" &
	reader=$!
	guest --shm "$T/shm,size=4K,doorbell=$T/bell" --guest-arg workload=shm --guest-arg ring=42 \
		--stats=json
	expect_rc 0
	expect_out "shm: rang the doorbell with 42, 1 rings so far"
	expect_stat doorbells 1
	expect_stat doorbells_dropped 0
	wait $reader
	[ "$(cat "$T/bell.out")" = 42 ] || problem "the host read '$(cat "$T/bell.out")' from the doorbell"
}

# Past the file's end nothing backs the BAR: SIGBUS, which the guest takes
# as a machine check at that GPA.
t_shm_past_file_end_is_a_machine_check() {
	dd if=/dev/zero of="$T/shm" bs=4096 count=2 2>/dev/null
	guest --shm "$T/shm,size=64K" --guest-arg workload=shm --guest-arg read=4096 \
		--guest-arg roff=16384 --stats=json
	expect_rc 0
	expect_err_first "faultline: injected a machine check into vCPU 0 for GPA 0xd0005000"
	expect_out "guest: machine check on vCPU 0: GPA 0xd0005000 (bank 1, status 0xbd80000000000134)"
	expect_stat nopage_sigbus 1
	expect_stat machine_checks 1
}

# ... and a guest that cannot take one stops the VM, naming the device.
t_shm_past_file_end_without_mce() {
	dd if=/dev/zero of="$T/shm" bs=4096 count=2 2>/dev/null
	guest --shm "$T/shm,size=64K" --guest-arg workload=shm --guest-arg read=4096 \
		--guest-arg roff=16384 --guest-arg mce=off
	expect_rc 74
	expect_err "faultline: device memory error: device shm answered SIGBUS for offset 0x5000: No such device or address: the guest has not enabled machine checks (CR4.MCE clear), so it cannot be told (GPA 0xd0005000, vCPU 0)"
}

t_shm_missing_file() {
	guest --shm "$T/nonexistent,size=64K" --guest-arg workload=shm
	expect_rc 66
	expect_err "faultline: cannot open the shm file: No such file or directory (file: $T/nonexistent)"
}

t_shm_bad_doorbell_and_file() {
	dd if=/dev/zero of="$T/shm" bs=4096 count=1 2>/dev/null
	guest --shm "$T/shm,size=4K,doorbell=$T/no/such/dir/bell" --guest-arg workload=shm
	expect_rc 66
	expect_err "faultline: cannot open the shm doorbell: No such file or directory (file: $T/no/such/dir/bell)"
	mkdir "$T/dir"
	guest --shm "$T/dir,size=4K" --guest-arg workload=shm
	expect_rc 66
	expect_err "faultline: cannot open the shm file: Is a directory (file: $T/dir)"
	guest --shm "/dev/null,size=4K" --guest-arg workload=shm
	expect_rc 66
	expect_err "faultline: cannot map the shm file: No such device (file: /dev/null)"
}

t_shm_absent_from_the_device_tree() {
	guest --guest-arg workload=shm
	expect_rc 4
	expect_out "shm: no faultline,shm device in the device tree"
}

# A 4-page pool behind a 64-page BAR, two vCPUs: every byte intact across
# migrations both ways.
t_vram_pool_smaller_than_bar() {
	guest --vcpus 2 --vram size=256K,pool=16K --guest-arg workload=vram --stats=json
	expect_rc 0
	expect_out "vram: BAR of 64 pages at GPA 0xe0000000, pool of 4 pages"
	expect_out "vram: vCPU 0 verified 32 pages after 3 passes"
	expect_out "vram: vCPU 1 verified 32 pages after 3 passes"
	for c in migrations_to_pool migrations_to_system zaps nopage_refault; do
		n=$(stat $c)
		[ -n "$n" ] && [ "$n" -ge 64 ] || problem "$c is '$n', expected >= 64"
	done
	expect_stat refault_exhausted 0
	expect_stat nopage_oom 0
}

# A handler that answers REFAULT forever: bounded, and a clear error.
t_vram_refault_forever() {
	FAULTLINE_INJECT=nopage@vram:EAGAIN:0:0 guest --vram size=64K --guest-arg workload=vram \
		--fault-retries 6
	expect_rc 74
	expect_err_first "faultline: guest page fault failed: device vram still answered REFAULT for offset 0x0 after 6 attempts in * ms (GPA 0xe0000000, vCPU 0)"
}

# OOM in a handler goes through the VM's policy: kill ...
t_vram_oom_kill() {
	FAULTLINE_INJECT=nopage@vram:ENOMEM guest --vram size=64K --guest-arg workload=vram
	expect_rc 75
	expect_err_first "faultline: guest out of memory: device vram answered OOM for offset 0x0: Cannot allocate memory (budget * pages, resident * pages) (GPA 0xe0000000, vCPU 0)"
}

# ... or a machine check with --on-oom mce.
t_vram_oom_mce() {
	FAULTLINE_INJECT=nopage@vram:ENOMEM guest --vram size=64K --guest-arg workload=vram \
		--on-oom mce
	expect_rc 0
	expect_err "faultline: injected a machine check into vCPU 0 for GPA 0xe0000000"
	expect_out "guest: machine check on vCPU 0: GPA 0xe0000000 (bank 1, status 0xbd80000000000134)"
}

# The real budget: vram pages are charged to --mem-limit like RAM.
t_vram_over_budget() {
	guest --mem 16M --mem-limit 2M --vram size=4M,pool=64K --guest-arg workload=vram \
		--guest-arg passes=1 --stats=json
	expect_rc 75
	expect_err_first "faultline: guest out of memory: device vram answered OOM for offset 0x*: Cannot allocate memory (budget 512 pages, resident 512 pages) (GPA 0x*, vCPU 0)"
	expect_stat nopage_oom 1
}
