#!/usr/bin/env bash
# 1, 2 and 3 `wisp worker` processes on one machine over the same jobs: N
# copies of FILE queued afresh for each count, workers started together with
# THREADS/W compute threads each (at least 1), wall time until the queue is
# empty (workers exit after --idle_exit 1). docs/design/queue.md, "Benchmark".
# A tool, not a test.
#   tests/perf/queue_workers.sh WISP MODEL URL FILE OUT
#   env: N (24), THREADS (all cores), COUNTS ("1 2 3")
set -euo pipefail
WISP=$1 MODEL=$2 URL=$3 FILE=$4 OUT=$5
N=${N:-24} THREADS=${THREADS:-$(nproc)} COUNTS=${COUNTS:-"1 2 3"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
fast=(-l en --beam_size None --best_of None --temperature_increment_on_fallback None
      --condition_on_previous_text False -f txt --verbose False)
DUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$FILE" 2>/dev/null ||
      python3 -c 'import sys, wave; w = wave.open(sys.argv[1]); print(w.getnframes() / w.getframerate())' "$FILE")
printf 'workers\tthreads_each\tjobs\twall_s\taudio_s_per_s\n' > "$OUT/results.tsv"
for W in $COUNTS; do
  T=$(( THREADS / W )); [ "$T" -ge 1 ] || T=1
  dir="$OUT/w$W"
  rm -rf "$dir"; mkdir -p "$dir"
  ext=${FILE##*.}
  for i in $(seq "$N"); do cp "$FILE" "$dir/f$i.$ext"; done
  "$WISP" queue purge --queue "$URL" --all > /dev/null
  "$WISP" queue add --queue "$URL" --model "$MODEL" "${fast[@]}" "$dir" > /dev/null
  s=$(date +%s.%N)
  pids=()
  for k in $(seq "$W"); do
    "$WISP" worker --queue "$URL" --model "$MODEL" -t "$T" "${fast[@]}" --idle_exit 1 --poll_s 0.2 \
      > "$OUT/worker.$W.$k.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  e=$(date +%s.%N)
  done_n=$(ls "$dir"/*.txt | wc -l)
  awk -v w="$W" -v t="$T" -v n="$done_n" -v s="$s" -v e="$e" -v d="$DUR" \
    'BEGIN { printf "%d\t%d\t%d\t%.2f\t%.2f\n", w, t, n, e - s - 1, n * d / (e - s - 1) }' | tee -a "$OUT/results.tsv"
done
