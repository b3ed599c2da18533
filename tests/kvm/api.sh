# Sourced by tests/kvm/run: its helpers (cmd, expect_*, guest) are defined there.

# ---- the control socket (--api, faultline ctl; vmm/api/api.c, vmm/api/vm_api.c) ----------------------

# The test guest in the background with a control socket, waited for.
api_vm() {
	S=$T/api.sock
	"$FL" run --kernel "$G" --api "$S" --stats=json "$@" >"$T/out" 2>"$T/err" &
	vm=$!
	i=0
	while [ ! -S "$S" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -S "$S" ] || problem "no control socket after 30 s"
}
# One request: its status in $crc, its output in $T/ctl and $T/ctl.err.
ctl() {
	timeout 90 "$FL" ctl "$S" "$@" >"$T/ctl" 2>"$T/ctl.err"
	crc=$?
}
# The reply has this line (JSON, indented by two).
expect_ctl() {
	grep -qxF -- "$1" "$T/ctl" ||
		problem "ctl: the reply lacks the line: $1 (got: $(tr '\n' ' ' <"$T/ctl") $(cat "$T/ctl.err"))"
}
expect_crc() { [ "$crc" = "$1" ] || problem "ctl: exit status $crc, expected $1: $(cat "$T/ctl.err")"; }

# Within 10 s, $1 vCPUs are parked. A vCPU blocked in the kernel on its
# missing page is let out by the kick only where KVM's userfaultfd wait is
# interruptible (Linux 6.4 and later); elsewhere this checks nothing.
expect_parked() {
	case $(uname -r) in [0-5].* | 6.[0-3].*) return ;; esac
	i=0
	while ctl status && ! grep -qxF "  \"vcpus_parked\": $1," "$T/ctl" && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	expect_ctl "  \"vcpus_parked\": $1,"
}

# Follow the VM's events into $T/events from now on: the stream is open
# (its status line is there) when this returns.
follow_events() {
	# $T is the suite's: a file left by an earlier test must not pass for ours.
	rm -f "$T/events" "$T/events.err"
	"$FL" ctl "$S" events >"$T/events" 2>"$T/events.err" &
	evpid=$!
	i=0
	while [ ! -s "$T/events" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -s "$T/events" ] || problem "ctl events: no status line within 30 s: $(cat "$T/events.err")"
}
# The stream ended with the VM: ctl exited 0, and its lines after the first
# (the status) are exactly $1.
expect_events() {
	wait $evpid
	evrc=$?
	[ $evrc = 0 ] || problem "ctl events: exit status $evrc: $(cat "$T/events.err")"
	tail -n +2 "$T/events" >"$T/events.rest"
	printf '%s\n' "$1" | cmp -s - "$T/events.rest" ||
		problem "ctl events: expected the lines $(printf '%s' "$1" | tr '\n' '|'), got $(tr '\n' '|' <"$T/events.rest")"
}

OOM_PAUSED="faultline: guest out of memory: budget of 8192 pages exhausted (GPA 0x*, vCPU 0, budget 8192 pages, resident 8192 pages); the VM is paused (--on-oom pause): raise the budget with 'faultline ctl $T/api.sock mem-limit SIZE', then 'faultline ctl $T/api.sock resume'"

# --on-oom pause: the VM waits out of memory, the budget is raised through
# the socket, and the guest goes on: every page it wrote reads back.
t_oom_pause_raise_resume() {
	api_vm --mem 256M --mem-limit 32M --on-oom pause --guest-arg workload=touch \
		--guest-arg pages=16384
	follow_events
	ctl wait paused-oom 90
	expect_crc 0
	expect_ctl '  "state": "paused-oom",'
	expect_ctl '  "on_oom": "pause",'
	expect_ctl '  "oom_pauses": 1,'
	grep -q '^  "oom": "guest out of memory: budget of 8192 pages exhausted (GPA 0x[0-9a-f]*, vCPU 0, budget 8192 pages, resident 8192 pages)"$' "$T/ctl" ||
		problem "the status names no OOM: $(cat "$T/ctl")"
	ctl mem-limit 256M
	expect_crc 0
	expect_ctl '  "budget_pages": 65536,'
	ctl resume
	expect_crc 0
	expect_ctl '  "was": "paused-oom"'
	bg_vm_end
	expect_rc 0
	expect_out "touch: verified 16384 pages on 1 vCPUs"
	expect_err_first "$OOM_PAUSED"
	[ "$(stat refaults)" -ge 1 ] || problem "stats: refaults is '$(stat refaults)', expected 1 or more"
	expect_stat result_oom "$(stat refaults)"
	# The stream opened before or after the pause: its status says which.
	oom=$(sed -n '1s/^faultline: \(guest out of memory: .*\); the VM is paused .*/\1/p' "$T/err")
	if grep -q '^{"event":"status","state":"running",' "$T/events"; then
		paused='{"event":"paused-oom","state":"paused-oom","oom":"'"$oom"'","timeout_s":0}
'
	else
		paused=
	fi
	expect_events "$paused"'{"event":"mem-limit","budget_pages":65536,"resident_pages":8192}
{"event":"resumed","state":"running","was":"paused-oom"}
{"event":"stopping","state":"stopping","status":0,"reason":"the guest exited with status 0"}'
}

# Four vCPUs faulting on two handler threads: every one of them that finds
# no room waits, all four vCPUs park, and once resumed with room every page
# of every vCPU reads back.
t_oom_pause_four_vcpus() {
	api_vm --mem 256M --mem-limit 32M --vcpus 4 --fault-threads 2 --on-oom pause \
		--guest-arg workload=touch --guest-arg pages=4096
	ctl wait paused-oom 90
	expect_crc 0
	expect_parked 4
	ctl mem-limit 256M
	ctl resume
	expect_crc 0
	bg_vm_end
	expect_rc 0
	expect_out "touch: verified 16384 pages on 4 vCPUs"
	expect_err_first "faultline: guest out of memory: budget of 8192 pages exhausted (GPA 0x*, vCPU *, budget 8192 pages, resident 8192 pages); the VM is paused (--on-oom pause)*"
	expect_stat_ge refaults 1
}

# Resumed without room, the fault pauses the VM again; stop ends it (76)
# and says what it was waiting for.
t_oom_pause_resume_without_room_then_stop() {
	api_vm --mem 64M --mem-limit 32M --on-oom pause --guest-arg workload=touch \
		--guest-arg pages=12288
	ctl wait paused-oom 90
	ctl mem-limit 16M
	expect_crc 1
	grep -qx "faultline: ctl: mem-limit: 8192 pages are resident and no more clean pages can be dropped: the budget cannot go below them (socket: $S)" "$T/ctl.err" ||
		problem "mem-limit below resident: $(cat "$T/ctl.err")"
	ctl mem-limit 1G
	expect_crc 1
	grep -qx "faultline: ctl: mem-limit: 1073741824 bytes is more than guest RAM (67108864 bytes) (socket: $S)" "$T/ctl.err" ||
		problem "mem-limit above RAM: $(cat "$T/ctl.err")"
	ctl resume
	expect_crc 0
	i=0
	while ctl status && ! grep -qxF '  "oom_pauses": 2,' "$T/ctl" && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	expect_ctl '  "state": "paused-oom",'
	expect_ctl '  "oom_pauses": 2,'
	# Where it waits: the fault is held by the handler that paused the VM.
	expect_ctl '    "faults_queued": false,'
	expect_ctl '    "handlers_at_work": 1'
	ctl stop
	expect_crc 0
	bg_vm_end
	expect_rc 76
	expect_err_first "$OOM_PAUSED"
	expect_err "faultline: where the VM was: guest faults waiting for the fault handlers: none queued, 1 handler at work"
	grep -q "^faultline: stopped through the control socket (faultline ctl stop) while paused: guest out of memory: budget of 8192 pages exhausted (GPA 0x[0-9a-f]*, vCPU 0, budget 8192 pages, resident 8192 pages)$" "$T/err" ||
		problem "no stop message naming the OOM: $(cat "$T/err")"
	expect_stat refaults 1
}

# pause,timeout=SECS: nobody resumes the VM, so it stops as kill would (75),
# saying so; the status counts down.
t_oom_pause_timeout() {
	api_vm --mem 256M --mem-limit 32M --on-oom pause,timeout=3 --guest-arg workload=touch \
		--guest-arg pages=16384
	ctl wait paused-oom 90
	expect_crc 0
	grep -q '^  "stops_in_ms": [0-9]*$' "$T/ctl" || problem "the status has no countdown: $(cat "$T/ctl")"
	ms=$(sed -n 's/^  "stops_in_ms": \([0-9]*\)$/\1/p' "$T/ctl")
	[ "${ms:-9999}" -le 3000 ] || problem "stops_in_ms is '$ms', expected at most 3000"
	bg_vm_end
	expect_rc 75
	expect_err_first "$OOM_PAUSED"
	grep -q "^faultline: guest out of memory: budget of 8192 pages exhausted (GPA 0x[0-9a-f]*, vCPU 0, budget 8192 pages, resident 8192 pages); nobody resumed the VM within 3 s (--on-oom pause,timeout=3)$" "$T/err" ||
		problem "no timeout message: $(cat "$T/err")"
}

# A paused VM still stops on SIGTERM, and removes its socket.
t_oom_pause_sigterm() {
	api_vm --mem 256M --mem-limit 32M --on-oom pause --guest-arg workload=touch \
		--guest-arg pages=16384
	ctl wait paused 90
	expect_crc 0
	expect_parked 1
	kill -TERM $vm
	bg_vm_end
	expect_rc 143
	expect_err "faultline: stopped by signal Terminated"
}

# A device page over budget (the vram BAR's nopage answered OOM on a vCPU
# thread): the vCPU waits parked, and goes on once there is room.
t_oom_pause_device_page() {
	api_vm --mem 16M --mem-limit 2M --vram size=4M,pool=64K --guest-arg workload=vram \
		--guest-arg passes=1 --on-oom pause
	ctl wait paused-oom 90
	expect_crc 0
	expect_ctl '  "vcpus_parked": 1,'
	grep -q '^  "oom": "guest out of memory: device vram answered OOM for offset 0x[0-9a-f]*: Cannot allocate memory (budget 512 pages, resident 512 pages)"$' "$T/ctl" ||
		problem "the status names no device OOM: $(cat "$T/ctl")"
	ctl mem-limit 16M
	ctl resume
	expect_crc 0
	bg_vm_end
	expect_rc 0
	expect_out "vram: vCPU 0 verified 1024 pages after 1 passes"
	expect_stat nopage_oom 1
}

# pause and resume on request, status, stats, stop, and requests refused.
t_api_pause_resume_stop() {
	api_vm --guest-arg workload=spin
	i=0
	while ! grep -qxF "spin: looping forever" "$T/out" && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	follow_events
	grep -q '^{"event":"status","state":"running","vcpus":1,' "$T/events" ||
		problem "ctl events: the first line is not the running status: $(cat "$T/events")"
	ctl pause
	expect_crc 0
	expect_ctl '  "was": "running",'
	# The reply waits at most 500 ms for the vCPU to park; a slow harness
	# may take longer, so the count is polled.
	grep -q '^  "vcpus_parked": [01]$' "$T/ctl" || problem "pause: no parked count: $(cat "$T/ctl")"
	expect_parked 1
	expect_ctl '  "state": "paused",'
	expect_ctl '  "guest_clock": "stopped",'
	expect_ctl '  "pauses": 1,'
	ctl pause
	expect_ctl '  "was": "paused",'
	ctl resume
	expect_ctl '  "was": "paused"'
	ctl wait running 30
	expect_crc 0
	expect_parked 0 # the vCPU leaves its wait after the state changes
	expect_ctl '  "guest_clock": "running",'
	ctl stats
	expect_crc 0
	expect_ctl '  "stats": {'
	grep -q '^      "faults": [1-9][0-9]*,$' "$T/ctl" || problem "stats: no faults counted: $(head -c 300 "$T/ctl")"
	ctl frobnicate
	expect_crc 1
	grep -qxF "faultline: ctl: unknown command: frobnicate (commands: status, pause, resume, mem-limit, stats, stop, balloon, snapshot, events) (socket: $S)" "$T/ctl.err" ||
		problem "unknown command: $(cat "$T/ctl.err")"
	ctl balloon 1M
	expect_crc 1
	grep -qxF "faultline: ctl: balloon: this VM has no balloon (run it with --balloon) (socket: $S)" "$T/ctl.err" ||
		problem "balloon without one: $(cat "$T/ctl.err")"
	ctl stop
	expect_crc 0
	bg_vm_end
	expect_rc 76
	expect_err_first "faultline: stopped through the control socket (faultline ctl stop)"
	# The second pause changed nothing, so it has no event.
	expect_events '{"event":"paused","state":"paused"}
{"event":"resumed","state":"running","was":"paused"}
{"event":"stopping","state":"stopping","status":76,"reason":"stopped through the control socket (faultline ctl stop)"}'
	ctl status
	expect_crc 66
	grep -qxF "faultline: cannot connect to the control socket: No such file or directory (file: $S)" "$T/ctl.err" ||
		problem "after the end: $(cat "$T/ctl.err")"
}

# The guest clock cannot be read when the VM pauses (KVM_GET_CLOCK) or set
# back when it resumes (KVM_SET_CLOCK), at every pause: said once, and
# pausing works as before, the clock running on. $1: the ioctl; $2: the
# guest clock while paused.
clock_failure() {
	export FAULTLINE_INJECT=$1:EIO:0:0
	api_vm --guest-arg workload=spin
	unset FAULTLINE_INJECT
	i=0
	while ! grep -qxF "spin: looping forever" "$T/out" && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	ctl pause
	expect_crc 0
	expect_parked 1
	expect_ctl "  \"guest_clock\": \"$2\","
	ctl resume
	ctl pause
	expect_parked 1
	ctl resume
	expect_crc 0
	ctl stop
	bg_vm_end
	expect_rc 76
	expect_err_first "faultline: warning: $1 failed: Input/output error; the guest clock ran on while the VM was paused"
	[ "$(grep -c "$1 failed" "$T/err")" = 1 ] || problem "the warning is not said exactly once: $(cat "$T/err")"
}

t_api_pause_clock_failure() { clock_failure KVM_GET_CLOCK running; }
t_api_resume_clock_failure() { clock_failure KVM_SET_CLOCK stopped; }

# A socket that cannot be made: a plain file in the way, a path too long.
t_api_socket_errors() {
	: >"$T/file"
	guest --api "$T/file" --guest-arg workload=hello
	expect_rc 70
	expect_err "faultline: cannot listen on the control socket: the file exists and is not a socket left without a listener (file: $T/file)"
	long=$T/$(printf '%0120d' 0).sock
	guest --api "$long" --guest-arg workload=hello
	expect_rc 64
	expect_err "faultline: cannot listen on the control socket: the path is longer than 107 bytes (file: $long)"
}
