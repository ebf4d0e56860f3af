#!/usr/bin/env bash
# `make run`: the gRPC server on 127.0.0.1:50051 and Envoy (the legacy REST API)
# on http://localhost:4000, started together; Ctrl-C (or SIGTERM) stops both.
#
# The server's address is the one envoy.yaml forwards to, so it is fixed here.
# The master key is the server's as usual: KEYSERVICE_MASTER_KEY, or the one it
# keeps in $DATA_DIR/master_key.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${VENV:-.venv}"
DATA_DIR="${DATA_DIR:-data}"
GRPC_LISTEN=127.0.0.1:50051
REST_URL=http://localhost:4000
ADMIN_URL=http://127.0.0.1:9901

server_pid=""
envoy_pid=""

stop() {
  trap - INT TERM EXIT
  for pid in $envoy_pid $server_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $envoy_pid $server_pid; do
    wait "$pid" 2>/dev/null || true
  done
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

mkdir -p "$DATA_DIR"
port_file="$DATA_DIR/grpc.port"
rm -f "$port_file"
"$VENV/bin/keyserver" serve --data-dir "$DATA_DIR" --listen "$GRPC_LISTEN" \
  --port-file "$port_file" &
server_pid=$!

# The server writes its port once it serves.
for _ in $(seq 300); do
  [ -s "$port_file" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run_dev: the gRPC server exited during start-up" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$port_file" ]; then
  echo "run_dev: the gRPC server did not start within 30 s" >&2
  exit 1
fi

# Hot restart is for replacing a running Envoy; a dev run has none, and without
# it two checkouts can run at once (on other ports).
"$VENV/bin/envoy" --config-path envoy.yaml --disable-hot-restart \
  --concurrency 2 --log-level warning &
envoy_pid=$!

for _ in $(seq 300); do
  if curl -fsS "$ADMIN_URL/ready" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$envoy_pid" 2>/dev/null; then
    echo "run_dev: Envoy exited during start-up (is port 4000 or 9901 in use?)" >&2
    exit 1
  fi
  sleep 0.1
done
if ! curl -fsS "$ADMIN_URL/ready" >/dev/null 2>&1; then
  echo "run_dev: Envoy did not become ready within 30 s" >&2
  exit 1
fi

echo "run_dev: gRPC on $GRPC_LISTEN, REST on $REST_URL; Ctrl-C stops both"

# Whichever stops first takes the other down with it.
set +e
wait -n "$server_pid" "$envoy_pid"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "run_dev: a process exited with status $status; stopping the other" >&2
fi
exit "$status"
