// wisp/cuda/executor.h (private to src/cuda)
//
// Where the CUDA network's operations run. The network (network.cc) is
// written once against this interface: DeviceExecutor runs it on a GPU (a
// stream, cuBLAS, the kernels of ops.cu), HostExecutor on the CPU through
// the twins of reference.h. So the network's own logic (layouts, strides,
// caches, batching, beam reorders) is tested against nn::Whisper on any
// machine, and on a GPU only the kernels and cuBLAS are new.
//
// Operations are queued in order; download() and sync() wait for them.
// Errors (a failed allocation, a CUDA error) throw wisp::Error.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cuda/op_args.h"

namespace wisp::cuda {

class Executor {
 public:
  virtual ~Executor() = default;
  // "cuda:0 (NVIDIA H100 80GB HBM3)", "host".
  virtual std::string name() const = 0;

  // Memory of the executor's device. Buffer (below) is how the network
  // holds it; the executor counts what is held, and its peak.
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* p) noexcept = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  // Waits for the operations before it.
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  // height rows of width bytes, rows pitch bytes apart in both.
  virtual void copy_rows(void* dst, const void* src, size_t width, size_t height, size_t pitch) = 0;
  virtual void fill_zero(void* p, size_t bytes) = 0;
  virtual void sync() = 0;

  virtual void run(const ops::Gemm& a) = 0;
  virtual void run(const ops::Convert& a) = 0;
  virtual void run(const ops::Im2col& a) = 0;
  virtual void run(const ops::BiasAct& a) = 0;
  virtual void run(const ops::LayerNorm& a) = 0;
  virtual void run(const ops::ToHeads& a) = 0;
  virtual void run(const ops::Softmax& a) = 0;
  virtual void run(const ops::Embed& a) = 0;
  virtual void run(const ops::AppendKv& a) = 0;
  virtual void run(const ops::DecoderAttention& a) = 0;

  // Bytes held in Buffers now, and at most since the executor was made.
  size_t held_bytes() const { return held_.load(); }
  size_t peak_bytes() const { return peak_.load(); }
  void held(int64_t change) noexcept {
    const size_t now = held_.fetch_add(static_cast<size_t>(change)) + static_cast<size_t>(change);
    size_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }

 private:
  std::atomic<size_t> held_{0}, peak_{0};
};

// The twins of reference.h on host memory.
std::unique_ptr<Executor> make_host_executor();
// GPU `index` (cudaSetDevice for every call), one stream, cuBLAS. Throws
// wisp::Error if the GPU or cuBLAS cannot be used.
std::unique_ptr<Executor> make_device_executor(int index);

// Memory of an executor, released with it (move-only).
class Buffer {
 public:
  Buffer() = default;
  Buffer(Executor& ex, size_t bytes) : ex_(&ex), p_(bytes > 0 ? ex.alloc(bytes) : nullptr), bytes_(bytes) {
    ex.held(static_cast<int64_t>(bytes));
  }
  ~Buffer() { reset(); }
  Buffer(Buffer&& o) noexcept : ex_(o.ex_), p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      ex_ = o.ex_, p_ = o.p_, bytes_ = o.bytes_;
      o.p_ = nullptr, o.bytes_ = 0;
    }
    return *this;
  }
  void reset() noexcept {
    if (p_ != nullptr) {
      ex_->release(p_);
      ex_->held(-static_cast<int64_t>(bytes_));
    }
    p_ = nullptr, bytes_ = 0;
  }
  // At least `bytes`, reallocated (contents lost) when smaller.
  void reserve(Executor& ex, size_t bytes) {
    if (bytes > bytes_ || ex_ != &ex) *this = Buffer(ex, bytes);
  }
  void* get() const { return p_; }
  float* f32() const { return static_cast<float*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  Executor* ex_ = nullptr;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace wisp::cuda
