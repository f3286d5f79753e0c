#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, in a temporary directory,
# listening on 127.0.0.1 on a free port.
#
#   tests/pg_cluster.sh start DIR    creates DIR/data, starts it, prints the port
#   tests/pg_cluster.sh stop DIR     stops it (the caller removes DIR)
#   tests/pg_cluster.sh ctl DIR ARGS pg_ctl ARGS on that cluster (stop, start, restart)
#
# initdb and the server run as the postgres user when this runs as root
# (PostgreSQL refuses to run as root). Exit 77 (automake's SKIP) when
# PostgreSQL is not installed.
set -euo pipefail
cmd=$1; dir=$2; shift 2
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg_cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 77
fi
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pgctl() {
  local port; port=$(cat "$dir/port")
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" "$@"
}
case "$cmd" in
start)
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + (RANDOM % 20000) ))
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then continue; fi
    echo "$port" >"$dir/port"
    if pgctl start >/dev/null 2>&1; then
      echo "$port"
      exit 0
    fi
  done
  echo "pg_cluster: could not start PostgreSQL (see $dir/server.log)" >&2
  exit 1
  ;;
stop)
  [ -f "$dir/port" ] && pgctl stop -m fast >/dev/null 2>&1 || true
  ;;
ctl)
  pgctl "$@" >/dev/null
  ;;
*)
  echo "usage: pg_cluster.sh start|stop|ctl DIR [ARGS]" >&2; exit 2 ;;
esac
