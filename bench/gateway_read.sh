#!/usr/bin/env bash
# Read throughput and latency of one product, straight to a catalog instance
# and through the gateway, in the same run (pair by pair, as the design's
# notes on this machine advise). Loopback only; each wrk run is bounded.
#
#   bench/gateway_read.sh [ECOM_BIN] [SECONDS]
#
# Needs wrk (apt-get install wrk).
set -euo pipefail
ECOM=${1:-build/ecom}
SECS=${2:-10}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
# The read limiter (gateway.rate_read_per_s, per anonymous caller's
# address) would answer most of this load with 429: the bench measures the
# hop, so the limits are out of the way, as in bench/inventory_bench.sh.
export ECOM_GATEWAY_RATE_READ_PER_S=${ECOM_GATEWAY_RATE_READ_PER_S:-10000000}
export ECOM_GATEWAY_RATE_READ_BURST=${ECOM_GATEWAY_RATE_READ_BURST:-10000000}
STATE=$(mktemp -d /tmp/ecom-bench-XXXXXX)
trap '"$ECOM" down --state "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
GW=$("$ECOM" up --port 0 --state "$STATE" --replicas catalog=2)
CAT=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([i["addr"] for i in d["instances"] if i["id"]=="catalog-1"][0])' "$STATE/instances.json" 2>/dev/null \
      || grep -o '"addr": "http://[^"]*"' "$STATE/instances.json" | sed -n 2p | cut -d'"' -f4)
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "gateway $GW, catalog-1 $CAT, ${SECS}s per run, wrk -t2 -c64"
for round in 1 2; do
  for target in "$CAT" "$GW"; do
    label=$([ "$target" = "$GW" ] && echo "via gateway" || echo "direct    ")
    out=$(wrk -t2 -c64 -d"${SECS}s" --latency "$target/v1/products/BOOK-001")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    echo "round $round  $label  ${rps} req/s  p50 ${p50}  p99 ${p99}  non-2xx ${errs:-0}"
  done
done
