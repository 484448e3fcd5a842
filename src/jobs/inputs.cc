#include "jobs/inputs.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "audio/probe.h"
#include "common/error.h"
#include "jobs/url_inputs.h"

namespace wisp::jobs {
namespace {

namespace fs = std::filesystem;

constexpr const char* kOutputExts[] = {".txt", ".vtt", ".srt", ".tsv", ".json"};

bool is_hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

// Named like audio or video: such a file in a folder is an input even when
// its content is not media (a scraper's saved 404 page, an ID3 tag with no
// audio), so that it fails with its cause instead of vanishing.
bool has_media_extension(const std::string& name) {
  static const char* const kExtensions[] = {"mp3",  "wav",  "flac", "m4a", "m4b", "aac", "ogg", "oga", "opus",
                                            "webm", "mkv",  "mka",  "mp4", "m4v", "mov", "avi", "wma", "wmv",
                                            "aif",  "aiff", "amr",  "3gp", "ts",  "flv", "mpg", "mpeg"};
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* e : kExtensions)
    if (ext == e) return true;
  return false;
}

// output::write_file_atomic's temp files: "<name>.tmp.<pid>.<suffix>".
bool is_temp_name(const std::string& name) {
  for (size_t pos = name.find(".tmp."); pos != std::string::npos; pos = name.find(".tmp.", pos + 1)) {
    size_t i = pos + 5;
    size_t digits = 0;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i, ++digits;
    if (digits > 0 && i < name.size() && name[i] == '.') return true;
  }
  return false;
}

// "<sibling>.srt" next to "<sibling>": a transcript wisp (or openai) wrote.
bool is_output_of_sibling(const std::string& name, const std::set<std::string>& names) {
  for (const char* ext : kOutputExts) {
    size_t n = std::strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0 && names.count(name.substr(0, name.size() - n)))
      return true;
  }
  return false;
}

std::string key_of(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::canonical(p, ec);
  if (!ec) return c.string();
  return fs::absolute(p, ec).lexically_normal().string();
}

struct Walker {
  InputSet& out;
  std::set<std::string> skip_dirs;  // canonical folders not to walk (the output folder)

  void add_file(const fs::path& p, const std::string& rel_dir, double duration) {
    out.files.push_back({p.string(), key_of(p), rel_dir, duration});
  }

  // Walks `dir` (shown as `shown`), `rel` being its path below the folder argument.
  void walk(const fs::path& shown, const fs::path& rel) {
    std::error_code ec;
    fs::directory_iterator it(shown, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
      out.errors.push_back({shown.string(), ec.message()});
      return;
    }
    std::vector<fs::directory_entry> entries;
    std::set<std::string> names;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) {
        out.errors.push_back({shown.string(), ec.message()});
        break;
      }
      names.insert(it->path().filename().string());
      entries.push_back(*it);
    }
    std::sort(entries.begin(), entries.end(),
              [](const fs::directory_entry& a, const fs::directory_entry& b) { return a.path() < b.path(); });
    for (const fs::directory_entry& e : entries) {
      std::string name = e.path().filename().string();
      if (is_hidden(name)) continue;
      std::error_code sec;
      if (e.is_directory(sec) && !e.is_symlink(sec)) {
        if (skip_dirs.count(key_of(e.path()))) continue;
        walk(e.path(), rel / name);
        continue;
      }
      if (!e.is_regular_file(sec)) continue;  // sockets, fifos, dangling links, linked folders
      if (is_temp_name(name) || is_output_of_sibling(name, names)) continue;
      const audio::MediaProbe m = audio::probe_media(e.path().string());
      if (m.media || has_media_extension(name))
        add_file(e.path(), rel.string(), m.duration);
      else
        out.ignored.push_back(e.path().string());
    }
  }

  void add_folder(const fs::path& dir, bool from_glob) {
    if (!from_glob) out.roots.push_back(key_of(dir));
    walk(dir, fs::path());
  }

  // A named path (argument or glob match): folders are walked, anything else is an input.
  void add_named(const fs::path& p, bool from_glob) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      if (from_glob && skip_dirs.count(key_of(p))) return;
      add_folder(p, from_glob);
      return;
    }
    if (!from_glob) out.roots.push_back(fs::absolute(p, ec).parent_path().lexically_normal().string());
    add_file(p, "", -1);
  }

  // Matches components [i..] of a glob below `base` (shown as given).
  void glob(const fs::path& base, const std::vector<std::string>& comps, size_t i, std::vector<fs::path>& hits) {
    std::error_code ec;
    if (i == comps.size()) {
      if (fs::exists(base, ec)) hits.push_back(base);
      return;
    }
    const std::string& c = comps[i];
    fs::path dir = base.empty() ? fs::path(".") : base;
    if (c == "**") {
      glob(base, comps, i + 1, hits);  // zero folders
      fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
      std::vector<fs::path> subs;
      for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::string name = it->path().filename().string();
        std::error_code sec;
        if (!is_hidden(name) && it->is_directory(sec) && !it->is_symlink(sec)) subs.push_back(base / name);
      }
      std::sort(subs.begin(), subs.end());
      for (const fs::path& s : subs) glob(s, comps, i, hits);
      return;
    }
    if (!has_glob_chars(c)) {
      glob(base / c, comps, i + 1, hits);
      return;
    }
    fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    std::vector<fs::path> matches;
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (::fnmatch(c.c_str(), name.c_str(), FNM_PERIOD) == 0) matches.push_back(base / name);
    }
    std::sort(matches.begin(), matches.end());
    for (const fs::path& m : matches) glob(m, comps, i + 1, hits);
  }

  void add_glob(const std::string& pattern) {
    std::vector<std::string> comps;
    fs::path base;
    size_t pos = 0;
    if (!pattern.empty() && pattern[0] == '/') {
      base = "/";
      pos = 1;
    }
    while (pos <= pattern.size()) {
      size_t slash = pattern.find('/', pos);
      std::string c = pattern.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      if (!c.empty()) comps.push_back(c);
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    // The fixed leading folders are where the batch "is" (default ledger place).
    fs::path fixed = base;
    for (const std::string& c : comps) {
      if (has_glob_chars(c) || c == "**") break;
      fixed /= c;
    }
    std::error_code ec;
    out.roots.push_back(fs::absolute(fixed.empty() ? fs::path(".") : fixed, ec).lexically_normal().string());
    std::vector<fs::path> hits;
    glob(base, comps, 0, hits);
    if (hits.empty()) out.unmatched.push_back(pattern);
    for (const fs::path& h : hits) {
      std::string name = h.filename().string();
      std::error_code sec;
      if (!fs::is_directory(h, sec) && (is_temp_name(name))) continue;
      add_named(h, true);
    }
  }
};

}  // namespace

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

InputSet discover_inputs(const std::vector<std::string>& args, const std::vector<std::string>& skip_dirs) {
  InputSet out;
  Walker w{out, {}};
  for (const std::string& d : skip_dirs)
    if (!d.empty()) w.skip_dirs.insert(key_of(d));
  for (const std::string& a : args) {
    if (is_url(a)) {
      out.files.push_back({a, a, "", -1, true});
      continue;
    }
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(a, ec)) && has_glob_chars(a))
      w.add_glob(a);
    else
      w.add_named(a, false);
  }
  // Sorted by absolute path; the first spelling of a file wins.
  std::stable_sort(out.files.begin(), out.files.end(), [](const Input& a, const Input& b) { return a.key < b.key; });
  out.files.erase(
      std::unique(out.files.begin(), out.files.end(), [](const Input& a, const Input& b) { return a.key == b.key; }),
      out.files.end());
  // A file skipped in a folder but also named on its own is an input.
  std::set<std::string> keys;
  for (const Input& in : out.files) keys.insert(in.key);
  std::erase_if(out.ignored, [&](const std::string& p) { return keys.count(key_of(p)) > 0; });
  return out;
}

std::vector<std::string> read_input_list(std::istream& in) {
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> read_input_list_file(const std::string& path) {
  if (path == "-") return read_input_list(std::cin);
  std::ifstream f(path);
  if (!f) throw Error("cannot read input list " + path + ": " + std::strerror(errno));
  return read_input_list(f);
}

std::string common_folder(const std::vector<std::string>& roots) {
  if (roots.empty()) return ".";
  fs::path common = fs::path(roots[0]);
  for (size_t i = 1; i < roots.size(); ++i) {
    fs::path p(roots[i]);
    fs::path next;
    auto a = common.begin(), b = p.begin();
    for (; a != common.end() && b != p.end() && *a == *b; ++a, ++b)
      if (!a->empty()) next /= *a;
    common = next;
  }
  return common.empty() ? "/" : common.string();
}

}  // namespace wisp::jobs
