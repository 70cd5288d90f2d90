#!/usr/bin/env bash
# gpu-check: every GPU-gated check of the project in one run, for a machine with NVIDIA GPUs and a CUDA
# toolkit (the `device` tool's lent GPU): builds with CUDA, then runs what this machine can run — test_ops
# on the nvcc-built op set, golden through cuda:0, cuda:0 against the CPU on the gpt-oss-20b widths, the
# NCCL collectives (NCCL W = 2 with two GPUs), compute-sanitizer memcheck/racecheck/synccheck on the tiny
# model, bench/engine on cuda:0 — each under a time limit, within 12 minutes in all, and prints one table.
# Exit status 0 only when every applicable check passed (a check expected to run that skipped fails).
#   bash scripts/gpu-check.sh [--dry-run] [--out DIR] [--help]     (--help says more)
# The plan, the runner and the report are kernels/scripts/gpu-check/ (unit-tested there); this wrapper
# only makes sure Node 24 and the npm dependencies exist, which that code needs to start.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$EM_ROOT"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 24 ] || [ ! -d node_modules/vitest ]; then
  bash scripts/setup.sh >&2 || em_die "setup failed"
  source scripts/lib/env.sh
fi
exec node kernels/scripts/gpu-check/main.ts "$@"
