#!/usr/bin/env bash
# Confirmed checkouts per second end to end, every process on this machine:
# `ecom up` (gateway, catalog, inventory, user, cart, payment, order and the
# Stripe simulator; SQLite), users signed up and logged in, stock set for
# every catalog sku, then `wrk -t2 -cC` POSTing /v1/orders (bench/checkout.lua:
# a new Idempotency-Key each time, one unit of a random sku, tok_visa).
#
# Two modes, each on a platform of its own, alternating:
#   queued  the default: the POST reserves and authorises, answers 201
#           PENDING, and the order processor captures and commits;
#   inline  order.confirm_inline=1: the POST runs the whole saga and answers
#           once the order is CONFIRMED.
# The confirmed rate is the order service's completed sagas
# (sagas_total{outcome="completed"} on its /metrics) over the
# run, counted when wrk stops; after a drain of up to 20 s every 201 must be
# a completed saga (and at most one more per connection: requests in flight
# when wrk stops complete uncounted by wrk), the stock sold must equal the
# completed sagas, and the Stripe simulator must hold exactly one capture
# per completed saga.
#
#   bench/checkout_bench.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:-build}")
SECS=${2:-10}
CONNS=${3:-32}
ECOM=$BUILD/ecom
for tool in wrk curl; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
work=$(mktemp -d /tmp/ecom-checkout-XXXXXX)
cleanup() {
  for st in "$work"/state-*; do "$ECOM" down --state "$st" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export ECOM_DATA=${ECOM_DATA:-$top/data}
export ECOM_ADMIN_TOKEN=bench-admin-token-0123456789abcdef
export ECOM_GATEWAY_RATE_READ_PER_S=10000000 ECOM_GATEWAY_RATE_READ_BURST=10000000
export ECOM_GATEWAY_RATE_WRITE_PER_S=10000000 ECOM_GATEWAY_RATE_WRITE_BURST=10000000
export ECOM_GATEWAY_RATE_AUTH_PER_S=10000000 ECOM_GATEWAY_RATE_AUTH_BURST=10000000
export ECOM_USER_LOGIN_PER_MIN=1000
failed=0

jpost() { curl -sf -X "$1" -H 'Content-Type: application/json' -H "Authorization: Bearer $ECOM_ADMIN_TOKEN" -d "$3" "$2"; }
metric() { # url name-with-labels
  curl -sf "$1/metrics" | awk -v m="$2" '$1 == m {print $2; found=1} END {if (!found) print 0}'
}

start() { # mode -> sets url, order_url, sim_url, tokens, skus
  local mode=$1 st="$work/state-$1"
  if [ "$mode" = inline ]; then
    url=$(ECOM_ORDER_CONFIRM_INLINE=1 "$ECOM" up --port 0 --state "$st")
  else
    url=$("$ECOM" up --port 0 --state "$st")
  fi
  order_url=$(cat "$st"/run/order-1.addr)
  sim_url=$(cat "$st"/stripe-sim.url)
  skus=$(curl -sf "$url/v1/products?limit=100" | grep -o '"sku":"[^"]*"' | cut -d'"' -f4 | paste -sd, -)
  for s in ${skus//,/ }; do jpost PUT "$url/v1/inventory/$s" '{"on_hand":10000000}' >/dev/null; done
  tokens=""
  for i in $(seq 1 16); do
    jpost POST "$url/v1/auth/signup" "{\"email\":\"bench$i@example.com\",\"password\":\"bench password $i\",\"name\":\"B$i\"}" >/dev/null
    t=$(jpost POST "$url/v1/auth/login" "{\"email\":\"bench$i@example.com\",\"password\":\"bench password $i\"}" |
        sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    tokens="$tokens${tokens:+,}$t"
  done
  eval "url_$mode=\$url order_$mode=\$order_url sim_$mode=\$sim_url tokens_$mode=\$tokens skus_$mode=\$skus"
}

# CPU seconds (user + system, clock ticks) used so far by every process of
# the platform in state dir $1, as "service=ticks ..." (from instances.json).
cpu_by_service() {
  local hz; hz=$(getconf CLK_TCK)
  awk -F'"' '/"service":/ {svc = $4} /"pid":/ {gsub(/[^0-9]/, "", $3); print svc, $3}' \
    "$1/instances.json" |
    while read -r svc pid; do
      [ -r "/proc/$pid/stat" ] || continue
      # fields 14 and 15 (utime, stime) after the ")" that ends the name
      t=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
      echo "$svc $t"
    done | awk -v hz="$hz" '{a[$1] += $2} END {for (k in a) printf "%s=%.3f ", k, a[k] / hz}'
}

stock_sold() { # url skus
  local total=0 s oh
  for s in ${2//,/ }; do
    oh=$(curl -sf "$1/v1/inventory/$s" | grep -o '"on_hand":[0-9]*' | cut -d: -f2)
    total=$(( total + 10000000 - oh ))
  done
  echo $total
}

run() { # mode round
  local mode=$1 round=$2
  local url order_url sim_url tokens skus
  eval "url=\$url_$mode order_url=\$order_$mode sim_url=\$sim_$mode tokens=\$tokens_$mode skus=\$skus_$mode"
  local before; before=$(metric "$order_url" 'sagas_total{outcome="completed"}')
  local sold_before; sold_before=$(stock_sold "$url" "$skus")
  local writes_before; writes_before=$(metric "$order_url" 'order_store_writes_total')
  local cpu_before; cpu_before=$(cpu_by_service "$work/state-$mode")
  local out
  out=$(ECOM_BENCH_TOKENS=$tokens ECOM_BENCH_SKUS=$skus ECOM_BENCH_RUN="$mode$round" \
        wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$top/bench/checkout.lua" "$url")
  local at_end; at_end=$(metric "$order_url" 'sagas_total{outcome="completed"}')
  local cpu_after; cpu_after=$(cpu_by_service "$work/state-$mode")
  local created; created=$(echo "$out" | sed -n 's/^statuses: 201=\([0-9]*\).*/\1/p')
  local other; other=$(echo "$out" | sed -n 's/.* other=\([0-9]*\)$/\1/p')
  local done_n=$at_end prev=-1
  for _ in $(seq 1 40); do   # until it has them all and stops moving, <= 20 s
    done_n=$(metric "$order_url" 'sagas_total{outcome="completed"}')
    [ $(( ${done_n%.*} - ${before%.*} )) -ge "$created" ] && [ "$done_n" = "$prev" ] && break
    prev=$done_n
    sleep 0.5
  done
  local confirmed=$(( ${done_n%.*} - ${before%.*} ))
  local cpu_drained; cpu_drained=$(cpu_by_service "$work/state-$mode")
  local writes=$(( $(metric "$order_url" 'order_store_writes_total' | cut -d. -f1) - ${writes_before%.*} ))
  local in_run=$(( ${at_end%.*} - ${before%.*} ))
  local sold=$(( $(stock_sold "$url" "$skus") - sold_before ))
  printf "%-7s round %d: confirmed %6.0f/s  POST p50 %-8s p99 %-8s  201=%s other=%s confirmed=%s sold=%s\n" \
    "$mode" "$round" "$(echo "$in_run $SECS" | awk '{print $1/$2}')" \
    "$(echo "$out" | awk '$1=="50%" {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')" \
    "$created" "$other" "$confirmed" "$sold"
  echo "$out" | grep -q '^first other' && echo "$out" | grep '^first other'
  # CPU per order placed during the run, by service (ms), and in all.
  echo "$cpu_before" "$cpu_after" | tr ' ' '\n' | grep = | awk -F= -v n="$in_run" '
    {if (seen[$1]++) d[$1] += $2; else d[$1] -= $2}
    END {tot = 0; line = ""; for (k in d) {tot += d[k]; line = line sprintf(" %s %.2f", k, d[k] * 1000 / (n ? n : 1))}
         printf "        CPU ms per confirmed order: all %.2f;%s\n", tot * 1000 / (n ? n : 1), line}'
  # The same from the start of the run to the end of the drain, over every
  # saga completed by then: work queued during the run and finished after
  # it counts with its order (the figure above charges a processor that
  # falls behind with CPU for orders it has not finished).
  echo "$cpu_before" "$cpu_drained" | tr ' ' '\n' | grep = | awk -F= -v n="$confirmed" '
    {if (seen[$1]++) d[$1] += $2; else d[$1] -= $2}
    END {tot = 0; for (k in d) tot += d[k]
         printf "        CPU ms per confirmed order, the drain included: all %.2f; order %.2f\n", tot * 1000 / (n ? n : 1), d["order"] * 1000 / (n ? n : 1)}'
  # The order service's write transactions per confirmed order (a binary
  # without the counter shows 0).
  echo "        order service write transactions per confirmed order: $(echo "$writes $confirmed" | awk '{printf "%.2f", $1 / ($2 ? $2 : 1)}')"
  eval "total_$mode=\$(( \${total_$mode:-0} + confirmed ))"
  # Requests in flight when wrk stops (at most one per connection) are not
  # counted by wrk but do complete.
  if [ "$confirmed" -lt "$created" ] || [ "$confirmed" -gt $(( created + other + CONNS )) ] ||
     [ "$sold" -ne "$confirmed" ]; then
    echo "bench: $mode round $round: 201s, completed sagas and units sold disagree" >&2
    failed=1
  fi
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "wrk -t2 -c$CONNS -d${SECS}s per round; SQLite; one instance of each service"
start queued
start inline
for round in 1 2; do
  run queued $round
  run inline $round
done
for mode in queued inline; do
  eval "s=\$sim_$mode"
  eval "t=\$total_$mode"
  captures=$(curl -sf -H "Authorization: Bearer $ECOM_ADMIN_TOKEN" "$s/admin/stripe/stats" |
             grep -o '"captures":[0-9]*' | cut -d: -f2)
  echo "stripe-sim ($mode): $captures captures for $t confirmed orders"
  [ "$captures" = "$t" ] || { echo "bench: $mode: captures and confirmed orders disagree" >&2; failed=1; }
done
exit $failed
