#!/bin/sh
# tests/fuzz/run.sh HARNESS SECONDS [RUNS]: one libFuzzer campaign of
# tests/fuzz/HARNESS_fuzz.cc (docs/design/fuzzing.md), or of each harness in
# turn with HARNESS "all". Builds build-fuzz (clang, WISP_FUZZ=ON) when needed,
# fuzzes a scratch copy of the seed corpus (build-fuzz/corpus-work/HARNESS, kept
# between runs), writes crashers to build-fuzz/crashes/HARNESS/, and prints the
# executions, the time, exec/s and any crash file. RUNS caps the executions.
# libFuzzer stops at its first finding: fix it, add the crasher to
# tests/fuzz/corpus/HARNESS, run again.
# One job, one worker: the machine is shared (nice -n 10).
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 HARNESS|all SECONDS [RUNS]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${WISP_FUZZ_BUILD:-$root/build-fuzz}
harnesses="ggml pt hf ct2 vad audio tokenizer output ledger server"

# -max_len per format: the seeds' sizes (a model's tensors, a media file's head)
# and a margin; the text formats need little.
max_len() {
  case $1 in
    ggml) echo 300000 ;;
    pt | hf | ct2 | vad) echo 160000 ;;
    audio) echo 65536 ;;
    ledger) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWISP_FUZZ=ON -DWISP_BUILD_TESTS=OFF
fi

run_one() {
  name=$1
  seconds=$2
  runs=${3:--1}
  cmake --build "$build" -j2 --target "${name}_fuzz" >/dev/null
  work=$build/corpus-work/$name
  crashes=$build/crashes/$name
  mkdir -p "$work" "$crashes"
  cp -n "$root/tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null || true
  log=$build/logs/$name-$(date -u +%Y%m%dT%H%M%S).log
  mkdir -p "$build/logs"
  status=0
  start=$(date +%s)
  nice -n 10 "$build/${name}_fuzz" "$work" -max_total_time="$seconds" -runs="$runs" -rss_limit_mb=2048 \
    -timeout=10 -max_len="$(max_len "$name")" -artifact_prefix="$crashes/" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  # libFuzzer's own count when it ends normally; the wall time when it stops at a finding.
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
  secs=${secs:-$(($(date +%s) - start))}
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  echo "$name: ${execs:-?} executions in $secs s (${rate:-?} exec/s), exit $status, log $log"
  # This run's finding, if any (earlier ones stay in $crashes).
  sed -n 's/.*Test unit written to \(.*\)/  crash file: \1/p' "$log"
}

if [ "$1" = all ]; then
  for h in $harnesses; do run_one "$h" "$2" "${3:-}"; done
else
  run_one "$1" "$2" "${3:-}"
fi
