#include "backend/backend.h"

#include <cstdlib>
#include <string>

#include "common/error.h"
#include "nn/whisper.h"
#ifdef WISP_HAVE_CUDA
#include "cuda/cuda_network.h"
#endif

namespace wisp::backend {

Device parse_device(const std::string& name) {
  if (name == "auto") return {Device::Kind::kAuto, 0};
  if (name == "cpu") return {Device::Kind::kCpu, 0};
  if (name == "cuda") return {Device::Kind::kCuda, 0};
  if (name.rfind("cuda:", 0) == 0) {
    const std::string n = name.substr(5);
    const bool digits = !n.empty() && n.size() <= 4 && n.find_first_not_of("0123456789") == std::string::npos;
    if (digits) return {Device::Kind::kCuda, std::atoi(n.c_str())};
  }
  throw Error("device '" + name + "': expected auto, cpu, cuda or cuda:N");
}

std::string device_name(const Device& device) {
  switch (device.kind) {
    case Device::Kind::kAuto: return "auto";
    case Device::Kind::kCpu: return "cpu";
    case Device::Kind::kCuda: return "cuda:" + std::to_string(device.index);
  }
  return "cpu";
}

bool cuda_usable(std::string* why) {
#ifdef WISP_HAVE_CUDA
  return cuda::device_count(why) > 0;
#else
  if (why != nullptr) *why = "this wisp was built without CUDA (CMake WISP_CUDA)";
  return false;
#endif
}

int cuda_device_count() {
#ifdef WISP_HAVE_CUDA
  return cuda::device_count(nullptr);
#else
  return 0;
#endif
}

bool cuda_runs(nn::ComputeType type) {
  using nn::ComputeType;
  return type == ComputeType::kFloat32 || type == ComputeType::kFloat16 || type == ComputeType::kBFloat16 ||
         type == ComputeType::kAuto;
}

Device resolve_device(const Device& device, nn::ComputeType type) {
  if (device.kind == Device::Kind::kCpu) return device;
  if (device.kind == Device::Kind::kAuto && !cuda_runs(type)) return Device{};  // int8: the CPU's
  std::string why;
  const bool usable = cuda_usable(&why);
  if (device.kind == Device::Kind::kAuto) return usable ? Device{Device::Kind::kCuda, 0} : Device{};
  if (!usable) throw Error("device " + device_name(device) + ": " + why);
  const int n = cuda_device_count();
  if (device.index >= n)
    throw Error("device " + device_name(device) + ": the driver reports " + std::to_string(n) + " GPU" +
                (n == 1 ? "" : "s"));
  return device;
}

namespace {

template <class M>
std::unique_ptr<nn::Network> make(M&& model, const NetworkOptions& options) {
  const Device device = resolve_device(options.device, options.type);
  if (device.kind == Device::Kind::kCpu)
    return std::make_unique<nn::Whisper>(std::forward<M>(model), options.type, options.n_threads);
#ifdef WISP_HAVE_CUDA
  return cuda::make_network(model, cuda::Options{options.type, device.index});
#else
  throw Error("device " + device_name(device) + ": this wisp was built without CUDA (CMake WISP_CUDA)");
#endif
}

}  // namespace

std::unique_ptr<nn::Network> make_network(const model::Model& model, const NetworkOptions& options) {
  return make(model, options);
}

std::unique_ptr<nn::Network> make_network(model::Model&& model, const NetworkOptions& options) {
  return make(std::move(model), options);
}

}  // namespace wisp::backend
