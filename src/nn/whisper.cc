// wisp/nn/whisper.cc: weight preparation and the audio encoder
// (openai/whisper model.py AudioEncoder).
#include "nn/whisper.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "model/fp16.h"
#include "nn/bias_correction.h"
#include "nn/weights.h"

namespace wisp::nn {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// The checkpoint's tensors, handed out one at a time after a shape check:
// copied from a const model, or taken out of a model given by rvalue (moved,
// or read from the file if the loader deferred it), so that converting a
// model holds one fp32 tensor per converting thread on top of the converted
// weights. Thread-safe: the maps are only looked at (and an in-memory
// tensor moved out) under the lock; a deferred tensor is read outside it
// (Model::read_deferred_tensor, its own file handle), and `deferred` is
// emptied only after the parallel part (finish()).
class TensorSource {
 public:
  explicit TensorSource(const model::Model& m) : m_(m), owned_(nullptr) {}
  explicit TensorSource(model::Model& m) : m_(m), owned_(&m) {}

  std::vector<float> take(const std::string& name, const std::vector<int64_t>& shape) {
    model::Tensor t;
    bool in_file = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = m_.tensors.find(name); it == m_.tensors.end()) {
        in_file = true;
      } else if (owned_) {
        t = std::move(owned_->tensors.extract(it).mapped());
      } else {
        t = it->second;
      }
    }
    if (in_file) t = m_.read_deferred_tensor(name);
    if (t.shape != shape || static_cast<int64_t>(t.data.size()) != numel(shape)) {
      throw Error("model tensor " + name + " has shape " + shape_str(t.shape) + ", expected " + shape_str(shape));
    }
    return std::move(t.data);
  }

  // The rows of a [rows][...] tensor, in slices of at most `slice` rows
  // (fn(r0, r1, those rows)): a deferred tensor is read a slice at a time,
  // so converting it holds one slice in fp32, not the whole tensor (the
  // token embedding, 80 MB in fp32 for tiny, was the peak of a load).
  void take_rows(const std::string& name, const std::vector<int64_t>& shape, int64_t slice,
                 const std::function<void(int64_t, int64_t, const float*)>& fn) {
    bool in_memory;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_memory = m_.tensors.count(name) != 0;
    }
    const int64_t rows = shape.at(0);
    const int64_t width = rows > 0 ? numel(shape) / rows : 0;
    auto d = m_.deferred.find(name);  // `deferred` does not change until finish()
    if (in_memory || d == m_.deferred.end() || d->second.shape != shape) {
      // In memory, or absent or of another shape: take() gives it or the error.
      const std::vector<float> all = take(name, shape);
      for (int64_t r0 = 0; r0 < rows; r0 += slice) {
        fn(r0, std::min(rows, r0 + slice), all.data() + r0 * width);
      }
      return;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += slice) {
      const int64_t r1 = std::min(rows, r0 + slice);
      const model::Tensor part = m_.read_deferred_tensor(name, r0, r1);
      fn(r0, r1, part.data.data());
    }
  }

  // A model given by rvalue keeps no tensors, in memory or in its file.
  void finish() {
    if (owned_) owned_->deferred.clear();
  }

  const model::Dims& dims() const { return m_.dims; }

 private:
  const model::Model& m_;
  model::Model* owned_;
  std::mutex mu_;
};

LayerNormW load_ln(TensorSource& m, const std::string& name, int64_t d) {
  return {m.take(name + ".weight", {d}), m.take(name + ".bias", {d})};
}

LinearW load_linear(TensorSource& m, const std::string& name, int64_t in, int64_t out, bool bias = true) {
  LinearW l;
  l.in = in;
  l.out = out;
  l.w = m.take(name + ".weight", {out, in});
  if (bias) l.b = m.take(name + ".bias", {out});
  return l;
}

// Stacks Linears with the same input width into one (rows concatenated); a
// Linear without bias contributes zeros to the bias.
LinearW stack(const std::vector<LinearW>& parts) {
  LinearW s;
  s.in = parts.front().in;
  for (const LinearW& p : parts) {
    s.out += p.out;
    s.w.insert(s.w.end(), p.w.begin(), p.w.end());
    if (p.b.empty()) {
      s.b.insert(s.b.end(), static_cast<size_t>(p.out), 0.0f);
    } else {
      s.b.insert(s.b.end(), p.b.begin(), p.b.end());
    }
  }
  return s;
}

// Self-attention projections of `prefix` (.attn), fused into query|key|value.
LinearW load_qkv(TensorSource& m, const std::string& prefix, int64_t d) {
  return stack({load_linear(m, prefix + ".query", d, d), load_linear(m, prefix + ".key", d, d, /*bias=*/false),
                load_linear(m, prefix + ".value", d, d)});
}

BlockW load_block(TensorSource& m, const std::string& p, int64_t d, bool cross) {
  BlockW b;
  b.attn_ln = load_ln(m, p + ".attn_ln", d);
  b.attn_qkv = load_qkv(m, p + ".attn", d);
  b.attn_out = load_linear(m, p + ".attn.out", d, d);
  if (cross) {
    b.cross_ln = load_ln(m, p + ".cross_attn_ln", d);
    b.cross_q = load_linear(m, p + ".cross_attn.query", d, d);
    b.cross_kv = stack(
        {load_linear(m, p + ".cross_attn.key", d, d, /*bias=*/false), load_linear(m, p + ".cross_attn.value", d, d)});
    b.cross_out = load_linear(m, p + ".cross_attn.out", d, d);
  }
  b.mlp_ln = load_ln(m, p + ".mlp_ln", d);
  b.mlp_fc = load_linear(m, p + ".mlp.0", d, 4 * d);
  b.mlp_proj = load_linear(m, p + ".mlp.2", 4 * d, d);
  return b;
}

std::vector<float> load_conv(TensorSource& m, const std::string& name, int64_t c_out, int64_t c_in) {
  const std::vector<float> w = m.take(name, {c_out, c_in, 3});
  std::vector<float> packed(w.size());
  kernels::pack_conv1d_k3_weight(w.data(), c_out, c_in, packed.data());
  return packed;
}

// Rows of the token embedding converted at a time (a multiple of the
// int8 panels' 16 rows): 6 MB of fp32 for tiny, 20 MB for large.
constexpr int64_t kEmbeddingSlice = 4096;

// x[0..n) as IEEE halves into h, if every value is one (bit for bit after a
// round trip); false at the first that is not.
bool to_halves(const float* x, int64_t n, uint16_t* h) {
  for (int64_t i = 0; i < n; ++i) {
    h[i] = model::float_to_half(x[i]);
    if (std::bit_cast<uint32_t>(model::half_to_float(h[i])) != std::bit_cast<uint32_t>(x[i])) return false;
  }
  return true;
}

// If every value of v is an IEEE half, moves v into h as those halves (v
// emptied) and returns true; else leaves both as they were (h empty) and
// returns false. One pass.
bool move_to_halves(std::vector<float>& v, std::vector<uint16_t>& h) {
  h.resize(v.size());
  if (!to_halves(v.data(), static_cast<int64_t>(v.size()), h.data())) {
    std::vector<uint16_t>().swap(h);
    return false;
  }
  std::vector<float>().swap(v);
  return true;
}

// Moves l's fp32 weight into the compute type's storage. `rows`/`panels`:
// the forms the kernels will want (lowp.h make_qmatrix). `input_mean`: the
// layer's expected input, whose int8 rounding shift leaves the bias
// (bias_correction.h); null for none.
void convert(LinearW& l, kernels::WeightType type, bool rows, bool panels,
             const std::vector<float>* input_mean = nullptr) {
  if (type == kernels::WeightType::kF32) {
    // The decoder's matrix-vector products are passes over the weights:
    // f16-exact ones go as halves (the same bits, half the bytes). The
    // encoder's (and the cross K/V's) big GEMMs stay on oneDNN's fp32 path.
    if (rows && !panels && move_to_halves(l.w, l.wh)) l.storage = LinearStorage::kExactHalf;
    return;
  }
  l.q = kernels::make_qmatrix(l.w.data(), l.out, l.in, type, rows, panels);
  l.storage = LinearStorage::kLowp;
  if (input_mean != nullptr && !input_mean->empty()) {
    if (l.b.empty()) l.b.assign(static_cast<size_t>(l.out), 0.0f);
    correct_bias(l.w.data(), l.in, l.q, *input_mean, l.b);
  }
  std::vector<float>().swap(l.w);
}

// l's int8 rows (1 byte a weight), read once into oneDNN's layout.
void convert_onednn(LinearW& l, kernels::WeightType type, const kernels::OnednnEncoder& dnn,
                    const std::vector<float>* input_mean) {
  convert(l, type, true, false, input_mean);
  l.ow = dnn.prepare(l.q);
  l.q = kernels::QMatrix();
  l.storage = LinearStorage::kOnednn;
}

// Encoder blocks run GEMMs over 1500 rows (int8: panels only); decoder
// blocks run matrix-vector products (int8: rows only; a prompt packs panels
// on the fly), except the cross-attention K/V over the audio rows. With
// `dnn` (the int8 encoder on oneDNN), the 1500-row products go there.
// `audio_mean`: the encoder output's expected value (decoder blocks).
void convert_block(BlockW& b, kernels::WeightType type, bool decoder, const kernels::OnednnEncoder* dnn,
                   const std::vector<float>& audio_mean) {
  // Rounded weights (every type but fp32) shift their outputs: correct them.
  const BlockInputMeans mean =
      type != kernels::WeightType::kF32 ? block_input_means(b, decoder ? &audio_mean : nullptr) : BlockInputMeans{};
  const bool rows = decoder, panels = !decoder;
  const std::pair<LinearW*, const std::vector<float>*> linears[] = {{&b.attn_qkv, &mean.attn_qkv},
                                                                    {&b.attn_out, &mean.attn_out},
                                                                    {&b.mlp_fc, &mean.mlp_fc},
                                                                    {&b.mlp_proj, &mean.mlp_proj}};
  for (auto [l, m] : linears) {
    if (dnn != nullptr && !decoder) {
      convert_onednn(*l, type, *dnn, m);
    } else {
      convert(*l, type, rows, panels, m);
    }
  }
  if (decoder) {
    convert(b.cross_q, type, true, false, &mean.cross_q);
    convert(b.cross_out, type, true, false, &mean.cross_out);
    if (dnn != nullptr) {
      convert_onednn(b.cross_kv, type, *dnn, &mean.cross_kv);
    } else {
      convert(b.cross_kv, type, false, true, &mean.cross_kv);
    }
  }
}

// Tap j of a packed [c_out][3][c_in] conv weight as an int8 [c_out][c_in] matrix.
// int8_panels: the int8 form (for oneDNN's path, which reads it once),
// else the int16 panels of lowp.h's GEMMs. With input_mean, each tap's
// rounding shift leaves `bias` (bias_correction.h).
void convert_conv(std::vector<float>& packed, int64_t c_out, int64_t c_in, kernels::QMatrix* taps, bool int8_panels,
                  const std::vector<float>* input_mean, std::vector<float>& bias) {
  std::vector<float> tap(static_cast<size_t>(c_out * c_in));
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t o = 0; o < c_out; ++o) {
      std::copy_n(packed.data() + (o * 3 + j) * c_in, c_in, tap.data() + o * c_in);
    }
    taps[j] = kernels::make_qmatrix(tap.data(), c_out, c_in, kernels::WeightType::kS8, int8_panels, !int8_panels);
    if (input_mean != nullptr) correct_bias(tap.data(), c_in, taps[j], *input_mean, bias);
  }
  std::vector<float>().swap(packed);
}

// Runs tasks[i] for every i on up to n_threads threads, the largest first
// (`first`), and rethrows the error of the lowest-numbered task that failed:
// the error a sequential run in task order would have stopped at.
void run_tasks(const std::vector<std::function<void()>>& tasks, size_t first, int n_threads) {
  const int64_t n = static_cast<int64_t>(tasks.size());
  std::vector<std::exception_ptr> errors(tasks.size());
  std::vector<size_t> order(tasks.size());
  order[0] = first;
  for (size_t i = 0, o = 1; i < tasks.size(); ++i) {
    if (i != first) order[o++] = i;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(1, n_threads))
  for (int64_t t = 0; t < n; ++t) {
    const size_t i = order[static_cast<size_t>(t)];
    try {
      tasks[i]();
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// Reads and converts the weights: one task per block, one for the encoder's
// stem, one for the token embedding (the largest tensor) and the decoder's
// other tensors. Converting is most of a model load (f16 -> fp32, int8
// quantisation, panel packing), and the tasks are independent.
std::unique_ptr<Whisper::Weights> prepare(TensorSource& m, ComputeType type, int n_threads) {
  const model::Dims& d = m.dims();
  check_dims(d);
  auto w = std::make_unique<Whisper::Weights>();
  w->dims = d;
  w->prec = precision_for(type);
  const Precision& p = w->prec;
  const int64_t sa = d.n_audio_state, st = d.n_text_state;
  w->enc_blocks.resize(static_cast<size_t>(d.n_audio_layer));
  w->dec_blocks.resize(static_cast<size_t>(d.n_text_layer));
  Whisper::Weights& W = *w;
  if (p.onednn_encoder) {
    if (p.attention_heads > 0 && d.n_audio_head % p.attention_heads != 0) {
      throw Error("WISP_ATTENTION_HEADS is " + std::to_string(p.attention_heads) + ": not a divisor of the encoder's " +
                  std::to_string(d.n_audio_head) + " heads");
    }
    try {
      W.onednn = std::make_unique<kernels::OnednnEncoder>(d.n_mels, d.n_audio_ctx, sa, d.n_audio_head,
                                                          kernels::u8_format_for(kernels::detect_cpu()), "amx",
                                                          p.attention_heads);
    } catch (const Error&) {
      // oneDNN could not make a primitive: chosen by the CPU, the encoder
      // falls back to lowp.h's kernels; asked for by name, that is an error.
      const char* forced = std::getenv("WISP_INT8_ENCODER");
      if (forced != nullptr && *forced != '\0') throw;
      w->prec.onednn_encoder = false;
    }
  }
  // Bias corrections read the encoder output's mean and the final layer
  // norm's (decoder blocks, logits).
  W.ln_post = load_ln(m, "encoder.ln_post", sa);
  W.dec_ln = load_ln(m, "decoder.ln", st);
  std::vector<std::function<void()>> tasks;
  tasks.push_back([&] {
    W.conv1_w = load_conv(m, "encoder.conv1.weight", sa, d.n_mels);
    W.conv1_b = m.take("encoder.conv1.bias", {sa});
    W.conv2_w = load_conv(m, "encoder.conv2.weight", sa, sa);
    W.conv2_b = m.take("encoder.conv2.bias", {sa});
    W.enc_pos = m.take("encoder.positional_embedding", {d.n_audio_ctx, sa});
    if (p.int_conv) {
      const bool dnn = W.onednn != nullptr;
      // The log-mel input is taken as zero-mean: conv1 keeps its bias.
      const std::vector<float> conv2_mean = conv2_input_mean(W.conv1_w, W.conv1_b, d.n_mels);
      convert_conv(W.conv1_w, sa, d.n_mels, W.conv1_taps, dnn, nullptr, W.conv1_b);
      convert_conv(W.conv2_w, sa, sa, W.conv2_taps, dnn, &conv2_mean, W.conv2_b);
      if (dnn) {
        W.conv1_dnn = W.onednn->prepare_conv(W.conv1_taps, 1);
        W.conv2_dnn = W.onednn->prepare_conv(W.conv2_taps, 2);
        for (kernels::QMatrix* t : {W.conv1_taps, W.conv2_taps}) {
          for (int j = 0; j < 3; ++j) t[j] = kernels::QMatrix();
        }
      }
    }
  });
  for (int i = 0; i < d.n_audio_layer; ++i) {
    tasks.push_back([&, i] {
      BlockW& b = W.enc_blocks[static_cast<size_t>(i)];
      b = load_block(m, "encoder.blocks." + std::to_string(i), sa, false);
      convert_block(b, p.linear, false, W.onednn.get(), W.ln_post.b);
    });
  }
  const size_t embedding_task = tasks.size();
  tasks.push_back([&] {
    const std::string emb = "decoder.token_embedding.weight";
    if (p.embed != kernels::WeightType::kF32) {
      W.tok_emb_q = kernels::qmatrix_shell(d.n_vocab, st, p.embed, true, false);
      W.logits_bias.assign(static_cast<size_t>(d.n_vocab), 0.0f);
      m.take_rows(emb, {d.n_vocab, st}, kEmbeddingSlice, [&](int64_t r0, int64_t r1, const float* rows) {
        kernels::fill_qmatrix_rows(W.tok_emb_q, rows, r0, r1);
        // The logits are the final layer norm's output times the embedding.
        correct_bias_rows(rows, st, W.tok_emb_q, r0, r1, W.dec_ln.b, W.logits_bias);
      });
    } else {
      // As halves if every value is one (an f16 checkpoint), else in fp32:
      // at the first slice that is not, the rows before it go back to fp32
      // (exactly, they were halves) and the rest is kept as it comes.
      W.tok_emb_h.resize(static_cast<size_t>(d.n_vocab * st));
      m.take_rows(emb, {d.n_vocab, st}, kEmbeddingSlice, [&](int64_t r0, int64_t r1, const float* rows) {
        const int64_t n = (r1 - r0) * st, at = r0 * st;
        if (!W.tok_emb_h.empty()) {
          if (to_halves(rows, n, W.tok_emb_h.data() + at)) return;
          W.tok_emb.resize(static_cast<size_t>(d.n_vocab * st));
          std::transform(W.tok_emb_h.begin(), W.tok_emb_h.begin() + at, W.tok_emb.begin(), model::half_to_float);
          std::vector<uint16_t>().swap(W.tok_emb_h);
        }
        std::copy_n(rows, n, W.tok_emb.data() + at);
      });
    }
    W.dec_pos = m.take("decoder.positional_embedding", {d.n_text_ctx, st});
  });
  for (int i = 0; i < d.n_text_layer; ++i) {
    tasks.push_back([&, i] {
      BlockW& b = W.dec_blocks[static_cast<size_t>(i)];
      b = load_block(m, "decoder.blocks." + std::to_string(i), st, true);
      convert_block(b, p.linear, true, W.onednn.get(), W.ln_post.b);
    });
  }
  run_tasks(tasks, embedding_task, n_threads);
  m.finish();
#if defined(__GLIBC__)
  // The fp32 tensors freed by the other threads stay in their malloc arenas,
  // where the main thread's later allocations (the encoder's buffers) do not
  // reuse them: 13 MB more peak memory for small. Hand them back.
  malloc_trim(0);
#endif
  return w;
}

}  // namespace

void layer_norm(const LayerNormW& ln, const float* x, float* y, int64_t n, int64_t d, int n_threads) {
  kernels::layernorm(x, ln.w.data(), ln.b.data(), y, n, d, kLayerNormEps, n_threads);
}

Precision precision_for(ComputeType t) {
  Precision p;
  p.type = resolve_compute_type(t);
  p.isa = kernels::default_isa();
  switch (p.type) {
    case ComputeType::kFloat32:
    case ComputeType::kAuto: break;
    case ComputeType::kFloat16: p.linear = p.embed = kernels::WeightType::kF16; break;
    case ComputeType::kBFloat16: p.linear = p.embed = kernels::WeightType::kBF16; break;
    case ComputeType::kInt8:
    case ComputeType::kInt8Float32:
    case ComputeType::kInt8BFloat16:
      p.linear = kernels::WeightType::kS8;
      p.embed = p.type == ComputeType::kInt8BFloat16 ? kernels::WeightType::kBF16 : kernels::WeightType::kS8;
      p.int_conv = p.int_attention = true;
      p.onednn_encoder = kernels::onednn_encoder_pays(kernels::detect_cpu(), p.isa);
      if (const char* e = std::getenv("WISP_INT8_ENCODER"); e != nullptr && *e != '\0') {
        const std::string v = e;
        if (v != "onednn" && v != "wisp") {
          throw Error("WISP_INT8_ENCODER is '" + v + "': expected onednn or wisp");
        }
        p.onednn_encoder = v == "onednn";
      }
      if (const char* e = std::getenv("WISP_ATTENTION_HEADS"); e != nullptr && *e != '\0') {
        char* end = nullptr;
        const long v = std::strtol(e, &end, 10);
        if (*end != '\0' || v < 1 || v > 64) {
          throw Error(std::string("WISP_ATTENTION_HEADS is '") + e + "': expected a head count");
        }
        p.attention_heads = v;
      }
      break;
  }
  return p;
}

void LinearW::apply(const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, bool accumulate, int n_threads,
                    kernels::Isa isa, bool gelu) const {
  if (gelu && accumulate) throw Error("Linear: gelu with accumulate");
  switch (storage) {
    case LinearStorage::kLowp: kernels::qlinear(x, ldx, n, q, bias(), y, ldy, accumulate, gelu, n_threads, isa); return;
    case LinearStorage::kExactHalf:
      kernels::linear_h({x, ldx, n, in, wh.data(), bias(), out, y, ldy, accumulate}, n_threads);
      break;
    case LinearStorage::kF32:
      kernels::linear({x, ldx, n, in, w.data(), bias(), out, y, ldy, accumulate}, n_threads);
      break;
    case LinearStorage::kOnednn: throw Error("Linear: oneDNN weights run through kernels::OnednnEncoder");
  }
  if (gelu)
    for (int64_t r = 0; r < n; ++r) kernels::gelu(y + r * ldy, out, n_threads);
}

void LinearW::apply_few_rows(const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, bool accumulate,
                             int n_threads) const {
  switch (storage) {
    case LinearStorage::kExactHalf:
      kernels::linear_few_rows_h({x, ldx, n, in, wh.data(), bias(), out, y, ldy, accumulate}, n_threads);
      return;
    case LinearStorage::kF32:
      kernels::linear_few_rows({x, ldx, n, in, w.data(), bias(), out, y, ldy, accumulate}, n_threads);
      return;
    default: throw Error("Linear: few-row products need fp32 or exact-half weights");
  }
}

size_t LinearW::bytes() const {
  return (w.size() + b.size()) * sizeof(float) + wh.size() * sizeof(uint16_t) + q.bytes() + ow.bytes();
}

Whisper::Whisper(const model::Model& model, ComputeType type, int n_threads) {
  TensorSource src(model);
  w_ = prepare(src, type, n_threads);
}

Whisper::Whisper(model::Model&& model, ComputeType type, int n_threads) {
  TensorSource src(model);
  w_ = prepare(src, type, n_threads);
}
Whisper::~Whisper() = default;
Whisper::Whisper(Whisper&&) noexcept = default;
Whisper& Whisper::operator=(Whisper&&) noexcept = default;

const model::Dims& Whisper::dims() const { return w_->dims; }
ComputeType Whisper::compute_type() const { return w_->prec.type; }
bool Whisper::onednn_encoder() const { return w_->onednn != nullptr; }
int64_t Whisper::attention_heads_per_task() const { return w_->onednn != nullptr ? w_->onednn->heads_per_task() : 0; }

size_t Whisper::weight_bytes() const {
  const Weights& w = *w_;
  size_t n = 0;
  auto vec = [&](const std::vector<float>& v) { n += v.size() * sizeof(float); };
  auto lin = [&](const LinearW& l) { n += l.bytes(); };
  for (const auto* v :
       {&w.conv1_w, &w.conv1_b, &w.conv2_w, &w.conv2_b, &w.enc_pos, &w.tok_emb, &w.logits_bias, &w.dec_pos})
    vec(*v);
  for (int j = 0; j < 3; ++j) n += w.conv1_taps[j].bytes() + w.conv2_taps[j].bytes();
  n += w.conv1_dnn.bytes() + w.conv2_dnn.bytes();
  n += w.tok_emb_q.bytes();
  n += w.tok_emb_h.size() * sizeof(uint16_t);
  for (const auto* blocks : {&w.enc_blocks, &w.dec_blocks}) {
    for (const BlockW& b : *blocks) {
      for (const LinearW* l : {&b.attn_qkv, &b.attn_out, &b.cross_q, &b.cross_kv, &b.cross_out, &b.mlp_fc, &b.mlp_proj})
        lin(*l);
      for (const LayerNormW* ln : {&b.attn_ln, &b.cross_ln, &b.mlp_ln}) {
        vec(ln->w);
        vec(ln->b);
      }
    }
  }
  return n;
}

}  // namespace wisp::nn
