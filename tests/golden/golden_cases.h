// Shared helpers of the golden tests: reading openai/whisper's reference
// cases (tests/data/golden) and building the models they ran on.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "nn/compute_type.h"
#include "transcribe/transcribe.h"

namespace wisp::golden {

struct Case {
  std::string name;
  std::string dir;    // tests/data/golden/.../<name>
  std::string model;  // "micro-s1", "scripted-eot-s1", ...
  std::string audio;  // path under tests/data/testdata
  std::vector<std::string> args;
  bool scripted = false;
  nlohmann::json ref;  // ref.json
};

// Every case under tests/data/golden/cases and tests/data/golden/scripted/cases.
std::vector<std::string> case_dirs();
Case load_case(const std::string& dir);

// The case's options for transcribe(); sets *unsupported to the first option
// this build does not implement (empty if all are).
transcribe::Options case_options(const Case& c, std::string* unsupported);

// A compute type as the tests run it: `int8_encoder` ("onednn" or "wisp")
// forces the int8 encoder's kernels (WISP_INT8_ENCODER, nn/weights.h
// Precision) while the network is built; null leaves the CPU's choice.
// `device`: "cpu"; "cuda" (GPU 0); or "host-cuda", the CUDA network over the
// host twins of its kernels (cuda::make_host_network), which runs anywhere.
struct TypeUnderTest {
  nn::ComputeType type = nn::ComputeType::kFloat32;
  const char* int8_encoder = nullptr;
  const char* device = "cpu";
  std::string name() const;  // "int8_onednn", "float16", "float16_cuda", ...
};
inline void PrintTo(const TypeUnderTest& t, std::ostream* os) { *os << t.name(); }

// The engine for a golden model name (built once per process and cached).
const transcribe::Engine& engine_for(const std::string& model_name, const TypeUnderTest& type = {});

// The engine of a model file or folder in any format (model::load_model),
// float32; built once per process and cached.
const transcribe::Engine& engine_for_path(const std::string& path);

// A golden model's weights rounded to float16 (its ggml f16 file), float32.
const transcribe::Engine& engine_for_f16(const std::string& model_name);

// Every compute type with its int8 encoder paths: float16, bfloat16, int8
// on lowp.h's kernels and on oneDNN's 8-bit path, int8_float32,
// int8_bfloat16 and auto (float32, the golden path, is not in the list).
std::vector<TypeUnderTest> fast_types();

// True if this build has the CUDA backend (CMake WISP_CUDA); the "cuda" and
// "host-cuda" devices need it. A GPU also needs backend::cuda_usable().
bool cuda_built();

}  // namespace wisp::golden
