// wisp/features/mel.h
//
// Whisper's log-mel spectrogram, reproducing openai/whisper audio.py
// log_mel_spectrogram: torch.stft(n_fft=400, hop=160, periodic Hann window,
// center=True with reflect padding), power spectrum without the last frame,
// mel filters, log10 with a 1e-10 clamp, floor at (global max - 8), (x + 4) / 4.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/model.h"

namespace wisp::features {

constexpr int kNFft = 400;
constexpr int kHopLength = 160;
constexpr int kChunkSamples = 480000;  // 30 s at 16 kHz
constexpr int kChunkFrames = 3000;     // frames in one 30 s window

struct Mel {
  int n_mels = 0;
  int n_frames = 0;
  std::vector<float> data;  // [n_mels][n_frames], row-major
};

// log_mel_spectrogram(audio, n_mels, padding): `padding` zero samples are
// appended before the STFT (transcribe() passes 30 s). The result has
// (n_samples + padding) / 160 frames. `filters` must be [n_mels][201].
// Throws wisp::Error on bad filters or a negative padding. n_threads < 1
// counts as 1. Signals of 200 samples or fewer (padding included), which
// torch's reflect padding rejects, are centred with zeros instead.
Mel log_mel_spectrogram(std::span<const float> samples, int padding, const model::MelFilters& filters, int n_threads);

// (n_samples + padding) / 160: the frames log_mel_spectrogram gives.
int mel_frame_count(int64_t n_samples, int padding);

// Plain reference twin of log_mel_spectrogram (same contract, one thread):
// materialised padded signal, O(n^2) DFT, dense filter product. Slow; for
// tests that pin the fast path.
Mel log_mel_spectrogram_reference(std::span<const float> samples, int padding, const model::MelFilters& filters);

// openai pad_or_trim(mel[:, offset : offset + n_frames], 3000): a
// [n_mels][3000] window starting at frame `offset`; frames past the end of
// `mel` (or past offset + n_frames) are zero. Throws wisp::Error if offset
// or n_frames is negative or mel.data does not hold n_mels * n_frames values.
std::vector<float> mel_window(const Mel& mel, int offset, int n_frames);

}  // namespace wisp::features
