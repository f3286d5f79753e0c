#!/usr/bin/env bash
# Two gateway benchmarks in one run (compare figures within a run only):
#
#  1. writes: POST /v1/products (one-row write transactions) through the
#     gateway, the platform on SQLite and then on PostgreSQL (a throwaway
#     cluster from tests/pg_cluster.sh), same wrk settings;
#  2. identity overhead: GET /v1/products/BOOK-001 anonymous versus with a
#     user's access token (JWT check + identity signature at the gateway),
#     alternating, on the SQLite platform;
#  3. the gateway's token cache: the same authenticated read against the
#     SQLite platform (cache on, the default) and against a second one
#     started with gateway.token_cache_slots=0 (every token verified with
#     libjwt on every request), alternating.
#
#   bench/gateway_bench.sh [ECOM_BIN] [SECONDS]
#
# Needs wrk and PostgreSQL (apt-get install wrk postgresql). Loopback only;
# every run is bounded by SECONDS.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ECOM=$(realpath "${1:-build/ecom}")
SECS=${2:-8}
command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 1; }
work=$(mktemp -d /tmp/ecom-bench-XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg"
cleanup() {
  "$ECOM" down --state "$work/sqlite" >/dev/null 2>&1 || true
  "$ECOM" down --state "$work/postgres" >/dev/null 2>&1 || true
  "$ECOM" down --state "$work/nocache" >/dev/null 2>&1 || true
  "$top/tests/pg_cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# Limits high enough that the benchmark measures the platform, not the limiter.
export ECOM_GATEWAY_RATE_READ_PER_S=10000000 ECOM_GATEWAY_RATE_READ_BURST=10000000
export ECOM_GATEWAY_RATE_WRITE_PER_S=10000000 ECOM_GATEWAY_RATE_WRITE_BURST=10000000
export ECOM_ADMIN_TOKEN=bench-admin-token-0123456789abcdef
export ECOM_DATA=${ECOM_DATA:-$top/data}

port=$("$top/tests/pg_cluster.sh" start "$work/pg")
pgurl="postgresql://postgres@127.0.0.1:$port/postgres"
sq=$("$ECOM" up --port 0 --state "$work/sqlite")
pg=$("$ECOM" up --port 0 --state "$work/postgres" --store "$pgurl")

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "wrk -t2 -c32 -d${SECS}s; platform: gateway + 1 instance of each service"
run() { # label url [wrk args...]
  local label=$1 url=$2; shift 2
  local out; out=$(wrk -t2 -c32 -d"${SECS}s" --latency "$@" "$url")
  printf "%-28s %10s req/s  p50 %-8s p99 %-8s non-2xx %s\n" "$label" \
    "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(echo "$out" | awk '$1=="50%" {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')" \
    "$(echo "$out" | awk '/Non-2xx/ {print $5}' | grep . || echo 0)"
}
echo "-- writes (POST /v1/products) through the gateway"
for round in 1 2; do
  run "round $round sqlite" "$sq" -s "$top/bench/create_products.lua"
  run "round $round postgresql" "$pg" -s "$top/bench/create_products.lua"
done

echo "-- identity overhead: GET /v1/products/BOOK-001 (sqlite platform)"
curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password 1","name":"Bench"}' "$sq/v1/auth/signup" >/dev/null
ECOM_BENCH_TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password 1"}' "$sq/v1/auth/login" |
  sed 's/.*"access_token":"\([^"]*\)".*/\1/')
export ECOM_BENCH_TOKEN
for round in 1 2; do
  run "round $round anonymous" "$sq/v1/products/BOOK-001"
  run "round $round authenticated" "$sq" -s "$top/bench/auth_get.lua"
done

echo "-- token cache: authenticated GET /v1/products/BOOK-001, cache on vs off"
# Same admin token, so the JWT key differs per platform: log in on each.
nc=$(ECOM_GATEWAY_TOKEN_CACHE_SLOTS=0 "$ECOM" up --port 0 --state "$work/nocache")
curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password 1","name":"Bench"}' "$nc/v1/auth/signup" >/dev/null
nc_token=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password 1"}' "$nc/v1/auth/login" |
  sed 's/.*"access_token":"\([^"]*\)".*/\1/')
cache_token=$ECOM_BENCH_TOKEN
for round in 1 2; do
  ECOM_BENCH_TOKEN=$cache_token run "round $round cache on" "$sq" -s "$top/bench/auth_get.lua"
  ECOM_BENCH_TOKEN=$nc_token run "round $round cache off" "$nc" -s "$top/bench/auth_get.lua"
done
