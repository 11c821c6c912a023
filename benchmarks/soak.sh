#!/usr/bin/env bash
# Soak: the demo on a real Redis for SOAK_DURATION (10 minutes) at half the
# rate it can sustain, decides and event batches mixed as in
# configs/loadtest/traffic.yaml. The maximum is measured first, in the same
# run (a closed loop of 64 workers for 15 s). Every minute is one step of
# the open-loop load generator, so each minute has its own percentiles, and
# /metrics is read at the end of every minute for the heap, the resident
# memory and the goroutines. The report (bin/soak/report.md) lists the
# minutes and says whether memory, goroutines and p99 stayed flat: the
# last minute against the first, after a minute of warm-up.
#
#   make soak            (bash benchmarks/soak.sh)
#
# Environment: SOAK_DURATION (minutes, default 10), SOAK_RATE (skip the
# maximum and use this rate), SOAK_OUT (default bin/soak).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib.sh

BIN=bin/touchpoint
MINUTES=${SOAK_DURATION:-10}
OUT=${SOAK_OUT:-bin/soak}
PORT=18280
REDIS_PORT=18281
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.json "$OUT/samples.tsv"
command -v redis-server >/dev/null 2>&1 || { echo "soak: needs redis-server (apt-get install redis-server)" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "soak: needs curl" >&2; exit 1; }
${GO:-go} build -o "$BIN" ./cmd/touchpoint

SERVER="" REDIS="" SAMPLER=""
cleanup() {
  for p in $SAMPLER $SERVER $REDIS; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

require_free_port "$PORT" "$REDIS_PORT"

rm -rf "$OUT/redis"
mkdir -p "$OUT/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT/redis" >"$OUT/redis.log" 2>&1 &
REDIS=$!
wait_port "$REDIS_PORT" "$OUT/redis.log"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
"$BIN" features import --redis "$REDIS_URL" configs/demo/customers.jsonl >"$OUT/import.txt"

# The demo configuration on Redis, with the decision log in the output
# folder and admission control out of reach (the closed loop that finds the
# maximum overloads the server by definition).
sed -e 's/^\(  max_inflight_decides:\) [0-9]*/\1 1048576/' \
  -e "s#^\(    path:\) bin/decisions.jsonl#\1 $OUT/decisions.jsonl#" configs/touchpoint.yaml >"$OUT/touchpoint.yaml"
printf 'redis:\n  url: %s\n' "$REDIS_URL" >>"$OUT/touchpoint.yaml"
"$BIN" serve --config "$OUT/touchpoint.yaml" --addr "127.0.0.1:$PORT" --log-level warn --deliver-stdout >"$OUT/server.log" 2>&1 &
SERVER=$!
wait_port "$PORT" "$OUT/server.log"
URL="http://127.0.0.1:$PORT"

# Redis commands per request, for the capacity plan: the commands Redis
# counted during a run, less what the idle server sends in the same time
# (trigger polling, bandit reads), over the requests the run sent. Decides
# first, from a cold cache, so the feature cache's misses are counted too;
# then event batches of one event.
redis_commands() { redis-cli -p "$REDIS_PORT" info stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }'; }
metric() { curl -fsS "$URL/metrics" | awk -v m="$1" '$1 == m { s += $2 } END { printf "%.0f\n", s }'; }
c0=$(redis_commands); sleep 10; idle=$(( $(redis_commands) - c0 ))
probe() { # name share
  local c h m n
  c=$(redis_commands); h=$(metric touchpoint_feature_cache_hits_total); m=$(metric touchpoint_feature_cache_misses_total)
  "$BIN" loadtest --customers 3000 --event-share "$2" --rate 1000 --duration 10s --out "$OUT/probe-$1.json" "$URL" >"$OUT/probe-$1.txt"
  c=$(( $(redis_commands) - c - idle )); h=$(( $(metric touchpoint_feature_cache_hits_total) - h )); m=$(( $(metric touchpoint_feature_cache_misses_total) - m ))
  n=$(awk '$1 == "1" { gsub(",", "", $4); print $4 }' "$OUT/probe-$1.txt")
  awk -v name="$1" -v c="$c" -v n="$n" -v h="$h" -v m="$m" 'BEGIN {
    printf "%s: %d requests, %d Redis commands beyond idle (%.2f a request); feature lookups %d hits, %d misses (hit ratio %.1f%%)\n",
      name, n, c, c / n, h, m, (h + m) ? 100 * h / (h + m) : 0 }'
}
{
  echo "idle: $idle Redis commands in 10 s with no traffic"
  probe decides 0
  probe decides-warm 0
  probe events 1
} | tee "$OUT/capacity.txt"

if [ -n "${SOAK_RATE:-}" ]; then
  RATE=$SOAK_RATE
  echo "soak: SOAK_RATE=$RATE"
else
  "$BIN" loadtest --customers 3000 --concurrency 64 --warmup 5s --duration 15s --out "$OUT/max.json" "$URL" >"$OUT/max.txt"
  MAX=$(awk '$1 == "1" && $2 == "64" { gsub(",", "", $3); print $3 }' "$OUT/max.txt")
  RATE=$((MAX / 2))
  echo "soak: the server held $MAX req/s in a closed loop; soaking at $RATE req/s for $MINUTES minutes"
fi

# One sample of /metrics at the start and after every minute.
sample() {
  local redis_mem
  redis_mem=$(redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
  curl -fsS "$URL/metrics" | awk -v t="$(date -u +%H:%M:%S)" -v redis="${redis_mem:-0}" '
    $1 == "go_memstats_heap_inuse_bytes" { heap = $2 }
    $1 == "process_resident_memory_bytes" { rss = $2 }
    $1 == "go_goroutines" { g = $2 }
    END { printf "%s\t%.0f\t%.0f\t%d\t%.0f\n", t, heap, rss, g, redis }'
}
sample >"$OUT/samples.tsv"
(
  for _ in $(seq "$MINUTES"); do
    sleep 60
    sample >>"$OUT/samples.tsv" || true
  done
) &
SAMPLER=$!

rates=$RATE
for _ in $(seq 2 "$MINUTES"); do rates="$rates,$RATE"; done
"$BIN" loadtest --customers 3000 --rate "$rates" --duration 60s --out "$OUT/soak.json" "$URL" >"$OUT/soak.txt"
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=""

# The report: per minute the rate achieved, errors, p50/p99/p99.9 from the
# generator and the memory and goroutines read at the minute's end.
awk -v minutes="$MINUTES" -v rate="$RATE" '
  FNR == 1 { file++ }
  file == 1 && $1 ~ /^[0-9]+$/ && NF >= 10 { step = $1; ach[step] = $3; err[step] = $5; p50[step] = $6; p99[step] = $8; p999[step] = $9 }
  file == 2 { heap[FNR - 1] = $2; rss[FNR - 1] = $3; gor[FNR - 1] = $4; redis[FNR - 1] = $5; n = FNR - 1 }
  function mb(b) { return sprintf("%.1f MB", b / 1e6) }
  END {
    printf "| minute | achieved/s | errors | p50 | p99 | p99.9 | heap in use | resident | goroutines | Redis memory |\n"
    printf "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    printf "| start | | | | | | %s | %s | %d | %s |\n", mb(heap[0]), mb(rss[0]), gor[0], mb(redis[0])
    for (m = 1; m <= minutes; m++)
      printf "| %d | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", m, ach[m], err[m], p50[m], p99[m], p999[m], mb(heap[m]), mb(rss[m]), gor[m], mb(redis[m])
    # Flat: the last minute within a quarter of the first (after it warmed
    # the cache and the pools) in heap and resident memory, goroutines
    # within a tenth.
    hr = heap[n] / heap[1]; rr = rss[n] / rss[1]; gr = gor[n] / gor[1]
    flat = hr <= 1.25 && rr <= 1.25 && gr <= 1.1 && gr >= 0.9
    printf "\nrate %s req/s; last minute against the first: heap %.2fx, resident %.2fx, goroutines %d -> %d; %s\n", rate, hr, rr, gor[1], gor[n], flat ? "flat" : "NOT FLAT"
    exit flat ? 0 : 3
  }' "$OUT/soak.txt" "$OUT/samples.tsv" >"$OUT/report.md" || status=$?
{
  echo
  echo "soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(${GO:-go} version | cut -d' ' -f3), Redis $(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)"
  grep -E '^(errors|unknown|late)' "$OUT/soak.txt" || true
} >>"$OUT/report.md"
cat "$OUT/report.md"
exit "${status:-0}"
