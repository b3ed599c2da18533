# Sourced by tests/host/run.

# ---- faultline bench without KVM -------------------------------------------------

SAVED=docs/results/pvm-2026-11-23.json

t_bench_help_matches_docs() {
	cmd "$FL" bench --help
	expect_rc 0
	expect_out "Usage: faultline bench [OPTIONS]"
	modes=$(sed -n 's/^  \([a-z][a-z0-9-]*\) *[* ] .*/\1/p' "$T/out")
	[ "$(echo "$modes" | wc -w)" -eq 24 ] || problem "--help lists $(echo "$modes" | wc -w) modes, expected 24"
	for m in $modes; do
		grep -q "^| \`$m\` |" docs/benchmarks.md || problem "docs/benchmarks.md lacks a table row for mode $m"
	done
	for o in $(sed -n 's/^  --\([a-z]*\).*/\1/p' "$T/out"); do
		grep -qF -- "--$o" docs/benchmarks.md || problem "docs/benchmarks.md does not mention --$o"
	done
}

t_bench_no_kvm() {
	FAULTLINE_KVM_DEVICE=/nonexistent/kvm cmd "$FL" bench --quick
	expect_rc 69
	expect_err "faultline: no usable KVM: No such file or directory (device: /nonexistent/kvm); without one, run inside the nested harness: tests/nested/run -- build/faultline bench --quick"
}

t_bench_bad_options() {
	cmd "$FL" bench --modes floor,warp
	expect_rc 64
	expect_err "faultline: invalid option value: unknown mode 'warp'; see 'faultline bench --help' (--modes: floor,warp)"
	cmd "$FL" bench --repeat 0
	expect_rc 64
	expect_err "faultline: invalid option value: expected a number 1..21 (--repeat: 0)"
	cmd "$FL" bench --vcpus ,
	expect_rc 64
	expect_err "faultline: invalid option value: empty list (--vcpus: ,)"
	long=$(seq -s, 1 60)
	cmd "$FL" bench --vcpus "$long"
	expect_rc 64
	expect_err "faultline: invalid option value: list too long (--vcpus: $long)"
	cmd "$FL" bench --quick --kernel /nonexistent/guest.elf
	expect_rc 66
	expect_err "faultline: cannot read the test guest: No such file or directory (file: /nonexistent/guest.elf); build it with make or give --kernel"
	# bench has an injection site of its own (realloc.bench_output): a malformed rule is refused
	FAULTLINE_INJECT=realloc.bench_output:ENOTANERRNO cmd "$FL" bench --quick
	expect_rc 64
	expect_err "faultline: invalid test-only variable: expected SITE:ERRNO[:SKIP[:TIMES]],... (FAULTLINE_INJECT: realloc.bench_output:ENOTANERRNO)"
}

t_bench_input_errors() {
	cmd "$FL" bench --input /nonexistent/results.json
	expect_rc 66
	expect_err_first "faultline: cannot read the results file: No such file or directory (file: /nonexistent/results.json*"
	cmd "$FL" bench --input /etc/passwd
	expect_rc 65
	expect_err_first "faultline: invalid results file: *(file: /etc/passwd, line 1)"
	echo '{"faultline_bench": 1, "results": [{"mode": "floor"}]}' >"$T/bad.json"
	cmd "$FL" bench --input "$T/bad.json"
	expect_rc 65
	expect_err "faultline: invalid results file: result 0: \"kind\" is not a string (file: $T/bad.json)"
}

# scripts/perf-host (the runs on the performance host) refuses bad use
# before it measures anything.
t_perf_host_bad_usage() {
	cmd scripts/perf-host
	expect_rc 2
	expect_err "scripts/perf-host: the runs on the performance host that issue 7's goals"
	cmd scripts/perf-host "$T/ph" everything
	expect_rc 2
	expect_err "perf-host: unknown step: everything (probe, goals, sizes, scaling, zero, huge or serverless)"
	cmd scripts/perf-host "$T/ph" probe 5m
	expect_rc 2
	expect_err "perf-host: SECONDS is not a number: 5m"
	[ ! -e "$T/ph" ] || problem "a refused call made its directory"
}

# Results measured on the performance host render again here: table, JSON,
# CSV, plots (gnuplot from scripts/deps).
t_bench_renders_saved_results() {
	cmd "$FL" bench --input "$SAVED" --csv "$T/r.csv" --plot "$T/plots"
	expect_rc 0
	expect_out_count "^faultline  *seq-write  *1  *25947  *1.40x  *1.24x " 1
	expect_out_count "failed: exit 143" 1
	# a document from before "thp" was recorded says so
	expect_out "faultline bench on Intel(R) Xeon(R) Processor (kernel 6.18.44-fc-v657-gpu, 16 CPUs, kvm_pvm, THP not recorded), TSC 2100000 kHz"
	[ "$(wc -l <"$T/r.csv")" = 11 ] || problem "the CSV has $(wc -l <"$T/r.csv") lines, expected 11"
	for f in bench.gp latency-cdf.dat scaling.dat fault-around.dat latency-cdf.svg scaling.svg fault-around.svg; do
		[ -s "$T/plots/$f" ] || problem "the plot directory lacks $f"
	done
	cmd "$FL" bench --input "$SAVED" --json
	expect_rc 0
	python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["host"]["kvm"] == "kvm_pvm"; assert len(d["results"]) == 10' <"$T/out" ||
		problem "--json output is not the saved document"
}

# Outputs that cannot be written fail the run (70), naming the file; without
# gnuplot the data and the script are written and the run succeeds, saying
# so; a gnuplot that fails is a failure.
t_bench_output_errors() {
	cmd "$FL" bench --input "$SAVED" --csv /dev/full
	expect_rc 70
	expect_err "faultline: cannot write the CSV file: No space left on device (file: /dev/full)"
	: >"$T/file"
	cmd "$FL" bench --input "$SAVED" --plot "$T/file"
	expect_rc 70
	expect_err "faultline: cannot write a plot file: Not a directory (file: $T/file/bench.gp)"
	expect_err "faultline: cannot write the plot files (directory: $T/file)"
	# a PATH with what cmd needs and no gnuplot
	rm -rf "$T/nognuplot" "$T/svg-none" "$T/svg-failed"
	mkdir "$T/nognuplot"
	for c in timeout date; do ln -s "$(command -v $c)" "$T/nognuplot/$c"; done
	PATH=$T/nognuplot cmd "$FL" bench --input "$SAVED" --plot "$T/svg-none"
	expect_rc 0
	expect_err "faultline: gnuplot is not installed: data and bench.gp written, no SVGs (directory: $T/svg-none)"
	for f in bench.gp latency-cdf.dat scaling.dat fault-around.dat; do
		[ -s "$T/svg-none/$f" ] || problem "without gnuplot, the plot directory lacks $f"
	done
	! ls "$T/svg-none"/*.svg >/dev/null 2>&1 || problem "SVGs without gnuplot: $(ls "$T/svg-none")"
	printf '#!/bin/sh\nexit 3\n' >"$T/nognuplot/gnuplot"
	chmod +x "$T/nognuplot/gnuplot"
	PATH=$T/nognuplot cmd "$FL" bench --input "$SAVED" --plot "$T/svg-failed"
	expect_rc 70
	expect_err "faultline: gnuplot failed on the plot script (file: $T/svg-failed/bench.gp)"
}

t_fault_ahead_bad_value() {
	cmd "$FL" run --kernel "$G" --fault-ahead 4097
	expect_rc 64
	expect_err "faultline: invalid option value: expected a number from 0 to 4096 (--fault-ahead: 4097)"
	cmd "$FL" run --kernel "$G" --fault-ahead lots
	expect_rc 64
	expect_err "faultline: invalid option value: expected a number from 0 to 4096 (--fault-ahead: lots)"
}

t_fault_handler_baseline_limits() {
	cmd "$FL" run --kernel "$G" --fault-handler naive --mem-limit 64M
	expect_rc 64
	expect_err "faultline: invalid option value: the naive handler is a baseline without a budget, backing file, dedup or diff snapshots (--fault-handler: naive)"
	cmd "$FL" run --kernel "$G" --fault-handler kernel --dedup on
	expect_rc 64
	expect_err "faultline: invalid option value: the kernel handler is a baseline without a budget, backing file, dedup or diff snapshots (--fault-handler: kernel)"
	cmd "$FL" run --kernel "$G" --fault-handler fast
	expect_rc 64
	expect_err "faultline: invalid option value: expected faultline, naive or kernel (--fault-handler: fast)"
}

# The engine-only benchmark runs every mode (no timing asserted).
t_bench_uffd_smoke() {
	cmd build/bench/uffd-touch --pages 64 --repeat 1
	expect_rc 0
	expect_out_count "^\(floor\|kernel\|naive\|fa-[0-9]*\) " 13
	cmd build/bench/uffd-touch --pages 8
	expect_rc 64
	grep -q "^Usage: uffd-touch" "$T/err" || problem "no usage on stderr"
}

# --huge adds the huge mode (RAM on hugetlbfs), run in the nested harness's
# L1, where huge pages can be reserved: without them it cannot run, and says
# why; with them it runs.
t_bench_uffd_huge() {
	cmd tests/kvm/with-kvm sh -c 'echo 0 >/proc/sys/vm/nr_hugepages
		build/bench/uffd-touch --pages 512 --repeat 1 --huge; echo "rc=$?"
		echo 2 >/proc/sys/vm/nr_hugepages
		build/bench/uffd-touch --pages 512 --repeat 1 --huge'
	expect_rc 0
	expect_out "rc=1"
	expect_err "faultline: cannot map guest RAM on huge pages: Cannot allocate memory (1 huge page of 2 MiB needed; reserve them with sysctl vm.nr_hugepages)"
	expect_err "uffd-touch: mode huge could not run"
	expect_out_count "^\(floor\|kernel\|naive\|fa-[0-9]*\|ahead-[0-9]*\|huge\) " 17
	expect_out_count "^huge " 1
}

# faultline's dedup against KSM (bench/dedup_ksm.c), in the nested harness's
# L1, whose kernel has KSM and lets root set it: both engines save every page
# they can with contents in a row (runs of 16), scattered, and as two copies
# (runs of 512); no time asserted. (--zeros is left out here: the L1's KSM
# released no zero page in 60 s; the unit tests cover faultline's side.)
t_bench_dedup_ksm() {
	cmd tests/kvm/with-kvm sh -c 'for a in "--kinds 16" "--kinds 16 --scatter" "--kinds 512"; do
		build/bench/dedup-ksm --pages 1024 --pages-to-scan 1024 --sleep-ms 5 \
			--timeout 60 --json $a || echo "rc=$?"; done'
	expect_rc 0
	expect_out_count '^{"pages":1024,"kinds":16,"zeros":false,"scatter":false,.*"target":1008,"faultline":{"saved":1008,.*"converged":true},"ksm":{"saved":1008,.*"converged":true}}$' 1
	expect_out_count '^{"pages":1024,"kinds":16,"zeros":false,"scatter":true,.*"target":1008,"faultline":{"saved":1008,.*"converged":true},"ksm":{"saved":1008,.*"converged":true}}$' 1
	expect_out_count '^{"pages":1024,"kinds":512,"zeros":false,"scatter":false,.*"target":512,"faultline":{"saved":512,.*"converged":true},"ksm":{"saved":512,.*"converged":true}}$' 1
	cmd build/bench/dedup-ksm --pages 0
	expect_rc 1
	expect_err "dedup-ksm: bad parameters (see --help)"
}

# The seccomp filter's cost (bench/seccomp_cost.c): both calls measured both
# ways; no time asserted.
t_bench_seccomp_smoke() {
	cmd build/bench/seccomp-cost --calls 1000 --repeat 1
	expect_rc 0
	expect_out_count "^ioctl \(KVM_RUN\|UFFDIO_ZEROPAGE\) *[0-9.]* *[0-9.]* *[0-9.]*x$" 2
	cmd build/bench/seccomp-cost --repeat 65
	expect_rc 64
	expect_err "usage: seccomp-cost [--calls N] [--repeat R (1..64)]"
}
