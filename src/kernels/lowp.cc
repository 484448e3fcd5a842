// wisp/kernels/lowp.cc: weight conversion, threading and dispatch of the
// low-precision kernels (lowp.h). The inner loops are in lowp_{generic,avx2,
// avx512}.cc; the reference twins in lowp_reference.cc.
#include "kernels/lowp.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/buffer.h"
#include "kernels/kernels.h"
#include "kernels/lowp_impl.h"
#include "kernels/tasks.h"
#include "kernels/vecmath.h"

namespace wisp::kernels {
namespace {

// The inner-kernel set of one instruction-set level.
struct Ops {
  decltype(&lowp_impl::generic::gemm_panels) gemm_panels;
  decltype(&lowp_impl::generic::gemm_panels8) gemm_panels8;
  decltype(&lowp_impl::generic::gemv_f16) gemv_f16;
  decltype(&lowp_impl::generic::gemv_bf16) gemv_bf16;
  decltype(&lowp_impl::generic::quantize_rows) quantize_rows;
  decltype(&lowp_impl::generic::softmax_quantize_rows) softmax_quantize_rows;
};

#define WISP_OPS(ns) \
  Ops { ns::gemm_panels, ns::gemm_panels8, ns::gemv_f16, ns::gemv_bf16, ns::quantize_rows, ns::softmax_quantize_rows }

const Ops& ops(Isa isa) {
  static const Ops kGeneric = WISP_OPS(lowp_impl::generic);
  static const Ops kAvx2 = WISP_OPS(lowp_impl::avx2);
  static const Ops kAvx512 = WISP_OPS(lowp_impl::avx512);
  switch (kernel_isa(isa)) {
    case Isa::kAvx2: return kAvx2;
    case Isa::kAvx512: return kAvx512;
    default: return kGeneric;
  }
}
#undef WISP_OPS

// Pairs of k per slice of a long dot product: 2048 values, so the
// encoder's products (k up to 4 x 1536 for large) have at most 3 slices.
// Slices of 256 pairs (a 16 KB panel slice, half of L1) measured ~10%
// slower on tiny's MLP projection (k = 1536) than one whole 48 KB panel
// from L2: each slice is one more pass of the epilogue over the output.
constexpr int64_t kKBlock = 1024;

// Rows of A per GEMM task, a multiple of 4 (the tiles are 6 and 4 rows),
// whose int16 rows (one slice of k) fit in ~192 KB of L2 next to the panel
// slice being swept.
int64_t row_block(int64_t lda) {
  const int64_t width = std::min<int64_t>(lda, 2 * kKBlock);
  const int64_t rows = (192 * 1024) / std::max<int64_t>(1, 2 * width);
  return std::clamp<int64_t>(rows / 4 * 4, 4, 96);
}

Epilogue shifted(const Epilogue& ep, int64_t r0, int64_t j0) {
  Epilogue e = ep;
  e.y = ep.y + r0 * ep.ldy + j0;
  if (e.row_scale != nullptr) e.row_scale += r0 * ep.row_scale_stride;
  if (e.col_scale != nullptr) e.col_scale += j0;
  if (e.bias != nullptr) e.bias += j0;
  return e;
}

// Columns per matrix-vector chunk: at least ~256k multiply-adds (~256 KB of
// int8 weights, some 20 microseconds): waking another thread for less costs
// more than it saves, and a decoding step has dozens of these products.
int64_t gemv_grain(int64_t m, int64_t k) {
  int64_t g = (int64_t{1} << 18) / std::max<int64_t>(1, m * k);
  return std::max<int64_t>(16, (g + 3) / 4 * 4);
}

void check_epilogue(const char* what, const Epilogue& ep) {
  if (ep.y == nullptr) throw Error(std::string(what) + ": no output");
}

}  // namespace

const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::kF32: return "float32";
    case WeightType::kF16: return "float16";
    case WeightType::kBF16: return "bfloat16";
    case WeightType::kS8: return "int8";
  }
  return "?";
}

// IEEE 754 binary16, round to nearest even (as numpy's astype(float16)).
uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds past 65504: infinity
  const int exp = static_cast<int>(abs >> 23) - 127;
  if (exp >= -14) {
    uint32_t h = (static_cast<uint32_t>(exp + 15) << 10) | ((abs >> 13) & 0x3ffu);
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
    return sign | static_cast<uint16_t>(h);
  }
  if (exp < -25) return sign;
  const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
  const int shift = -exp - 1;
  uint32_t h = mant >> shift;
  const uint32_t rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1u))) ++h;
  return sign | static_cast<uint16_t>(h);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else {
    // Zero or subnormal: mant * 2^-24, exact in float.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    std::memcpy(&bits, &v, sizeof(bits));
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

size_t QMatrix::bytes() const {
  return f32.size() * sizeof(float) + bits.size() * sizeof(uint16_t) + s8.size() + scale.size() * sizeof(float) +
         panels.size() * sizeof(int16_t);
}

namespace {

// max |x[i]|, NaNs ignored (as std::max(mx, nan) ignores them). On the
// bits: for non-negative floats the integer order is the float order, and
// integer max vectorises where a float compare-and-select does not (the
// compiler must keep its NaN and signed-zero rules); a running float maximum
// was 40% of a model load's quantisation.
float max_abs(const float* x, int64_t k) {
  int32_t mx = 0;
  for (int64_t i = 0; i < k; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, sizeof(u));
    int32_t a = static_cast<int32_t>(u & 0x7fffffffu);
    a = a > 0x7f800000 ? 0 : a;  // nan
    mx = a > mx ? a : mx;
  }
  return std::bit_cast<float>(mx);
}

}  // namespace

QMatrix qmatrix_shell(int64_t n, int64_t k, WeightType type, bool int8_panels, bool int16_panels) {
  if (n < 0 || k < 0) throw Error("make_qmatrix: negative dimension");
  QMatrix m;
  m.type = type;
  m.n = n;
  m.k = k;
  const size_t total = static_cast<size_t>(n * k);
  switch (type) {
    case WeightType::kF32: m.f32.resize(total); break;
    case WeightType::kF16:
    case WeightType::kBF16: m.bits.resize(total); break;
    case WeightType::kS8:
      if (!int8_panels && !int16_panels) throw Error("make_qmatrix: int8 needs a panel form");
      m.scale.resize(static_cast<size_t>(n));
      if (int16_panels) m.panels.resize(static_cast<size_t>(panels_size(n, k)));
      if (int8_panels) m.s8.resize(static_cast<size_t>(panels_size(n, k)));
      break;
  }
  return m;
}

void fill_qmatrix_rows(QMatrix& m, const float* w, int64_t r0, int64_t r1) {
  const int64_t k = m.k;
  if (r0 < 0 || r0 > r1 || r1 > m.n || r0 % kPanel != 0 || (r1 != m.n && r1 % kPanel != 0)) {
    throw Error("fill_qmatrix_rows: rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ") of a " +
                std::to_string(m.n) + "-row matrix");
  }
  const size_t count = static_cast<size_t>((r1 - r0) * k), at = static_cast<size_t>(r0 * k);
  switch (m.type) {
    case WeightType::kF32: std::copy_n(w, count, m.f32.data() + at); break;
    case WeightType::kF16:
    case WeightType::kBF16:
      for (size_t i = 0; i < count; ++i) {
        m.bits[at + i] = m.type == WeightType::kF16 ? f32_to_f16(w[i]) : f32_to_bf16(w[i]);
      }
      break;
    case WeightType::kS8: {
      Scratch<int8_t> q(count);
      for (int64_t r = 0; r < r1 - r0; ++r) {
        const float* wr = w + r * k;
        const float mx = max_abs(wr, k);
        // Per output channel: scale = max / 127, so the largest weight is exact.
        const float scale = mx / static_cast<float>(kWeightMax);
        const float inv = mx > 0.0f ? static_cast<float>(kWeightMax) / mx : 0.0f;
        m.scale[static_cast<size_t>(r0 + r)] = scale;
        for (int64_t i = 0; i < k; ++i) {
          const float v = detail::round_even(wr[i] * inv);
          q[static_cast<size_t>(r * k + i)] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
        }
      }
      // Rows r0.. start panel r0 / 16; the panels of these rows are contiguous.
      const int64_t at_panel = r0 / kPanel * panel_pairs(k) * 2 * kPanel;
      if (!m.panels.empty()) pack_panels_s8(q.data(), k, r1 - r0, k, m.panels.data() + at_panel);
      if (!m.s8.empty()) pack_panels_i8(q.data(), k, r1 - r0, k, m.s8.data() + at_panel);
      break;
    }
  }
}

QMatrix make_qmatrix(const float* w, int64_t n, int64_t k, WeightType type, bool int8_panels, bool int16_panels) {
  QMatrix m = qmatrix_shell(n, k, type, int8_panels, int16_panels);
  fill_qmatrix_rows(m, w, 0, n);
  return m;
}

void qmatrix_row(const QMatrix& m, int64_t r, float* out) {
  if (r < 0 || r >= m.n) throw Error("qmatrix_row: row out of range");
  switch (m.type) {
    case WeightType::kF32: std::memcpy(out, m.f32.data() + r * m.k, sizeof(float) * m.k); return;
    case WeightType::kF16:
      for (int64_t i = 0; i < m.k; ++i) out[i] = f16_to_f32(m.bits[r * m.k + i]);
      return;
    case WeightType::kBF16:
      for (int64_t i = 0; i < m.k; ++i) out[i] = bf16_to_f32(m.bits[r * m.k + i]);
      return;
    case WeightType::kS8: {
      const int64_t kp = panel_pairs(m.k);
      for (int64_t i = 0; i < m.k; ++i) {
        const int64_t at = panel_index(r, i, kp);
        out[i] = static_cast<float>(m.s8.empty() ? m.panels[at] : m.s8[at]) * m.scale[r];
      }
      return;
    }
  }
}

void qmatrix_rounding_shift_ref(const QMatrix& m, const float* w, int64_t ldw, int64_t r0, int64_t r1, const float* x,
                                double* shift) {
  std::vector<float> row(static_cast<size_t>(m.k));
  for (int64_t r = r0; r < r1; ++r) {
    qmatrix_row(m, r, row.data());
    double s = 0.0;
    for (int64_t i = 0; i < m.k; ++i) s += (static_cast<double>(row[i]) - w[(r - r0) * ldw + i]) * x[i];
    shift[r - r0] = s;
  }
}

namespace {

// sum_i (a[i] - b[i]) x[i] over eight float lanes (so that the compiler
// vectorises it without reassociating), summed in double at the end.
double diff_dot(const float* a, const float* b, const float* x, int64_t k) {
  float lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    for (int j = 0; j < 8; ++j) lane[j] += (a[i + j] - b[i + j]) * x[i + j];
  }
  double sum = 0.0;
  for (; i < k; ++i) sum += (static_cast<double>(a[i]) - b[i]) * x[i];
  for (float v : lane) sum += v;
  return sum;
}

}  // namespace

void qmatrix_rounding_shift(const QMatrix& m, const float* w, int64_t ldw, int64_t r0, int64_t r1, const float* x,
                            double* shift) {
  if (r0 < 0 || r0 > r1 || r1 > m.n) throw Error("qmatrix_rounding_shift: rows out of range");
  const int64_t k = m.k;
  if (m.type != WeightType::kS8) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = r0; r < r1; ++r) {
      qmatrix_row(m, r, row.data());  // row-major: a plain conversion
      shift[r - r0] = diff_dot(row.data(), w + (r - r0) * ldw, x, k);
    }
    return;
  }
  // A panel's 16 rows dequantized in storage order (pair t holds columns
  // 2t and 2t + 1 of each row: panel_index), then one dot per row.
  const int64_t kp = panel_pairs(k);
  std::vector<float> rows(static_cast<size_t>(kPanel * 2 * kp));
  for (int64_t p0 = r0 / kPanel * kPanel; p0 < r1; p0 += kPanel) {
    const size_t base = static_cast<size_t>(panel_index(p0, 0, kp));
    for (int64_t t = 0; t < kp; ++t) {
      for (int64_t c = 0; c < kPanel; ++c) {
        for (int64_t e = 0; e < 2; ++e) {
          const size_t at = base + static_cast<size_t>((t * kPanel + c) * 2 + e);
          rows[static_cast<size_t>(c * 2 * kp + 2 * t + e)] = m.s8.empty() ? m.panels[at] : m.s8[at];
        }
      }
    }
    for (int64_t r = std::max(p0, r0); r < std::min(p0 + kPanel, r1); ++r) {
      float* row = rows.data() + (r - p0) * 2 * kp;
      const float scale = m.scale[static_cast<size_t>(r)];
      for (int64_t i = 0; i < k; ++i) row[i] *= scale;
      shift[r - r0] = diff_dot(row, w + (r - r0) * ldw, x, k);
    }
  }
}

namespace {

// Rows of b into panels (lowp.h layout) of element type Out, written in
// panel order: for each pair of k, the 16 columns' (lo, hi) values, 64 or 32
// contiguous bytes, zeros past n and past k. Every position is written once
// (no memset first): the encoder's attention packs every head's keys per
// call (1500 x 384 values a layer for tiny), and a model load packs every
// weight matrix; an element-wise scatter showed in both profiles.
template <class In, class Out>
void pack_pairs(const In* b, int64_t ldb, int64_t n, int64_t k, Out* out) {
  const int64_t kp = panel_pairs(k), full = k / 2;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  for (int64_t p = 0; p < n_panels; ++p) {
    Out* dst = out + p * kp * 2 * kPanel;
    const int64_t nc = std::min(kPanel, n - p * kPanel);
    const In* rows = b + p * kPanel * ldb;
    for (int64_t t = 0; t < kp; ++t) {
      Out* d = dst + t * 2 * kPanel;
      for (int64_t c = 0; c < kPanel; ++c) {
        Out lo = 0, hi = 0;
        if (c < nc) {
          lo = static_cast<Out>(rows[c * ldb + 2 * t]);
          hi = t < full ? static_cast<Out>(rows[c * ldb + 2 * t + 1]) : Out{0};
        }
        d[2 * c] = lo;
        d[2 * c + 1] = hi;
      }
    }
  }
}

}  // namespace

void pack_panels_s8(const int8_t* b, int64_t ldb, int64_t n, int64_t k, int16_t* out) { pack_pairs(b, ldb, n, k, out); }

void pack_panels_i8(const int8_t* b, int64_t ldb, int64_t n, int64_t k, int8_t* out) { pack_pairs(b, ldb, n, k, out); }

void pack_panels_s16(const int16_t* b, int64_t ldb, int64_t n, int64_t k, int16_t* out) {
  pack_pairs(b, ldb, n, k, out);
}

void quantize_rows(const float* x, int64_t ldx, int64_t m, int64_t k, int qmax, int16_t* q, int64_t ldq, float* scale,
                   Isa isa) {
  if (m < 0 || k < 0 || ldq < k || qmax < 1 || qmax > 32767) {
    throw Error("quantize_rows: bad shape or range");
  }
  ops(isa).quantize_rows(x, ldx, m, k, qmax, q, ldq, scale);
}

namespace {

// C = A B^T over panels of either element type, split over threads in
// blocks of rows x groups of panels.
template <class T, class Kernel>
void gemm_any(int64_t m, int64_t n, int64_t k, const int16_t* a, int64_t lda, const T* b_panels, const Epilogue& ep,
              int n_threads, Kernel kernel) {
  check_epilogue("gemm", ep);
  if (m <= 0 || n <= 0) return;
  const int64_t kp = panel_pairs(k);
  if (lda < 2 * kp) throw Error("gemm: row pitch of A below the padded k");
  const int64_t mb = row_block(lda);
  const int64_t n_row_blocks = (m + mb - 1) / mb;
  const int64_t n_panels = (n + kPanel - 1) / kPanel;
  // Enough tasks to balance the threads: split the columns too when there
  // are few row blocks (a decoding step's one row, prompts, attention).
  // Tasks go out one at a time; with >= 16 per thread the last one to
  // finish idles its partner for 1/16 of a thread's share at most (the
  // encoder's 1500-row products have 16 row blocks per thread at 2 threads).
  // Products of a few rows (decoding) keep ~4 per thread: theirs are short.
  const int64_t per_thread = m >= 64 ? 16 : 4;
  int64_t col_groups = 1;
  while (n_row_blocks * col_groups < per_thread * n_threads && col_groups * 2 <= n_panels) {
    col_groups *= 2;
  }
  const int64_t n_tasks = n_row_blocks * col_groups;
  // Below ~2^19 multiply-adds (a few tens of microseconds) a second thread
  // costs more than it saves: a decoding step has dozens of such products,
  // and on a busy machine each parallel region waits for all its threads.
  const bool small = m * n * k < (int64_t{1} << 19);
  // Long dot products go in equal slices of at most kKBlock pairs, so that
  // the slice of a panel being swept (<= 64 KB) stays in L2 next to the
  // block's rows while they all pass over it; the slices' partial results
  // are summed in y (in fp32, by the epilogue: bias with the first slice,
  // then accumulate). Not with GELU, which needs the whole sum.
  const int64_t pstride = kp * 2 * kPanel;
  const int64_t n_slices = ep.gelu ? 1 : std::max<int64_t>(1, (kp + kKBlock - 1) / kKBlock);
  const int64_t slice = (kp + n_slices - 1) / n_slices;  // equal slices: small's k = 3072 is 2 x 768
  task_for(
      n_tasks, small ? 1 : n_threads, [] { return 0; },
      [&](int, int64_t t) {
        const int64_t rb = t / col_groups, cg = t % col_groups;
        const int64_t r0 = rb * mb, r1 = std::min(m, r0 + mb);
        const int64_t p0 = n_panels * cg / col_groups, p1 = n_panels * (cg + 1) / col_groups;
        const int64_t j0 = p0 * kPanel, j1 = std::min(n, p1 * kPanel);
        if (j1 <= j0) return;
        Epilogue e = shifted(ep, r0, j0);
        for (int64_t s0 = 0; s0 < kp; s0 += slice) {
          kernel(r1 - r0, j1 - j0, std::min(slice, kp - s0), a + r0 * lda + 2 * s0, lda,
                 b_panels + p0 * pstride + s0 * 2 * kPanel, pstride, e);
          e.bias = nullptr;
          e.accumulate = true;
        }
      });
}

}  // namespace

void gemm_s16(int64_t m, int64_t n, int64_t k, const int16_t* a, int64_t lda, const int16_t* b_panels,
              const Epilogue& ep, int n_threads, Isa isa) {
  gemm_any(m, n, k, a, lda, b_panels, ep, n_threads, ops(isa).gemm_panels);
}

void gemm_s16_p8(int64_t m, int64_t n, int64_t k, const int16_t* a, int64_t lda, const int8_t* b_panels,
                 const Epilogue& ep, int n_threads, Isa isa) {
  gemm_any(m, n, k, a, lda, b_panels, ep, n_threads, ops(isa).gemm_panels8);
}

void qlinear(const float* x, int64_t ldx, int64_t m, const QMatrix& w, const float* bias, float* y, int64_t ldy,
             bool accumulate, bool gelu, int n_threads, Isa isa) {
  if (m < 0) throw Error("qlinear: negative row count");
  if (m == 0 || w.n == 0) return;
  if (ldy < w.n || ldx < w.k) throw Error("qlinear: row pitch smaller than the matrix width");
  Epilogue ep;
  ep.y = y;
  ep.ldy = ldy;
  ep.bias = bias;
  ep.accumulate = accumulate;
  ep.gelu = gelu;
  const Ops& o = ops(isa);
  switch (w.type) {
    case WeightType::kF32:
    case WeightType::kF16:
    case WeightType::kBF16: {
      if (w.type != WeightType::kF32 && m <= kSmallGemmRows) {
        auto kernel = w.type == WeightType::kF16 ? o.gemv_f16 : o.gemv_bf16;
        parallel_for(w.n, n_threads, gemv_grain(m, w.k), [&](int64_t j0, int64_t j1) {
          kernel(m, j1 - j0, w.k, x, ldx, w.bits.data() + j0 * w.k, w.k, shifted(ep, 0, j0));
        });
        return;
      }
      // Many rows: the GEMM is compute-bound, so the weights are widened to
      // fp32 once for the call and go through oneDNN's sgemm.
      std::vector<float> wide;
      const float* wf = w.f32.data();
      if (w.type != WeightType::kF32) {
        wide.resize(static_cast<size_t>(w.n * w.k));
        parallel_for(w.n, n_threads, 64, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) qmatrix_row(w, r, wide.data() + r * w.k);
        });
        wf = wide.data();
      }
      if (!gelu) {
        linear({x, ldx, m, w.k, wf, bias, w.n, y, ldy, accumulate}, n_threads);
        return;
      }
      std::vector<float> tmp(static_cast<size_t>(m * w.n));
      linear({x, ldx, m, w.k, wf, bias, w.n, tmp.data(), w.n, false}, n_threads);
      kernels::gelu(tmp.data(), m * w.n, n_threads);
      parallel_for(m, n_threads, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          float* yr = y + r * ldy;
          const float* tr = tmp.data() + r * w.n;
          for (int64_t j = 0; j < w.n; ++j) yr[j] = accumulate ? yr[j] + tr[j] : tr[j];
        }
      });
      return;
    }
    case WeightType::kS8: {
      const int64_t ldq = 2 * panel_pairs(w.k);
      Scratch<int16_t> q(static_cast<size_t>(m * ldq));  // quantize_rows writes the padding too
      Scratch<float> xs(static_cast<size_t>(m));
      const int qmax = act_qmax(w.k, kWeightMax);
      parallel_for(m, n_threads, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, w.k)), [&](int64_t r0, int64_t r1) {
        o.quantize_rows(x + r0 * ldx, ldx, r1 - r0, w.k, qmax, q.data() + r0 * ldq, ldq, xs.data() + r0);
      });
      ep.row_scale = xs.data();
      ep.col_scale = w.scale.data();
      if (!w.s8.empty() && (m <= kSmallGemmRows || w.panels.empty())) {
        gemm_s16_p8(m, w.n, w.k, q.data(), ldq, w.s8.data(), ep, n_threads, isa);
      } else {
        gemm_s16(m, w.n, w.k, q.data(), ldq, w.panels.data(), ep, n_threads, isa);
      }
      return;
    }
  }
}

void conv1d_k3_s8(const float* x, int64_t t_in, int64_t c_in, const QMatrix* taps, const float* bias, int64_t c_out,
                  int stride, float* y, int n_threads, Isa isa) {
  const int64_t t_out = conv1d_k3_out_len(t_in, stride);
  for (int j = 0; j < 3; ++j) {
    if (taps[j].type != WeightType::kS8 || taps[j].panels.empty() || taps[j].n != c_out || taps[j].k != c_in) {
      throw Error("conv1d_k3_s8: tap weights are not int8 panels of the right shape");
    }
  }
  // Padded rows 0 and t_in + 1 are zero (scale 0); row r + 1 is input row r.
  const int64_t ldq = 2 * panel_pairs(c_in);
  Scratch<int16_t> q(static_cast<size_t>((t_in + 2) * ldq));  // rows 1..t_in: quantize_rows
  Scratch<float> scale(static_cast<size_t>(t_in + 2));
  std::fill_n(q.data(), ldq, int16_t{0});
  std::fill_n(q.data() + (t_in + 1) * ldq, ldq, int16_t{0});
  scale[0] = scale[static_cast<size_t>(t_in + 1)] = 0.0f;
  const int qmax = act_qmax(c_in, kWeightMax);
  const Ops& o = ops(isa);
  parallel_for(t_in, n_threads, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, c_in)), [&](int64_t r0, int64_t r1) {
    o.quantize_rows(x + r0 * c_in, c_in, r1 - r0, c_in, qmax, q.data() + (r0 + 1) * ldq, ldq, scale.data() + r0 + 1);
  });
  for (int j = 0; j < 3; ++j) {
    Epilogue ep;
    ep.y = y;
    ep.ldy = c_out;
    ep.row_scale = scale.data() + j;
    ep.row_scale_stride = stride;
    ep.col_scale = taps[j].scale.data();
    ep.bias = j == 0 ? bias : nullptr;
    ep.accumulate = j > 0;
    gemm_s16(t_out, c_out, c_in, q.data() + j * ldq, stride * ldq, taps[j].panels.data(), ep, n_threads, isa);
  }
}

}  // namespace wisp::kernels
