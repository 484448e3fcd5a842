// wisp/cli/vad_flags.h: faster-whisper's VadOptions as command-line flags
// (`wisp transcribe`, `wisp vad`). The vad module knows nothing of CLI11.
#pragma once

#include "vad/timestamps.h"

namespace CLI {
class App;
}

namespace wisp::cli {

// Registers faster-whisper's VAD options as flags on a command, writing into o:
// --vad_threshold, --vad_neg_threshold (a number or None), --vad_min_speech_duration_ms,
// --vad_max_speech_duration_s (a number or inf), --vad_min_silence_duration_ms,
// --vad_speech_pad_ms; each also spelt with '-' (--vad-threshold). Bad values
// are CLI11 validation errors. o must outlive the parse (the flags write into
// it as they are read). (--vad_filter itself belongs to the command.)
void add_vad_flags(CLI::App* app, vad::VadOptions& o);

}  // namespace wisp::cli
