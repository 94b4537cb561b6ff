#!/usr/bin/env bash
# The local stack, without Docker: PostgreSQL (5433), Redis (6379) and the
# Temporal dev server (7233, UI 8233), with their data under .data/ so
# workflows and orders survive restarts; then flightctl serve (8080, and its
# admin listener on 127.0.0.1:8081 for the Temporal UI's codec) + worker.
#   scripts/stack.sh up | infra | down | status | logs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${FLIGHTCTL_DATA:-$root/.data}
bin=${FLIGHTCTL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/flightctl}
pg_port=${DATABASE_PORT:-5433}
redis_port=6379
temporal_port=7233
ui_port=8233
mkdir -p "$data/logs"

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin() {
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  dirname "$(command -v initdb)"
}
wait_port() { # name port seconds
  for _ in $(seq $(( $3 * 5 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$1 did not open port $2 (logs: $data/logs)" >&2; exit 1
}
running() { [ -f "$data/$1.pid" ] && kill -0 "$(cat "$data/$1.pid")" 2>/dev/null; }
start_bg() { # name command...
  local name=$1; shift
  if running "$name"; then echo "$name: already running"; return; fi
  nohup "$@" >>"$data/logs/$name.log" 2>&1 &
  echo $! >"$data/$name.pid"
  echo "$name: started (pid $!, log .data/logs/$name.log)"
}

postgres_up() {
  local dir="$data/postgres" b; b=$(pg_bin)
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"; [ "$(id -u)" -eq 0 ] && chown postgres: "$dir" "$data/logs"
    chmod 700 "$dir"
    local pw; pw=$(mktemp); echo flightapp >"$pw"; chmod 644 "$pw"
    as_pg "$b/initdb" -D "$dir" -U flightapp --pwfile="$pw" -A scram-sha-256 -E UTF8 >/dev/null
    rm -f "$pw"
  fi
  [ "$(id -u)" -eq 0 ] && chown postgres: "$data/logs"
  if as_pg "$b/pg_ctl" -D "$dir" status >/dev/null 2>&1; then echo "postgres: already running"; else
    as_pg "$b/pg_ctl" -D "$dir" -l "$data/logs/postgres.log" -w \
      -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
    echo "postgres: started on $pg_port"
  fi
  PGPASSWORD=flightapp psql -h 127.0.0.1 -p "$pg_port" -U flightapp -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='flight_booking'" | grep -q 1 ||
    PGPASSWORD=flightapp psql -h 127.0.0.1 -p "$pg_port" -U flightapp -d postgres -qc "CREATE DATABASE flight_booking"
}

infra_up() {
  postgres_up
  start_bg redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$data" --appendonly yes --save ""
  # The UI shows decrypted payloads through the codec endpoint on serve's
  # admin listener (never the public port): the browser calls it.
  start_bg temporal temporal server start-dev --ip 127.0.0.1 --port "$temporal_port" \
    --ui-port "$ui_port" --db-filename "$data/temporal.db" --log-level warn \
    --ui-codec-endpoint "http://localhost:${ADMIN_PORT:-8081}/codec"
  wait_port redis "$redis_port" 15; wait_port temporal "$temporal_port" 60; wait_port temporal-ui "$ui_port" 60
}

# serve and worker refuse to start without their secrets. Each one not given
# (e.g. in .env) is generated once and kept with the data: the histories in
# .data/temporal.db need the payload key as long as they exist, and stored
# Idempotency-Key answers need the same secret for as long as they live.
secret() { # variable file
  [ -n "${!1:-}" ] && return
  local file="$data/$2"
  [ -s "$file" ] || (umask 077 && head -c 32 /dev/urandom | base64 >"$file")
  export "$1=$(cat "$file")"
}
secrets() {
  if [ -z "${PAYLOAD_ENCRYPTION_KEY:-}" ]; then
    secret PAYLOAD_ENCRYPTION_KEY payload.key
    export PAYLOAD_ENCRYPTION_KEY_ID=${PAYLOAD_ENCRYPTION_KEY_ID:-local}
  fi
  secret IDEMPOTENCY_SECRET idempotency.secret
}

up() {
  infra_up
  secrets
  "$bin" migrate up
  "$bin" seed
  start_bg worker "$bin" worker
  # Worker Versioning: this build becomes the deployment's current version
  # once its worker polls; bookings still running on an earlier build
  # finish there (README, "Rolling out a new build").
  "$bin" deployment set-current --wait 60s
  start_bg api "$bin" serve
  wait_port api "${SERVER_PORT:-8080}" 30
  cat <<MSG

flightctl is up:
  web UI       http://localhost:${SERVER_PORT:-8080}/
  flights      http://localhost:${SERVER_PORT:-8080}/api/flights
  Temporal UI  http://localhost:$ui_port/
  codec        http://localhost:${ADMIN_PORT:-8081}/codec (serve's admin listener, loopback: the Temporal UI decrypts through it)
  metrics      http://localhost:${SERVER_PORT:-8080}/metrics (API), http://localhost:${WORKER_METRICS_PORT:-9091}/metrics (worker)
stop with: ./dev down
MSG
}

stop_bg() {
  if running "$1"; then kill "$(cat "$data/$1.pid")" && echo "$1: stopped"; fi
  rm -f "$data/$1.pid"
}

down() {
  stop_bg api; stop_bg worker; stop_bg temporal; stop_bg redis
  if [ -f "$data/postgres/PG_VERSION" ] && as_pg "$(pg_bin)/pg_ctl" -D "$data/postgres" status >/dev/null 2>&1; then
    as_pg "$(pg_bin)/pg_ctl" -D "$data/postgres" -m fast stop >/dev/null && echo "postgres: stopped"
  fi
}

status() {
  for p in api worker temporal redis; do
    if running "$p"; then echo "$p: running (pid $(cat "$data/$p.pid"))"; else echo "$p: stopped"; fi
  done
  as_pg "$(pg_bin)/pg_ctl" -D "$data/postgres" status >/dev/null 2>&1 && echo "postgres: running" || echo "postgres: stopped"
}

case "${1:-}" in
  up) up ;;
  infra) infra_up ;;
  down) down ;;
  status) status ;;
  logs) tail -n 50 -f "$data"/logs/*.log ;;
  *) echo "usage: $0 up|infra|down|status|logs" >&2; exit 2 ;;
esac
