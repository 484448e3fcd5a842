#!/bin/sh
# scripts/sanitize.sh thread|address [CTEST_REGEX]
#
# Before landing threading changes: builds wisp with ThreadSanitizer
# (build-tsan) or AddressSanitizer + UndefinedBehaviorSanitizer (build-asan),
# runs the tests that exercise the threads (or those CTEST_REGEX selects),
# and exits non-zero on any sanitizer report, in a test or in a wisp process
# a test started. docs/design/sanitizers.md says what each run covers and
# how long it takes.
#
# Environment: JOBS (build and ctest parallelism, default 2); TARGETS (the
# executables to build, default the list below; "all" for the whole suite,
# whose tests a CTEST_REGEX can then select).
set -eu

usage() {
  echo "usage: $0 thread|address [ctest -R regex]" >&2
  exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
mode=$1
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}

# By default only these test executables are built, so ctest runs their
# tests (the others are not registered in that build folder). The tests
# that run threads of wisp's own: the step batcher and its gate
# (batched_test, serve_gate_equal_test), the server's live batcher,
# scheduler and HTTP threads (server_unit_test, serve_test), prefetch
# (jobs_test), the batch tool (batch_cli_test), the VAD (vad_model_test),
# the queue worker (queue_test; needs PostgreSQL's binaries, see
# tests/queue/pg_cluster.sh).
threaded_targets="wisp batch_cli_test jobs_test batched_test serve_test server_unit_test serve_gate_equal_test
  vad_model_test queue_test"
# address adds the parsers of untrusted bytes: media, models, tokenizer
# files, subtitles, URLs and names, the CLI's flags, the spectrogram, and
# the fuzz corpora replayed (tests/fuzz).
parser_targets="audio_test model_test formats_test writers_test tokenizer_test output_test models_cache_test
  url_inputs_test cli_test mel_test ggml_replay pt_replay hf_replay ct2_replay vad_replay audio_replay
  tokenizer_replay output_replay ledger_replay server_replay"
# Left out of the default runs: the placeholders CTest registers for the
# executables not built, compile probes (no code runs), and the node and
# chromium clients (slow; skipped where node is missing).
exclude='_NOT_BUILT$|^(layering\.|serve_openai_client_test$|serve_page_test$)'
pattern=.

logs=$(mktemp -d "${TMPDIR:-/tmp}/wisp-sanitize.XXXXXX")
case $mode in
  thread)
    build=$root/build-tsan
    flags="-DWISP_TSAN=ON -DWISP_SANITIZE=OFF"
    targets=$threaded_targets
    exclude="$exclude|^fuzz_replay\\."  # single-threaded parsers: the address run replays them
    # Reports go to files too (log_path), so that one in a wisp process
    # whose exit status a test does not check still fails the run.
    TSAN_OPTIONS="suppressions=$root/tests/sanitizers/tsan.supp halt_on_error=1 second_deadlock_stack=1 log_path=$logs/tsan"
    export TSAN_OPTIONS
    # libgomp (OpenMP, oneDNN's threads too) is not instrumented: its
    # barriers are invisible to TSan, which then reports every parallel
    # loop's hand-over as a race. One thread per parallel region removes
    # them without suppressing any of wisp's code; wisp's own threads
    # (batchers, prefetch, server, workers) still run side by side.
    OMP_THREAD_LIMIT=1
    export OMP_THREAD_LIMIT
    # Clients in the tests wait this many times longer for answers.
    WISP_TEST_TIMEOUT_SCALE=10
    export WISP_TEST_TIMEOUT_SCALE
    ;;
  address)
    build=$root/build-asan
    flags="-DWISP_SANITIZE=ON -DWISP_TSAN=OFF"
    targets="$threaded_targets $parser_targets"
    ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:log_path=$logs/asan"
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
    export ASAN_OPTIONS UBSAN_OPTIONS
    WISP_TEST_TIMEOUT_SCALE=3
    export WISP_TEST_TIMEOUT_SCALE
    ;;
  *) usage ;;
esac
targets=${TARGETS:-$targets}
[ $# -eq 2 ] && pattern=$2

start=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo $flags >/dev/null
if [ "$targets" = all ]; then
  cmake --build "$build" -j "$jobs"
else
  # shellcheck disable=SC2086 # a list of targets
  cmake --build "$build" -j "$jobs" --target $targets
fi
built=$(date +%s)

status=0
ctest --test-dir "$build" -R "$pattern" -E "$exclude" -j "$jobs" --output-on-failure --no-tests=error || status=$?
end=$(date +%s)

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  for f in $reports; do
    echo "==== $f"
    cat "$f"
  done
  echo "$mode sanitizer: $(echo "$reports" | wc -l) report file(s) above" >&2
  status=1
fi
rm -rf "$logs"
echo "$mode sanitizer: build $((built - start)) s, tests $((end - built)) s, status $status" >&2
exit $status
