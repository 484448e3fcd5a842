// wisp/cuda/ops.cu: the CUDA backend's kernels (ops.h); their twins are
// reference.cc. DeviceExecutor checks each launch; a fault inside a kernel
// comes back from the stream's next synchronisation.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "cuda/ops.h"

namespace wisp::cuda::ops {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

// Stores v in y[i] as y's type.
__device__ inline void store(void* y, DType t, int64_t i, float v) {
  switch (t) {
    case DType::kF32: static_cast<float*>(y)[i] = v; break;
    case DType::kF16: static_cast<__half*>(y)[i] = __float2half_rn(v); break;
    case DType::kBF16: static_cast<__nv_bfloat16*>(y)[i] = __float2bfloat16_rn(v); break;
  }
}

__device__ inline float load(const void* x, DType t, int64_t i) {
  switch (t) {
    case DType::kF32: return static_cast<const float*>(x)[i];
    case DType::kF16: return __half2float(static_cast<const __half*>(x)[i]);
    case DType::kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(x)[i]);
  }
  return 0.0f;
}

// torch.nn.functional.gelu (approximate='none').
__device__ inline float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

// The sum (or max) of v over the block; every thread gets it. `scratch`
// holds one float per warp.
template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, n_warps = (blockDim.x + 31) / 32;
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < n_warps ? scratch[lane] : (kMax ? -INFINITY : 0.0f);
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  return v;
}

__global__ void convert_rows_kernel(Convert a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.rows * a.cols) return;
  const int64_t r = i / a.cols, c = i % a.cols;
  store(a.y, a.t, i, a.x[r * a.ldx + c]);
}

__global__ void im2col_kernel(Im2col a) {
  const int64_t width = 3 * a.c_in;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.t_out * width) return;
  const int64_t to = i / width, ck = i % width, c = ck / 3, k = ck % 3;
  const int64_t ti = to * a.stride + k - 1;
  const float v = ti >= 0 && ti < a.t_in ? a.x[c * a.c_stride + ti * a.t_stride] : 0.0f;
  store(a.cols, a.t, i, v);
}

__global__ void bias_act_kernel(BiasAct a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.rows * a.cols) return;
  const int64_t r = i / a.cols, c = i % a.cols;
  float v = a.y[r * a.ldy + c];
  if (a.bias != nullptr) v += a.bias[c];
  if (a.gelu) v = gelu(v);
  if (a.add != nullptr) v += a.add[r * a.ld_add + c];
  a.y[r * a.ldy + c] = v;
}

// One block per row: the mean, then the variance of the deviations (two
// passes, as torch's CPU kernel: no cancellation).
__global__ void layer_norm_kernel(LayerNorm a) {
  __shared__ float scratch[32];
  const float* x = a.x + static_cast<int64_t>(blockIdx.x) * a.ldx;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < a.d; c += blockDim.x) sum += x[c];
  const float mean = block_reduce<false>(sum, scratch) / static_cast<float>(a.d);
  float sq = 0.0f;
  for (int64_t c = threadIdx.x; c < a.d; c += blockDim.x) {
    const float dev = x[c] - mean;
    sq += dev * dev;
  }
  const float var = block_reduce<false>(sq, scratch) / static_cast<float>(a.d);
  const float inv = rsqrtf(var + a.eps);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * a.ldy;
  for (int64_t c = threadIdx.x; c < a.d; c += blockDim.x)
    store(a.y, a.t, row + c, (x[c] - mean) * inv * a.w[c] + a.b[c]);
}

__global__ void to_heads_kernel(ToHeads a) {
  const int64_t width = a.n_head * a.d_head;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.n * width) return;
  const int64_t row = i / width, col = i % width, h = col / a.d_head, j = col % a.d_head;
  store(a.y, a.t, (h * a.n + row) * a.d_head + j, a.x[row * a.ldx + col] * a.scale);
}

__global__ void softmax_kernel(Softmax a) {
  __shared__ float scratch[32];
  const float* x = a.x;
  const int64_t n = a.n;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * n;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, x[row + j]);
  mx = block_reduce<true>(mx, scratch);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += expf(x[row + j] - mx);
  sum = block_reduce<false>(sum, scratch);
  const float inv = 1.0f / sum;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) store(a.y, a.t, row + j, expf(x[row + j] - mx) * inv);
}

__global__ void embed_kernel(Embed a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.n_rows * a.d) return;
  const int64_t r = i / a.d, c = i % a.d;
  const RowDesc& row = a.rows[r];
  a.x[i] = load(a.tok_emb, a.t, static_cast<int64_t>(row.token) * a.d + c) + a.pos_emb[row.pos * a.d + c];
}

__global__ void append_kv_kernel(AppendKv a) {
  const int64_t d = a.n_head * a.d_head;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.n_rows * d) return;
  const int64_t r = i / d, col = i % d, h = col / a.d_head, j = col % a.d_head;
  const RowDesc& row = a.rows[r];
  const int64_t at = a.layer * row.self_layer_stride + (h * a.n_text_ctx + row.pos) * a.d_head + j;
  row.self_k[at] = a.qkv[r * 3 * d + d + col];
  row.self_v[at] = a.qkv[r * 3 * d + 2 * d + col];
}

// One block per (row, head): the scores of all keys into shared memory, the
// softmax over them, then the weighted sum of the values, each output
// column summed by a slice of the threads over a share of the keys.
__global__ void decoder_attention_kernel(DecoderAttention a) {
  extern __shared__ float smem[];  // [n_keys] scores, then [blockDim] partial sums
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x, h = blockIdx.y;
  const RowDesc& row = a.rows[r];
  const float* q = a.q + r * a.ldq + h * a.d_head;
  const float* k;
  const float* v;
  int64_t n_keys;
  if (a.cross) {
    n_keys = a.n_audio_ctx;
    k = row.cross_k + a.layer * row.cross_layer_stride + h * a.n_audio_ctx * a.d_head;
    v = row.cross_v + a.layer * row.cross_layer_stride + h * a.n_audio_ctx * a.d_head;
  } else {
    n_keys = row.pos + 1;
    k = row.self_k + a.layer * row.self_layer_stride + h * a.n_text_ctx * a.d_head;
    v = row.self_v + a.layer * row.self_layer_stride + h * a.n_text_ctx * a.d_head;
  }
  float* p = smem;
  const float scale2 = a.scale * a.scale;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < n_keys; j += blockDim.x) {
    float dot = 0.0f;
    for (int64_t c = 0; c < a.d_head; ++c) dot += q[c] * k[j * a.d_head + c];
    const float score = dot * scale2;
    p[j] = score;
    if (a.qk != nullptr) a.qk[(h * a.n_rows + r) * n_keys + j] = score;
    mx = fmaxf(mx, score);
  }
  mx = block_reduce<true>(mx, scratch);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < n_keys; j += blockDim.x) {
    const float e = expf(p[j] - mx);
    p[j] = e;
    sum += e;
  }
  sum = block_reduce<false>(sum, scratch);  // its barriers also publish p
  // Thread t sums column t % d_head over keys j = t / d_head (mod slices).
  float* partial = smem + n_keys;
  const int64_t slices = blockDim.x / a.d_head;
  const int64_t col = threadIdx.x % a.d_head, slice = threadIdx.x / a.d_head;
  float acc = 0.0f;
  if (slice < slices) {
    for (int64_t j = slice; j < n_keys; j += slices) acc += p[j] * v[j * a.d_head + col];
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.x < a.d_head) {
    float total = 0.0f;
    for (int64_t sl = 0; sl < slices; ++sl) total += partial[sl * a.d_head + threadIdx.x];
    a.out[r * a.n_head * a.d_head + h * a.d_head + threadIdx.x] = total / sum;
  }
}

}  // namespace

void convert_rows(const Convert& a, cudaStream_t s) {
  if (a.rows * a.cols == 0) return;
  convert_rows_kernel<<<blocks_for(a.rows * a.cols), kThreads, 0, s>>>(a);
}

void im2col_k3(const Im2col& a, cudaStream_t s) {
  if (a.t_out * a.c_in == 0) return;
  im2col_kernel<<<blocks_for(a.t_out * 3 * a.c_in), kThreads, 0, s>>>(a);
}

void bias_act(const BiasAct& a, cudaStream_t s) {
  if (a.rows * a.cols == 0) return;
  bias_act_kernel<<<blocks_for(a.rows * a.cols), kThreads, 0, s>>>(a);
}

void layer_norm(const LayerNorm& a, cudaStream_t s) {
  if (a.rows == 0) return;
  layer_norm_kernel<<<static_cast<unsigned>(a.rows), kThreads, 0, s>>>(a);
}

void to_heads(const ToHeads& a, cudaStream_t s) {
  if (a.n * a.n_head * a.d_head == 0) return;
  to_heads_kernel<<<blocks_for(a.n * a.n_head * a.d_head), kThreads, 0, s>>>(a);
}

void softmax_rows(const Softmax& a, cudaStream_t s) {
  if (a.rows == 0) return;
  softmax_kernel<<<static_cast<unsigned>(a.rows), kThreads, 0, s>>>(a);
}

void embed(const Embed& a, cudaStream_t s) {
  if (a.n_rows * a.d == 0) return;
  embed_kernel<<<blocks_for(a.n_rows * a.d), kThreads, 0, s>>>(a);
}

void append_kv(const AppendKv& a, cudaStream_t s) {
  if (a.n_rows == 0) return;
  append_kv_kernel<<<blocks_for(a.n_rows * a.n_head * a.d_head), kThreads, 0, s>>>(a);
}

void decoder_attention(const DecoderAttention& a, cudaStream_t s) {
  if (a.n_rows == 0) return;
  // 128 threads: two slices of a 64-wide head (every Whisper model's) in the
  // weighted sum; the score loop uses them all.
  const int threads = a.d_head <= 128 ? 128 : static_cast<int>(a.d_head);
  const int64_t max_keys = a.cross ? a.n_audio_ctx : a.n_text_ctx;
  const size_t shared = sizeof(float) * static_cast<size_t>(max_keys + threads);
  const dim3 grid(static_cast<unsigned>(a.n_rows), static_cast<unsigned>(a.n_head));
  decoder_attention_kernel<<<grid, threads, shared, s>>>(a);
}

}  // namespace wisp::cuda::ops
