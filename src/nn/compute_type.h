// wisp/nn/compute_type.h
//
// Compute types of the network, with faster-whisper's (CTranslate2's) names:
//   float32        the golden path: fp32 weights and kernels (kernels.h). The
//                  decoder's weights (token embedding, Linear layers) that
//                  are all IEEE halves, as in an f16 checkpoint, are kept as
//                  those halves and widened exactly in the kernels: the same
//                  bits, half the bytes per decoding step.
//   float16        weights stored as IEEE half; fp32 arithmetic (the decoder's
//                  matrix-vector products read half the bytes).
//   bfloat16       the same with bfloat16 weights.
//   int8           = int8_float32: every Linear layer, the convolutions and
//                  the token embedding (input and logits) in int8 with one
//                  scale per output channel; integer products for those and
//                  for attention (14-bit activations, kernels/lowp.h); the
//                  decoder's cross-attention keys/values cached in int8;
//                  layer norms, softmax, GELU and residuals in fp32.
//   int8_bfloat16  int8 as above, but the token embedding in bfloat16
//                  (the 51865-row logits projection keeps 8 mantissa bits).
//   auto           the fastest this CPU runs that passes the fidelity test
//                  (tests/perf): int8 with AVX2 or better, else float32.
// Weights are converted once, when nn::Whisper is built.
#pragma once

#include <string>
#include <vector>

namespace wisp::nn {

enum class ComputeType { kFloat32, kFloat16, kBFloat16, kInt8, kInt8Float32, kInt8BFloat16, kAuto };

// "float32", "float16", "bfloat16", "int8", "int8_float32", "int8_bfloat16", "auto".
const char* compute_type_name(ComputeType t);
// Parses those names; throws wisp::Error for anything else.
ComputeType parse_compute_type(const std::string& name);
std::vector<std::string> compute_type_names();

// `auto` resolved for this CPU (kernels::default_isa(), which honours
// WISP_ISA); other types are returned as they are.
ComputeType resolve_compute_type(ComputeType t);

}  // namespace wisp::nn
