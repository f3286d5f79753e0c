#!/usr/bin/env bash
# What the resilience layer costs: per call at the engine level
# (bench/bench_resil, no network) and in the gateway's read throughput with
# the layer on (the defaults: a breaker and a bulkhead per upstream, the
# deadline header, the stale cache) versus off (resil.enabled=0 and
# gateway.stale_entries=0), in the same run; and, for the record, the
# gateway's thread per connection against the worker pool it had before
# (gateway.thread_per_connection=0, 8 workers; resilience on). Three
# platforms run side by side (two idle while one is measured) and wrk
# alternates between them, round by round, as the design's notes on this
# machine advise.
#
#   bench/resil_bench.sh [BUILD_DIR] [SECONDS]
#
# Needs wrk (apt-get install wrk). Loopback only; every run is bounded.
set -euo pipefail
BUILD=${1:-build}
SECS=${2:-10}
ECOM=$BUILD/ecom
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
make -C "$BUILD" bench/bench_resil >/dev/null
top=$(cd "$(dirname "$0")/.." && pwd)
# The rate limiter would answer most of wrk's reads 429: out of the way.
export ECOM_GATEWAY_RATE_READ_PER_S=10000000 ECOM_GATEWAY_RATE_READ_BURST=10000000
export ECOM_DATA=${ECOM_DATA:-$top/data}
ON=$(mktemp -d /tmp/ecom-bench-on-XXXXXX)
OFF=$(mktemp -d /tmp/ecom-bench-off-XXXXXX)
POOL=$(mktemp -d /tmp/ecom-bench-pool-XXXXXX)
cleanup() {
  for d in "$ON" "$OFF" "$POOL"; do
    "$ECOM" down --state "$d" >/dev/null 2>&1 || true
    rm -rf "$d"
  done
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
"$BUILD/bench/bench_resil" 1000000 5
echo
GW_ON=$("$ECOM" up --port 0 --state "$ON")
GW_OFF=$(ECOM_RESIL_ENABLED=0 ECOM_GATEWAY_STALE_ENTRIES=0 "$ECOM" up --port 0 --state "$OFF")
GW_POOL=$(ECOM_GATEWAY_THREAD_PER_CONNECTION=0 "$ECOM" up --port 0 --state "$POOL")
# A warm-up read on each, so all start with open connections and caches.
for gw in "$GW_ON" "$GW_OFF" "$GW_POOL"; do curl -sf "$gw/v1/products/BOOK-001" >/dev/null; done
echo "GET /v1/products/BOOK-001 through the gateway, wrk -t2 -c32 -d${SECS}s, gateway + 1 instance each (SQLite)"
for round in 1 2; do
  for which in on off pool; do
    case $which in on) gw=$GW_ON ;; off) gw=$GW_OFF ;; pool) gw=$GW_POOL ;; esac
    out=$(wrk -t2 -c32 -d"${SECS}s" --latency "$gw/v1/products/BOOK-001")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    label=$(case $which in on) echo "resilience on, thread/conn" ;; off) echo "resilience off, thread/conn" ;;
             pool) echo "resilience on, 8-worker pool" ;; esac)
    echo "round $round  $label  ${rps} req/s  p50 ${p50}  p99 ${p99}  non-2xx ${errs:-0}"
  done
done
