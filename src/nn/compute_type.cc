// wisp/nn/compute_type.cc: compute-type names and `auto`.
#include "nn/compute_type.h"

#include "common/error.h"
#include "kernels/cpu.h"

namespace wisp::nn {
namespace {

constexpr ComputeType kAll[] = {ComputeType::kFloat32, ComputeType::kFloat16,     ComputeType::kBFloat16,
                                ComputeType::kInt8,    ComputeType::kInt8Float32, ComputeType::kInt8BFloat16,
                                ComputeType::kAuto};

}  // namespace

const char* compute_type_name(ComputeType t) {
  switch (t) {
    case ComputeType::kFloat32: return "float32";
    case ComputeType::kFloat16: return "float16";
    case ComputeType::kBFloat16: return "bfloat16";
    case ComputeType::kInt8: return "int8";
    case ComputeType::kInt8Float32: return "int8_float32";
    case ComputeType::kInt8BFloat16: return "int8_bfloat16";
    case ComputeType::kAuto: return "auto";
  }
  return "?";
}

std::vector<std::string> compute_type_names() {
  std::vector<std::string> out;
  for (ComputeType t : kAll) out.push_back(compute_type_name(t));
  return out;
}

ComputeType parse_compute_type(const std::string& name) {
  for (ComputeType t : kAll) {
    if (name == compute_type_name(t)) return t;
  }
  std::string all;
  for (const std::string& n : compute_type_names()) all += (all.empty() ? "" : ", ") + n;
  throw Error("unknown compute type '" + name + "' (one of: " + all + ")");
}

ComputeType resolve_compute_type(ComputeType t) {
  if (t != ComputeType::kAuto) return t;
  // The integer kernels beat oneDNN's fp32 GEMMs only with vector integer
  // multiply-adds (vpmaddwd); the portable fallback is slower than fp32.
  return kernels::default_isa() >= kernels::Isa::kAvx2 ? ComputeType::kInt8 : ComputeType::kFloat32;
}

}  // namespace wisp::nn
