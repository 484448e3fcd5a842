// wisp/audio/audio.h
//
// Media decoding with FFmpeg's libavformat/libavcodec/libswresample.
#pragma once

#include <string>
#include <vector>

namespace wisp::audio {

constexpr int kSampleRate = 16000;

// Decodes the first audio stream of any file FFmpeg can read into 16 kHz mono
// float samples, exactly as openai/whisper audio.py load_audio does
// (`ffmpeg -nostdin -threads 0 -i F -f s16le -ac 1 -acodec pcm_s16le -ar 16000 -`,
// then int16 / 32768). Decodes as a stream: only PCM accumulates in memory.
// A damaged tail (e.g. an MP3 cut mid-frame) keeps what decoded before it.
// Throws wisp::Error whose message is the cause alone, e.g. "empty file",
// "not a media file", "no audio stream", "cannot open: No such file or directory".
std::vector<float> load_audio(const std::string& path);

// True if libavformat recognises the file's content as a container with at
// least one audio stream (used to pick media out of a folder by content).
bool has_audio_stream(const std::string& path);

}  // namespace wisp::audio
