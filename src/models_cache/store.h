// wisp/models_cache/store.h
//
// What the CLI asks of the caches: a model to load (found, or downloaded
// into wisp's cache when absent and downloads are allowed), downloads on
// request, a listing of every cache, and a re-check of wisp's downloads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models_cache/download.h"
#include "models_cache/locations.h"
#include "models_cache/resolve.h"

namespace wisp::models_cache {

struct StoreOptions {
  bool offline = false;  // --offline; Locations::offline (HF_HUB_OFFLINE) counts too
  DownloadHooks hooks;
  HttpSettings http;
  std::function<void(const std::string&)> log;  // the places tried, one line each (verbose)
};

// The path model::load_model should read for `spec_text` (see resolve.h):
// found in a cache, or else downloaded into wisp's cache. Throws
// wisp::Error when it is nowhere and cannot be downloaded (offline: the
// message lists where it was looked for and how to get it).
std::string obtain_model(const std::string& spec_text, const Locations& loc, const StoreOptions& options);

// Downloads `spec_text` (a name or hf:...) into wisp's cache unless it is
// there already; returns its path there.
std::string download_model(const std::string& spec_text, const Locations& loc, const StoreOptions& options);

// One model in a cache, for `wisp models list`.
struct CachedModel {
  std::string cache;   // "wisp cache", "hub cache", "openai cache"
  std::string name;    // official name, or the repo / file
  std::string format;  // ggml, pt, ct2, hf
  uint64_t bytes = 0;
  std::string path;
};
// Every official model present in any cache, and every other model file
// or repo folder found in wisp's cache, in resolution order per name.
std::vector<CachedModel> list_models(const Locations& loc);

// One file of wisp's cache checked against its recorded digest.
struct Verified {
  std::string path;
  std::string recorded, actual;
  bool ok() const { return recorded == actual; }
};
// Re-hashes every file of wisp's cache that has a recorded digest.
std::vector<Verified> verify_wisp_cache(const Locations& loc,
                                        const std::function<void(const std::string&)>& on_file = {});

}  // namespace wisp::models_cache
