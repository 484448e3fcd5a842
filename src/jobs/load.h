// wisp/jobs/load.h
//
// How the batch tool holds an input's audio while it is transcribed: whole in
// memory, or, for a file too long for that, as a stream that is read twice
// (a scan now, then window by window while transcribed; features/mel_stream.h)
// so that memory does not grow with the duration.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "transcribe/transcribe.h"

namespace wisp::jobs {

struct LoadedAudio {
  std::vector<float> samples;                                 // in memory, or
  std::shared_ptr<const transcribe::StreamedAudio> streamed;  // read again when transcribed

  int64_t n_samples() const { return streamed ? streamed->scan.n_samples : static_cast<int64_t>(samples.size()); }
  // The memory it holds (the samples; a stream's buffers, about 10 MB, count
  // as 0). Reserved capacity never written is not memory.
  size_t bytes() const { return samples.size() * sizeof(float); }
};

// Decodes a local file as audio::load_audio does. Audio longer than
// `stream_after_seconds` (< 0: no limit) is not kept: it is scanned with
// `filters` (transcribe's 30 s padding, on one thread) and comes back as a
// stream that opens the file again. Throws what load_audio throws.
LoadedAudio load_file(const std::string& path, const model::MelFilters& filters, double stream_after_seconds);

}  // namespace wisp::jobs
