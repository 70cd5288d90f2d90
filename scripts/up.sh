#!/usr/bin/env bash
# UP: installs what is missing, then runs the whole stack on loopback until Ctrl-C:
#   redis-server → orchestrator (membership) → worker (rank 0 of 1) → gateway (HTTP, prints its URL).
# Ctrl-C (or SIGTERM) stops everything this script started; nothing is left running.
#
# Settings (environment): EXPERTMESH_MODEL=DIR serves that checkpoint (default: a tiny synthetic gpt-oss
# checkpoint written once to .run/models/), EXPERTMESH_MODEL_NAME (the id clients ask for; default
# gpt-oss-20b for a given checkpoint, gpt-oss-synthetic otherwise), GATEWAY_PORT (8080), ORCHESTRATOR_PORT (50050),
# WORKER_PORT (50051), WORKER_METRICS_PORT (9091), EXPERTMESH_REDIS_PORT (6390), GATEWAY_API_KEYS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$EM_ROOT"

bash scripts/setup.sh
source scripts/lib/env.sh  # again: setup may just have provisioned Node 24 into .tools/

export GATEWAY_PORT="${GATEWAY_PORT:-8080}" ORCHESTRATOR_PORT="${ORCHESTRATOR_PORT:-50050}"
export WORKER_PORT="${WORKER_PORT:-50051}" WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-9091}"
redis_port="${EXPERTMESH_REDIS_PORT:-6390}"
logs="$EM_RUN/logs"
mkdir -p "$logs" "$EM_RUN/redis"

pids=()
names=()
stopping=0
cleanup() {
  local status=$?
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  if [ "${#pids[@]}" -gt 0 ]; then
    em_log "stopping: ${names[*]}"
    # Reverse start order: the gateway drains first, redis goes last.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
      alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    em_log "stopped"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # name logfile command...
  local name="$1" log="$2"
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}

start redis "$logs/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$EM_RUN/redis" \
  --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save ""
node scripts/wait-for.ts "tcp://127.0.0.1:$redis_port" 15 || em_die "redis did not start (see $logs/redis.log)"

# The orchestrator hosts the batch runners; they share Redis and the files directory with the gateway.
export EXPERTMESH_FILES_DIR="${EXPERTMESH_FILES_DIR:-$EM_RUN/files}"
REDIS_URL="redis://127.0.0.1:$redis_port" ORCHESTRATOR_BATCH_RUNNER=true \
  ORCHESTRATOR_BATCH_GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" \
  start orchestrator "$logs/orchestrator.log" node orchestrator/src/main.ts
node scripts/wait-for.ts "tcp://127.0.0.1:$ORCHESTRATOR_PORT" 30 || em_die "orchestrator did not start (see $logs/orchestrator.log)"

model="${EXPERTMESH_MODEL:-}"
model_name="${EXPERTMESH_MODEL_NAME:-gpt-oss-20b}"
if [ -z "$model" ]; then
  model="$EM_RUN/models/tiny-synthetic"
  model_name="${EXPERTMESH_MODEL_NAME:-gpt-oss-synthetic}"
  if [ ! -f "$model/config.json" ]; then
    em_log "no EXPERTMESH_MODEL given: writing a tiny synthetic gpt-oss checkpoint to ${model#"$EM_ROOT"/}"
    node kernels/src/cli/main.ts make-checkpoint --shape tiny --out "$model" --seed 0 >/dev/null
  fi
fi
[ -f "$model/config.json" ] || em_die "EXPERTMESH_MODEL=$model has no config.json"

WORKER_ORCHESTRATOR_ADDRESS="127.0.0.1:$ORCHESTRATOR_PORT" WORKER_MODEL_PATH="$model" WORKER_MODEL_NAME="$model_name" \
  start worker "$logs/worker.log" node worker/src/main.ts
node scripts/wait-for.ts "tcp://127.0.0.1:$WORKER_PORT" 60 || em_die "worker did not start (see $logs/worker.log)"

GATEWAY_ORCHESTRATOR_ADDRESS="127.0.0.1:$ORCHESTRATOR_PORT" REDIS_URL="redis://127.0.0.1:$redis_port" \
  start gateway "$logs/gateway.log" node gateway/src/main.ts
node scripts/wait-for.ts "http://127.0.0.1:$GATEWAY_PORT/health" 30 || em_die "gateway did not start (see $logs/gateway.log)"

em_log "model: $model_name ($model)"
em_log "logs: ${logs#"$EM_ROOT"/}/{redis,orchestrator,worker,gateway}.log"
echo "ExpertMesh is up: http://127.0.0.1:$GATEWAY_PORT  (Ctrl-C stops everything)"

# Run until Ctrl-C, or until any service dies (then stop the rest and fail).
set +e
wait -n "${pids[@]}"
code=$?
set -e
if [ "$stopping" = 0 ]; then
  em_warn "a service exited unexpectedly (status $code); stopping the stack — see $logs/"
  exit 1
fi
