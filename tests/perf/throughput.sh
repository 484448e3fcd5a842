#!/usr/bin/env bash
# Throughput mode side by side (docs/benchmarks.md, "Throughput mode"):
# sequential wisp, sequential wisp with the VAD filter, batched wisp
# (--batch_size), and whisper.cpp's whisper-cli, on one set of inputs, in
# one run, the same model file, greedy decoding without fallback and without
# previous-text conditioning (whisper-cli -mc 0), the same thread count.
#
#   tests/perf/throughput.sh WISP WHISPER_CPP_BIN_DIR MODEL OUT INPUT... 
#   env: THREADS (2), TYPES (compute types, "float32 int8"), BATCH (8),
#        REPEATS (1), MODES ("sequential sequential-vad batched whisper.cpp"),
#        DECODE (decoding flags for both engines: "greedy" or "beam5")
# Prints one TSV row per run: engine mode compute_type wall_s peak_rss_mb
# windows tokens: window decodes (whisper.cpp: encoder runs) and tokens
# decoded, the work done (random weights never emit end-of-text, so most
# windows decode to the 224-token limit, and where the next window starts
# depends on each engine's seeking rules).
set -euo pipefail
WISP=$1 WCPP=$2 MODEL=$3 OUT=$4
shift 4
T=${THREADS:-2}
mkdir -p "$OUT"
inputs=("$@")
MODES=${MODES:-sequential sequential-vad batched whisper.cpp}
if [ "${DECODE:-greedy}" = beam5 ]; then wisp_dec=(--beam_size 5); wcpp_dec=(-bs 5 -bo 1)
else wisp_dec=(--beam_size None); wcpp_dec=(-bs 1 -bo 1); fi
common=(-m "$MODEL" -t "$T" -l en "${wisp_dec[@]}" --best_of None --temperature_increment_on_fallback None
        --condition_on_previous_text False --loop_guard False -f json --verbose False --overwrite)

rss() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$1"; }
run_wisp() {  # mode type extra-flags...
  local mode=$1 ct=$2; shift 2
  local dir=$OUT/wisp-$mode-$ct-$(date +%s%N)
  mkdir -p "$dir"
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -v "$WISP" transcribe "${inputs[@]}" "${common[@]}" --compute_type "$ct" -o "$dir" \
    ${WISP_EXTRA:-} "$@" > "$dir.log" 2>&1
  e=$(date +%s.%N)
  # Window decodes and tokens decoded, from the run's summary line.
  local dec
  dec=$(awk '/^Decoded:/ {print $5 "\t" $2}' "$dir.log")
  printf "wisp\t%s\t%s\t%.2f\t%s\t%s\n" "$mode" "$ct" "$(echo "$e - $s" | bc)" "$(rss "$dir.log")" "${dec:-?	?}"
}
run_wcpp() {
  local dir=$OUT/whispercpp-$(date +%s%N)
  mkdir -p "$dir"
  local files=() f s e
  for f in "${inputs[@]}"; do
    # whisper-cli reads 16 kHz WAV only: convert outside the timed run.
    ffmpeg -nostdin -loglevel error -y -i "$f" -ac 1 -ar 16000 -c:a pcm_s16le "$dir/$(basename "$f").wav"
    files+=("$dir/$(basename "$f").wav")
  done
  s=$(date +%s.%N)
  /usr/bin/time -v "$WCPP/whisper-cli" -m "$MODEL" -t "$T" -l en "${wcpp_dec[@]}" -nf -mc 0 -ojf "${files[@]}" \
    > "$dir.log" 2>&1
  e=$(date +%s.%N)
  # Windows encoded and tokens decoded, summed over the files' whisper_print_timings.
  local enc dec
  enc=$(awk '/encode time/ {for (i = 1; i <= NF; i++) if ($i == "runs") n += $(i - 1)} END {print n + 0}' "$dir.log")
  dec=$(awk '/(decode|batchd) time/ {for (i = 1; i <= NF; i++) if ($i == "runs") n += $(i - 1)} END {print n + 0}' "$dir.log")
  printf "whisper.cpp\tsequential\tf16\t%.2f\t%s\t%s\t%s\n" "$(echo "$e - $s" | bc)" "$(rss "$dir.log")" "$enc" "$dec"
}
printf "engine\tmode\tcompute_type\twall_s\tpeak_rss_mb\twindows\ttokens\n"
for rep in $(seq "${REPEATS:-1}"); do
  for ct in ${TYPES:-float32 int8}; do
    for mode in $MODES; do
      case $mode in
        sequential) run_wisp sequential "$ct" ;;
        sequential-vad) run_wisp sequential-vad "$ct" --vad_filter True ;;
        batched) run_wisp batched "$ct" --batch_size "${BATCH:-8}" ;;
      esac
    done
  done
  case " $MODES " in *" whisper.cpp "*) [ -x "$WCPP/whisper-cli" ] && run_wcpp ;; esac
done
