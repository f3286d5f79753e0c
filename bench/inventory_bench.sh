#!/usr/bin/env bash
# Reservations per second (issue 4), all in one run so the figures compare:
#
#  a. PostgreSQL's own ceiling: pgbench, 8 clients (-c 8 -j 2, -M prepared),
#     running exactly `UPDATE stock SET qty = qty - 1 WHERE sku = $1 AND
#     qty > 0` on one hot row, on a throwaway cluster started here with the
#     server's DEFAULT durability (fsync=on, synchronous_commit=on; not
#     tests/pg_cluster.sh, which turns fsync off). That figure is the
#     reference of the ratios. For information, the same pgbench on a
#     tests/pg_cluster.sh cluster (fsync=off) too. Rounds before and after
#     the rest; the higher one is the reference (the conservative choice).
#  b. engine only: bench/bench_reserve on the default store (a SQLite file,
#     WAL, synchronous=NORMAL), one hot sku and 10,000 uniform skus, 1, 2,
#     8, 16 and 64 threads calling the engine at once (8 = pgbench's 8 clients;
#     concurrent calls share group commits). Each run checks zero oversell.
#  c. over HTTP through the gateway: `ecom up` (gateway + one instance of
#     each service, SQLite), wrk -t2 -c32 with bench/reserve.lua POSTing
#     /v1/reservations as admin, unique reservation ids, hot sku and 10,000
#     uniform skus; after each run the inventory instance's
#     /admin/invariants must be ok and the 201s must not exceed what the
#     database holds reserved, nor that the stock. Then a scarce-stock run
#     (2,000 units, the same load) must sell exactly 2,000 and no more. All
#     of it twice: with the default settings (http.threads=2, so at most
#     two reservations at the inventory at once) and with http.threads=16.
#
#   bench/inventory_bench.sh [BUILD_DIR] [SECONDS]
#
# BUILD_DIR holds the built `ecom` (bench/bench_reserve is made there);
# SECONDS is the length of each measured run (default 8). ECOM_BENCH_PARTS
# (default "engine http") can leave out the engine or the HTTP runs while
# working on one of them; PostgreSQL always runs. Needs wrk and
# PostgreSQL with pgbench (apt-get install wrk postgresql postgresql-contrib).
# Loopback only; every run is bounded by SECONDS. Exit 1 when any check of
# oversell or invariants fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:-build}")
SECS=${2:-8}
PARTS=${ECOM_BENCH_PARTS:-engine http}
ECOM=$BUILD/ecom
for tool in wrk curl; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pgbin" ] && [ -x "$pgbin/pgbench" ] ||
  { echo "bench: PostgreSQL (initdb, pgbench) is not installed" >&2; exit 1; }
make -s -C "$BUILD" bench/bench_reserve >/dev/null
work=$(mktemp -d /tmp/ecom-invbench-XXXXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for st in "$work"/state-*; do "$ECOM" down --state "$st" >/dev/null 2>&1 || true; done
  [ -f "$work/pgref/port" ] && as_pg "$pgbin/pg_ctl" -D "$work/pgref/data" -m fast stop >/dev/null 2>&1 || true
  "$top/tests/pg_cluster.sh" stop "$work/pgfast" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export ECOM_DATA=${ECOM_DATA:-$top/data}
failed=0
declare -a rows=()
row() { rows+=("$1|$2|$3"); } # label | figure | kind (pg, engine, http, info)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "runs of ${SECS}s each"

# ---- a. PostgreSQL -------------------------------------------------------
# The reference cluster: initdb defaults, only where it listens changed.
mkdir -p "$work/pgref" "$work/pgfast"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pgref"
as_pg "$pgbin/initdb" -D "$work/pgref/data" -A trust -U postgres -E UTF8 --locale=C >"$work/pgref/initdb.log"
for attempt in 1 2 3 4 5 6 7 8; do
  refport=$(( 20000 + (RANDOM % 20000) ))
  (exec 3<>/dev/tcp/127.0.0.1/$refport) 2>/dev/null && continue
  if as_pg "$pgbin/pg_ctl" -D "$work/pgref/data" -l "$work/pgref/server.log" -w -t 30 \
      -o "-p $refport -k $work/pgref -c listen_addresses=127.0.0.1" start >/dev/null; then
    echo "$refport" >"$work/pgref/port"; break
  fi
done
[ -f "$work/pgref/port" ] || { echo "bench: cannot start PostgreSQL" >&2; exit 1; }
fastport=$("$top/tests/pg_cluster.sh" start "$work/pgfast")
psql_at() { "$pgbin/psql" -qAt -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
echo 'UPDATE stock SET qty = qty - 1 WHERE sku = :sku AND qty > 0;' >"$work/hot.sql"
for p in $refport $fastport; do
  psql_at "$p" "CREATE TABLE stock (sku text PRIMARY KEY, qty bigint NOT NULL);
                INSERT INTO stock VALUES ('hot', 1000000000);" >/dev/null
done
echo "reference PostgreSQL: $("$pgbin/postgres" --version); fsync=$(psql_at $refport 'SHOW fsync'),"\
  "synchronous_commit=$(psql_at $refport 'SHOW synchronous_commit'), wal_sync_method=$(psql_at $refport 'SHOW wal_sync_method')"
pgbench_tps() { # port
  "$pgbin/pgbench" -n -h 127.0.0.1 -p "$1" -U postgres -c 8 -j 2 -T "$SECS" -M prepared \
    -D sku=hot -f "$work/hot.sql" postgres 2>/dev/null |
    awk '/^tps = / {printf "%.0f", $3}'
}
pg1=$(pgbench_tps "$refport")
echo "pgbench hot row, 8 clients, default durability, round 1: $pg1 tps"
pgfast=$(pgbench_tps "$fastport")
echo "pgbench hot row, 8 clients, fsync=off:                   $pgfast tps"
"$top/tests/pg_cluster.sh" stop "$work/pgfast" >/dev/null 2>&1 || true

# ---- b. engine only -------------------------------------------------------
engine() { # skus threads
  local out
  out=$("$BUILD/bench/bench_reserve" --skus "$1" --threads "$2" --seconds "$SECS") || failed=1
  echo "  $out"
  local rate verdict
  rate=$(echo "$out" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')
  verdict=$(echo "$out" | sed -n 's/.* verdict=\([A-Za-z]*\).*/\1/p')
  [ "$verdict" = ok ] || { echo "  ^ CHECK FAILED" >&2; failed=1; }
  local what="1 hot sku"; [ "$1" -gt 1 ] && what="$1 uniform skus"
  row "engine, $what, $2 thread$([ "$2" -gt 1 ] && echo s)" "${rate:-0}" engine
}
if [[ " $PARTS " == *" engine "* ]]; then
  echo "-- engine only (bench/bench_reserve, SQLite file)"
  for skus in 1 10000; do
    for t in 1 2 8 16 64; do engine $skus $t; done
  done
fi

# ---- c. over HTTP through the gateway ---------------------------------------
export ECOM_GATEWAY_RATE_READ_PER_S=10000000 ECOM_GATEWAY_RATE_READ_BURST=10000000
export ECOM_GATEWAY_RATE_WRITE_PER_S=10000000 ECOM_GATEWAY_RATE_WRITE_BURST=10000000
export ECOM_ADMIN_TOKEN=bench-admin-token-0123456789abcdef
auth=(-H "Authorization: Bearer $ECOM_ADMIN_TOKEN")
held_total() {
  curl -sf "$inv/metrics" | awk '/^inventory_reservations_total\{result="held"\}/ {s += $2} END {printf "%d", s}'
}
group_commits() { # -> "commits ops" so far
  curl -sf "$inv/metrics" | awk '/^inventory_group_commits_total/ {c = $2}
    /^inventory_group_commit_ops_total/ {o = $2} END {printf "%d %d", c, o}'
}
stock_of() { # sku -> "on_hand reserved"
  curl -sf "${auth[@]}" "$gw/v1/inventory/$1" |
    sed -n 's/.*"on_hand":\([0-9]*\),"reserved":\([0-9]*\).*/\1 \2/p'
}
set_stock() { # sku units
  curl -sf -X PUT "${auth[@]}" -H 'Content-Type: application/json' -d "{\"on_hand\":$2}" \
    "$gw/v1/inventory/$1" >/dev/null
}
http() { # label skus hot-sku
  local label=$1 skus=$2 hot=$3 run=r$RANDOM$RANDOM
  local before; before=$(held_total)
  local gc0; gc0=$(group_commits)
  local out
  out=$(ECOM_BENCH_SKUS=$skus ECOM_BENCH_HOT=$hot ECOM_BENCH_RUN=$run \
    wrk -t2 -c32 -d"${SECS}s" --latency -s "$top/bench/reserve.lua" "$gw")
  local created short other rps p50 p99
  created=$(echo "$out" | sed -n 's/^statuses: 201=\([0-9]*\).*/\1/p')
  short=$(echo "$out" | sed -n 's/^statuses: .*409=\([0-9]*\).*/\1/p')
  other=$(echo "$out" | sed -n 's/^statuses: .*other=\([0-9]*\).*/\1/p')
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  local secs; secs=$(echo "$out" | sed -n 's/.* requests in \([0-9.]*\)\(m\?s\).*/\1 \2/p' |
    awk '{ print ($2 == "ms") ? $1 / 1000 : $1 }')
  local rate; rate=$(awk -v c="$created" -v s="$secs" 'BEGIN {printf "%.0f", c / s}')
  local after; after=$(held_total)
  local batch; batch=$(echo "$gc0 $(group_commits)" |
    awk '{ printf "%.1f", ($3 > $1) ? ($4 - $2) / ($3 - $1) : 0 }')
  local invariants; invariants=$(curl -sf "${auth[@]}" "$inv/admin/invariants" || echo '{"ok":"unreachable"}')
  local ok=1
  case "$invariants" in *'"ok":true'*) ;; *) ok=0 ;; esac
  # Every 201 wrk saw is a reservation the engine held (it may have held a
  # few more whose answers were in flight when wrk stopped).
  [ "$created" -le $((after - before)) ] || ok=0
  local extra=""
  if [ "$skus" -eq 1 ]; then
    read -r on_hand reserved <<<"$(stock_of "$hot")"
    [ "$reserved" -le "$on_hand" ] && [ "$created" -le "$reserved" ] || ok=0
    extra=" $hot: on_hand=$on_hand reserved=$reserved;"
  fi
  printf "  %-22s %6s req/s, %6s reservations/s (201=%s 409=%s other=%s) p50 %s p99 %s; mean batch %s; held by engine %d;%s invariants %s\n" \
    "$label" "$rps" "$rate" "$created" "$short" "$other" "$p50" "$p99" "$batch" $((after - before)) "$extra" \
    "$([ $ok = 1 ] && echo ok || echo FAILED)"
  [ "$ok" = 1 ] && [ "$other" -eq 0 ] ||
    { echo "  ^ CHECK FAILED: $invariants $(echo "$out" | grep '^first other')" >&2; failed=1; }
  LAST_CREATED=$created LAST_RATE=$rate
}
# One platform (gateway + one instance of each service) with THREADS HTTP
# workers per service (http.threads; "default" leaves the setting alone).
platform() { # threads
  local state=$work/state-$1
  if [ "$1" = default ]; then
    gw=$("$ECOM" up --port 0 --state "$state")
  else
    gw=$(ECOM_HTTP_THREADS=$1 "$ECOM" up --port 0 --state "$state")
  fi
  inv=$("$ECOM" status --state "$state" | awk '$1 == "inventory" {print $4; exit}')
  PLATFORM_STATE=$state
}
if [[ " $PARTS " == *" http "* ]]; then
  # A catalog of the bench's skus: the inventory stocks each with 1,000,000
  # units at its first start.
  {
    echo "["
    for i in $(seq 0 9999); do
      printf '{"sku":"BENCH-%05d","name":"Bench item %d","description":"A bench item.","category":"toys","price_cents":100,"currency":"USD"},\n' "$i" "$i"
    done
    echo '{"sku":"BENCH-HOT","name":"Bench hot item","description":"A bench item.","category":"toys","price_cents":100,"currency":"USD"}'
    echo "]"
  } >"$work/products.json"
  export ECOM_CATALOG_SEED_FILE=$work/products.json ECOM_INVENTORY_INITIAL_ON_HAND=1000000
  for threads in default 16; do
    platform $threads
    what="http.threads=$threads"
    [ $threads = default ] && what="default settings (http.threads=2)"
    echo "-- over HTTP through the gateway (wrk -t2 -c32, ecom up on SQLite, $what)"
    set_stock BENCH-HOT 100000000
    http "hot sku" 1 BENCH-HOT
    row "HTTP via gateway, 1 hot sku, $what" "$LAST_RATE" http
    http "10000 uniform skus" 10000 BENCH-HOT
    row "HTTP via gateway, 10000 uniform skus, $what" "$LAST_RATE" http
    # Scarce stock: far more demand than units; exactly the units sell.
    set_stock BENCH-SCARCE 2000
    http "scarce (2000 units)" 1 BENCH-SCARCE
    read -r on_hand reserved <<<"$(stock_of BENCH-SCARCE)"
    if [ "$reserved" -ne 2000 ] || [ "$LAST_CREATED" -gt 2000 ]; then
      echo "  ^ SCARCE STOCK CHECK FAILED: reserved $reserved of 2000, 201s $LAST_CREATED" >&2; failed=1
    fi
    "$ECOM" down --state "$PLATFORM_STATE" >/dev/null 2>&1 || true
  done
fi

# ---- a, second round --------------------------------------------------------
pg2=$(pgbench_tps "$refport")
echo "pgbench hot row, 8 clients, default durability, round 2: $pg2 tps"
ref=$(( pg1 > pg2 ? pg1 : pg2 ))

# ---- summary ------------------------------------------------------------------
echo
echo "| measurement | per second | ratio to PostgreSQL | target | met |"
echo "|---|---|---|---|---|"
printf "| pgbench hot row, 8 clients, default durability (reference: best of %s, %s) | %s | 1.0x | | |\n" "$pg1" "$pg2" "$ref"
printf "| pgbench hot row, 8 clients, fsync=off (information) | %s | %.1fx | | |\n" "$pgfast" "$(awk -v a="$pgfast" -v b="$ref" 'BEGIN {print a / b}')"
for r in "${rows[@]}"; do
  IFS='|' read -r label fig kind <<<"$r"
  ratio=$(awk -v a="$fig" -v b="$ref" 'BEGIN {printf "%.1f", a / b}')
  target=10; [ "$kind" = http ] && target=3
  met=$(awk -v r="$ratio" -v t="$target" 'BEGIN {print (r >= t) ? "yes" : "no"}')
  printf "| %s | %s | %sx | %sx | %s |\n" "$label" "$fig" "$ratio" "$target" "$met"
done
echo
[ $failed = 0 ] && echo "oversell and invariant checks: all passed" || echo "oversell and invariant checks: FAILED"
exit $failed
