#!/usr/bin/env bash
# The PostgreSQL half of the suite: starts a throwaway cluster, runs the
# driver's unit tests against it, the whole platform integration test, the
# inventory hot-sku test and the identity, cart, payment, PayPal, checkout,
# outage, observability, search and audit tests with --store
# postgresql://..., and the restart-under-load test; removes the cluster
# afterwards, also when a test fails. Run by make check.
set -uo pipefail
top=${ECOM_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${ECOM_TOP_BUILDDIR:-.}
dir=$(mktemp -d "${TMPDIR:-/tmp}/ecom-pg-XXXXXX")
chmod 755 "$dir"
cleanup() { "$top/tests/pg_cluster.sh" stop "$dir"; rm -rf "$dir"; }
trap cleanup EXIT
port=$("$top/tests/pg_cluster.sh" start "$dir")
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -ne 0 ] && exit 1
base="postgresql://postgres@127.0.0.1:$port"
for db in ecom_unit ecom_platform ecom_restart ecom_inventory ecom_identity ecom_cart ecom_payment ecom_checkout ecom_outage ecom_direct ecom_bus ecom_bus_unit ecom_loadgen ecom_search ecom_obs ecom_paypal ecom_audit ecom_notify; do
  "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql" -q -h 127.0.0.1 -p "$port" -U postgres \
    -d postgres -c "CREATE DATABASE $db" >/dev/null || exit 1
done
echo "postgres.sh: cluster on 127.0.0.1:$port"
status=0
run() { echo "== $*"; "$@" || status=1; }
ECOM_TEST_PG_URL="$base/ecom_unit" run "$build/tests/unit/test_store_pg"
ECOM_TEST_STORE="$base/ecom_platform" run "$build/tests/integration/test_platform"
ECOM_TEST_STORE="$base/ecom_inventory" run "$build/tests/integration/test_inventory_http"
ECOM_TEST_STORE="$base/ecom_identity" run "$build/tests/integration/test_identity"
ECOM_TEST_STORE="$base/ecom_cart" run "$build/tests/integration/test_cart"
ECOM_TEST_STORE="$base/ecom_payment" run "$build/tests/integration/test_payment"
ECOM_TEST_STORE="$base/ecom_checkout" run "$build/tests/integration/test_checkout"
ECOM_TEST_STORE="$base/ecom_outage" run "$build/tests/integration/test_outage"
ECOM_TEST_STORE="$base/ecom_direct" run "$build/tests/integration/test_direct"
ECOM_TEST_STORE="$base/ecom_obs" run "$build/tests/integration/test_observability"
ECOM_TEST_STORE="$base/ecom_paypal" run "$build/tests/integration/test_paypal"
ECOM_TEST_STORE="$base/ecom_bus_unit" run "$build/tests/unit/test_bus"
ECOM_TEST_STORE="$base/ecom_bus" run "$build/tests/integration/test_bus_platform"
ECOM_TEST_STORE="$base/ecom_loadgen" run "$build/tests/integration/test_loadgen"
ECOM_TEST_STORE="$base/ecom_search" run "$build/tests/integration/test_search"
ECOM_TEST_STORE="$base/ecom_audit" run "$build/tests/integration/test_audit"
ECOM_TEST_STORE="$base/ecom_notify" run "$build/tests/integration/test_notify_platform"
ECOM_TEST_STORE="$base/ecom_restart" ECOM_PG_CTL="$top/tests/pg_cluster.sh ctl $dir" \
  run "$build/tests/integration/test_pg_restart"
exit $status
