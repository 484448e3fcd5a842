// HostExecutor: the CUDA network's operations as reference.h's loops on
// host memory (executor.h).
#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "cuda/executor.h"
#include "cuda/reference.h"

namespace wisp::cuda {
namespace {

class HostExecutor final : public Executor {
 public:
  std::string name() const override { return "host"; }

  void* alloc(size_t bytes) override {
    void* p = std::malloc(bytes);
    if (p == nullptr) throw Error("host executor: cannot allocate " + std::to_string(bytes) + " bytes");
    return p;
  }
  void release(void* p) noexcept override { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }
  void copy_rows(void* dst, const void* src, size_t width, size_t height, size_t pitch) override {
    for (size_t r = 0; r < height; ++r)
      std::memmove(static_cast<char*>(dst) + r * pitch, static_cast<const char*>(src) + r * pitch, width);
  }
  void fill_zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void sync() override {}

  void run(const ops::Gemm& a) override { reference::gemm(a); }
  void run(const ops::Convert& a) override { reference::convert_rows(a); }
  void run(const ops::Im2col& a) override { reference::im2col_k3(a); }
  void run(const ops::BiasAct& a) override { reference::bias_act(a); }
  void run(const ops::LayerNorm& a) override { reference::layer_norm(a); }
  void run(const ops::ToHeads& a) override { reference::to_heads(a); }
  void run(const ops::Softmax& a) override { reference::softmax_rows(a); }
  void run(const ops::Embed& a) override { reference::embed(a); }
  void run(const ops::AppendKv& a) override { reference::append_kv(a); }
  void run(const ops::DecoderAttention& a) override { reference::decoder_attention(a); }
};

}  // namespace

std::unique_ptr<Executor> make_host_executor() { return std::make_unique<HostExecutor>(); }

}  // namespace wisp::cuda
