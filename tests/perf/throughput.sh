#!/usr/bin/env bash
# Throughput mode side by side (docs/performance.md, "Throughput mode"):
# sequential wisp, sequential wisp with the VAD filter, batched wisp
# (--batch_size), and whisper.cpp's whisper-cli, on one set of inputs, in
# one run, the same model file, greedy decoding without fallback and without
# previous-text conditioning (whisper-cli -mc 0), the same thread count.
#
#   tests/perf/throughput.sh WISP WHISPER_CPP_BIN_DIR MODEL OUT INPUT... 
#   env: THREADS (2), TYPES (compute types, "float32 int8"), BATCH (8),
#        REPEATS (1), WISP_EXTRA (more wisp flags)
# Prints one TSV row per run: engine mode compute_type wall_s peak_rss_mb
# segments tokens (tokens: text and timestamp tokens in the outputs; random
# weights never emit end-of-text, so every window decodes to its limit).
set -euo pipefail
WISP=$1 WCPP=$2 MODEL=$3 OUT=$4
shift 4
T=${THREADS:-2}
mkdir -p "$OUT"
inputs=("$@")
common=(-m "$MODEL" -t "$T" -l en --beam_size None --best_of None --temperature_increment_on_fallback None
        --condition_on_previous_text False --loop_guard False -f json --verbose False --overwrite)

rss() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$1"; }
count() {  # segments and tokens in a folder of wisp JSON outputs
  python3 - "$1" <<'PY'
import json, pathlib, sys
segs = toks = 0
for p in pathlib.Path(sys.argv[1]).rglob("*.json"):
    for s in json.load(open(p))["segments"]:
        segs += 1; toks += len(s["tokens"])
print(f"{segs}\t{toks}")
PY
}
run_wisp() {  # mode type extra-flags...
  local mode=$1 ct=$2; shift 2
  local dir=$OUT/wisp-$mode-$ct-$(date +%s%N)
  mkdir -p "$dir"
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -v "$WISP" transcribe "${inputs[@]}" "${common[@]}" --compute_type "$ct" -o "$dir" \
    ${WISP_EXTRA:-} "$@" > "$dir.log" 2>&1
  e=$(date +%s.%N)
  printf "wisp\t%s\t%s\t%.2f\t%s\t%s\n" "$mode" "$ct" "$(echo "$e - $s" | bc)" "$(rss "$dir.log")" "$(count "$dir")"
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
  /usr/bin/time -v "$WCPP/whisper-cli" -m "$MODEL" -t "$T" -l en -bs 1 -bo 1 -nf -mc 0 -np -ojf "${files[@]}" \
    > "$dir.log" 2>&1
  e=$(date +%s.%N)
  printf "whisper.cpp\tsequential\tf16\t%.2f\t%s\t-\t-\n" "$(echo "$e - $s" | bc)" "$(rss "$dir.log")"
}
printf "engine\tmode\tcompute_type\twall_s\tpeak_rss_mb\tsegments\ttokens\n"
for rep in $(seq "${REPEATS:-1}"); do
  for ct in ${TYPES:-float32 int8}; do
    run_wisp sequential "$ct"
    run_wisp sequential-vad "$ct" --vad_filter True
    run_wisp batched "$ct" --batch_size "${BATCH:-8}"
  done
  [ -x "$WCPP/whisper-cli" ] && run_wcpp
done
