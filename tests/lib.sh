# Shared helpers of the shell test suites (POSIX sh: they also run under
# busybox inside the nested harness). A suite defines t_* functions that run
# a command with `cmd` and state expectations; `run_suite NAME t_...` runs
# them and prints "NAME: N passed, N failed".

T=$(mktemp -d "${TMPDIR:-/tmp}/faultline-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

# Run a command, keeping stdout, stderr and the exit status. Each command
# has FAULTLINE_TEST_TIMEOUT seconds (180 unless set): one that hangs gets
# SIGTERM (SIGKILL 10 s later) and fails its test, and the suite goes on.
cmd() {
	limit=${FAULTLINE_TEST_TIMEOUT:-180}
	started=$(date +%s)
	timeout -s TERM -k 10 "$limit" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	[ $(($(date +%s) - started)) -lt "$limit" ] || problem "timed out after ${limit} s: $*"
}

problem() { echo "    $*" >>"$T/why"; }
expect_rc() { [ "$rc" = "$1" ] || problem "exit status $rc, expected $1"; }
expect_out() { grep -qxF -- "$1" "$T/out" || problem "stdout lacks the line: $1"; }
expect_err() { grep -qxF -- "$1" "$T/err" || problem "stderr lacks the line: $1"; }
# Some line of stderr contains the fixed string.
expect_err_has() { grep -qF -- "$1" "$T/err" || problem "stderr lacks: $1"; }
# The value of a counter in the --stats=json object on stderr.
stat() { sed -n 's/.*"'"$1"'":\([0-9]*\).*/\1/p' "$T/err" | tail -n 1; }
expect_stat() {
	v=$(stat "$1")
	[ "$v" = "$2" ] || problem "stats: $1 is '$v', expected $2"
}
expect_no_err() { [ ! -s "$T/err" ] || problem "stderr is not empty"; }
expect_out_count() {
	n=$(grep -c -- "$1" "$T/out")
	[ "$n" = "$2" ] || problem "stdout has $n lines matching '$1', expected $2"
}
# The first line of stderr must match a shell pattern (for RIPs and sizes).
expect_err_first() {
	first=$(head -n 1 "$T/err")
	# shellcheck disable=SC2254
	case "$first" in
	$1) ;;
	*) problem "first stderr line: '$first', expected the pattern: $1" ;;
	esac
}

# The t_* functions FILE... define, in the order they are defined: a
# suite's tests, found by their names.
suite_tests() { sed -n 's/^\(t_[a-z0-9_]*\)() *{.*/\1/p' "$@"; }

run_suite() {
	suite=$1
	shift
	# FAULTLINE_RESUME_AFTER=t_NAME skips the tests up to t_NAME and it
	# (tests/kvm/with-kvm --resume, after the L1 stood still).
	skip=${FAULTLINE_RESUME_AFTER:-}
	for t in "$@"; do
		if [ -n "$skip" ]; then
			[ "$t" != "$skip" ] || skip=
			continue
		fi
		# FAULTLINE_TESTS=PATTERN (a shell pattern) runs only the tests it matches.
		case "$t" in ${FAULTLINE_TESTS:-*}) ;; *) continue ;; esac
		: >"$T/why"
		: >"$T/out"
		: >"$T/err"
		"$t"
		if [ -s "$T/why" ]; then
			fail=$((fail + 1))
			echo "FAIL $suite/$t"
			cat "$T/why"
			echo "    stdout:"
			head -n 15 "$T/out" | sed 's/^/      /'
			echo "    stderr:"
			head -n 15 "$T/err" | sed 's/^/      /'
		else
			pass=$((pass + 1))
			echo "PASS $suite/$t"
		fi
	done
	echo "$suite: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}
