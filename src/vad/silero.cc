// wisp/vad/silero.cc: Silero VAD (v5/v6 network) from its ONNX file, 16 kHz path.
#include "vad/silero.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

#include "common/error.h"
#include "common/parallel.h"
#include "vad/onnx.h"
#include "vad/vad_kernels.h"

#ifndef WISP_ASSETS_DIR
#define WISP_ASSETS_DIR "assets"
#endif

namespace wisp::vad {

std::string default_model_path() { return std::string(WISP_ASSETS_DIR) + "/silero-vad/silero_vad.onnx"; }

namespace {

constexpr int kFft = 256;                                        // STFT filter length at 16 kHz
constexpr int kHop = 128;                                        // its stride
constexpr int kBins = kFft / 2 + 1;                              // 129
constexpr int kReflect = 64;                                     // right reflect padding before the STFT
constexpr int kInput = SileroVad::kContext + SileroVad::kChunk;  // 576
constexpr int kPadded = kInput + kReflect;                       // 640
constexpr int kFrames = (kPadded - kFft) / kHop + 1;             // 4
constexpr int kEncCin[4] = {kBins, 128, 64, 64};
constexpr int kEncCout[4] = {128, 64, 64, 128};
constexpr int kEncStride[4] = {1, 2, 2, 1};
constexpr int kH = SileroVad::kHidden;

std::string shape_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

// ---------------------------------------------------------------------------
// Finding the 16 kHz network inside the ONNX graph.

// Constant tensors visible in a graph: initializers and Constant nodes' values,
// by the value name nodes use to refer to them.
using ValueMap = std::map<std::string, const onnx::Tensor*>;

void collect_constants(const onnx::Graph& g, ValueMap& by_value) {
  for (const onnx::Tensor& t : g.initializers) by_value[t.name] = &t;
  for (const onnx::Node& n : g.nodes) {
    if (n.op_type != "Constant" || n.outputs.size() != 1) continue;
    const onnx::Attribute* v = n.attribute("value");
    if (v && v->t) by_value[n.outputs[0]] = v->t.get();
  }
}

// silero_vad.onnx (v5, v6) starts with If(Equal(sr, 16000)): then = 16 kHz,
// else = 8 kHz. The 16 kHz-only exports (silero_vad_16k_op15.onnx) have no
// such If: the top-level graph is the 16 kHz network.
const onnx::Graph& select_16k_graph(const onnx::Graph& top) {
  ValueMap consts;
  collect_constants(top, consts);
  const std::string sr = std::find(top.inputs.begin(), top.inputs.end(), "sr") != top.inputs.end() ? "sr" : "";
  for (const onnx::Node& n : top.nodes) {
    if (n.op_type != "If" || n.inputs.empty()) continue;
    const onnx::Node* eq = nullptr;
    for (const onnx::Node& m : top.nodes)
      if (m.op_type == "Equal" && m.outputs.size() == 1 && m.outputs[0] == n.inputs[0]) eq = &m;
    if (!eq || eq->inputs.size() != 2 || sr.empty()) continue;
    int sr_side = eq->inputs[0] == sr ? 0 : eq->inputs[1] == sr ? 1 : -1;
    if (sr_side < 0) continue;
    auto c = consts.find(eq->inputs[1 - sr_side]);
    if (c == consts.end()) throw Error("the graph compares sr with a non-constant value");
    std::vector<int64_t> v = c->second->ints();
    if (v.size() != 1) throw Error("the graph compares sr with a non-scalar value");
    const onnx::Attribute* branch = n.attribute(v[0] == SileroVad::kSampleRate ? "then_branch" : "else_branch");
    if (!branch || !branch->g) throw Error("If node on the sample rate has no 16 kHz branch");
    return *branch->g;
  }
  return top;
}

// Silero names its weights after the PyTorch module ("encoder.0.reparam_conv.weight");
// some exports prefix them with "model.".
std::string canonical(const std::string& name) { return name.rfind("model.", 0) == 0 ? name.substr(6) : name; }

void collect_nodes(const onnx::Graph& g, std::vector<const onnx::Node*>& out) {
  for (const onnx::Node& n : g.nodes) {
    out.push_back(&n);
    for (const onnx::Attribute& a : n.attributes)
      if (a.g) collect_nodes(*a.g, out);
  }
}

std::vector<int64_t> ints_attr(const onnx::Node& n, const char* name, std::vector<int64_t> dflt) {
  const onnx::Attribute* a = n.attribute(name);
  return a ? a->ints : dflt;
}

}  // namespace

// ---------------------------------------------------------------------------

struct SileroVad::Weights {
  // As stored in the model (PyTorch layouts), for the reference path.
  std::vector<float> stft;                // [258][1][256]
  std::vector<float> enc_w[4], enc_b[4];  // [cout][cin][3], [cout]
  std::vector<float> w_ih, w_hh, b_ih, b_hh;
  std::vector<float> dec_w;  // [1][128][1]
  float dec_b = 0;
  // Repacked for the optimised kernels, and their level (WISP_ISA or the
  // CPU's best, read once at load).
  detail::PackedConv stft_packed, enc_packed[4];
  detail::PackedLstm lstm_packed;
  kernels::Isa isa = kernels::Isa::kGeneric;
};

namespace {

class WeightFinder {
 public:
  explicit WeightFinder(const onnx::Model& m) {
    const onnx::Graph& g = select_16k_graph(m.graph);
    collect_constants(m.graph, by_value_);
    collect_constants(g, by_value_);
    for (const auto& [value, t] : by_value_) {
      by_name_[canonical(t->name.empty() ? value : t->name)] = t;
      value_name_[value] = canonical(t->name.empty() ? value : t->name);
    }
    collect_nodes(g, nodes_);
  }

  std::vector<float> get(const std::string& name, const std::vector<int64_t>& dims) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) throw Error("missing tensor '" + name + "' (not a Silero VAD v5/v6 model?)");
    if (it->second->dims != dims)
      throw Error("tensor '" + name + "' has shape " + shape_str(it->second->dims) + ", expected " + shape_str(dims));
    std::vector<float> v = it->second->floats();
    for (float x : v)
      if (!std::isfinite(x)) throw Error("tensor '" + name + "' holds a non-finite value");
    return v;
  }

  // The graph must apply the weight `name` with a Conv of these parameters.
  void check_conv(const std::string& name, int64_t k, int64_t stride, int64_t pad) const {
    bool found = false;
    for (const onnx::Node* n : nodes_) {
      if (n->op_type != "Conv" || n->inputs.size() < 2) continue;
      auto it = value_name_.find(n->inputs[1]);
      if (it == value_name_.end() || it->second != name) continue;
      found = true;
      if (ints_attr(*n, "kernel_shape", {k}) != std::vector<int64_t>{k} ||
          ints_attr(*n, "strides", {1}) != std::vector<int64_t>{stride} ||
          ints_attr(*n, "pads", {0, 0}) != std::vector<int64_t>{pad, pad} ||
          ints_attr(*n, "dilations", {1}) != std::vector<int64_t>{1} ||
          (n->attribute("group") && n->attribute("group")->i != 1))
        throw Error("unexpected Silero VAD graph: the Conv of '" + name + "' is not kernel " + std::to_string(k) +
                    ", stride " + std::to_string(stride) + ", pad " + std::to_string(pad));
    }
    if (!found) throw Error("unexpected Silero VAD graph: no Conv uses '" + name + "'");
  }

  // The rest of the network: a reflect Pad, an LSTM of hidden size 128, a Sigmoid.
  void check_structure() const {
    bool pad = false, lstm = false, sigmoid = false;
    for (const onnx::Node* n : nodes_) {
      if (n->op_type == "Pad") {
        const onnx::Attribute* mode = n->attribute("mode");
        if (!mode || mode->s != "reflect") throw Error("unexpected Silero VAD graph: Pad is not reflect");
        pad = true;
      } else if (n->op_type == "LSTM") {
        const onnx::Attribute* hs = n->attribute("hidden_size");
        if (!hs || hs->i != kH) throw Error("unexpected Silero VAD graph: LSTM hidden size is not 128");
        lstm = true;
      } else if (n->op_type == "Sigmoid") {
        sigmoid = true;
      }
    }
    if (!pad || !lstm || !sigmoid)
      throw Error("unexpected Silero VAD graph: no reflect Pad, LSTM or Sigmoid in the 16 kHz branch");
  }

 private:
  ValueMap by_value_;
  std::map<std::string, const onnx::Tensor*> by_name_;
  std::map<std::string, std::string> value_name_;
  std::vector<const onnx::Node*> nodes_;
};

}  // namespace

SileroVad SileroVad::from_bytes(std::span<const uint8_t> bytes) {
  onnx::Model m = onnx::parse_model(bytes);
  WeightFinder f(m);
  auto w = std::make_shared<Weights>();
  w->stft = f.get("stft.forward_basis_buffer", {2 * kBins, 1, kFft});
  f.check_conv("stft.forward_basis_buffer", kFft, kHop, 0);
  for (int i = 0; i < 4; ++i) {
    std::string p = "encoder." + std::to_string(i) + ".reparam_conv.";
    w->enc_w[i] = f.get(p + "weight", {kEncCout[i], kEncCin[i], 3});
    w->enc_b[i] = f.get(p + "bias", {kEncCout[i]});
    f.check_conv(p + "weight", 3, kEncStride[i], 1);
  }
  w->w_ih = f.get("decoder.rnn.weight_ih", {4 * kH, kH});
  w->w_hh = f.get("decoder.rnn.weight_hh", {4 * kH, kH});
  w->b_ih = f.get("decoder.rnn.bias_ih", {4 * kH});
  w->b_hh = f.get("decoder.rnn.bias_hh", {4 * kH});
  w->dec_w = f.get("decoder.decoder.2.weight", {1, kH, 1});
  w->dec_b = f.get("decoder.decoder.2.bias", {1})[0];
  f.check_conv("decoder.decoder.2.weight", 1, 1, 0);
  f.check_structure();

  w->stft_packed = detail::pack_conv1d(w->stft.data(), nullptr, 2 * kBins, 1, kFft, kHop, 0);
  for (int i = 0; i < 4; ++i)
    w->enc_packed[i] =
        detail::pack_conv1d(w->enc_w[i].data(), w->enc_b[i].data(), kEncCout[i], kEncCin[i], 3, kEncStride[i], 1);
  w->lstm_packed = detail::pack_lstm(w->w_ih.data(), w->w_hh.data(), w->b_ih.data(), w->b_hh.data(), kH, kH);
  w->isa = kernels::default_isa();
  return SileroVad(std::move(w));
}

SileroVad SileroVad::load(const std::string& path) {
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(std::string("cannot open: ") + std::strerror(errno));
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(std::string("cannot read: ") + std::strerror(errno));
    return from_bytes(bytes);
  } catch (const Error& e) {
    throw Error("cannot load Silero VAD model '" + path + "': " + e.what());
  }
}

namespace {

// The model's input: context + chunk, reflect-padded on the right as
// torch.nn.functional.pad(mode="reflect") (the edge sample is not repeated).
void build_input(std::span<const float> chunk, SileroVad::State& s, float* xp) {
  if (chunk.size() != static_cast<size_t>(SileroVad::kChunk))
    throw Error("Silero VAD takes chunks of 512 samples, got " + std::to_string(chunk.size()));
  std::copy(s.context.begin(), s.context.end(), xp);
  std::copy(chunk.begin(), chunk.end(), xp + SileroVad::kContext);
  for (int k = 0; k < kReflect; ++k) xp[kInput + k] = xp[kInput - 2 - k];
  // OnnxWrapper: self._context = x[..., -context_size:] (x = context + chunk).
  std::copy(xp + kInput - SileroVad::kContext, xp + kInput, s.context.begin());
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

void SileroVad::features(const float* xp, int n, float* a4) const {
  const Weights& w = *w_;
  // Activations are time-major here: [chunk][frames][channels].
  std::vector<float> spec(static_cast<size_t>(kFrames) * 2 * kBins);
  std::vector<float> mag(static_cast<size_t>(n) * kFrames * kBins), a1(static_cast<size_t>(n) * kFrames * 128),
      a2(static_cast<size_t>(n) * 2 * 64), a3(static_cast<size_t>(n) * 64);
  for (int i = 0; i < n; ++i) {
    detail::conv1d(w.stft_packed, xp + static_cast<size_t>(i) * kPadded, kPadded, spec.data(), false, w.isa);
    float* m = mag.data() + static_cast<size_t>(i) * kFrames * kBins;
    for (int t = 0; t < kFrames; ++t)
      for (int b = 0; b < kBins; ++b) {
        float re = spec[t * 2 * kBins + b], im = spec[t * 2 * kBins + kBins + b];
        m[t * kBins + b] = std::sqrt(re * re + im * im);
      }
  }
  detail::conv1d_batch(w.enc_packed[0], mag.data(), kFrames, n, a1.data(), true, w.isa);
  detail::conv1d_batch(w.enc_packed[1], a1.data(), kFrames, n, a2.data(), true, w.isa);
  detail::conv1d_batch(w.enc_packed[2], a2.data(), 2, n, a3.data(), true, w.isa);
  detail::conv1d_batch(w.enc_packed[3], a3.data(), 1, n, a4, true, w.isa);
}

float SileroVad::finish_chunk(const float* a4, State& s) const {
  const Weights& w = *w_;
  float gates[4 * kH];
  detail::lstm_cell(w.lstm_packed, a4, s.h.data(), s.c.data(), gates, w.isa);
  float logit = w.dec_b;
  for (int j = 0; j < kH; ++j) logit += std::max(s.h[j], 0.0f) * w.dec_w[j];
  return sigmoid(logit);
}

float SileroVad::process_chunk(std::span<const float> chunk, State& s) const {
  float xp[kPadded], a4[kH];
  build_input(chunk, s, xp);
  features(xp, 1, a4);
  return finish_chunk(a4, s);
}

float SileroVad::process_chunk_ref(std::span<const float> chunk, State& s) const {
  const Weights& w = *w_;
  float xp[kPadded];
  build_input(chunk, s, xp);
  // PyTorch layouts: [channels][frames].
  std::vector<float> spec(2 * kBins * kFrames), mag(kBins * kFrames), a1(128 * kFrames), a2(64 * 2), a3(64), a4(128);
  detail::conv1d_ref(w.stft.data(), nullptr, 2 * kBins, 1, kFft, kHop, 0, xp, kPadded, spec.data(), false);
  for (int b = 0; b < kBins; ++b)
    for (int t = 0; t < kFrames; ++t) {
      double re = spec[b * kFrames + t], im = spec[(kBins + b) * kFrames + t];
      mag[b * kFrames + t] = static_cast<float>(std::sqrt(re * re + im * im));
    }
  const float* in = mag.data();
  float* outs[4] = {a1.data(), a2.data(), a3.data(), a4.data()};
  int t_in = kFrames;
  for (int i = 0; i < 4; ++i) {
    detail::conv1d_ref(w.enc_w[i].data(), w.enc_b[i].data(), kEncCout[i], kEncCin[i], 3, kEncStride[i], 1, in, t_in,
                       outs[i], true);
    t_in = detail::conv1d_out_len(t_in, 3, kEncStride[i], 1);
    in = outs[i];
  }
  detail::lstm_cell_ref(w.w_ih.data(), w.w_hh.data(), w.b_ih.data(), w.b_hh.data(), kH, kH, a4.data(), s.h.data(),
                        s.c.data());
  double logit = w.dec_b;
  for (int j = 0; j < kH; ++j) logit += std::max(s.h[j], 0.0f) * static_cast<double>(w.dec_w[j]);
  return static_cast<float>(1.0 / (1.0 + std::exp(-logit)));
}

std::vector<float> SileroVad::chunk_probs(std::span<const float> audio, State& s, int n_threads) const {
  const size_t n_chunks = (audio.size() + kChunk - 1) / kChunk;
  std::vector<float> probs(n_chunks);
  // Blocks of chunks: their inputs in order (each carries the previous
  // chunk's tail as context), their convolutions kSub chunks per product on
  // the threads, then the LSTM through them in order.
  constexpr int kSub = 16;
  const size_t block = static_cast<size_t>(kSub) * std::max(1, n_threads) * 4;
  std::vector<float> xp(block * kPadded), a4(block * kH);
  for (size_t c0 = 0; c0 < n_chunks; c0 += block) {
    const size_t nb = std::min(block, n_chunks - c0);
    for (size_t i = 0; i < nb; ++i) {
      const size_t pos = (c0 + i) * kChunk;
      if (audio.size() - pos >= static_cast<size_t>(kChunk)) {
        build_input(audio.subspan(pos, kChunk), s, xp.data() + i * kPadded);
      } else {  // get_speech_timestamps: the last chunk is zero-padded to 512
        std::array<float, kChunk> last{};
        std::copy(audio.begin() + static_cast<std::ptrdiff_t>(pos), audio.end(), last.begin());
        build_input(last, s, xp.data() + i * kPadded);
      }
    }
    const int64_t n_sub = static_cast<int64_t>((nb + kSub - 1) / kSub);
    parallel_for(n_sub, n_threads, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const size_t i0 = static_cast<size_t>(g) * kSub, n = std::min<size_t>(kSub, nb - i0);
        features(xp.data() + i0 * kPadded, static_cast<int>(n), a4.data() + i0 * kH);
      }
    });
    for (size_t i = 0; i < nb; ++i) probs[c0 + i] = finish_chunk(a4.data() + i * kH, s);
  }
  return probs;
}

std::vector<float> SileroVad::chunk_probs(std::span<const float> audio, int n_threads) const {
  State s;
  return chunk_probs(audio, s, n_threads);
}

}  // namespace wisp::vad
