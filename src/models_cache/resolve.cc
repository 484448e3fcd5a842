#include "models_cache/resolve.h"

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace wisp::models_cache {
namespace {

namespace fs = std::filesystem;

bool is_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows the hub cache's symlinks into blobs/
}

bool is_folder(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// "ORG/REPO@REV/FILE..." after "hf:".
ModelSpec parse_hub_spec(const std::string& text) {
  ModelSpec spec;
  spec.kind = ModelSpec::Kind::kHubRepo;
  spec.text = text;
  const std::string rest = text.substr(3);
  const size_t slash1 = rest.find('/');
  if (slash1 == std::string::npos || slash1 == 0)
    throw Error("model '" + text + "': expected hf:ORG/REPO[@REV][/FILE]");
  const size_t slash2 = rest.find('/', slash1 + 1);
  std::string repo_rev = rest.substr(0, slash2);
  if (slash2 != std::string::npos) spec.file = rest.substr(slash2 + 1);
  const size_t at = repo_rev.find('@');
  if (at != std::string::npos) {
    spec.revision = repo_rev.substr(at + 1);
    repo_rev.resize(at);
  }
  spec.repo = repo_rev;
  if (spec.repo.size() <= slash1 + 1 || spec.revision.empty() || spec.file.find("..") != std::string::npos ||
      spec.revision.find("..") != std::string::npos)
    throw Error("model '" + text + "': expected hf:ORG/REPO[@REV][/FILE]");
  return spec;
}

// A file's layout by its name, for listing; the loader decides by content.
Layout file_layout(const std::string& file) {
  if (file.size() > 3 && file.compare(file.size() - 3, 3, ".pt") == 0) return Layout::kPtFile;
  return Layout::kHubFile;
}

}  // namespace

// Where a snapshot would be, for messages: "models--ORG--REPO/snapshots/(refs/main)".
static std::string missing_snapshot(const Locations& loc, const std::string& repo) {
  return loc.hub_cache + "/" + hub_repo_folder(repo) + "/snapshots/(refs/main)";
}

std::string hub_repo_folder(const std::string& repo) {
  std::string out = "models--";
  for (char c : repo) out += c == '/' ? std::string("--") : std::string(1, c);
  return out;
}

std::string wisp_repo_folder(const Locations& loc, const std::string& repo, const std::string& revision) {
  return loc.wisp_cache + "/hub/" + repo + "/" + revision;
}

std::string hub_snapshot(const std::string& hub_cache, const std::string& repo, const std::string& revision) {
  const std::string root = hub_cache + "/" + hub_repo_folder(repo);
  std::string commit = read_first_line(root + "/refs/" + revision);
  if (commit.empty()) commit = revision;  // a commit hash, or a revision never fetched
  const std::string snapshot = root + "/snapshots/" + commit;
  return is_folder(snapshot) ? snapshot : std::string();
}

ModelSpec parse_model_spec(const std::string& text) {
  if (text.empty()) throw Error("no model given");
  ModelSpec spec;
  spec.text = text;
  if (is_file(text) || is_folder(text)) return spec;  // kPath
  if (text.rfind("hf:", 0) == 0) return parse_hub_spec(text);
  if (auto known = find_known_model(text)) {
    spec.kind = ModelSpec::Kind::kName;
    spec.known = *known;
    return spec;
  }
  // Something that looks like a path is one, missing: the loader names it.
  const std::string ext = fs::path(text).extension().string();
  if (text.find('/') != std::string::npos || ext == ".bin" || ext == ".pt" || ext == ".safetensors") return spec;
  throw Error("model '" + text + "' is neither a file or folder nor a known model name (" + known_model_names() +
              "); hf:ORG/REPO[@REV][/FILE] names a Hugging Face repo");
}

std::vector<Place> places_for(const ModelSpec& spec, const Locations& loc) {
  std::vector<Place> places;
  if (spec.kind == ModelSpec::Kind::kPath) {
    places.push_back({"path", spec.text, spec.text, is_folder(spec.text) ? Layout::kAnyFolder : Layout::kHubFile});
    return places;
  }
  if (spec.kind == ModelSpec::Kind::kHubRepo) {
    const Layout layout = spec.file.empty() ? Layout::kAnyFolder : file_layout(spec.file);
    const std::string suffix = spec.file.empty() ? "" : "/" + spec.file;
    const std::string label = spec.repo + "@" + spec.revision + suffix;
    places.push_back({"wisp cache", label, wisp_repo_folder(loc, spec.repo, spec.revision) + suffix, layout});
    const std::string snap = hub_snapshot(loc.hub_cache, spec.repo, spec.revision);
    places.push_back({"hub cache", label, (snap.empty() ? missing_snapshot(loc, spec.repo) : snap) + suffix, layout});
    return places;
  }
  // An official name. Preference: wisp's own downloads, then whisper.cpp's
  // ggml (wisp's native format, f16), openai's .pt (f16), faster-whisper's
  // CTranslate2 folders, transformers folders (often float32: largest).
  const KnownModel& m = spec.known;
  const std::string openai_file = m.openai_url.empty() ? "" : openai_file_name(m.openai_url);
  if (!m.ggml_file.empty())
    places.push_back({"wisp cache", m.ggml_file, loc.wisp_cache + "/" + m.ggml_file, Layout::kGgmlFile});
  if (!openai_file.empty())
    places.push_back({"wisp cache", openai_file, loc.wisp_cache + "/" + openai_file, Layout::kPtFile});
  for (const std::string& repo : m.ct2_repos)
    places.push_back({"wisp cache", repo, wisp_repo_folder(loc, repo, "main"), Layout::kCt2Folder});
  places.push_back({"wisp cache", m.hf_repo, wisp_repo_folder(loc, m.hf_repo, "main"), Layout::kHfFolder});
  if (!m.ggml_file.empty()) {
    const std::string snap = hub_snapshot(loc.hub_cache, kGgmlRepo, "main");
    places.push_back({"hub cache", std::string(kGgmlRepo) + " " + m.ggml_file,
                      (snap.empty() ? missing_snapshot(loc, kGgmlRepo) : snap) + "/" + m.ggml_file, Layout::kGgmlFile});
  }
  if (!openai_file.empty())
    places.push_back({"openai cache", openai_file, loc.openai_cache + "/" + openai_file, Layout::kPtFile});
  auto hub_folder = [&](const std::string& repo, Layout layout) {
    const std::string snap = hub_snapshot(loc.hub_cache, repo, "main");
    places.push_back({"hub cache", repo, snap.empty() ? missing_snapshot(loc, repo) : snap, layout});
  };
  for (const std::string& repo : m.ct2_repos) hub_folder(repo, Layout::kCt2Folder);
  hub_folder(m.hf_repo, Layout::kHfFolder);
  return places;
}

bool place_present(const Place& place) {
  const std::string& p = place.path;
  auto ct2 = [&] { return is_file(p + "/model.bin") && is_file(p + "/config.json"); };
  auto hf = [&] {
    return is_file(p + "/config.json") &&
           (is_file(p + "/model.safetensors") || is_file(p + "/model.safetensors.index.json"));
  };
  switch (place.layout) {
    case Layout::kGgmlFile:
    case Layout::kPtFile:
    case Layout::kHubFile: return is_file(p);
    case Layout::kCt2Folder: return ct2();
    case Layout::kHfFolder: return hf();
    case Layout::kAnyFolder: return place.cache == "path" ? is_folder(p) : ct2() || hf();
  }
  return false;
}

std::optional<Place> resolve(const ModelSpec& spec, const Locations& loc,
                             const std::function<void(const std::string&)>& log) {
  for (const Place& place : places_for(spec, loc)) {
    const bool present = place_present(place);
    if (log) log(place.cache + ": " + place.label + " at " + place.path + (present ? ": found" : ": not there"));
    if (present) return place;
  }
  return std::nullopt;
}

}  // namespace wisp::models_cache
