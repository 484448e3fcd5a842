#include "cuda/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/lowp.h"
#include "model/fp16.h"

namespace wisp::cuda::reference {

using ops::DType;

void store(void* y, DType t, int64_t i, float v) {
  switch (t) {
    case DType::kF32: static_cast<float*>(y)[i] = v; break;
    case DType::kF16: static_cast<uint16_t*>(y)[i] = model::float_to_half(v); break;
    case DType::kBF16: static_cast<uint16_t*>(y)[i] = kernels::f32_to_bf16(v); break;
  }
}

float load(const void* x, DType t, int64_t i) {
  switch (t) {
    case DType::kF32: return static_cast<const float*>(x)[i];
    case DType::kF16: return model::half_to_float(static_cast<const uint16_t*>(x)[i]);
    case DType::kBF16: return model::bf16_to_float(static_cast<const uint16_t*>(x)[i]);
  }
  return 0.0f;
}

// Row-major C[m][n] = op(A) op(B) + beta C, as device_executor.cc asks
// cublasGemmEx (column-major) for it. The operands are widened to fp32 rows
// first: op(A) as [m][k], op(B)^T as [n][k].
void gemm(const ops::Gemm& g) {
  std::vector<float> a(static_cast<size_t>(g.m * g.k)), b(static_cast<size_t>(g.n * g.k));
  for (int64_t batch = 0; batch < g.batch; ++batch) {
    const int64_t a0 = batch * g.stride_a, b0 = batch * g.stride_b;
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t k = 0; k < g.k; ++k)
        a[static_cast<size_t>(i * g.k + k)] = load(g.a, g.t, a0 + (g.a_trans ? k * g.lda + i : i * g.lda + k));
    for (int64_t j = 0; j < g.n; ++j)
      for (int64_t k = 0; k < g.k; ++k)
        b[static_cast<size_t>(j * g.k + k)] = load(g.b, g.t, b0 + (g.b_trans ? j * g.ldb + k : k * g.ldb + j));
    float* c = g.c + batch * g.stride_c;
    for (int64_t i = 0; i < g.m; ++i) {
      const float* x = a.data() + i * g.k;
      for (int64_t j = 0; j < g.n; ++j) {
        const float* y = b.data() + j * g.k;
        double acc = 0;
        for (int64_t k = 0; k < g.k; ++k) acc += static_cast<double>(x[k]) * y[k];
        float& out = c[i * g.ldc + j];
        out = static_cast<float>(g.beta != 0.0f ? acc + static_cast<double>(g.beta) * out : acc);
      }
    }
  }
}

void convert_rows(const ops::Convert& a) {
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t c = 0; c < a.cols; ++c) store(a.y, a.t, r * a.cols + c, a.x[r * a.ldx + c]);
}

void im2col_k3(const ops::Im2col& a) {
  for (int64_t to = 0; to < a.t_out; ++to) {
    for (int64_t c = 0; c < a.c_in; ++c) {
      for (int64_t k = 0; k < 3; ++k) {
        const int64_t ti = to * a.stride + k - 1;
        const float v = ti >= 0 && ti < a.t_in ? a.x[c * a.c_stride + ti * a.t_stride] : 0.0f;
        store(a.cols, a.t, to * 3 * a.c_in + c * 3 + k, v);
      }
    }
  }
}

void bias_act(const ops::BiasAct& a) {
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t c = 0; c < a.cols; ++c) {
      float v = a.y[r * a.ldy + c];
      if (a.bias != nullptr) v += a.bias[c];
      if (a.gelu) v = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
      if (a.add != nullptr) v += a.add[r * a.ld_add + c];
      a.y[r * a.ldy + c] = v;
    }
  }
}

void layer_norm(const ops::LayerNorm& a) {
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* x = a.x + r * a.ldx;
    double sum = 0;
    for (int64_t c = 0; c < a.d; ++c) sum += x[c];
    const double mean = sum / static_cast<double>(a.d);
    double sq = 0;
    for (int64_t c = 0; c < a.d; ++c) sq += (x[c] - mean) * (x[c] - mean);
    const double inv = 1.0 / std::sqrt(sq / static_cast<double>(a.d) + a.eps);
    for (int64_t c = 0; c < a.d; ++c)
      store(a.y, a.t, r * a.ldy + c, static_cast<float>((x[c] - mean) * inv) * a.w[c] + a.b[c]);
  }
}

void to_heads(const ops::ToHeads& a) {
  for (int64_t i = 0; i < a.n; ++i)
    for (int64_t h = 0; h < a.n_head; ++h)
      for (int64_t j = 0; j < a.d_head; ++j)
        store(a.y, a.t, (h * a.n + i) * a.d_head + j, a.x[i * a.ldx + h * a.d_head + j] * a.scale);
}

void softmax_rows(const ops::Softmax& a) {
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* row = a.x + r * a.n;
    const float mx = *std::max_element(row, row + a.n);
    double sum = 0;
    for (int64_t j = 0; j < a.n; ++j) sum += std::exp(row[j] - mx);
    for (int64_t j = 0; j < a.n; ++j) store(a.y, a.t, r * a.n + j, static_cast<float>(std::exp(row[j] - mx) / sum));
  }
}

void embed(const ops::Embed& a) {
  for (int64_t r = 0; r < a.n_rows; ++r)
    for (int64_t c = 0; c < a.d; ++c)
      a.x[r * a.d + c] =
          load(a.tok_emb, a.t, static_cast<int64_t>(a.rows[r].token) * a.d + c) + a.pos_emb[a.rows[r].pos * a.d + c];
}

void append_kv(const ops::AppendKv& a) {
  const int64_t d = a.n_head * a.d_head;
  for (int64_t r = 0; r < a.n_rows; ++r) {
    const ops::RowDesc& row = a.rows[r];
    for (int64_t h = 0; h < a.n_head; ++h) {
      for (int64_t j = 0; j < a.d_head; ++j) {
        const int64_t at = a.layer * row.self_layer_stride + (h * a.n_text_ctx + row.pos) * a.d_head + j;
        row.self_k[at] = a.qkv[r * 3 * d + d + h * a.d_head + j];
        row.self_v[at] = a.qkv[r * 3 * d + 2 * d + h * a.d_head + j];
      }
    }
  }
}

// openai qkv_attention for one query: softmax((q s) (k s)^T) v.
void decoder_attention(const ops::DecoderAttention& a) {
  for (int64_t r = 0; r < a.n_rows; ++r) {
    const ops::RowDesc& row = a.rows[r];
    for (int64_t h = 0; h < a.n_head; ++h) {
      const float* q = a.q + r * a.ldq + h * a.d_head;
      const float *k, *v;
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
      std::vector<double> p(static_cast<size_t>(n_keys));
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n_keys; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < a.d_head; ++c) dot += (q[c] * a.scale) * (k[j * a.d_head + c] * a.scale);
        p[static_cast<size_t>(j)] = dot;
        if (a.qk != nullptr) a.qk[(h * a.n_rows + r) * n_keys + j] = static_cast<float>(dot);
        mx = std::max(mx, dot);
      }
      double sum = 0;
      for (double& e : p) sum += (e = std::exp(e - mx));
      for (int64_t c = 0; c < a.d_head; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < n_keys; ++j) acc += p[static_cast<size_t>(j)] * v[j * a.d_head + c];
        a.out[r * a.n_head * a.d_head + h * a.d_head + c] = static_cast<float>(acc / sum);
      }
    }
  }
}

}  // namespace wisp::cuda::reference
