// wisp/audio/audio.h
//
// Media decoding with FFmpeg's libavformat/libavcodec/libswresample.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"

namespace wisp::audio {

constexpr int kSampleRate = 16000;

// The content is not audio media ("not a media file", "no audio stream"):
// for a URL, the caller may try another way to reach its audio (a page).
class NotMedia : public Error {
 public:
  using Error::Error;
};

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
// "not a media file" and "no audio stream" are thrown as NotMedia.
std::vector<float> load_audio(const std::string& path);

// A file's audio as load_audio decodes it, a piece at a time, so that a long
// input need not be held whole (features/mel_stream.h reads it twice). The
// pieces put together are load_audio(path), bit for bit. The constructor
// throws what load_audio throws on opening; read() throws what it throws
// while decoding ("cannot decode audio: ...", "no audio: ...").
class AudioReader {
 public:
  explicit AudioReader(const std::string& path);
  ~AudioReader();
  AudioReader(AudioReader&&) noexcept;
  AudioReader& operator=(AudioReader&&) noexcept;

  // Fills `out` with the next samples; fewer only at the end (0: done).
  std::size_t read(std::span<float> out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// load_audio over bytes in memory (libavformat reads them through a custom
// AVIOContext): the same decoding, stream choice and errors, except that
// "cannot open" cannot happen and no file name helps the format probe, as
// for a file whose name has no extension. `bytes` must stay alive for the call.
std::vector<float> load_audio_memory(std::span<const uint8_t> bytes);

struct NetOptions {
  // A connection or transfer silent for this long fails (libavformat's
  // rw_timeout and tcp timeout), so that a dead server never hangs a batch.
  double timeout_seconds = 30;
};

// load_audio over http(s): libavformat streams the URL (only the http, https,
// tcp, tls, httpproxy and crypto protocols are allowed, also for the URLs a
// playlist names, so a remote playlist cannot reach local files). Throws
// NotMedia when the content is not audio media, wisp::Error otherwise:
// "cannot open: <cause>" (the server's status such as "Server returned 404
// Not Found", "Connection refused", "Connection timed out") or
// "transfer failed: <cause>" when the stream breaks off (a file's read error
// ends its audio; a URL's would silently cut the transcript).
std::vector<float> load_audio_url(const std::string& url, const NetOptions& net = {});

}  // namespace wisp::audio
