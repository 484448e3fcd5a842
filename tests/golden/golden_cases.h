// Shared helpers of the golden tests: reading openai/whisper's reference
// cases (tests/data/golden) and building the models they ran on.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "transcribe/transcribe.h"

namespace wisp::golden {

struct Case {
  std::string name;
  std::string dir;        // tests/data/golden/.../<name>
  std::string model;      // "micro-s1", "scripted-eot-s1", ...
  std::string audio;      // path under tests/data/testdata
  std::vector<std::string> args;
  bool scripted = false;
  nlohmann::json ref;     // ref.json
};

// Every case under tests/data/golden/cases and tests/data/golden/scripted/cases.
std::vector<std::string> case_dirs();
Case load_case(const std::string& dir);

// The case's options for transcribe(); sets *unsupported to the first option
// this build does not implement (empty if all are).
transcribe::Options case_options(const Case& c, std::string* unsupported);

// The engine for a golden model name (built once per process and cached).
const transcribe::Engine& engine_for(const std::string& model_name);

}  // namespace wisp::golden
