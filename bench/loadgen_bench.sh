#!/usr/bin/env bash
# The load generator's own ceiling: requests per second `ecom sim run` can
# issue against a trivial endpoint (GET /health on one catalog instance),
# against wrk on the same endpoint, in the same run, pair by pair (as the
# design's notes on this machine advise). The generator runs a closed loop
# (`rate = max`: each of WORKERS workers sends its next request as soon as
# its last one is answered), which is what wrk does with as many
# connections; on one thread and on two (`--threads 2`, as wrk -t2). Each
# round runs wrk -t2, wrk -t1, the generator on two threads and on one, back
# to back. Loopback only; every run is bounded.
#
#   bench/loadgen_bench.sh [ECOM_BIN] [SECONDS] [WORKERS] [ROUNDS]
#
# Needs wrk (apt-get install wrk).
set -euo pipefail
ECOM=${1:-build/ecom}
SECS=${2:-5}
CONNS=${3:-64}
ROUNDS=${4:-3}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
STATE=$(mktemp -d /tmp/ecom-bench-XXXXXX)
SCN="$STATE/ceiling.scn"
trap '"$ECOM" down --state "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
"$ECOM" up --port 0 --state "$STATE" >/dev/null
CAT=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([i["addr"] for i in d["instances"] if i["id"]=="catalog-1"][0])' "$STATE/instances.json")
cat > "$SCN" <<SCENARIO
[scenario]
name = ceiling
description = The generator's ceiling: GET /health in a closed loop.
[load]
rate = max
duration = ${SECS}s
workers = $CONNS
users = 0
[journey probe]
steps = health
SCENARIO
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "target $CAT/health, ${SECS}s per run, $CONNS connections"
field() { echo "$1" | awk -v c="$2" '$1=="health" {print $c}'; }
for round in $(seq 1 "$ROUNDS"); do
  w2=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$CAT/health")
  w1=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$CAT/health")
  s2=$("$ECOM" sim run "$SCN" --url "$CAT" --quiet --threads 2)
  s1=$("$ECOM" sim run "$SCN" --url "$CAT" --quiet --threads 1)
  r2=$(echo "$w2" | awk '/Requests\/sec/ {print $2}')
  r1=$(echo "$w1" | awk '/Requests\/sec/ {print $2}')
  printf 'round %d  wrk -t2 %6.0f/s p50 %-8s p99 %-8s | wrk -t1 %6.0f/s | sim 2 threads %6.0f/s p50 %-7s p99 %-7s errors %s | sim 1 thread %6.0f/s | sim2/wrk2 %.2f  sim1/wrk1 %.2f\n' \
    "$round" "$r2" "$(echo "$w2" | awk '$1=="50%" {print $2}')" "$(echo "$w2" | awk '$1=="99%" {print $2}')" \
    "$r1" "$(field "$s2" 3)" "$(field "$s2" 4)" "$(field "$s2" 7)" "$(field "$s2" 10)" "$(field "$s1" 3)" \
    "$(echo "$(field "$s2" 3) / $r2" | bc -l)" "$(echo "$(field "$s1" 3) / $r1" | bc -l)"
done
