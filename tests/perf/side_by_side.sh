#!/bin/bash
# Side-by-side timings of wisp and whisper.cpp on the same ggml files, as
# reported in docs/benchmarks.md. Not run by ctest (minutes per model).
#
#   tests/perf/side_by_side.sh WISP WHISPER_CPP_BIN_DIR OUT_DIR [MODEL...]
#
# WISP: the wisp executable; WHISPER_CPP_BIN_DIR: holds whisper-bench and
# whisper-cli; MODEL: ggml files (default: the random tiny/base/small models
# under /work/models). For every model and thread count (2, then 1) it runs
# whisper-bench and `wisp bench` for each compute type back to back,
# alternating which goes first, each after waiting for a quiet machine (two
# consecutive 3 s samples with >= QUIET_PCT% idle CPU, default 85, for at
# most QUIET_TRIES samples, default 600; the shared CI box is busy).
# Results: OUT_DIR/*.log (raw), OUT_DIR/results.tsv (one line per run).
# Set E2E_AUDIO to a 16 kHz mono WAV file to add the end-to-end comparison
# (`wisp transcribe` vs `whisper-cli -bs 1 -bo 1`, greedy, no fallback).
set -u
WISP=$1 WCPP=$2 OUT=$3
shift 3
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(/work/models/ggml-tiny-s4-f16.bin /work/models/ggml-base-s5-f16.bin /work/models/ggml-small-s6-f16.bin)
TYPES=${TYPES:-"int8 float32"}
THREADS=${THREADS:-"2 1"}
mkdir -p "$OUT"
TSV=$OUT/results.tsv
[ -f "$TSV" ] || printf "engine\tmodel\tthreads\tcompute_type\tencoder_ms\tdecode_ms\tbatch5_ms\tprompt_ms\tpeak_rss_mb\tload_before\tcpu_pct\tload_ms\n" > "$TSV"

idle_pct() {
  read -r _ a b c d e f g h _ < /proc/stat; local t1=$((a+b+c+d+e+f+g+h)) i1=$((d+e))
  sleep 3
  read -r _ a b c d e f g h _ < /proc/stat; local t2=$((a+b+c+d+e+f+g+h)) i2=$((d+e))
  echo $(( 100 * (i2 - i1) / (t2 - t1) ))
}
wait_quiet() {
  local ok=0 x=0
  for _ in $(seq 1 "${QUIET_TRIES:-600}"); do
    x=$(idle_pct)
    if [ "$x" -ge "${QUIET_PCT:-85}" ]; then ok=$((ok + 1)); else ok=0; fi
    [ $ok -ge 2 ] && return 0
  done
  echo "warning: machine never quiet (idle ${x}%)" >&2
}
rss_mb() { awk -F: '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }
cpu_pct() { awk -F: '/Percent of CPU this job got/ {gsub(/[ %]/, "", $2); print $2}' "$1"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

run_whispercpp() {  # model threads
  local m=$1 t=$2 name log
  name=$(basename "$m" .bin)
  log=$OUT/whispercpp-$name-t$t-$(date +%s).log
  wait_quiet
  local load; load=$(load1)
  /usr/bin/time -v "$WCPP/whisper-bench" -m "$m" -t "$t" > "$log" 2>&1
  per_run() { grep "$1 time" "$log" | sed -E 's/.*\(\s*([0-9.]+) ms per run\).*/\1/'; }
  local load_ms; load_ms=$(grep "load time" "$log" | sed -E 's/.*=\s*([0-9.]+) ms.*/\1/')
  printf "whisper.cpp\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$t" "f16 file" \
    "$(per_run encode)" "$(per_run decode)" "$(per_run batchd)" "$(per_run prompt)" \
    "$(rss_mb "$log")" "$load" "$(cpu_pct "$log")" "$load_ms" >> "$TSV"
}

run_wisp() {  # model threads type
  local m=$1 t=$2 ct=$3 name log
  name=$(basename "$m" .bin)
  log=$OUT/wisp-$name-t$t-$ct-$(date +%s).log
  wait_quiet
  local load; load=$(load1)
  /usr/bin/time -v "$WISP" bench --model "$m" --threads "$t" --compute_type "$ct" --json > "$log" 2>&1
  python3 - "$log" "$name" "$t" "$ct" "$load" "$(rss_mb "$log")" "$(cpu_pct "$log")" >> "$TSV" <<'PY'
import json, sys
log, name, t, ct, load, rss, cpu = sys.argv[1:]
j = json.loads(open(log).readline())
print("\t".join(["wisp", name, t, ct] + ["%.3f" % j[k] for k in
      ("encoder_ms", "decode_ms_per_token", "batch5_ms_per_token", "prompt_ms_per_token")] +
      [rss, load, cpu, "%.1f" % j["load_ms"]]))
PY
}

flip=0
for m in "${MODELS[@]}"; do
  for t in $THREADS; do
    if [ $flip -eq 0 ]; then
      run_whispercpp "$m" "$t"
      for ct in $TYPES; do run_wisp "$m" "$t" "$ct"; done
    else
      for ct in $TYPES; do run_wisp "$m" "$t" "$ct"; done
      run_whispercpp "$m" "$t"
    fi
    flip=$((1 - flip))
  done
done

# End to end on a long file: greedy, no temperature fallback on either side
# (with random weights both would otherwise resample most windows, each its
# own way), same language, same threads.
if [ -n "${E2E_AUDIO:-}" ]; then
  E2E=$OUT/e2e.tsv
  [ -f "$E2E" ] || printf "engine\tmodel\tthreads\tcompute_type\twall_s\tpeak_rss_mb\tload_before\tcpu_pct\n" > "$E2E"
  for m in "${MODELS[@]}"; do
    name=$(basename "$m" .bin)
    for t in ${E2E_THREADS:-2}; do
      log=$OUT/e2e-whispercpp-$name-t$t.log
      wait_quiet; load=$(load1)
      s=$(date +%s.%N)
      /usr/bin/time -v "$WCPP/whisper-cli" -m "$m" -f "$E2E_AUDIO" -t "$t" -l en -bs 1 -bo 1 -nf -otxt \
        -of "$OUT/e2e-whispercpp-$name-t$t" > "$log" 2>&1
      e=$(date +%s.%N)
      printf "whisper.cpp\t%s\t%s\tf16 file\t%.2f\t%s\t%s\t%s\n" "$name" "$t" "$(echo "$e - $s" | bc)" \
        "$(rss_mb "$log")" "$load" "$(cpu_pct "$log")" >> "$E2E"
      for ct in ${E2E_TYPES:-int8}; do
        log=$OUT/e2e-wisp-$name-t$t-$ct.log
        odir=$OUT/e2e-wisp-$name-t$t-$ct-$(date +%s)  # fresh: wisp skips inputs already done in a folder
        mkdir -p "$odir"
        wait_quiet; load=$(load1)
        s=$(date +%s.%N)
        /usr/bin/time -v "$WISP" transcribe "$E2E_AUDIO" -m "$m" -t "$t" -l en --compute_type "$ct" --beam_size None --best_of None \
          --temperature_increment_on_fallback None -f json -o "$odir" > "$log" 2>&1
        e=$(date +%s.%N)
        printf "wisp\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\n" "$name" "$t" "$ct" "$(echo "$e - $s" | bc)" \
          "$(rss_mb "$log")" "$load" "$(cpu_pct "$log")" >> "$E2E"
      done
    done
  done
fi
echo "done: $TSV"
