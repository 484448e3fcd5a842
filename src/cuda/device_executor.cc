// DeviceExecutor: the CUDA network's operations on one GPU (executor.h):
// one stream, the kernels of ops.cu, and cuBLAS for the products. cuBLAS is
// opened at run time (dlopen) when a GPU is first used: linking it would
// cost every wisp process ~0.1 s of start-up (its 700 MB of libraries) and
// tie the binary to the toolkit's libraries on machines without a GPU.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <string>

#include "common/error.h"
#include "cuda/cuda_network.h"
#include "cuda/executor.h"
#include "cuda/ops.h"

namespace wisp::cuda {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
}

// The cuBLAS entry points wisp uses, from the library of the toolkit it
// was built with (libcublas.so.MAJOR).
struct Cublas {
  void* lib = nullptr;
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  // The forms taking cublasComputeType_t (C++ also sees inline overloads).
  using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                    const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                    cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  using GemmStridedBatchedEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                                  const void*, const void*, cudaDataType, int, long long, const void*,
                                                  cudaDataType, int, long long, const void*, void*, cudaDataType, int,
                                                  long long, int, cublasComputeType_t, cublasGemmAlgo_t);
  GemmEx gemm = nullptr;
  GemmStridedBatchedEx gemm_batched = nullptr;

  Cublas() {
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) lib = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) throw Error("cuda: cannot open " + name + " (cuBLAS): " + dlerror());
    bind(create, "cublasCreate_v2");
    bind(destroy, "cublasDestroy_v2");
    bind(set_stream, "cublasSetStream_v2");
    bind(gemm, "cublasGemmEx");
    bind(gemm_batched, "cublasGemmStridedBatchedEx");
  }
  ~Cublas() {
    if (lib != nullptr) dlclose(lib);
  }
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;

  template <class F>
  void bind(F& f, const char* symbol) {
    f = reinterpret_cast<F>(dlsym(lib, symbol));
    if (f == nullptr) {
      dlclose(lib);
      lib = nullptr;
      throw Error(std::string("cuda: cuBLAS has no ") + symbol);
    }
  }
};

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(std::string("cuda: ") + what + ": cuBLAS status " + std::to_string(s));
}

cudaDataType_t data_type(ops::DType t) {
  switch (t) {
    case ops::DType::kF32: return CUDA_R_32F;
    case ops::DType::kF16: return CUDA_R_16F;
    case ops::DType::kBF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

class DeviceExecutor final : public Executor {
 public:
  explicit DeviceExecutor(int index) : index_(index) {
    on();
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, index_), "cudaGetDeviceProperties");
    name_ = "cuda:" + std::to_string(index_) + " (" + prop.name + ")";
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    try {
      check(blas_.create(&handle_), "cublasCreate");
      check(blas_.set_stream(handle_, stream_), "cublasSetStream");
    } catch (...) {
      cudaStreamDestroy(stream_);
      throw;
    }
  }
  ~DeviceExecutor() override {
    cudaSetDevice(index_);
    cudaStreamSynchronize(stream_);
    if (handle_ != nullptr) blas_.destroy(handle_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return name_; }

  void* alloc(size_t bytes) override {
    on();
    void* p = nullptr;
    check(cudaMalloc(&p, bytes), ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
    return p;
  }
  void release(void* p) noexcept override {
    cudaSetDevice(index_);
    cudaFree(p);
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    on();
    // From pageable memory: returns once `src` is staged, so it may go.
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
  }
  void download(void* dst, const void* src, size_t bytes) override {
    on();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    sync();
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    on();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
  }
  void copy_rows(void* dst, const void* src, size_t width, size_t height, size_t pitch) override {
    on();
    check(cudaMemcpy2DAsync(dst, pitch, src, pitch, width, height, cudaMemcpyDeviceToDevice, stream_), "copy_rows");
  }
  void fill_zero(void* p, size_t bytes) override {
    on();
    check(cudaMemsetAsync(p, 0, bytes, stream_), "memset");
  }
  void sync() override {
    on();
    check(cudaStreamSynchronize(stream_), "a kernel or copy");
  }

  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS
  // gets B first, each operand transposed when it is not in the row-major
  // product. fp32 products compute in fp32 (cuBLAS's default math mode:
  // no TF32), fp16 and bf16 on tensor cores with fp32 accumulation.
  void run(const ops::Gemm& g) override {
    on();
    const float alpha = 1.0f;
    const cublasOperation_t op_b = g.b_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = g.a_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cudaDataType_t t = data_type(g.t);
    const auto m = static_cast<int>(g.n), n = static_cast<int>(g.m), k = static_cast<int>(g.k);
    if (g.batch == 1) {
      check(blas_.gemm(handle_, op_b, op_a, m, n, k, &alpha, g.b, t, static_cast<int>(g.ldb), g.a, t,
                       static_cast<int>(g.lda), &g.beta, g.c, CUDA_R_32F, static_cast<int>(g.ldc), CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    } else {
      check(
          blas_.gemm_batched(handle_, op_b, op_a, m, n, k, &alpha, g.b, t, static_cast<int>(g.ldb), g.stride_b, g.a, t,
                             static_cast<int>(g.lda), g.stride_a, &g.beta, g.c, CUDA_R_32F, static_cast<int>(g.ldc),
                             g.stride_c, static_cast<int>(g.batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmStridedBatchedEx");
    }
  }
  void run(const ops::Convert& a) override { launch(ops::convert_rows, a, "convert_rows"); }
  void run(const ops::Im2col& a) override { launch(ops::im2col_k3, a, "im2col_k3"); }
  void run(const ops::BiasAct& a) override { launch(ops::bias_act, a, "bias_act"); }
  void run(const ops::LayerNorm& a) override { launch(ops::layer_norm, a, "layer_norm"); }
  void run(const ops::ToHeads& a) override { launch(ops::to_heads, a, "to_heads"); }
  void run(const ops::Softmax& a) override { launch(ops::softmax_rows, a, "softmax_rows"); }
  void run(const ops::Embed& a) override { launch(ops::embed, a, "embed"); }
  void run(const ops::AppendKv& a) override { launch(ops::append_kv, a, "append_kv"); }
  void run(const ops::DecoderAttention& a) override { launch(ops::decoder_attention, a, "decoder_attention"); }

 private:
  // The calling thread's current device becomes this one (cheap when it is).
  void on() const { check(cudaSetDevice(index_), "cudaSetDevice"); }
  // A kernel on this GPU's stream, and the launch's own errors (a bad
  // configuration); faults inside the kernel come back from the next sync().
  template <class Args>
  void launch(void (*kernel)(const Args&, cudaStream_t), const Args& a, const char* what) {
    on();
    kernel(a, stream_);
    check(cudaGetLastError(), what);
  }

  int index_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  Cublas blas_;
  cublasHandle_t handle_ = nullptr;
};

}  // namespace

std::unique_ptr<Executor> make_device_executor(int index) { return std::make_unique<DeviceExecutor>(index); }

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it
    if (why != nullptr) *why = std::string("no usable CUDA GPU: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0 && why != nullptr) *why = "no CUDA GPU";
  return n;
}

}  // namespace wisp::cuda
