#!/usr/bin/env bash
# `wisp serve` under load (docs/design/server.md, "Load"); a tool, not a
# ctest test. Over 127.0.0.1 with curl:
#   1. burst: CLIENTS clients at once, each sending ROUNDS requests one after
#      another; every answer must be 200 (errors are counted and fail the run);
#      throughput in audio seconds per wall second, latency p50/p95;
#   2. sequential: SEQ requests one at a time; the server's RSS after a
#      warm-up request, after the burst, every SEQ/10 requests and at the end
#      (VmRSS, in OUT/rss.tsv), and its peak (VmHWM);
#   3. the same audio through `wisp transcribe --batch_size CLIENTS`
#      (CLIENTS*ROUNDS copies of FILE, one process, model load included);
#      skipped with CLI=0.
#
#   tests/perf/server_load.sh WISP MODEL OUT FILE
#   env: CLIENTS (16), ROUNDS (2), SEQ (20), THREADS (all cores), SAMPLE_LEN (0: 224),
#        WORKERS (the server's --max_concurrency and --batch_size; CLIENTS),
#        QUEUE (--max_queue; CLIENTS), CLI (1)
# Both sides decode alike: language en, greedy, no temperature fallback, no
# previous-text conditioning, no loop guard. They do not segment alike: the
# server runs openai's seek loop over each whole file, throughput mode cuts
# VAD chunks.
set -euo pipefail
WISP=$1 MODEL=$2 OUT=$3 FILE=$4
CLIENTS=${CLIENTS:-16} ROUNDS=${ROUNDS:-2} SEQ=${SEQ:-20} THREADS=${THREADS:-0} SAMPLE_LEN=${SAMPLE_LEN:-0}
WORKERS=${WORKERS:-$CLIENTS} QUEUE=${QUEUE:-$CLIENTS} CLI=${CLI:-1}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
fields=(-F model=whisper-1 -F language=en -F temperature_increment_on_fallback=None
        -F condition_on_previous_text=False -F "sample_len=$SAMPLE_LEN")

"$WISP" serve --model "$MODEL" --host 127.0.0.1 --port 0 --threads "$THREADS" --max_concurrency "$WORKERS" \
  --batch_size "$WORKERS" --max_queue "$QUEUE" 2> "$OUT/serve.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 600); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$OUT/serve.log")
  [ -n "$PORT" ] && break
  kill -0 $PID 2>/dev/null || { cat "$OUT/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "wisp serve did not start" >&2; exit 1; }
URL=http://127.0.0.1:$PORT/v1/audio/transcriptions
post() {  # prints the HTTP status and the request's seconds
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 3600 "$URL" -F "file=@$FILE" "${fields[@]}" "$@"
}
percentile() {  # percentile P of the second column of stdin
  sort -g -k2 | awk -v p="$1" '{ v[NR] = $2 } END { i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; print v[i] }'
}
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$PID/status; }

# Warm-up, and the file's duration.
DUR=$(curl -s "$URL" -F "file=@$FILE" "${fields[@]}" -F response_format=verbose_json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["duration"])')
RSS0=$(kb VmRSS)

# 1. Burst.
rm -f "$OUT"/burst.*
s=$(date +%s.%N)
clients=()
for c in $(seq "$CLIENTS"); do
  ( for _ in $(seq "$ROUNDS"); do post; done > "$OUT/burst.$c" ) &
  clients+=($!)
done
wait "${clients[@]}"
e=$(date +%s.%N)
N=$((CLIENTS * ROUNDS))
OK=$(cat "$OUT"/burst.* | grep -c '^200 ' || true)
ERRORS=$((N - OK))
BURST_S=$(calc "$e - $s")
P50=$(cat "$OUT"/burst.* | percentile 50)
P95=$(cat "$OUT"/burst.* | percentile 95)
BATCH_MAX=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 == "wisp_batch_size_max" {print $2}')

# 2. Sequential.
RSS1=$(kb VmRSS)
printf 'requests\tvmrss_kb\n0\t%s\n' "$RSS1" > "$OUT/rss.tsv"
STEP=$(( SEQ >= 10 ? SEQ / 10 : 1 ))
s=$(date +%s.%N)
SEQ_ERR=0
for i in $(seq "$SEQ"); do
  case "$(post)" in 200\ *) ;; *) SEQ_ERR=$((SEQ_ERR + 1)) ;; esac
  [ $((i % STEP)) -eq 0 ] && printf '%d\t%s\n' "$i" "$(kb VmRSS)" >> "$OUT/rss.tsv"
done
e=$(date +%s.%N)
SEQ_S=$(calc "$e - $s")
RSS2=$(kb VmRSS)
HWM=$(kb VmHWM)
kill -TERM $PID; wait $PID 2>/dev/null || true
trap - EXIT

# 3. The CLI's throughput mode on the same audio.
audio=$(calc "$N * $DUR")
printf 'file %s (%.1f s), %d clients x %d rounds, %d workers, threads %s\n' "$FILE" "$DUR" "$CLIENTS" "$ROUNDS" \
  "$WORKERS" "$THREADS"
printf 'burst: %d requests, %d errors, %.2f s wall, %.2f audio s/s, %.2f requests/s, latency p50 %.2f s p95 %.2f s, largest batch %s\n' \
  "$N" "$ERRORS" "$BURST_S" "$(calc "$audio / $BURST_S")" "$(calc "$N / $BURST_S")" "$P50" "$P95" "$BATCH_MAX"
printf 'sequential: %d requests, %d errors, %.3f s each, %.2f audio s/s; RSS %d MB after warm-up, %d MB after the burst, %d MB after; peak %d MB\n' \
  "$SEQ" "$SEQ_ERR" "$(calc "$SEQ_S / $SEQ")" "$(calc "$SEQ * $DUR / $SEQ_S")" $((RSS0 / 1024)) $((RSS1 / 1024)) \
  $((RSS2 / 1024)) $((HWM / 1024))
if [ "$CLI" = 0 ]; then
  [ "$ERRORS" -eq 0 ] && [ "$SEQ_ERR" -eq 0 ]
  exit
fi
rm -rf "$OUT/in" "$OUT/cli"
mkdir -p "$OUT/in"
ext=${FILE##*.}
for i in $(seq "$N"); do cp "$FILE" "$OUT/in/f$i.$ext"; done
s=$(date +%s.%N)
"$WISP" transcribe "$OUT/in" -m "$MODEL" -t "$THREADS" --batch_size "$WORKERS" -l en --beam_size None \
  --best_of None --temperature_increment_on_fallback None --condition_on_previous_text False --loop_guard False \
  --sample_len "$SAMPLE_LEN" -f txt -o "$OUT/cli" > "$OUT/cli.log" 2>&1
e=$(date +%s.%N)
CLI_S=$(calc "$e - $s")

printf 'wisp transcribe --batch_size %d: %d files, %.2f s wall (model load included), %.2f audio s/s\n' \
  "$WORKERS" "$N" "$CLI_S" "$(calc "$audio / $CLI_S")"
[ "$ERRORS" -eq 0 ] && [ "$SEQ_ERR" -eq 0 ]
