#!/usr/bin/env bash
# The measurements of docs/benchmarks.md ("Reproducing"), as one
# script for a lent machine, run from the root of the copied checkout:
#
#   tests/perf/device_run.sh DIR
#
# DIR holds bundle.tar.xz (device_bundle.sh of wisp, the test binaries
# nn_test, lowp_test, onednn_s8_test, kernels_test, decode_batch_test,
# fidelity_test, and the onednn_rates tool),
# wcpp-bin/ (whisper-bench and whisper-cli built for that CPU), clips/ (the
# 20 clips) and coastline_5min.wav (the 5-minute file as 16 kHz mono WAV,
# for the end-to-end step). Results go to stdout and to $OUT
# (default /tmp/out). Each step has a time limit, so a slow step cannot eat
# the lease; SRC (default /work/main) is where the test binaries were built.
set -u
dir=$(cd "$1" && pwd)
out=${OUT:-/tmp/out}
src=${SRC:-/work/main}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
t0=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t0 ))s] $*"; }
mkdir -p "$(dirname "$src")"
[ -e "$src" ] || ln -s "$PWD" "$src"
rm -rf /tmp/w /tmp/m /tmp/sbs /tmp/tp /tmp/e2e
mkdir -p /tmp/w && tar -C /tmp/w -xJf "$dir/bundle.tar.xz" || exit 3
export LD_LIBRARY_PATH=/tmp/w/lib
B=/tmp/w/bin W=$dir/wcpp-bin
[ -x /usr/bin/time ] || cp "$B/time" /usr/bin/time
if ! command -v bc > /dev/null; then
  printf '#!/bin/sh\nexec python3 -c "import sys; print(eval(sys.stdin.read()))"\n' > /usr/local/bin/bc
  chmod +x /usr/local/bin/bc
fi
lscpu | grep -E "Model name|Core|Thread|L2|L3"
echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E 'avx512|amx' | tr '\n' ' ')"

step models
mkdir -p /tmp/m
for spec in "tiny 4" "base 5" "small 6"; do
  set -- $spec
  "$B/wisp" dev make-model --preset "$1" --seed "$2" --dtype f16 -o "/tmp/m/ggml-$1-s$2-f16.bin" > /dev/null
done

step "tests of the kernels and the network on this CPU"
for t in lowp_test onednn_s8_test kernels_test nn_test decode_batch_test; do
  [ -x "$B/$t" ] || continue
  timeout 60 "$B/$t" --gtest_brief=1 > "$out/$t.txt" 2>&1
  echo "$t rc=$? $(grep -E 'PASSED|FAILED  \] [0-9]' "$out/$t.txt" | tr '\n' ' ')"
done
[ -x "$B/fidelity_test" ] && timeout 300 "$B/fidelity_test" --gtest_filter='*int8*' 2>&1 |
  grep -E "cases: |PASSED|FAILED"

step "side by side, 2 threads, int8"
for m in tiny-s4 base-s5 small-s6; do
  QUIET_TRIES=0 THREADS=2 TYPES=int8 timeout 150 bash tests/perf/side_by_side.sh "$B/wisp" "$W" /tmp/sbs \
    "/tmp/m/ggml-$m-f16.bin" 2>&1 | grep -v "never quiet"
done
cat /tmp/sbs/results.tsv
cp /tmp/sbs/results.tsv "$out/"

step "the int8 encoder's two paths (WISP_INT8_ENCODER), 2 threads, wisp bench"
# oneDNN's own log of every product: the implementation it picked, the
# shapes, the mean ms per call (a bench run: 4 encoder passes).
DNNL_VERBOSE=1 WISP_INT8_ENCODER=onednn timeout 90 "$B/wisp" bench --model /tmp/m/ggml-tiny-s4-f16.bin \
  --threads 2 --compute_type int8 --json 2>&1 | awk -F, '/^onednn_verbose,info,cpu,isa/ {print}
  /^onednn_verbose,exec,cpu,matmul/ {k = $5 " " $(NF-1); n[k]++; t[k] += $NF}
  END {for (k in n) printf "%s: %d calls, %.4f ms each\n", k, n[k], t[k] / n[k]}' | sort
for m in tiny-s4 base-s5 small-s6; do
  for e in wisp onednn; do
    WISP_INT8_ENCODER=$e timeout 60 "$B/wisp" bench --model "/tmp/m/ggml-$m-f16.bin" --threads 2 --stages \
      --compute_type int8 --json | tail -1 | tee -a "$out/encoders.jsonl"
  done
done

step "the oneDNN path's heads per attention task: the L2's choice (above) against the old one"
# Before a9f7054 the tasks took as many heads as divide n_head up to 8:
# tiny 6, base 8, small 6. attention_heads_per_task in the JSON says which ran.
for spec in "tiny-s4 6" "base-s5 8" "small-s6 6"; do
  set -- $spec
  WISP_ATTENTION_HEADS=$2 timeout 60 "$B/wisp" bench --model "/tmp/m/ggml-$1-f16.bin" --threads 2 --stages \
    --compute_type int8 --json | tail -1 | tee -a "$out/encoders.jsonl"
done

step "oneDNN's own matmul rates on the encoder's shapes: with AMX, then AVX-512 VNNI only"
if [ -x "$B/onednn_rates" ]; then
  timeout 60 "$B/onednn_rates" | tee "$out/onednn_rates.txt"
  DNNL_MAX_CPU_ISA=AVX512_CORE_VNNI timeout 60 "$B/onednn_rates" | tee -a "$out/onednn_rates.txt"
fi

step "the encoder's self-attention per number of heads per task (the L2 picks the default)"
[ -x "$B/onednn_rates" ] && timeout 60 "$B/onednn_rates" --attention | tee "$out/attention_heads.txt"

step "end to end, the 5-minute file, tiny int8, 2 threads"
[ -f "$dir/coastline_5min.wav" ] && QUIET_TRIES=0 THREADS=2 TYPES=int8 E2E_AUDIO="$dir/coastline_5min.wav" \
  timeout 150 bash tests/perf/side_by_side.sh "$B/wisp" "$W" /tmp/e2e /tmp/m/ggml-tiny-s4-f16.bin 2>&1 |
  grep -v "never quiet" && cat /tmp/e2e/e2e.tsv && cp /tmp/e2e/e2e.tsv "$out/"

step "throughput mode, tiny int8, 16 threads"
THREADS=16 BATCH=16 MODES="sequential-vad batched" TYPES=int8 timeout 120 bash tests/perf/throughput.sh \
  "$B/wisp" "$W" /tmp/m/ggml-tiny-s4-f16.bin /tmp/tp "$dir"/clips/*
step done
