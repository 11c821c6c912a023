#!/usr/bin/env bash
# Overload: the decide server at three quarters of its sustainable rate and
# at twice that, with admission control on (the default
# max_inflight_decides) and off. The server is pinned to CPU 0 with
# GOMAXPROCS=1 and serves a synthetic ruleset of OVERLOAD_RULES rules
# (1,000: about 150 µs a decide here), heavy enough that the load generator,
# pinned to CPU 1, can send twice what the server can decide. The
# sustainable rate is the most the server answered in a closed loop of 64
# workers with admission off: its throughput when it is never idle.
#
#   bash benchmarks/overload.sh
#
# Environment: OVERLOAD_RULES (1000), OVERLOAD_DURATION (10s), OVERLOAD_OUT
# (bin/overload).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib.sh

BIN=bin/touchpoint
RULES=${OVERLOAD_RULES:-1000}
DURATION=${OVERLOAD_DURATION:-10s}
OUT=${OVERLOAD_OUT:-bin/overload}
PORT=18180
mkdir -p "$OUT"
${GO:-go} build -o "$BIN" ./cmd/touchpoint
rm -rf "$OUT/rules"
${GO:-go} test ./benchmarks -count=1 -run '^TestWriteSyntheticRuleset$' -args -synth-out "$(cd "$OUT" && pwd)/rules" -synth-rules "$RULES" >/dev/null

SERVER=""
cleanup() { if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi; }
trap cleanup EXIT INT TERM

start() { # name max_inflight_decides
  printf 'server:\n  addr: "127.0.0.1:%s"\n  max_inflight_decides: %s\nrules:\n  dir: %s\n  schema: configs/features.yaml\nlog:\n  level: warn\n' \
    "$PORT" "$2" "$OUT/rules" >"$OUT/$1.yaml"
  require_free_port "$PORT"
  (GOMAXPROCS=1 pin 0 "$BIN" serve --config "$OUT/$1.yaml" --deliver-stdout) >"$OUT/$1.log" 2>&1 &
  SERVER=$!
  wait_port "$PORT" "$OUT/$1.log"
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }
load() { # name args...
  local name=$1
  shift
  (pin 1 "$BIN" loadtest --cpus 1 --customers 3000 --event-share 0 --connections 256 --warmup 3s \
    --duration "$DURATION" --out "$OUT/$name.json" "$@" "http://127.0.0.1:$PORT") >"$OUT/$name.txt"
}

echo "overload: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(${GO:-go} version | cut -d' ' -f3), $RULES synthetic rules"
start off 1048576
load capacity --concurrency 64
RATE=$(awk '$1 == "1" && $2 == "64" { gsub(",", "", $3); print $3; exit }' "$OUT/capacity.txt")
if [ -z "$RATE" ]; then
  echo "overload: no throughput measured; see $OUT/capacity.txt" >&2
  exit 1
fi
RATE=${RATE%.*}
echo "sustainable rate (closed loop, admission off): $RATE req/s"
for mode in off on; do
  if [ "$mode" = on ]; then stop; start on 0; fi
  for share in 75 200; do
    rate=$((RATE * share / 100))
    load "$mode-$share" --rate "$rate"
    echo
    echo "== admission $mode, ${share}% of the sustainable rate ($rate req/s)"
    sed -n '/^ *step /,$p' "$OUT/$mode-$share.txt" | grep -v '^unknown\|^timing\|^$'
  done
done
