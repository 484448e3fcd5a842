// wisp/jobs/inputs.h
//
// Turning what the user named (files, folders, glob patterns, an input list)
// into the sorted, de-duplicated list of media files a batch works on.
//
// Rules:
// - A file named explicitly (or matched by a glob) is always an input, media
//   or not: if it cannot be decoded the batch says why.
// - A folder is walked recursively. Hidden entries (name starting with '.',
//   so also wisp's own .wisp/ folder) are skipped and not descended into;
//   symlinked folders are not followed (no loops). wisp's own files are
//   skipped without probing: outputs (<sibling file name>.txt|vtt|srt|tsv|json)
//   and atomic-write temp files (<name>.tmp.<pid>.<suffix>). Every other file
//   is an input when audio::probe_media() says it is media or its name has a
//   media extension (.mp3, .wav, .mp4, ...: a saved error page named .mp3
//   then fails with its cause); the rest are listed in `ignored`.
// - A glob pattern (an argument with * ? or [ that does not exist as a path)
//   matches per path component with fnmatch(FNM_PERIOD) (hidden names only by
//   a pattern that starts with '.'); "**" matches any number of folders.
//   Matched folders are walked as above.
// - An http(s) URL (jobs/url_inputs.h) is an input as given, even with ? or
//   * in it (never a glob): its key is the URL itself, and it adds no root.
// - Order: sorted by absolute path (URLs by the URL); the same file named
//   twice (or through a symlink) is one input.
#pragma once

#include <istream>
#include <string>
#include <vector>

namespace wisp::jobs {

struct Input {
  std::string path;      // for display: as given, or under the folder as given
  std::string key;       // absolute path, symlinks resolved: the ledger key
  std::string rel_dir;   // subfolder below the folder argument it was found in ("" otherwise)
  double duration = -1;  // seconds from the container header when probed, -1 unknown
  bool url = false;      // an http(s) URL: path and key are the URL (jobs/url_inputs.h)
};

struct PathError {
  std::string path;
  std::string cause;
};

struct InputSet {
  std::vector<Input> files;
  std::vector<std::string> unmatched;  // glob patterns that matched nothing
  std::vector<std::string> ignored;    // files in folders that are not media and not named like media
  std::vector<PathError> errors;       // unreadable folders
  // Folders the inputs were named from: a folder argument itself, a file's
  // parent, a glob's fixed leading folders (for the default ledger place).
  std::vector<std::string> roots;
};

// `skip_dirs`: folders never walked into (the output folder).
InputSet discover_inputs(const std::vector<std::string>& args, const std::vector<std::string>& skip_dirs = {});

// One path per line; blank lines skipped, a trailing '\r' dropped.
std::vector<std::string> read_input_list(std::istream& in);
// `path` "-" reads standard input. Throws wisp::Error when unreadable.
std::vector<std::string> read_input_list_file(const std::string& path);

bool has_glob_chars(const std::string& s);

// The deepest folder containing every root ("." when there are none).
std::string common_folder(const std::vector<std::string>& roots);

}  // namespace wisp::jobs
