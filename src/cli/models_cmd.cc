// `wisp models list|download|verify`: what is in which cache, downloads
// into wisp's cache, and a re-check of those downloads against their
// recorded SHA-256 (docs/design/models.md).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/model_source.h"
#include "common/error.h"
#include "models_cache/store.h"

namespace wisp::cli {
namespace {

struct ModelsArgs {
  std::vector<std::string> names;
};

std::string size_text(uint64_t bytes) {
  char buf[32];
  if (bytes >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

int list(const models_cache::Locations& loc) {
  std::printf("wisp cache:   %s\nhub cache:    %s\nopenai cache: %s\n\n", loc.wisp_cache.c_str(), loc.hub_cache.c_str(),
              loc.openai_cache.c_str());
  const auto models = models_cache::list_models(loc);
  if (models.empty()) {
    std::printf("no models in any cache (wisp models download NAME fetches one)\n");
    return 0;
  }
  std::printf("%-44s %-6s %10s  %-12s %s\n", "NAME", "FORMAT", "SIZE", "CACHE", "PATH");
  for (const auto& m : models)
    std::printf("%-44s %-6s %10s  %-12s %s\n", m.name.c_str(), m.format.c_str(), size_text(m.bytes).c_str(),
                m.cache.c_str(), m.path.c_str());
  return 0;
}

int download(const models_cache::Locations& loc, const std::vector<std::string>& names) {
  models_cache::StoreOptions options;
  options.hooks = console_download_hooks();
  for (const std::string& name : names) {
    const std::string path = models_cache::download_model(name, loc, options);
    std::printf("%s: %s\n", name.c_str(), path.c_str());
  }
  return 0;
}

int verify(const models_cache::Locations& loc) {
  const auto results = models_cache::verify_wisp_cache(loc);
  if (results.empty()) {
    std::printf("no downloads with a recorded digest in %s\n", loc.wisp_cache.c_str());
    return 0;
  }
  int bad = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      std::printf("ok        %s\n", r.path.c_str());
    } else {
      ++bad;
      std::printf("MISMATCH  %s (recorded %s, now %s)\n", r.path.c_str(), r.recorded.c_str(), r.actual.c_str());
    }
  }
  std::printf("%zu file(s) checked, %d mismatch(es)\n", results.size(), bad);
  return bad ? 1 : 0;
}

}  // namespace

std::function<int()> add_models_command(CLI::App& app) {
  auto args = std::make_shared<ModelsArgs>();
  CLI::App* cmd = app.add_subcommand("models", "list, download and verify models in the caches");
  cmd->require_subcommand(1);
  CLI::App* list_cmd = cmd->add_subcommand("list", "every model found in wisp's cache and in the other tools' caches");
  CLI::App* download_cmd = cmd->add_subcommand("download", "download models into wisp's cache");
  download_cmd->add_option("names", args->names, "official names or hf:ORG/REPO[@REV][/FILE]")->required();
  CLI::App* verify_cmd = cmd->add_subcommand("verify", "re-hash wisp's downloads against their recorded SHA-256");
  return [args, list_cmd, download_cmd, verify_cmd] {
    const auto loc = models_cache::Locations::from_environment();
    if (list_cmd->parsed()) return list(loc);
    if (download_cmd->parsed()) return download(loc, args->names);
    if (verify_cmd->parsed()) return verify(loc);
    return 2;
  };
}

}  // namespace wisp::cli
