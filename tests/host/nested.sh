# The nested harness's own failure modes: status and streams, timeout, an
# L1 that crashes or stands still, signals, the KVM tier's resume.
# Sourced by tests/host/run.

t_nested_status_and_streams() {
	cmd tests/nested/run -- sh -c 'echo to-stdout; echo to-stderr >&2; [ -c /dev/kvm ] || exit 9; exit 3'
	expect_rc 3
	expect_out "to-stdout"
	expect_err "to-stderr"
}

# --stdin carries our stdin to CMD's; without it CMD reads /dev/null.
t_nested_stdin() {
	printf 'hello-through-stdin\nsecond line\n' >"$T/in"
	cmd tests/nested/run --stdin -- head -n 1 <"$T/in"
	expect_rc 0
	expect_out "hello-through-stdin"
	expect_out_count . 1
	cmd tests/nested/run -- sh -c 'cat; echo end' <"$T/in"
	expect_rc 0
	expect_out "end"
	expect_out_count . 1
}

t_nested_timeout() {
	cmd tests/nested/run --timeout 8 -- sleep 1000
	expect_rc 124
	expect_err "nested: timed out after 8s running: sleep 1000"
}

t_nested_l1_crash() {
	cmd tests/nested/run -- sh -c 'echo c >/proc/sysrq-trigger'
	expect_rc 125
	expect_err_first "nested: the L1 VM ended without reporting the command's status*"
}

# An L1 that stops writing its heartbeat (here: the heartbeat's shell
# stopped) is ended after --stall seconds, not at the end of --timeout.
t_nested_stall() {
	cmd tests/nested/run --stall 15 -- sh -c 'kill -STOP $(cat /faultline-nested/heartbeat.pid); sleep 1000'
	expect_rc 125
	expect_err "nested: the L1 stood still: no heartbeat from its kernel for 15s (its timers stopped; not CMD's doing) running: sh -c kill -STOP \$(cat /faultline-nested/heartbeat.pid); sleep 1000"
}

# A signal to the harness ends its L1 and it exits with 128+N. (TERM: a
# background job of a script ignores INT, and the harness cannot trap it.)
t_nested_signal() {
	tests/nested/run -- sleep 1000 >"$T/out" 2>"$T/err" &
	h=$!
	sleep 10
	kill -TERM $h
	wait $h
	rc=$?
	expect_rc 143
	expect_err "nested: stopped by signal 15; the L1 was ended running: sleep 1000"
}

# tests/kvm/with-kvm --resume: a suite whose L1 stood still goes on after
# the last test that reported, in a fresh L1, and the summary counts both.
t_kvm_resume_after_stall() {
	if tests/kvm/kvm-ok >/dev/null; then
		echo "    (skipped: with-kvm runs natively on this machine's /dev/kvm)" >&2
		return
	fi
	cmd env FAULTLINE_NESTED_STALL=15 tests/kvm/with-kvm --resume tests/host/resume-demo
	expect_rc 0
	expect_out "PASS demo/t_one"
	expect_out "RETRY demo: the L1 stood still after t_one (the harness saw no heartbeat from its kernel): the tests after it run in a fresh L1"
	expect_out "PASS demo/t_two"
	expect_out "PASS demo/t_three"
	expect_out_count "^PASS demo/t_one$" 1
	expect_out "demo: resumed 1 time(s) after the L1 stood still"
	[ "$(tail -n 1 "$T/out")" = "demo: 3 passed, 0 failed" ] || problem "the last line is '$(tail -n 1 "$T/out")'"
}

t_nested_bad_usage() {
	cmd tests/nested/run --bogus -- true
	expect_rc 126
	expect_err "nested: unknown option: --bogus (see --help)"
	cmd tests/nested/run --stall 1m -- true
	expect_rc 126
	expect_err "nested: --timeout, --mem, --smp and --stall take numbers"
}
