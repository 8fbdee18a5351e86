#!/usr/bin/env bash
# The local AWS stack: moto (requests serialised, see infra/moto_serial.py) on
# 127.0.0.1, the same table and queues as samplesam.yaml, and the real ingest
# function under `cargo lambda watch`. Everything started here is stopped by PID.
#   infra/local.sh up | run | down
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STATE=.local
PORT=${LOCAL_PORT:-4566}
INVOKE_PORT=${LOCAL_INVOKE_PORT:-9000}
ENDPOINT="http://127.0.0.1:$PORT"
export PATH="$PWD/$VENV/bin:$PATH" AWS_ENDPOINT_URL="$ENDPOINT"
mkdir -p "$STATE"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() { # port, seconds, what
  for _ in $(seq 1 $(( $2 * 10 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$3 did not open port $1 within $2s (see $STATE/*.log)" >&2
  return 1
}

feedloop() { cargo run --quiet --release --locked -p feedloop-cli -- "$@"; }

# Docker's default bridge address (docker0): `sam local`'s containers run on that bridge.
docker_bridge() {
  ip -4 -o addr show docker0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}

up() {
  if [ "${DOCKER_BRIDGE:-}" = 1 ]; then
    FEEDLOOP_MOTO_ALSO_HOST=$(docker_bridge)
    [ -n "$FEEDLOOP_MOTO_ALSO_HOST" ] || { echo "DOCKER_BRIDGE=1: no docker0 address (is dockerd running?)" >&2; exit 1; }
    export FEEDLOOP_MOTO_ALSO_HOST
  fi
  if alive "$STATE/moto.pid"; then
    echo "moto already running (pid $(cat "$STATE/moto.pid")) on $ENDPOINT"
  else
    "$VENV/bin/python" infra/moto_serial.py -H 127.0.0.1 -p "$PORT" > "$STATE/moto.log" 2>&1 &
    echo $! > "$STATE/moto.pid"
    wait_port "$PORT" 30 moto
    echo "moto started (pid $(cat "$STATE/moto.pid")) on $ENDPOINT${FEEDLOOP_MOTO_ALSO_HOST:+ and http://$FEEDLOOP_MOTO_ALSO_HOST:$PORT}"
  fi
  feedloop local up --endpoint-url "$ENDPOINT" --env-file "$STATE/ingest.env"
}

run() {
  up
  if ! alive "$STATE/watch.pid"; then
    echo "starting cargo lambda watch (first start compiles the function)..."
    cargo lambda watch -A 127.0.0.1 -P "$INVOKE_PORT" --env-file "$STATE/ingest.env" -p feedloop-ingest-fn \
      > "$STATE/watch.log" 2>&1 &
    echo $! > "$STATE/watch.pid"
    wait_port "$INVOKE_PORT" 120 "cargo lambda watch"
  fi
  trap stop_watch EXIT
  feedloop local run --endpoint-url "$ENDPOINT" --invoke-port "$INVOKE_PORT" --work-dir "$STATE"
}

stop_watch() {
  if alive "$STATE/watch.pid"; then
    kill -- "$(cat "$STATE/watch.pid")" 2>/dev/null || true
    pkill -P "$(cat "$STATE/watch.pid")" 2>/dev/null || true
  fi
  rm -f "$STATE/watch.pid"
}

down() {
  stop_watch
  if alive "$STATE/moto.pid"; then
    kill "$(cat "$STATE/moto.pid")" && echo "moto stopped"
  fi
  rm -f "$STATE/moto.pid"
}

case "${1:-}" in
  up) up ;;
  run) run ;;
  down) down ;;
  *) echo "usage: $0 up|run|down" >&2; exit 2 ;;
esac
