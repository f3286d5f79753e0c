#!/usr/bin/env bash
# Search at a million products (issue 13), ecom's index and PostgreSQL's
# full-text search on the same rows, in one run:
#
#  1. bench/search_bench builds a search index of N products (default
#     1,000,000): the rows `ecom seed --products N` makes (the same
#     generator, seed 1), written straight into the index in transactions
#     of 1,000 as a rebuild writes them, not through HTTP (seeding a
#     million products through the gateway and paging them back out takes
#     several times longer and measures the catalog and HTTP, not the
#     index). Build time and file size.
#  2. The same rows into PostgreSQL (a throwaway cluster, tests/pg_cluster.sh,
#     shared_buffers 1 GB): COPY, a stored tsvector column (name weighted A,
#     description B, the 'simple' configuration: no stemming, as ecom's
#     index) and a GIN index on it. Load time and size.
#  3. 10,000 queries from a seeded generator mixing rare words (product
#     numbers), common ones (nouns, adjectives, category words, words of
#     every product) and filters, one at a time through the search engine's
#     request handler, p50/p99 per class and overall; then on 2 threads.
#  4. The first 1,000 of those queries paired with PostgreSQL (each run on
#     both, one right after the other: ts_rank top 20 plus category counts,
#     which is what a search answers), and both on 2 threads; each side
#     stopped after 60 s so the run stays bounded.
#
#  5. The real path, smaller: `ecom up` (SQLite), `ecom seed --products M`
#     (default 100,000) through the gateway, then `ecom search reindex`,
#     which pages the catalog's export through the gateway into the index:
#     the rebuild rate a running platform gets.
#
#   bench/search_bench.sh [BUILD_DIR] [PRODUCTS] [PLATFORM_PRODUCTS]
#
# About 10 minutes for a million products on 2 cores. Needs PostgreSQL.
# Loopback only. The index stays in a temporary directory removed at the
# end (ECOM_BENCH_KEEP=1 keeps it), or with ECOM_BENCH_INDEX=DIR in DIR,
# built there when missing and reused (queries only) by later runs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:-build}")
N=${2:-1000000}
M=${3:-100000}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pgbin" ] && [ -x "$pgbin/psql" ] || { echo "bench: PostgreSQL is not installed" >&2; exit 1; }
make -s -C "$BUILD" bench/search_bench >/dev/null
work=$(mktemp -d /tmp/ecom-searchbench-XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg"
cleanup() {
  "$BUILD/ecom" down --state "$work/state" >/dev/null 2>&1 || true
  "$top/tests/pg_cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
  if [ "${ECOM_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
export ECOM_DATA=${ECOM_DATA:-$top/data}

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
port=$("$top/tests/pg_cluster.sh" start "$work/pg")
psql() { "$pgbin/psql" -q -X -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "ALTER SYSTEM SET shared_buffers = '1GB'" -c "ALTER SYSTEM SET work_mem = '64MB'"
"$top/tests/pg_cluster.sh" ctl "$work/pg" restart
psql -d postgres -c "CREATE DATABASE bench"

echo "== PostgreSQL: $N rows, tsvector and GIN"
"$BUILD/bench/search_bench" --products "$N" --tsv "$work/products.tsv"
chmod 644 "$work/products.tsv"
t0=$(date +%s.%N)
psql -d bench <<SQL
CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
  category TEXT NOT NULL, price_cents BIGINT NOT NULL, currency TEXT NOT NULL);
\copy products FROM '$work/products.tsv'
ALTER TABLE products ADD COLUMN tsv tsvector GENERATED ALWAYS AS
  (setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', description), 'B')) STORED;
CREATE INDEX products_tsv ON products USING gin (tsv);
VACUUM ANALYZE products;
SQL
t1=$(date +%s.%N)
psql -d bench -t -A -c "SELECT 'PostgreSQL: ' || count(*) || ' rows loaded and indexed in ' ||
  round(($t1 - $t0)::numeric, 1) || ' s; table ' ||
  pg_size_pretty(pg_table_size('products')) || ', GIN index ' ||
  pg_size_pretty(pg_relation_size('products_tsv')) || ', all ' ||
  pg_size_pretty(pg_total_relation_size('products')) FROM products"
# warm PostgreSQL's cache the way the index's is warmed
psql -d bench -c "SELECT count(*) FROM products WHERE tsv @@ plainto_tsquery('simple', 'compact')" >/dev/null

echo "== ecom search: build, then the queries (and PostgreSQL's, paired)"
index=${ECOM_BENCH_INDEX:-$work/index}
mkdir -p "$index"
"$BUILD/bench/search_bench" --products "$N" --dir "$index" --queries 10000 --threads 2 \
  --pg "postgresql://postgres@127.0.0.1:$port/bench" --pg-queries 1000 --pg-seconds 60
"$top/tests/pg_cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true

echo "== the platform: ecom seed --products $M, then ecom search reindex"
export ECOM_ADMIN_TOKEN=search-bench-admin
"$BUILD/ecom" up --state "$work/state" --port 0 >/dev/null
t0=$(date +%s.%N)
"$BUILD/ecom" seed --state "$work/state" --products "$M" 2>/dev/null
t1=$(date +%s.%N)
"$BUILD/ecom" search reindex --state "$work/state" --timeout 1800 2>/dev/null
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v m="$M" 'BEGIN {
  printf "seed through the gateway: %.1f s (%.0f/s); rebuild through the gateway: %.1f s (%.0f/s)\n",
         b - a, m / (b - a), c - b, m / (c - b) }'
"$BUILD/ecom" down --state "$work/state" >/dev/null
echo "== machine after: load $(cut -d' ' -f1-3 /proc/loadavg)"
