// wisp/audio/probe.h: what a file is, judged by its content (never its name
// or extension): picking media out of folders, and their durations.
#pragma once

#include <string>

namespace wisp::audio {

struct MediaProbe {
  bool media = false;    // a container with an audio stream, a video that is
                         // not a still image, or a recognised container whose
                         // header is broken (decoding will say why)
  bool audio = false;    // it opened, with at least one audio stream
  double duration = -1;  // seconds when the header tells, -1 otherwise
};
// Never throws.
MediaProbe probe_media(const std::string& path);

}  // namespace wisp::audio
