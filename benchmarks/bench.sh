#!/bin/sh
# Runs Touchpoint's benchmarks, keeps the raw `go test -bench` output and
# prints one summary table. Run it from the repository root (make bench,
# make bench-opa).
#
#   sh benchmarks/bench.sh [all|main|opa]   default: all
#
# all   the engine, features, server and benchmarks packages, then the OPA
#       comparison module (benchmarks/opa, with its equivalence tests)
# main  the four packages only
# opa   the OPA comparison only
#
# Environment: GO (default go), BENCH_FLAGS (more go test flags, e.g.
# -benchtime=2s or -count=5), BENCH_OUT (raw output, default bin/bench.txt).
# The raw file starts with key: value lines describing the machine, so it
# stays valid input for benchstat. The exit status is non-zero if any run
# failed; the table still shows what ran.
set -u

GO=${GO:-go}
FLAGS=${BENCH_FLAGS:-}
OUT=${BENCH_OUT:-bin/bench.txt}
MODE=${1:-all}
MAIN_PKGS="./engine/ ./features/ ./server/ ./benchmarks/"
MAIN_CMD="$GO test -run '^\$' -bench . -benchmem${FLAGS:+ $FLAGS} $MAIN_PKGS"
# The OPA comparison is short: three runs by default, so its medians hold
# up on a noisy machine (a -count in BENCH_FLAGS overrides it).
OPA_CMD="(cd benchmarks/opa && $GO test -bench . -benchmem -count=3${FLAGS:+ $FLAGS} .)"

case $MODE in
all) CMDS="$MAIN_CMD; $OPA_CMD" ;;
main) CMDS="$MAIN_CMD" ;;
opa) CMDS="$OPA_CMD" ;;
*)
	echo "usage: sh benchmarks/bench.sh [all|main|opa]" >&2
	exit 2
	;;
esac

mkdir -p "$(dirname "$OUT")"
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc: $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
	echo "cpu-model: ${cpu:-unknown}"
	echo "go-version: $($GO env GOVERSION) $($GO env GOOS)/$($GO env GOARCH)"
	echo "command: $CMDS"
	echo
} >"$OUT"
cat "$OUT"

status=0
# run CMD: stream CMD's output and append it to $OUT, remembering failure.
run() {
	echo "\$ $1" | tee -a "$OUT"
	rc_file="$OUT.rc"
	{
		sh -c "$1" 2>&1
		echo $? >"$rc_file"
	} | tee -a "$OUT"
	[ "$(cat "$rc_file")" = 0 ] || status=1
	rm -f "$rc_file"
}
case $MODE in
all) run "$MAIN_CMD" && run "$OPA_CMD" ;;
main) run "$MAIN_CMD" ;;
opa) run "$OPA_CMD" ;;
esac

echo
awk -v out="$OUT" '
# Thousands separators for large values, a few significant digits for small.
function num(x,    s, r) {
	if (x + 0 >= 100) {
		s = sprintf("%.0f", x); r = ""
		while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
		return s r
	}
	if (x == int(x)) return sprintf("%d", x)
	if (x + 0 >= 10) return sprintf("%.1f", x)
	return sprintf("%.3g", x)
}
# median of metric u over the runs of benchmark k ("" if it has none).
function median(k, u,    a, m, i, j, t) {
	m = 0
	for (i = 1; i <= runs[k]; i++) if ((k, u, i) in val) a[++m] = val[k, u, i] + 0
	if (m == 0) return ""
	for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
/^date: /       { date = substr($0, 7) }
/^nproc: /      { nproc = substr($0, 8) }
/^cpu-model: /  { cpu = substr($0, 12) }
/^go-version: / { gov = substr($0, 13) }
/^command: /    { cmd = substr($0, 10) }
/^cpu: / && cpu == "unknown" { cpu = substr($0, 6) }
/^pkg: / { pkg = $2; sub(/^github\.com\/touchpoint-dev\/touchpoint\//, "", pkg) }
/^(--- FAIL|FAIL|panic:)/ { fails = fails "\n    " $0 }
/^Benchmark[^ \t]*[ \t]+[0-9]+[ \t]/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	k = pkg " " name
	if (!(k in runs)) { order[++n] = k; kpkg[k] = pkg; kname[k] = name }
	r = ++runs[k]
	for (i = 3; i < NF; i += 2) {
		u = $(i + 1)
		val[k, u, r] = $i
		if (!((k, u) in seen)) {
			seen[k, u] = 1
			if (u != "ns/op" && u != "B/op" && u != "allocs/op") extra[k] = extra[k] " " u
		}
	}
}
END {
	print "## Benchmark summary"
	print ""
	print "- date: " date
	print "- machine: " cpu ", nproc " nproc
	print "- go: " gov
	print "- command: `" cmd "`"
	print "- raw output: " out
	print "- runs: how many times each benchmark ran (-count); the figures are medians"
	print ""
	print "| package | benchmark | runs | ns/op | B/op | allocs/op | other metrics |"
	print "| --- | --- | ---: | ---: | ---: | ---: | --- |"
	for (i = 1; i <= n; i++) {
		k = order[i]; other = ""
		m = split(extra[k], us, " ")
		for (j = 1; j <= m; j++) other = other (j > 1 ? ", " : "") num(median(k, us[j])) " " us[j]
		ns = median(k, "ns/op"); b = median(k, "B/op"); al = median(k, "allocs/op")
		printf "| %s | %s | %d | %s | %s | %s | %s |\n", kpkg[k], kname[k], runs[k], \
			ns == "" ? "" : num(ns), b == "" ? "" : num(b), al == "" ? "" : num(al), other
	}
	if (fails != "") print "\nFAILURES:" fails
}' "$OUT"
exit $status
