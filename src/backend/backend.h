// wisp/backend/backend.h
//
// Which hardware runs the network: `--device auto|cpu|cuda[:N]` (faster-
// whisper's device / device_index). make_network builds the nn::Network for
// a device: nn::Whisper on the CPU, or the CUDA backend (src/cuda) when this
// wisp was built with it (CMake WISP_CUDA) and a GPU is usable. Everything
// above (transcribe, decoding, batching, timing, VAD) is the same code for
// both.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"
#include "nn/compute_type.h"
#include "nn/network.h"

namespace wisp::backend {

struct Device {
  enum class Kind { kAuto, kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;  // cuda:N
};

// "auto", "cpu", "cuda" (= cuda:0) or "cuda:N". Throws wisp::Error otherwise.
Device parse_device(const std::string& name);
// The canonical name: "auto", "cpu", "cuda:N".
std::string device_name(const Device& device);

// True if this wisp has the CUDA backend and the driver reports at least one
// GPU; otherwise false with the reason in *why (if given).
bool cuda_usable(std::string* why = nullptr);
// GPUs the driver reports (0 without the CUDA backend or a driver).
int cuda_device_count();

// The compute types the CUDA backend runs: float32, float16, bfloat16, auto.
bool cuda_runs(nn::ComputeType type);

// `auto` resolved: cuda:0 when CUDA is usable and runs `type`, else cpu.
// Throws wisp::Error for cuda:N when CUDA is not usable or there is no
// GPU N, with the reason.
Device resolve_device(const Device& device, nn::ComputeType type = nn::ComputeType::kFloat32);

struct NetworkOptions {
  // The CPU resolves `auto` by its ISA (nn::resolve_compute_type); CUDA runs
  // float32 (the golden path), float16 (`auto`) and bfloat16, and refuses
  // the int8 types.
  nn::ComputeType type = nn::ComputeType::kFloat32;
  int n_threads = 1;  // threads that read and convert the weights
  Device device;      // resolved by make_network
};

// The network of `model` on options.device (resolved). The rvalue form
// takes the weights out of `model` tensor by tensor (its dims, vocabulary
// and mel filters stay). Throws wisp::Error for a device or compute type
// that cannot be used, or a model the network refuses.
std::unique_ptr<nn::Network> make_network(const model::Model& model, const NetworkOptions& options);
std::unique_ptr<nn::Network> make_network(model::Model&& model, const NetworkOptions& options);

}  // namespace wisp::backend
