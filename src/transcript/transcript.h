// wisp/transcript/transcript.h
//
// What a transcription produces, in the shape of openai/whisper transcribe()'s
// result dict: segments with their decoding statistics and, with word
// timestamps, their words. Every stage after decoding (word timing, writers,
// the batch tool, the server) speaks these types, so they sit low, with no
// dependency of their own.
#pragma once

#include <string>
#include <vector>

namespace wisp {

// One word of a segment (openai timing.py add_word_timestamps: the dict
// word, start, end, probability, in that key order).
struct Word {
  std::string word;    // UTF-8, with its leading space / merged punctuation
  double start = 0.0;  // seconds
  double end = 0.0;
  double probability = 0.0;
};

struct Segment {
  int id = 0;
  int seek = 0;        // in mel frames, as openai reports it
  double start = 0.0;  // seconds
  double end = 0.0;
  std::string text;  // UTF-8, leading space as decoded
  std::vector<int> tokens;
  double temperature = 0.0;
  double avg_logprob = 0.0;
  double compression_ratio = 0.0;
  double no_speech_prob = 0.0;
  std::vector<Word> words;  // with word timestamps (empty for cleared segments)
};

struct Transcript {
  std::string language;  // "en"
  std::string text;      // concatenation of segment texts
  std::vector<Segment> segments;
  // Transcribed with word timestamps: every segment carries "words" (JSON),
  // and srt/vtt are laid out from the words as openai's SubtitlesWriter does.
  bool word_timestamps = false;
};

}  // namespace wisp
