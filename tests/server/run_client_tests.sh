#!/bin/sh
# Real clients against `wisp serve` (registered by tests/CMakeLists.txt):
#   run_client_tests.sh WISP_BINARY FIXTURE LONG_FIXTURE SCRIPT.mjs...
# Makes the micro model, starts `wisp serve --port 0` on 127.0.0.1, runs each
# node script in tests/server/openai_client/ with WISP_URL, WISP_KEY, WISP_BIN,
# WISP_MODEL, WISP_FIXTURE, WISP_LONG_FIXTURE and WISP_WORK set, and stops
# the server. The server's --sample_len 8 keeps decodes on the random model
# short (the scripts compare like with like).
# Exit 77 (ctest: skipped) only when node is not installed; node_modules
# missing while node exists is a failure (scripts/install-deps.sh runs npm ci).
set -eu
WISP=$1
FIXTURE=$2
LONG_FIXTURE=$3
shift 3
if ! command -v node >/dev/null 2>&1; then
  echo "SKIPPED: node is not installed (scripts/install-deps.sh installs Debian's nodejs and npm)"
  exit 77
fi
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT_DIR="$HERE/openai_client"
if [ ! -d "$CLIENT_DIR/node_modules/openai" ]; then
  echo "FAILED: $CLIENT_DIR/node_modules is missing; run scripts/install-deps.sh (npm ci there)" >&2
  exit 1
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wisp_client_test.XXXXXX")
PID=""
cleanup() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    n=0
    while kill -0 "$PID" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
"$WISP" dev make-model --preset micro --seed 1 --dtype f32 -o "$WORK/micro.bin" >"$WORK/make-model.log" 2>&1 ||
  { cat "$WORK/make-model.log" >&2; echo "FAILED: wisp dev make-model" >&2; exit 1; }
KEY="sk-client-test"
: >"$WORK/serve.log"  # exists before the server starts writing it: the port loop reads it at once
"$WISP" serve --model "$WORK/micro.bin" --host 127.0.0.1 --port 0 --threads 1 --max_concurrency 4 \
  --sample_len 8 --api_key "$KEY" 2>"$WORK/serve.log" &
PID=$!
PORT=""
i=0
while [ $i -lt 300 ]; do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/serve.log")
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; echo "FAILED: wisp serve exited" >&2; exit 1; }
  sleep 0.1
  i=$((i + 1))
done
[ -n "$PORT" ] || { cat "$WORK/serve.log" >&2; echo "FAILED: wisp serve did not start" >&2; exit 1; }
export WISP_URL="http://127.0.0.1:$PORT" WISP_KEY="$KEY" WISP_BIN="$WISP" WISP_MODEL="$WORK/micro.bin"
export WISP_FIXTURE="$FIXTURE" WISP_LONG_FIXTURE="$LONG_FIXTURE" WISP_WORK="$WORK"
status=0
for script in "$@"; do
  echo "== node $script"
  node "$CLIENT_DIR/$script" || status=1
done
exit $status
