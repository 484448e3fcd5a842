#!/usr/bin/env bash
# `wisp serve` beside whisper.cpp's `whisper-server` (built from source
# outside this repository) on the same ggml file, audio, decoding and
# threads; docs/design/server.md, "Against whisper-server". A tool, not a
# ctest test. For each server in turn (alternating, REPEAT times): start it,
# one warm-up request, then CLIENTS curl clients at once, each sending ROUNDS
# requests one after another. Reports per server and run: errors, wall
# time, audio seconds per wall second, latency p50/p95 and peak RSS (VmHWM)
# (OUT/results.tsv), and keeps each server's answer (OUT/NAME.json).
#
#   tests/perf/server_vs_whisper_server.sh WISP WHISPER_SERVER MODEL OUT WAV
#   env: CLIENTS (16), ROUNDS (2), THREADS (all cores), REPEAT (2)
# Both decode alike: language en, greedy, no temperature fallback, no
# previous-text conditioning (whisper.cpp: -l en -nf -mc 0, temperature 0).
# WAV must be 16 kHz mono PCM (what whisper-server reads without ffmpeg).
set -euo pipefail
WISP=$1 WSERVER=$2 MODEL=$3 OUT=$4 WAV=$5
CLIENTS=${CLIENTS:-16} ROUNDS=${ROUNDS:-2} THREADS=${THREADS:-$(nproc)} REPEAT=${REPEAT:-2}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
percentile() {  # percentile P of the second column of stdin
  sort -g -k2 | awk -v p="$1" '{ v[NR] = $2 } END { i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; print v[i] }'
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
DUR=$(python3 -c 'import sys, wave; w = wave.open(sys.argv[1]); print(w.getnframes() / w.getframerate())' "$WAV")

PID=""
trap '[ -n "$PID" ] && { kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; }' EXIT

# start_server NAME: starts it on a free port; sets PID, URL and the request's fields.
start_server() {
  local port
  port=$(free_port)
  if [ "$1" = wisp ]; then
    "$WISP" serve --model "$MODEL" --host 127.0.0.1 --port "$port" --threads "$THREADS" \
      --max_concurrency "$CLIENTS" --batch_size "$CLIENTS" --max_queue "$CLIENTS" 2> "$OUT/wisp.log" &
    URL=http://127.0.0.1:$port/v1/audio/transcriptions
    FIELDS=(-F model=whisper-1 -F language=en -F temperature_increment_on_fallback=None
            -F condition_on_previous_text=False -F response_format=json)
  else
    "$WSERVER" -m "$MODEL" --host 127.0.0.1 --port "$port" -t "$THREADS" -l en -nf -mc 0 \
      > "$OUT/whisper-server.log" 2>&1 &
    URL=http://127.0.0.1:$port/inference
    FIELDS=(-F temperature=0.0 -F response_format=json)
  fi
  PID=$!
  for _ in $(seq 600); do
    kill -0 $PID 2>/dev/null || { echo "$1 exited" >&2; exit 1; }
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
post() {  # prints the HTTP status and the request's seconds
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 3600 "$URL" -F "file=@$WAV" "${FIELDS[@]}"
}

printf 'server\trun\trequests\terrors\twall_s\taudio_s_per_s\tp50_s\tp95_s\tpeak_rss_mb\n' > "$OUT/results.tsv"
for run in $(seq "$REPEAT"); do
  order=(whisper-server wisp)
  [ $((run % 2)) -eq 0 ] && order=(wisp whisper-server)
  for name in "${order[@]}"; do
    start_server "$name"
    # Warm-up; its answer is kept, to compare how much text each side decoded.
    [ "$(curl -s -o "$OUT/$name.json" -w '%{http_code}' "$URL" -F "file=@$WAV" "${FIELDS[@]}")" = 200 ] ||
      { echo "$name: warm-up request failed" >&2; exit 1; }
    rm -f "$OUT"/burst.*
    s=$(date +%s.%N)
    clients=()
    for c in $(seq "$CLIENTS"); do
      ( for _ in $(seq "$ROUNDS"); do post; done > "$OUT/burst.$c" ) &
      clients+=($!)
    done
    wait "${clients[@]}"
    e=$(date +%s.%N)
    n=$((CLIENTS * ROUNDS))
    ok=$(cat "$OUT"/burst.* | grep -c '^200 ' || true)
    wall=$(calc "$e - $s")
    hwm=$(awk '$1 == "VmHWM:" {print $2}' /proc/$PID/status)
    kill -TERM $PID; wait $PID 2>/dev/null || true
    PID=""
    printf '%s\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%d\n' "$name" "$run" "$n" $((n - ok)) "$wall" \
      "$(calc "$n * $DUR / $wall")" "$(cat "$OUT"/burst.* | percentile 50)" \
      "$(cat "$OUT"/burst.* | percentile 95)" $((hwm / 1024)) | tee -a "$OUT/results.tsv"
  done
done
