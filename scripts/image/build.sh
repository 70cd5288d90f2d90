#!/usr/bin/env bash
# The steps the Dockerfile's stages share, so that its CPU and CUDA targets build the same way:
#   build-deps    Debian/Ubuntu packages the native addon builds against (the same names on both)
#   runtime-deps  what the built addon loads at run time
#   build         npm dependencies, the generated gRPC code, the addon (cmake-js), then dev dependencies pruned
# It runs inside an image build only; scripts/setup.sh is the same work on a developer's machine.
set -euo pipefail

case "${1:-}" in
  build-deps)
    apt-get update
    apt-get install -y --no-install-recommends ca-certificates cmake g++ make libgloo-dev libhiredis-dev nlohmann-json3-dev
    rm -rf /var/lib/apt/lists/*
    ;;
  runtime-deps)
    # libgloo-dev is the one name Debian and Ubuntu share for Gloo's library and the hiredis it links
    # (libhiredis0.14 on bookworm, libhiredis1.1.0 on noble); its headers are a few hundred KB.
    apt-get update
    apt-get install -y --no-install-recommends ca-certificates libgomp1 libgloo-dev
    rm -rf /var/lib/apt/lists/*
    ;;
  build)
    # `npm install` honours package-lock.json (scripts/setup.sh says why not `npm ci`).
    npm install --no-fund --no-audit --loglevel=error
    npm run build -w @expertmesh/proto
    # EXPERTMESH_CUDA (the stage's ENV): OFF in the CPU image, ON in the CUDA one (a missing nvcc fails the build).
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" npm run build -w @expertmesh/kernels
    npm prune --omit=dev --no-fund --no-audit --loglevel=error
    rm -rf kernels/build/CMakeFiles kernels/build/tests ~/.npm
    ;;
  *)
    echo "usage: $0 build-deps | runtime-deps | build" >&2
    exit 2
    ;;
esac
