#!/usr/bin/env bash
# The local stack, without Docker: PostgreSQL (5433), Redis (6379) and the
# Temporal dev server (7233, UI 8233), with their data under .data/ so
# workflows and orders survive restarts; then flightctl serve (8080, and its
# admin listener on 127.0.0.1:8081 for the Temporal UI's codec) + worker.
# SERVE=N (default 1) runs N serve instances behind HAProxy on 8080
# (deploy/haproxy/haproxy.cfg; instance i on 809i, its admin listener on
# 8081 for the first, 818i for the others; stats on 127.0.0.1:8404);
# WORKERS=M (default 1) runs M workers (metrics on 9091, 9092, ...).
#   scripts/stack.sh up | infra | down | status | logs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${FLIGHTCTL_DATA:-$root/.data}
bin=${FLIGHTCTL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/flightctl}
pg_port=${DATABASE_PORT:-5433}
redis_port=6379
temporal_port=7233
ui_port=8233
serves=${SERVE:-1}
workers=${WORKERS:-1}
case "$serves$workers" in *[!0-9]*) echo "SERVE and WORKERS are numbers" >&2; exit 2 ;; esac
[ "$serves" -ge 1 ] && [ "$serves" -le 8 ] || { echo "SERVE is 1 to 8 (haproxy.cfg names 8)" >&2; exit 2; }
[ "$workers" -ge 1 ] || { echo "WORKERS is at least 1" >&2; exit 2; }
lb_port=${SERVER_PORT:-8080}
lb_stats=${LB_STATS_PORT:-8404}
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
  # admin listener (never the public port): the browser calls it, with the
  # operator's console session once the UI's codec setting "include
  # cross-origin credentials" is on (README, "Payload encryption").
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
  secret ADMISSION_SECRET admission.secret
  # For the temporal CLI's --codec-auth "Bearer $(cat .data/codec.token)".
  secret CODEC_TOKEN codec.token
}

# The processes of the shape asked for: one `api` without a balancer, or
# `lb` in front of api-1..api-N; `worker`, worker-2..worker-M.
wanted() {
  if [ "$serves" -eq 1 ]; then echo api; else echo lb; seq -f 'api-%g' 1 "$serves"; fi
  echo worker; [ "$workers" -ge 2 ] && seq -f 'worker-%g' 2 "$workers"; true
}
# Stop what a previous `up` of another shape left running.
stop_surplus() {
  local want pidfile name; want=$(wanted)
  for pidfile in "$data"/lb.pid "$data"/api*.pid "$data"/worker*.pid; do
    [ -f "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    grep -qx "$name" <<<"$want" || stop_bg "$name"
  done
}

up() {
  infra_up
  secrets
  stop_surplus
  "$bin" migrate up
  "$bin" seed
  start_bg worker "$bin" worker
  for i in $(seq 2 "$workers"); do
    WORKER_METRICS_PORT=$((9090 + i)) start_bg "worker-$i" "$bin" worker
  done
  # Worker Versioning: this build becomes the deployment's current version
  # once its worker polls; bookings still running on an earlier build
  # finish there (README, "Rolling out a new build").
  "$bin" deployment set-current --wait 60s
  if [ "$serves" -eq 1 ]; then
    start_bg api "$bin" serve
    wait_port api "$lb_port" 30
  else
    local servers=()
    for i in $(seq 1 "$serves"); do
      local admin=$((8180 + i)); [ "$i" -eq 1 ] && admin=${ADMIN_PORT:-8081}
      TRUSTED_PROXIES=${TRUSTED_PROXIES:-127.0.0.1} SERVER_PORT=$((8090 + i)) ADMIN_PORT=$admin start_bg "api-$i" "$bin" serve
      servers+=("FLIGHTCTL_SERVE_$i=127.0.0.1:$((8090 + i))")
    done
    for i in $(seq 1 "$serves"); do wait_port "api-$i" $((8090 + i)) 30; done
    (
      export "${servers[@]}" LB_BIND="0.0.0.0:$lb_port" LB_STATS_BIND="127.0.0.1:$lb_stats"
      start_bg lb "$(command -v haproxy || echo /usr/sbin/haproxy)" -db -f "$root/deploy/haproxy/haproxy.cfg"
    )
    wait_port lb "$lb_port" 15
  fi
  local shape="1 serve, $workers worker(s)"
  [ "$serves" -gt 1 ] && shape="$serves serve behind HAProxy (stats http://localhost:$lb_stats/stats; instances on $(seq -s ', ' -f '%g' 8091 $((8090 + serves)))), $workers worker(s)"
  cat <<MSG

flightctl is up: $shape
  web UI       http://localhost:$lb_port/
  flights      http://localhost:$lb_port/api/flights
  Temporal UI  http://localhost:$ui_port/
  codec        http://localhost:${ADMIN_PORT:-8081}/codec (serve's admin listener, loopback: the Temporal UI decrypts through it
               for an operator signed in at http://localhost:$lb_port/ops, with the UI's codec setting
               "include cross-origin credentials" on; or Authorization: Bearer \$(cat .data/codec.token))
  metrics      http://localhost:${ADMIN_PORT:-8081}/metrics (API, admin listener), http://localhost:${WORKER_METRICS_PORT:-9091}/metrics (worker)
stop with: ./dev down
MSG
}

stop_bg() { # waits (up to 15 s) so its ports are free for what starts next
  if running "$1"; then
    local pid; pid=$(cat "$data/$1.pid")
    kill "$pid"
    for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    echo "$1: stopped"
  fi
  rm -f "$data/$1.pid"
}

down() {
  local pidfile
  # The balancer first (no new requests), then the instances and workers.
  for pidfile in "$data"/lb.pid "$data"/api*.pid "$data"/worker*.pid; do
    [ -f "$pidfile" ] && stop_bg "$(basename "$pidfile" .pid)"
  done
  stop_bg temporal; stop_bg redis
  if [ -f "$data/postgres/PG_VERSION" ] && as_pg "$(pg_bin)/pg_ctl" -D "$data/postgres" status >/dev/null 2>&1; then
    as_pg "$(pg_bin)/pg_ctl" -D "$data/postgres" -m fast stop >/dev/null && echo "postgres: stopped"
  fi
}

status() {
  local p
  for p in $( (printf '%s\n' temporal redis; ls "$data" | sed -n 's/\.pid$//p') | sort -u); do
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
