#include "models_cache/locations.h"

#include <cctype>
#include <cstdlib>
#include <fstream>

namespace wisp::models_cache {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

// huggingface_hub's _is_true: "1", "ON", "YES", "TRUE" in any case.
bool is_true(const std::string& v) {
  std::string up;
  for (char c : v) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return up == "1" || up == "ON" || up == "YES" || up == "TRUE";
}

}  // namespace

Locations Locations::from_environment(const std::function<const char*(const char*)>& getenv_fn) {
  auto env = [&](const char* name) -> std::string {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  const std::string home = env("HOME");
  const std::string xdg_cache = !env("XDG_CACHE_HOME").empty() ? env("XDG_CACHE_HOME") : home + "/.cache";
  Locations loc;
  loc.wisp_cache = !env("WISP_CACHE").empty() ? env("WISP_CACHE") : xdg_cache + "/wisp";
  const std::string hf_home = !env("HF_HOME").empty() ? env("HF_HOME") : xdg_cache + "/huggingface";
  loc.hub_cache = !env("HF_HUB_CACHE").empty() ? env("HF_HUB_CACHE") : hf_home + "/hub";
  loc.openai_cache = xdg_cache + "/whisper";
  loc.hub_endpoint = !env("HF_ENDPOINT").empty() ? env("HF_ENDPOINT") : "https://huggingface.co";
  while (!loc.hub_endpoint.empty() && loc.hub_endpoint.back() == '/') loc.hub_endpoint.pop_back();
  loc.hub_token = trimmed(env("HF_TOKEN"));
  if (loc.hub_token.empty()) {
    const std::string token_path = !env("HF_TOKEN_PATH").empty() ? env("HF_TOKEN_PATH") : hf_home + "/token";
    std::ifstream in(token_path);
    std::string line;
    if (in && std::getline(in, line)) loc.hub_token = trimmed(line);
  }
  loc.offline = is_true(env("HF_HUB_OFFLINE"));
  return loc;
}

}  // namespace wisp::models_cache
