#include "models_cache/store.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "models_cache/sha256.h"

namespace wisp::models_cache {
namespace {

namespace fs = std::filesystem;

// Revision names may hold '/' (refs/pr/1): the hub wants them as one path segment.
std::string url_segment(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// huggingface_hub's hf_hub_url: {endpoint}/{repo}/resolve/{revision}/{file}.
std::string hub_url(const Locations& loc, const std::string& repo, const std::string& revision,
                    const std::string& file) {
  return loc.hub_endpoint + "/" + repo + "/resolve/" + url_segment(revision) + "/" + file;
}

bool offline(const Locations& loc, const StoreOptions& o) { return o.offline || loc.offline; }

HttpSettings http_for(const Locations& loc, const StoreOptions& o) {
  HttpSettings http = o.http;
  if (http.bearer_token.empty()) http.bearer_token = loc.hub_token;
  return http;
}

struct RepoFetch {
  const Locations& loc;
  const StoreOptions& options;
  std::string repo, revision, dir;

  // One file of the repo into dir; false when the hub has no such file (optional only).
  bool get(const std::string& file, bool optional = false) const {
    FileDownload d{hub_url(loc, repo, revision, file), dir + "/" + file, "", optional};
    const DownloadResult r = download_file(d, http_for(loc, options), options.hooks);
    return r.outcome != DownloadResult::Outcome::kNotFound;
  }
};

// A model folder of a hub repo: config.json says which kind. transformers
// configs carry d_model; CTranslate2's hold only the generation settings.
void fetch_folder(const RepoFetch& f) {
  f.get("config.json");
  nlohmann::json config;
  {
    std::ifstream in(f.dir + "/config.json");
    config = nlohmann::json::parse(in, nullptr, false);
  }
  if (config.is_object() && config.contains("d_model")) {
    f.get("generation_config.json", true);
    if (f.get("model.safetensors", true)) return;
    f.get("model.safetensors.index.json");
    std::ifstream in(f.dir + "/model.safetensors.index.json");
    const nlohmann::json index = nlohmann::json::parse(in, nullptr, false);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error("hf:" + f.repo + ": model.safetensors.index.json has no weight_map");
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : index["weight_map"].items())
      if (shard.is_string()) shards.insert(shard.get<std::string>());
    for (const std::string& shard : shards) {
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        throw Error("hf:" + f.repo + ": odd shard name '" + shard + "'");
      f.get(shard);
    }
    return;
  }
  f.get("model.bin");
  if (!f.get("vocabulary.json", true)) f.get("vocabulary.txt");
}

// What downloading `spec` means: one file, or a repo's model folder.
std::string fetch_into_wisp_cache(const ModelSpec& spec, const Locations& loc, const StoreOptions& o) {
  if (spec.kind == ModelSpec::Kind::kName && !spec.known.ggml_file.empty()) {
    const std::string dest = loc.wisp_cache + "/" + spec.known.ggml_file;
    download_file({hub_url(loc, kGgmlRepo, "main", spec.known.ggml_file), dest, "", false}, http_for(loc, o), o.hooks);
    return dest;
  }
  const std::string repo = spec.kind == ModelSpec::Kind::kName ? spec.known.hf_repo : spec.repo;
  const std::string revision = spec.kind == ModelSpec::Kind::kName ? "main" : spec.revision;
  RepoFetch f{loc, o, repo, revision, wisp_repo_folder(loc, repo, revision)};
  if (spec.kind == ModelSpec::Kind::kHubRepo && !spec.file.empty()) {
    f.get(spec.file);
    return f.dir + "/" + spec.file;
  }
  fetch_folder(f);
  return f.dir;
}

std::string not_found_offline(const ModelSpec& spec, const Locations& loc) {
  std::string looked;
  for (const Place& p : places_for(spec, loc)) looked += (looked.empty() ? " " : "; ") + p.cache + " " + p.path;
  std::string hint = spec.kind == ModelSpec::Kind::kName && !spec.known.ggml_file.empty()
                         ? "put " + spec.known.ggml_file + " in " + loc.wisp_cache
                         : "put its files in " + places_for(spec, loc).front().path;
  return "model '" + spec.text + "' is in no cache and downloads are off (--offline or HF_HUB_OFFLINE=1); " +
         "run `wisp models download " + spec.text + "` where there is a network, or " + hint +
         ". Looked in:" + looked;  // one line, as every wisp::Error
}

const char* format_of(Layout layout, const std::string& path) {
  switch (layout) {
    case Layout::kGgmlFile: return "ggml";
    case Layout::kPtFile: return "pt";
    case Layout::kCt2Folder: return "ct2";
    case Layout::kHfFolder: return "hf";
    case Layout::kHubFile:
    case Layout::kAnyFolder: break;
  }
  std::error_code ec;
  if (fs::is_regular_file(path + "/model.bin", ec)) return "ct2";
  if (fs::is_regular_file(path + "/config.json", ec)) return "hf";
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".pt") == 0) return "pt";
  return "ggml";
}

// Bytes of a file, or of every file under a folder (symlinks followed).
uint64_t bytes_of(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return fs::file_size(path, ec);
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

bool is_bookkeeping(const std::string& name) {
  for (const char* ext : {".part", ".lock", ".sha256", ".tmp"})
    if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0)
      return true;
  return name.rfind('.', 0) == 0;
}

// Files and repo folders in wisp's cache that no official name covers.
void list_other_wisp_entries(const Locations& loc, std::set<std::string>& seen, std::vector<CachedModel>& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(loc.wisp_cache, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file(ec) || is_bookkeeping(name) || seen.count(e.path().string())) continue;
    out.push_back({"wisp cache", name, format_of(Layout::kHubFile, e.path().string()), bytes_of(e.path().string()),
                   e.path().string()});
  }
  // hub/ORG/REPO/REV
  const fs::path hub = fs::path(loc.wisp_cache) / "hub";
  for (const auto& org : fs::directory_iterator(hub, ec))
    for (const auto& repo : fs::directory_iterator(org.path(), ec))
      for (const auto& rev : fs::directory_iterator(repo.path(), ec)) {
        const std::string path = rev.path().string();
        if (seen.count(path) || !rev.is_directory(ec)) continue;
        const std::string label = "hf:" + org.path().filename().string() + "/" + repo.path().filename().string() + "@" +
                                  rev.path().filename().string();
        out.push_back({"wisp cache", label, format_of(Layout::kAnyFolder, path), bytes_of(path), path});
      }
}

}  // namespace

std::string obtain_model(const std::string& spec_text, const Locations& loc, const StoreOptions& options) {
  const ModelSpec spec = parse_model_spec(spec_text);
  if (auto place = resolve(spec, loc, options.log)) return place->path;
  if (spec.kind == ModelSpec::Kind::kPath) return spec.text;  // (vanished since parsing: the loader says so)
  if (offline(loc, options)) throw Error(not_found_offline(spec, loc));
  if (options.log) options.log("downloading " + spec.text + " into " + loc.wisp_cache);
  return fetch_into_wisp_cache(spec, loc, options);
}

std::string download_model(const std::string& spec_text, const Locations& loc, const StoreOptions& options) {
  const ModelSpec spec = parse_model_spec(spec_text);
  if (spec.kind == ModelSpec::Kind::kPath)
    throw Error("'" + spec_text + "' is a path; wisp models download takes a model name or hf:ORG/REPO");
  for (const Place& p : places_for(spec, loc))
    if (p.cache == "wisp cache" && place_present(p)) return p.path;
  if (offline(loc, options)) throw Error(not_found_offline(spec, loc));
  return fetch_into_wisp_cache(spec, loc, options);
}

std::vector<CachedModel> list_models(const Locations& loc) {
  std::vector<CachedModel> out;
  std::set<std::string> seen;
  for (const KnownModel& m : known_models()) {
    ModelSpec spec;
    spec.kind = ModelSpec::Kind::kName;
    spec.text = m.name;
    spec.known = m;
    for (const Place& p : places_for(spec, loc)) {
      if (!place_present(p) || !seen.insert(p.path).second) continue;
      out.push_back({p.cache, m.name, format_of(p.layout, p.path), bytes_of(p.path), p.path});
    }
  }
  list_other_wisp_entries(loc, seen, out);
  // whisper.cpp's other files (quantized ones) in the hub cache.
  const std::string snap = hub_snapshot(loc.hub_cache, kGgmlRepo, "main");
  std::error_code ec;
  if (!snap.empty())
    for (const auto& e : fs::directory_iterator(snap, ec)) {
      const std::string name = e.path().filename().string();
      if (seen.count(e.path().string()) || name.rfind("ggml-", 0) != 0 || !e.is_regular_file(ec)) continue;
      out.push_back({"hub cache", "hf:" + std::string(kGgmlRepo) + "/" + name, "ggml", bytes_of(e.path().string()),
                     e.path().string()});
    }
  return out;
}

std::vector<Verified> verify_wisp_cache(const Locations& loc, const std::function<void(const std::string&)>& on_file) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(loc.wisp_cache, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string p = it->path().string();
    if (p.size() > 7 && p.compare(p.size() - 7, 7, ".sha256") == 0 &&
        fs::is_regular_file(p.substr(0, p.size() - 7), ec))
      files.push_back(p.substr(0, p.size() - 7));
  }
  std::sort(files.begin(), files.end());
  std::vector<Verified> out;
  for (const std::string& f : files) {
    if (on_file) on_file(f);
    out.push_back({f, recorded_sha256(f), sha256_file(f)});
  }
  return out;
}

}  // namespace wisp::models_cache
