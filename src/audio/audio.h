// wisp/audio/audio.h
//
// Media decoding with FFmpeg's libavformat/libavcodec/libswresample.
#pragma once

#include <string>
#include <vector>

namespace wisp::audio {

constexpr int kSampleRate = 16000;

// Decodes the audio stream that the ffmpeg CLI would pick (most channels,
// preferring streams seen while probing and default ones) of any file FFmpeg
// can read into 16 kHz mono float samples, exactly as openai/whisper audio.py
// load_audio does
// (`ffmpeg -nostdin -threads 0 -i F -f s16le -ac 1 -acodec pcm_s16le -ar 16000 -`,
// then int16 / 32768). Decodes as a stream: only PCM accumulates in memory.
// Bit-exact with that command on FFmpeg 5.1 (the same libraries do the work:
// same stream choice, decoder, and libswresample conversion; see audio.cc).
// Damaged packets are dropped and decoding goes on (an MP3 cut mid-frame keeps
// what decoded before the cut); like the CLI, it fails when more than 2/3 of
// decode calls fail. A stream that decodes to nothing gives an empty vector.
// Throws wisp::Error whose message is the cause alone (no file name):
//   "cannot open: <strerror>" (missing, unreadable, directory, not a regular
//   file), "empty file", "not a media file", "no audio stream",
//   "corrupt or unsupported <format> header: <ffmpeg error>",
//   "unsupported audio codec: <codec>", "cannot decode audio: <why>".
std::vector<float> load_audio(const std::string& path);

// True if libavformat recognises the file's content as a container with at
// least one audio stream that load_audio would pick (used to pick media out
// of a folder by content, whatever the extension). Never throws.
bool has_audio_stream(const std::string& path);

}  // namespace wisp::audio
