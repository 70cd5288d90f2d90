#!/usr/bin/env bash
# gpu-check: the GPU-gated checks, for a machine with a CUDA device (the `device` tool's lent GPU).
# Builds the kernels (nvcc, sm_80/sm_90), prints what the build sees, then runs the tests that skip
# without a device: test_ops on the nvcc-built op set, golden through cuda:0, cuda:0 against the CPU on the gpt-oss-20b widths, and the
# NCCL collectives. Exit status 0 only when all ran and passed; a skip here means the device was not seen.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$EM_ROOT"
bash scripts/setup.sh >/dev/null || em_die "setup failed"
source scripts/lib/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || em_die "nvidia-smi: no GPU visible"
node -e 'import("@expertmesh/kernels").then(k => console.log("devices:", k.capabilities().devices.join(", ")))'
cd kernels
./build/tests/test_ops > "${OUT:-/tmp}/test_ops.log" 2>&1
ops_rc=$?
grep -E "^cuda: |^SKIP cuda|^FAIL|^ops: " "${OUT:-/tmp}/test_ops.log"
[ "$ops_rc" -eq 0 ] && grep -q "^cuda: .*running" "${OUT:-/tmp}/test_ops.log" || em_die "test_ops did not pass on cuda"
npx vitest run src/golden-cuda.test.ts src/communicator.test.ts src/cli.test.ts --reporter=verbose 2>&1 | tee "${OUT:-/tmp}/gpu-check.log"
! grep -qE "↓|skipped" "${OUT:-/tmp}/gpu-check.log" || em_die "some GPU-gated tests skipped: see above"
