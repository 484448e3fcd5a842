#include "jobs/load.h"

#include <algorithm>
#include <span>

#include "audio/audio.h"
#include "features/mel.h"
#include "features/mel_stream.h"

namespace wisp::jobs {
namespace {

constexpr std::size_t kPiece = 30 * audio::kSampleRate;
constexpr std::size_t kReserveMax = std::size_t{3600} * audio::kSampleRate;  // an hour

// Opens `path` from its start at every call (each pass of MelWindows).
features::SampleSource file_source(const std::string& path) {
  return [path] {
    auto reader = std::make_shared<audio::AudioReader>(path);
    return features::SampleReader([reader](std::span<float> out) { return reader->read(out); });
  };
}

}  // namespace

LoadedAudio load_file(const std::string& path, const model::MelFilters& filters, double stream_after_seconds) {
  if (stream_after_seconds < 0) return {audio::load_audio(path), nullptr};
  const auto limit = static_cast<std::size_t>(stream_after_seconds * audio::kSampleRate);
  audio::AudioReader reader(path);
  LoadedAudio out;
  std::vector<float> piece(kPiece);
  std::size_t got = 0;
  // Short audio, the usual case, is decoded once and kept. Reserving up to
  // the limit costs address space, not memory: pages count once written, and
  // no growth copies the samples.
  out.samples.reserve(std::min(limit, kReserveMax) + kPiece);
  while (out.samples.size() <= limit && (got = reader.read(piece)) > 0)
    out.samples.insert(out.samples.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(got));
  if (out.samples.size() <= limit) return out;
  // Too long: the rest only passes through the scan, and the transcription
  // decodes the file again.
  features::MelScanner scanner(filters, features::kChunkSamples, 1);
  scanner.push(out.samples);
  out.samples = {};
  while ((got = reader.read(piece)) > 0) scanner.push(std::span<const float>(piece).first(got));
  out.streamed =
      std::make_shared<const transcribe::StreamedAudio>(transcribe::StreamedAudio{file_source(path), scanner.finish()});
  return out;
}

}  // namespace wisp::jobs
