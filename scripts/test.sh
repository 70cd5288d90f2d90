#!/usr/bin/env bash
# TEST: the same setup as UP, then the whole suite — lint, typecheck, unit + integration + native op
# tests (per workspace, through turbo), end-to-end — and one summary line at the end.
# Exit status is 0 only when every step passed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$EM_ROOT"
started=$(date +%s)
# TEST leaves the working tree as it found it, setup included (#21 item 11): compared at the end.
tree_before="$(git status --porcelain --untracked-files=all 2>/dev/null || true)"

bash scripts/setup.sh || em_die "setup failed"
source scripts/lib/env.sh  # again: setup may just have provisioned Node 24 into .tools/

node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 24 ] || em_die "tests must run on Node 24, but $(command -v node) is $(node -v)"

results=()
failed=0
out="$EM_RUN/test"
mkdir -p "$out"

# Every process a step starts carries EM_TEST_STEP=<name>.<pid> in its environment. Whatever of them is
# still running when the step's command returns was leaked by a test (a service a timed-out test body
# started after its cleanup ran, say): it is killed and listed. Left alone it would keep the log pipe open,
# so `tee` — and the whole run — would wait for it forever.
reap_leftovers() { # marker
  local pids
  mapfile -t pids < <(grep -lzx "EM_TEST_STEP=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3)
  [ "${#pids[@]}" -gt 0 ] || return 0
  em_warn "a test left these processes running; killing them:"
  ps -o pid=,args= -p "$(IFS=,; echo "${pids[*]}")" >&2 || true
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

run_step() { # marker command...
  local marker="$1" rc=0
  shift
  EM_TEST_STEP="$marker" "$@" || rc=$?
  reap_leftovers "$marker"
  return "$rc"
}

step() { # name command...
  local name="$1"
  shift
  local t0
  t0=$(date +%s)
  em_log "── $name"
  if run_step "$name.$$" "$@" 2>&1 | tee "$out/$name.log"; then
    results+=("$name ok ($(($(date +%s) - t0))s)")
  else
    results+=("$name FAILED")
    failed=1
  fi
}

# Sums vitest's "Tests  N passed | M skipped" lines of a log.
count_tests() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^\S*\s*Tests\s' | awk '
    { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^skipped/) s += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
    END { printf "%d passed, %d skipped, %d failed", p, s, f }'
}

# Per-workspace lint through turbo (biome everywhere, buf for the protos), plus the files outside them.
step lint bash -c 'turbo run lint --output-logs=errors-only --concurrency=2 && biome ci --no-errors-on-unmatched scripts biome.json package.json turbo.json tsconfig.base.json && bash scripts/check-reliability-refs.sh'
step typecheck turbo run typecheck --output-logs=errors-only --concurrency=2
step unit turbo run test --output-logs=full --concurrency=1 --log-prefix=task --continue
step e2e npm run --silent test:e2e -w @expertmesh/e2e

tree_unchanged() {
  local now
  now="$(git status --porcelain --untracked-files=all 2>/dev/null || true)"
  [ "$now" = "$tree_before" ] && { echo "the working tree is as TEST found it"; return 0; }
  echo "TEST changed the working tree (git status before → after):"
  diff <(printf '%s\n' "$tree_before") <(printf '%s\n' "$now")
  return 1
}
step tree tree_unchanged

# CI shows only the tail of the output: a failed step's failing tests and their first error lines are
# repeated here, next to the summary, so the tail alone says what failed (the gpu-check script's own
# tests print FAIL lines on purpose: left out).
failure_digest() { # step-name
  local log="$out/$1.log"
  [ -f "$log" ] || return 0
  echo "── $1: what failed"
  sed 's/\x1b\[[0-9;]*m//g' "$log" |
    grep -E '(^|[ :])(FAIL|×) |(Assertion)?Error:|^[^ ]*\s*(Expected|Received|expected)|ERR!|error TS|failed with exit|\[  FAILED  \]|FAILED:' |
    grep -v -F '[gpu-check]' | awk '!seen[$0]++' | head -n 60
}

elapsed=$(($(date +%s) - started))
tests="unit/integration: $(count_tests "$out/unit.log"); e2e: $(count_tests "$out/e2e.log")"
summary="$(IFS=';'; echo "${results[*]}" | sed 's/;/, /g')"
if [ "$failed" = 0 ]; then
  echo "TEST PASS in ${elapsed}s — ${summary} — ${tests}"
else
  for r in "${results[@]}"; do
    case "$r" in *" FAILED") failure_digest "${r%% FAILED}" ;; esac
  done
  echo "TEST FAIL in ${elapsed}s — ${summary} — ${tests}"
  exit 1
fi
