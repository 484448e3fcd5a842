// wisp/models_cache/locations.h
//
// Where models are looked for and downloaded from, as the environment sets
// it: wisp's own cache, the Hugging Face hub cache, openai/whisper's cache,
// the hub endpoint and token, offline mode. Taken once from the
// environment (or from a map, in tests) so the rest never reads getenv.
#pragma once

#include <functional>
#include <string>

namespace wisp::models_cache {

struct Locations {
  // $WISP_CACHE, else $XDG_CACHE_HOME/wisp, else ~/.cache/wisp. The only
  // place wisp writes to.
  std::string wisp_cache;
  // huggingface_hub's: $HF_HUB_CACHE, else $HF_HOME/hub, else
  // $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. Read only.
  std::string hub_cache;
  // openai/whisper's download_root: $XDG_CACHE_HOME/whisper, else ~/.cache/whisper. Read only.
  std::string openai_cache;
  // $HF_ENDPOINT without a trailing '/', else https://huggingface.co.
  std::string hub_endpoint;
  // $HF_TOKEN, else the file huggingface-cli login writes ($HF_TOKEN_PATH, else $HF_HOME/token).
  std::string hub_token;
  // $HF_HUB_OFFLINE is 1/ON/YES/TRUE: nothing is downloaded.
  bool offline = false;

  // `getenv` returns nullptr for an unset variable (std::getenv by default).
  static Locations from_environment(const std::function<const char*(const char*)>& getenv = {});
};

}  // namespace wisp::models_cache
