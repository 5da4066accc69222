#!/usr/bin/env bash
# Instructions per request of one crossroute tree, counted by valgrind (callgrind): unlike CPU time,
# the count does not move with the machine's load or speed, so two trees compare exactly.
#   BENCH_RUN=bench/out/<run> bench/instructions.sh <tree> <chat|anthropic|responses> <request file> [requests]
# BENCH_RUN is a finished bench run (its nginx fake upstream and crossroute-1.yaml are reused). One client
# sends the requests one at a time after 300 to warm up; only those are counted (user-space instructions
# of the gateway process, one worker). Needs valgrind (Debian: valgrind).
set -euo pipefail
TREE=$(realpath "$1"); CLIENT=$2; BODY=$(realpath "$3"); N=${4:-300}
RUN=$(realpath "${BENCH_RUN:?set BENCH_RUN to a bench run directory}")
PYTHON=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")  # absolute, the venv's link kept
pgrep -f "nginx -c $RUN/nginx/nginx.conf" >/dev/null || nginx -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx"
WORK=$(mktemp -d)
trap 'kill "$GW" 2>/dev/null; wait "$GW" 2>/dev/null; rm -rf "$WORK"' EXIT
"$PYTHON" - "$RUN/crossroute-1.yaml" "$WORK" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["state"] = {"path": f"{sys.argv[2]}/state.sqlite3"}  # the rest under CROSSROUTE_HOME
json.dump(config, open(f"{sys.argv[2]}/config.yaml", "w"))
PY
PORT=$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['server']['port'])" "$WORK/config.yaml")
cd "$TREE"
CROSSROUTE_HOME=$WORK PYTHONPATH=$TREE valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$WORK/callgrind.out" "$PYTHON" -m crossroute.cli serve --config "$WORK/config.yaml" \
  --workers 1 >"$WORK/gateway.log" 2>&1 &
GW=$!
send() {
  "$PYTHON" - "$CLIENT" "$BODY" "$PORT" "$1" <<'PY'
import http.client, sys
client, body, port, count = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3]), int(sys.argv[4])
path = {"chat": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}[client]
headers = {"content-type": "application/json", "authorization": "Bearer sk-bench", "x-api-key": "sk-bench",
           "anthropic-version": "2023-06-01"}
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    connection.request("POST", path, body, headers)
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
PY
}
for _ in $(seq 120); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 1; done
curl -s -o /dev/null "http://127.0.0.1:$PORT/health" || { cat "$WORK/gateway.log" >&2; exit 1; }
send 300
callgrind_control -i on "$GW" >/dev/null 2>&1
send "$N"
callgrind_control -i off "$GW" >/dev/null 2>&1
callgrind_control -d "$GW" >/dev/null 2>&1
sleep 1
TOTAL=$(grep -h "^totals:" "$WORK"/callgrind.out.* | tail -1 | awk '{print $2}')
echo "$(basename "$TREE") $(basename "$BODY") instructions/request=$((TOTAL / N))"
