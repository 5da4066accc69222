#!/usr/bin/env bash
# Installs the peers (and the bench's own Python tools) on demand into the bench cache, outside
# the project's dependencies. Usage: install.sh [tools|litellm|ccr|9router|all]...
# Each part is stamped by version, so a second run is a no-op. Prints nothing on success but the
# cache dir; a failure leaves a <part>.failed file with the reason for run.py to report.
set -uo pipefail

LITELLM_VERSION=${LITELLM_VERSION:-1.106.0}
# (1.106.1 and later patch releases require a certifi newer than the registry serves here)
CCR_VERSION=${CCR_VERSION:-2.0.0}
NINEROUTER_VERSION=${NINEROUTER_VERSION:-0.5.69}
BETTER_SQLITE3_VERSION=${BETTER_SQLITE3_VERSION:-12.6.2}
PYTHON=${PYTHON:-python3}

CACHE=${CROSSROUTE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossroute-bench}
mkdir -p "$CACHE"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

log() { echo "bench/peers: $*" >&2; }

# Run one install step; on failure keep the log tail as the reason.
part() {
  local name=$1 stamp="$CACHE/$1.installed-$2"; shift 2
  [ -f "$stamp" ] && return 0
  rm -f "$CACHE/$name.failed" "$CACHE/$name".installed-*
  log "installing $name (log: $CACHE/$name.log)"
  if "$@" >"$CACHE/$name.log" 2>&1; then
    touch "$stamp"
  else
    { echo "install failed: $*"; tail -n 15 "$CACHE/$name.log"; } >"$CACHE/$name.failed"
    log "$name: install failed, see $CACHE/$name.failed"
    return 1
  fi
}

install_tools() {  # matplotlib (chart) and the official SDKs (body validation), in the bench's own venv
  "$PYTHON" -m venv "$CACHE/tools" &&
    "$CACHE/tools/bin/pip" install -q --upgrade pip &&
    "$CACHE/tools/bin/pip" install -q matplotlib 'openai>=2' 'anthropic>=0.70' 'google-genai>=1.40'
}

install_litellm() {
  "$PYTHON" -m venv "$CACHE/litellm" &&
    "$CACHE/litellm/bin/pip" install -q --upgrade pip &&
    "$CACHE/litellm/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
}

install_ccr() {
  npm install --prefix "$CACHE/ccr" --no-save "@musistudio/claude-code-router@$CCR_VERSION"
}

install_9router() {
  # 9router ships a Next.js standalone app; its SQLite driver (better-sqlite3) is a native module that
  # must be built from source here (no prebuilt binaries can be downloaded): node-gyp against the
  # system's Node headers (npm_config_nodedir=/usr, from Debian's nodejs / libnode-dev).
  npm install --prefix "$CACHE/9router" --no-save "9router@$NINEROUTER_VERSION" || return 1
  local app="$CACHE/9router/node_modules/9router"
  mkdir -p "$app/data/runtime" &&
    ( cd "$app/data/runtime" && [ -f package.json ] || echo '{"name":"runtime","private":true}' > package.json ) &&
    ( cd "$app/data/runtime" && npm_config_nodedir=${npm_config_nodedir:-/usr} npm_config_build_from_source=true \
        npm install --no-save "better-sqlite3@$BETTER_SQLITE3_VERSION" ) &&
    ls "$app"/data/runtime/node_modules/better-sqlite3/build/Release/better_sqlite3.node
}

parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(all)
status=0
for p in "${parts[@]}"; do
  case $p in
    tools) part tools "1" install_tools || status=1 ;;
    litellm) part litellm "$LITELLM_VERSION" install_litellm || status=1 ;;
    ccr) part ccr "$CCR_VERSION" install_ccr || status=1 ;;
    9router) part 9router "$NINEROUTER_VERSION-$BETTER_SQLITE3_VERSION" install_9router || status=1 ;;
    all) for q in tools litellm ccr 9router; do "$0" "$q" >/dev/null || status=1; done ;;
    *) log "unknown part $p"; exit 2 ;;
  esac
done
echo "$CACHE"
exit $status
