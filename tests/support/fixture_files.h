// fixture_files.h: the files a test-data folder ships, without what wisp
// itself may have written there. The README's first command transcribes a
// bundled clip in place; tests must still see the folder as it was cloned.
#pragma once

#include <algorithm>
#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace wisp::testing_support {

// Sorted regular files of `dir`, skipping hidden entries (.wisp/ ledgers,
// temp files) and outputs named `<input>.<txt|vtt|srt|tsv|json>` whose input
// is in the same folder (wisp's naming, as openai's writers).
inline std::vector<std::filesystem::path> fixture_files(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  static constexpr std::array<const char*, 5> kOutputExts = {".txt", ".vtt", ".srt", ".tsv", ".json"};
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const fs::path& p = e.path();
    if (p.filename().string().rfind('.', 0) == 0 || !e.is_regular_file()) continue;
    std::string ext = p.extension().string();
    bool output_ext = std::find(kOutputExts.begin(), kOutputExts.end(), ext) != kOutputExts.end();
    fs::path input = p;
    input.replace_extension();
    if (output_ext && input.has_extension() && fs::is_regular_file(input)) continue;
    files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace wisp::testing_support
