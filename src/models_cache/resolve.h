// wisp/models_cache/resolve.h
//
// From what the user wrote after --model to a file or folder that
// model::load_model reads: a path as it is; an official name (large-v3)
// looked up in wisp's cache and then, read in place and never copied, in
// the caches of whisper.cpp, openai/whisper, faster-whisper and
// transformers; or a hub repo (hf:ORG/REPO[@REV][/FILE]). The places are
// tried in one documented order (docs/design/models.md), first hit wins.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models_cache/catalog.h"
#include "models_cache/locations.h"

namespace wisp::models_cache {

struct ModelSpec {
  enum class Kind { kPath, kName, kHubRepo };
  Kind kind = Kind::kPath;
  std::string text;  // as given
  KnownModel known;  // kName
  // kHubRepo: the repo, its revision (branch, tag or commit) and a file in
  // it (empty: the repo is a model folder, Hugging Face or CTranslate2).
  std::string repo;
  std::string revision = "main";
  std::string file;
};

// An existing file or folder is a path; "hf:..." a hub repo; else an
// official name. Throws wisp::Error for anything else, listing the names.
ModelSpec parse_model_spec(const std::string& text);

// The model formats of model::load_model, as Model::format names them.
enum class Layout { kGgmlFile, kPtFile, kHubFile, kCt2Folder, kHfFolder, kAnyFolder };

// One place a model may be.
struct Place {
  std::string cache;  // "wisp cache", "hub cache", "openai cache", "path"
  std::string label;  // what is looked for there: "ggml-large-v3.bin (whisper.cpp)"
  std::string path;   // the file or folder it would be
  Layout layout = Layout::kGgmlFile;
};

// Every place `spec` may be, in the order they are tried.
std::vector<Place> places_for(const ModelSpec& spec, const Locations& loc);
// Whether a place holds a complete model (a folder's weights and config).
bool place_present(const Place& place);

// The first place holding the model, or nullopt. `log` (may be empty)
// hears one line per place tried: "wisp cache: ggml-large-v3.bin at ...: not there".
std::optional<Place> resolve(const ModelSpec& spec, const Locations& loc,
                             const std::function<void(const std::string&)>& log = {});

// The snapshot folder of `repo` at `revision` in a hub cache (refs/REV
// names the commit; a commit hash names the folder itself), or "" when
// the cache has no such snapshot.
std::string hub_snapshot(const std::string& hub_cache, const std::string& repo, const std::string& revision);

// "models--ORG--REPO": huggingface_hub's folder name for a model repo.
std::string hub_repo_folder(const std::string& repo);

// The folder of a hub repo's files in wisp's own cache: WISP_CACHE/hub/ORG/REPO/REV.
std::string wisp_repo_folder(const Locations& loc, const std::string& repo, const std::string& revision);

}  // namespace wisp::models_cache
