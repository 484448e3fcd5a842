// wisp/features/mel_stream.cc
//
// Both passes compute frames with mel.cc's FrameMaker over a sliding buffer
// of samples, so every frame is the same float as in the whole-signal
// log_mel_spectrogram; the floor then uses the maximum the scan found, which
// is the maximum of those same floats.
#include "features/mel_stream.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/error.h"
#include "features/mel.h"
#include "features/mel_frames.h"

namespace wisp::features {
namespace {

using detail::kCenterPad;

constexpr int64_t kBatchFrames = 3000;               // frames computed per call (30 s, enough work for the threads)
constexpr std::size_t kReadSamples = kChunkSamples;  // samples asked of a reader at once

// Samples [begin, begin + data.size()) of the audio.
struct SampleBuffer {
  std::vector<float> data;
  int64_t begin = 0;

  int64_t end() const { return begin + static_cast<int64_t>(data.size()); }
  void append(std::span<const float> s) { data.insert(data.end(), s.begin(), s.end()); }
  // Forgets the samples before index j.
  void drop_before(int64_t j) {
    const int64_t n = std::clamp<int64_t>(j - begin, 0, static_cast<int64_t>(data.size()));
    data.erase(data.begin(), data.begin() + n);
    begin += n;
  }
};

// The first sample frame t reads (its window is [start, start + 400)).
int64_t frame_start(int64_t t) { return t * kHopLength - kCenterPad; }

}  // namespace

// ---- MelScanner ---------------------------------------------------------------

struct MelScanner::State {
  detail::FrameMaker maker;
  int padding;
  int n_threads;
  SampleBuffer buf;
  int64_t next_frame = 0;
  float max_log = -std::numeric_limits<float>::infinity();
  std::vector<float> scratch;  // the frames' values, only their maximum is kept

  State(const model::MelFilters& f, int pad, int threads) : maker(f), padding(pad), n_threads(threads) {}

  // Frames [next_frame, t1) of `signal`, in batches; then the samples no
  // later frame reads are dropped.
  void compute_until(int64_t t1, const detail::SignalView& signal) {
    while (next_frame < t1) {
      const int64_t t_end = std::min(t1, next_frame + kBatchFrames);
      const int64_t count = t_end - next_frame;
      scratch.resize(static_cast<std::size_t>(count) * maker.n_mels());
      max_log = std::max(max_log, maker.compute(signal, next_frame, t_end, scratch.data(), count, n_threads));
      next_frame = t_end;
    }
  }
};

MelScanner::MelScanner(const model::MelFilters& filters, int padding, int n_threads)
    : s_(std::make_unique<State>(filters, padding, n_threads)) {
  if (padding < 0) throw Error("log_mel_spectrogram: negative padding " + std::to_string(padding));
}

MelScanner::~MelScanner() = default;

void MelScanner::push(std::span<const float> samples) {
  State& s = *s_;
  s.buf.append(samples);
  const int64_t end = s.buf.end();
  // Frame t is ready once every sample it reads is here and the audio is
  // known to be longer than 200 samples (so that its centring reflects):
  // start + 400 < end.
  const int64_t ready = end > kNFft - kCenterPad ? (end - (kNFft - kCenterPad) - 1) / kHopLength + 1 : 0;
  if (ready - s.next_frame < kBatchFrames) return;  // wait for a batch's worth
  const detail::SignalView signal{s.buf.data, s.buf.begin, end, end + s.padding, true};
  s.compute_until(ready, signal);
  s.buf.drop_before(frame_start(s.next_frame));
}

MelScan MelScanner::finish() {
  State& s = *s_;
  const int64_t n = s.buf.end();
  const int64_t total = n + s.padding;
  const detail::SignalView signal{s.buf.data, s.buf.begin, n, total, total > kCenterPad};
  s.compute_until(mel_frame_count(n, s.padding), signal);
  s.buf = {};
  return {n, s.max_log};
}

MelScan scan_mel(const SampleReader& reader, const model::MelFilters& filters, int padding, int n_threads) {
  MelScanner scanner(filters, padding, n_threads);
  std::vector<float> piece(kReadSamples);
  for (std::size_t got; (got = reader(piece)) > 0;) scanner.push(std::span<const float>(piece).first(got));
  return scanner.finish();
}

// ---- MelWindows ---------------------------------------------------------------

struct MelWindows::State {
  SampleSource source;
  SampleReader reader;
  MelScan scan;
  detail::FrameMaker maker;
  int padding;
  int n_threads;
  int total_frames;
  float floor;
  SampleBuffer buf;
  std::vector<float> piece;
  // Frames [lo, hi) held as [n_mels][capacity] (column 0 is frame lo).
  int64_t capacity = kChunkFrames + kBatchFrames;
  std::vector<float> store;
  int64_t lo = 0, hi = 0;

  State(SampleSource src, const MelScan& sc, const model::MelFilters& f, int pad, int threads)
      : source(std::move(src)),
        scan(sc),
        maker(f),
        padding(pad),
        n_threads(threads),
        total_frames(mel_frame_count(sc.n_samples, pad)),
        floor(sc.max_log - 8.0f) {
    store.resize(static_cast<std::size_t>(maker.n_mels()) * capacity);
  }

  void restart() {
    reader = source();
    buf = {};
    lo = hi = 0;
  }

  // Forgets frames before t (t >= lo); jumps ahead when t is past hi.
  void drop_frames_before(int64_t t) {
    if (t >= hi) {
      lo = hi = t;
      return;
    }
    const int64_t keep = hi - t, shift = t - lo;
    if (shift > 0) {
      for (int m = 0; m < maker.n_mels(); ++m) {
        float* row = store.data() + static_cast<std::size_t>(m) * capacity;
        std::copy(row + shift, row + shift + keep, row);
      }
    }
    lo = t;
  }

  // Reads until the buffer holds every sample before `until`.
  void read_until(int64_t until) {
    piece.resize(kReadSamples);
    while (buf.end() < until) {
      const std::size_t got = reader(piece);
      if (got == 0 || buf.end() + static_cast<int64_t>(got) > scan.n_samples) {
        throw Error("the audio changed while it was read (" + std::to_string(scan.n_samples) +
                    " samples in the first pass, not in the second)");
      }
      buf.append(std::span<const float>(piece).first(got));
    }
  }

  // Computes frames up to `stop` into the store.
  void compute_until(int64_t stop) {
    const int64_t total = scan.n_samples + padding;
    while (hi < stop) {
      const int64_t t1 = std::min({static_cast<int64_t>(total_frames), hi + kBatchFrames, lo + capacity});
      read_until(std::min(scan.n_samples, frame_start(t1 - 1) + kNFft));
      // Samples no frame from hi on reads: those of earlier windows, and
      // those read through after a jump ahead.
      buf.drop_before(frame_start(hi));
      const detail::SignalView signal{buf.data, buf.begin, scan.n_samples, total, total > kCenterPad};
      maker.compute(signal, hi, t1, store.data() + (hi - lo), capacity, n_threads);
      hi = t1;
    }
  }
};

MelWindows::MelWindows(SampleSource source, const MelScan& scan, const model::MelFilters& filters, int padding,
                       int n_threads)
    : s_(std::make_unique<State>(std::move(source), scan, filters, padding, n_threads)) {
  if (padding < 0) throw Error("log_mel_spectrogram: negative padding " + std::to_string(padding));
  s_->restart();
}

MelWindows::~MelWindows() = default;

int MelWindows::n_frames() const { return s_->total_frames; }

std::vector<float> MelWindows::window(int offset, int n_frames) {
  if (offset < 0) throw Error("mel_window: negative offset " + std::to_string(offset));
  if (n_frames < 0) throw Error("mel_window: negative frame count " + std::to_string(n_frames));
  State& s = *s_;
  const int n_mels = s.maker.n_mels();
  std::vector<float> out(static_cast<std::size_t>(n_mels) * kChunkFrames, 0.0f);
  // As mel_window: mel[:, offset : offset + n_frames], then pad_or_trim to 3000.
  const int64_t stop = std::min<int64_t>(
      {static_cast<int64_t>(offset) + n_frames, s.total_frames, static_cast<int64_t>(offset) + kChunkFrames});
  const int64_t count = std::max<int64_t>(0, stop - offset);
  if (count == 0) return out;
  if (offset < s.lo) s.restart();
  s.drop_frames_before(offset);
  s.compute_until(stop);
  for (int m = 0; m < n_mels; ++m) {
    const float* src = s.store.data() + static_cast<std::size_t>(m) * s.capacity;
    float* dst = out.data() + static_cast<std::size_t>(m) * kChunkFrames;
    for (int64_t i = 0; i < count; ++i) dst[i] = detail::finish(src[i], s.floor);
  }
  return out;
}

}  // namespace wisp::features
