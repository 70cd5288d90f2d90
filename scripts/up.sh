#!/usr/bin/env bash
# UP: installs what is missing, then runs the whole stack on loopback until stopped:
#   redis-server → orchestrator (membership, batch runner) → W×G workers → gateway (HTTP, prints its URL
#   once GET /ready answers 200, i.e. a worker with the model can serve).
# Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything this script started; nothing is left running. A
# backgrounded UP (`bash scripts/up.sh &`): stop it with `kill %1` or `kill -TERM <pid>` (where GNU env
# lacks --default-signal it ignores SIGINT, as bash starts background jobs of scripts).
#
# Settings (environment):
#   EXPERTMESH_MODEL=DIR        checkpoint to serve (default: a tiny synthetic gpt-oss checkpoint written once
#                               to $EXPERTMESH_RUN_DIR/models/)
#   EXPERTMESH_MODEL_NAME       the id clients ask for (gpt-oss-20b for a given checkpoint, gpt-oss-synthetic otherwise)
#   EXPERTMESH_RUN_DIR          state and logs: redis data, logs/, models/, files/ (default .run/ in the repository)
#   EXPERTMESH_WORLD_SIZE=W     ranks per expert-parallel group (1); W must divide the model's KV heads and experts
#   EXPERTMESH_GROUPS=G         groups (1); UP starts W×G workers
#   EXPERTMESH_READY_TIMEOUT    seconds to wait for the workers and for GET /ready (300)
#   Ports, every one UP listens on (all must differ):
#   GATEWAY_PORT (8080), ORCHESTRATOR_PORT (50050), ORCHESTRATOR_METRICS_PORT (9090 under UP: below the
#   workers' metrics ports), EXPERTMESH_REDIS_PORT (6390), WORKER_PORT (50051) and WORKER_METRICS_PORT (9091):
#   worker i (0 ≤ i < W×G) listens on WORKER_PORT+i and WORKER_METRICS_PORT+i.
#   GATEWAY_API_KEYS, and every other setting of the services (README), pass through.
set -euo pipefail
# A background job of a non-interactive shell starts with SIGINT ignored, and bash can neither trap nor reset
# a signal ignored on entry: re-exec once with INT at its default (GNU env) so that `kill -INT` stops UP too.
if [ -z "${EM_UP_REEXEC:-}" ] && (((0x$(awk '/^SigIgn:/ {print $2}' /proc/$$/status 2>/dev/null || echo 0)) & 2)) &&
  env --default-signal=INT true 2>/dev/null; then
  EM_UP_REEXEC=1 exec env --default-signal=INT bash "${BASH_SOURCE[0]}" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# A relative EXPERTMESH_MODEL names a directory where the user stands (e.g. pull's default ./gpt-oss-20b).
[ -n "${EXPERTMESH_MODEL:-}" ] && EXPERTMESH_MODEL="$(realpath -m -- "$EXPERTMESH_MODEL")"
cd "$EM_ROOT"

bash scripts/setup.sh
source scripts/lib/env.sh  # again: setup may just have provisioned Node 24 into .tools/

export GATEWAY_PORT="${GATEWAY_PORT:-8080}" ORCHESTRATOR_PORT="${ORCHESTRATOR_PORT:-50050}"
export ORCHESTRATOR_METRICS_PORT="${ORCHESTRATOR_METRICS_PORT:-9090}"
export WORKER_PORT="${WORKER_PORT:-50051}" WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-9091}"
redis_port="${EXPERTMESH_REDIS_PORT:-6390}"
world="${EXPERTMESH_WORLD_SIZE:-1}"
groups="${EXPERTMESH_GROUPS:-1}"
ready_timeout="${EXPERTMESH_READY_TIMEOUT:-300}"
for v in world groups ready_timeout; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || em_die "$v must be a positive integer (got '${!v}')"
done
nworkers=$((world * groups))
logs="$EM_RUN/logs"
mkdir -p "$logs" "$EM_RUN/redis"

# Every port checked before anything starts: a collision among UP's own ports is a setting error.
declare -A port_owner=()
claim_port() { # setting port
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 65535 ] || em_die "$1=$2 is not a port (1-65535)"
  [ -z "${port_owner[$2]:-}" ] || em_die "port $2 is both ${port_owner[$2]} and $1: set one of them to another port"
  port_owner[$2]="$1"
}
claim_port GATEWAY_PORT "$GATEWAY_PORT"
claim_port ORCHESTRATOR_PORT "$ORCHESTRATOR_PORT"
claim_port ORCHESTRATOR_METRICS_PORT "$ORCHESTRATOR_METRICS_PORT"
claim_port EXPERTMESH_REDIS_PORT "$redis_port"
for ((i = 0; i < nworkers; i++)); do
  claim_port "WORKER_PORT+$i" "$((WORKER_PORT + i))"
  claim_port "WORKER_METRICS_PORT+$i" "$((WORKER_METRICS_PORT + i))"
done

pids=()
names=()
logfiles=()
waiter=""
stopping=0
cleanup() {
  local status=$?
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM HUP
  [ -n "$waiter" ] && kill -TERM "$waiter" 2>/dev/null
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
# TERM and HUP exactly like INT: a backgrounded UP never sees INT, a closed terminal sends HUP.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

start() { # name logfile command...
  local name="$1" log="$2"
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=("$!")
  names+=("$name")
  logfiles+=("$log")
}

# wait_up WHAT LOG URL TIMEOUT [wait-for options]: waits for URL while watching every process started so
# far; one that exits ends the wait at once with the last lines of its log. The waiter runs in the
# background so that a signal is handled now, not when the wait ends (bash defers traps for a foreground
# command, and the builtin `wait` returns on one).
wait_up() {
  local what="$1" log="$2" url="$3" timeout="$4" rc=0 dead i
  shift 4
  local args=()
  for p in "${pids[@]}"; do args+=(--pid "$p"); done
  node scripts/wait-for.ts "$url" "$timeout" "$@" "${args[@]}" >"$logs/.wait-for" &
  waiter=$!
  wait "$waiter" || rc=$?
  waiter=""
  [ "$rc" = 0 ] && return 0
  if [ "$rc" = 3 ]; then
    dead="$(cat "$logs/.wait-for")"
    for i in "${!pids[@]}"; do
      [ "${pids[i]}" = "$dead" ] || continue
      em_warn "${names[i]} exited while waiting for $what; the last lines of ${logfiles[i]}:"
      tail -n 20 "${logfiles[i]}" >&2
      em_die "${names[i]} failed (see ${logfiles[i]})"
    done
  fi
  em_die "$what did not come up within ${timeout}s (see $log)"
}

start redis "$logs/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$EM_RUN/redis" \
  --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save ""
wait_up redis "$logs/redis.log" "tcp://127.0.0.1:$redis_port" 15

# The orchestrator forms groups of W and hosts the batch runners; the runners share Redis and the files
# directory with the gateway.
export EXPERTMESH_FILES_DIR="${EXPERTMESH_FILES_DIR:-$EM_RUN/files}"
REDIS_URL="redis://127.0.0.1:$redis_port" ORCHESTRATOR_BATCH_RUNNER=true ORCHESTRATOR_GROUP_WORLD_SIZE="$world" \
  ORCHESTRATOR_BATCH_GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" \
  start orchestrator "$logs/orchestrator.log" node orchestrator/src/main.ts
wait_up orchestrator "$logs/orchestrator.log" "tcp://127.0.0.1:$ORCHESTRATOR_PORT" 30

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

# W = 1: each worker serves alone (standalone); W > 1: the orchestrator places workers into groups of W
# (a group's ranks are started together: a worker serves only once its group formed).
mode=standalone
[ "$world" -gt 1 ] && mode=orchestrated
worker_logs=()
for ((i = 0; i < nworkers; i++)); do
  log="$logs/worker.log"
  [ "$nworkers" -gt 1 ] && log="$logs/worker-$i.log"
  worker_logs+=("$log")
  start "worker-$i" "$log" env WORKER_ORCHESTRATOR_ADDRESS="127.0.0.1:$ORCHESTRATOR_PORT" WORKER_GROUP_MODE="$mode" \
    WORKER_MODEL_PATH="$model" WORKER_MODEL_NAME="$model_name" \
    WORKER_PORT="$((WORKER_PORT + i))" WORKER_METRICS_PORT="$((WORKER_METRICS_PORT + i))" node worker/src/main.ts
done
for ((i = 0; i < nworkers; i++)); do
  wait_up "worker $i" "${worker_logs[i]}" "tcp://127.0.0.1:$((WORKER_PORT + i))" "$ready_timeout"
done

GATEWAY_ORCHESTRATOR_ADDRESS="127.0.0.1:$ORCHESTRATOR_PORT" REDIS_URL="redis://127.0.0.1:$redis_port" \
  start gateway "$logs/gateway.log" node gateway/src/main.ts
wait_up gateway "$logs/gateway.log" "http://127.0.0.1:$GATEWAY_PORT/health" 30
# Up means a client's first request succeeds: the gateway reaches a ready worker (a formed group for W > 1).
wait_up "a ready worker (GET /ready 200)" "${worker_logs[0]} and $logs/gateway.log" \
  "http://127.0.0.1:$GATEWAY_PORT/ready" "$ready_timeout" --status 200

em_log "model: $model_name ($model); $groups group(s) of $world rank(s)"
em_log "logs: ${logs#"$EM_ROOT"/}/"
echo "ExpertMesh is up: http://127.0.0.1:$GATEWAY_PORT  (Ctrl-C stops everything)"

# Run until stopped, or until any service dies (then stop the rest and fail).
set +e
wait -n "${pids[@]}"
code=$?
set -e
if [ "$stopping" = 0 ]; then
  em_warn "a service exited unexpectedly (status $code); stopping the stack — see $logs/"
  exit 1
fi
