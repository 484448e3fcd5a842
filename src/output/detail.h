// wisp/output/detail.h
//
// Helpers shared by the writers' source files (not part of the module's API).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "output/writers.h"

namespace wisp::output::detail {

// round(seconds * 1000.0) as Python computes it (round-half-even); negative
// times give 0; NaN, infinite or absurd values throw wisp::Error.
std::int64_t to_milliseconds(double seconds);

// utils.py format_timestamp after its round().
std::string format_milliseconds(std::int64_t ms, bool always_include_hours, const char* decimal);

// Python's str.replace(old, new): left to right, non-overlapping.
std::string replace_all(const std::string& s, std::string_view from, std::string_view to);

// The srt / vtt files (subtitles.cc).
std::string render_srt(const Transcript& t, const WriterOptions& options);
std::string render_vtt(const Transcript& t, const WriterOptions& options);

}  // namespace wisp::output::detail
