// wisp/model/model.cc: tensor bookkeeping and openai's state_dict layout.
#include "model/model.h"

#include <string>

#include "common/error.h"
#include "model/ggml_format.h"

namespace wisp::model {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const Tensor& Model::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) {
    if (deferred.count(name)) throw Error("model tensor '" + name + "' is still in the file (use read_tensor)");
    throw Error("model has no tensor '" + name + "'");
  }
  return it->second;
}

Tensor Model::read_tensor(const std::string& name) const {
  if (auto it = tensors.find(name); it != tensors.end()) return it->second;
  return read_deferred_tensor(name);
}

namespace {

// A deferred tensor lies in Model::file_path unless it names its own file (a shard).
Tensor read_from_file(const Model& m, const std::string& name, const DeferredTensor& d, int64_t row0 = 0,
                      int64_t row1 = -1) {
  const bool own = !d.file.empty();
  return detail::read_deferred(own ? d.file : m.file_path, own ? d.file_size : m.file_size, name, d, row0, row1);
}

}  // namespace

Tensor Model::read_deferred_tensor(const std::string& name, int64_t row0, int64_t row1) const {
  auto it = deferred.find(name);
  if (it == deferred.end()) throw Error("model has no tensor '" + name + "'");
  return read_from_file(*this, name, it->second, row0, row1);
}

Tensor Model::take_tensor(const std::string& name) {
  if (auto it = tensors.find(name); it != tensors.end()) {
    Tensor t = std::move(it->second);
    tensors.erase(it);
    return t;
  }
  auto it = deferred.find(name);
  if (it == deferred.end()) throw Error("model has no tensor '" + name + "'");
  Tensor t = read_from_file(*this, name, it->second);
  deferred.erase(it);
  return t;
}

namespace {

using Entry = std::pair<std::string, std::vector<int64_t>>;

// openai/whisper model.py MultiHeadAttention: query/value/out have a bias, key has none.
void add_attention(std::vector<Entry>& out, const std::string& p, int64_t s) {
  out.push_back({p + ".query.weight", {s, s}});
  out.push_back({p + ".query.bias", {s}});
  out.push_back({p + ".key.weight", {s, s}});
  out.push_back({p + ".value.weight", {s, s}});
  out.push_back({p + ".value.bias", {s}});
  out.push_back({p + ".out.weight", {s, s}});
  out.push_back({p + ".out.bias", {s}});
}

// openai/whisper model.py ResidualAttentionBlock, in module registration order.
void add_block(std::vector<Entry>& out, const std::string& p, int64_t s, bool cross) {
  add_attention(out, p + ".attn", s);
  out.push_back({p + ".attn_ln.weight", {s}});
  out.push_back({p + ".attn_ln.bias", {s}});
  if (cross) {
    add_attention(out, p + ".cross_attn", s);
    out.push_back({p + ".cross_attn_ln.weight", {s}});
    out.push_back({p + ".cross_attn_ln.bias", {s}});
  }
  out.push_back({p + ".mlp.0.weight", {4 * s, s}});
  out.push_back({p + ".mlp.0.bias", {4 * s}});
  out.push_back({p + ".mlp.2.weight", {s, 4 * s}});
  out.push_back({p + ".mlp.2.bias", {s}});
  out.push_back({p + ".mlp_ln.weight", {s}});
  out.push_back({p + ".mlp_ln.bias", {s}});
}

}  // namespace

// PyTorch's state_dict lists a module's own parameters and buffers before its
// submodules', hence encoder.positional_embedding (a buffer) first and
// decoder.positional_embedding (a Parameter) before decoder.token_embedding.
std::vector<Entry> expected_tensors(const Dims& d) {
  std::vector<Entry> out;
  const int64_t sa = d.n_audio_state;
  const int64_t st = d.n_text_state;
  out.push_back({"encoder.positional_embedding", {d.n_audio_ctx, sa}});
  out.push_back({"encoder.conv1.weight", {sa, d.n_mels, 3}});
  out.push_back({"encoder.conv1.bias", {sa}});
  out.push_back({"encoder.conv2.weight", {sa, sa, 3}});
  out.push_back({"encoder.conv2.bias", {sa}});
  for (int i = 0; i < d.n_audio_layer; ++i) {
    add_block(out, "encoder.blocks." + std::to_string(i), sa, false);
  }
  out.push_back({"encoder.ln_post.weight", {sa}});
  out.push_back({"encoder.ln_post.bias", {sa}});
  out.push_back({"decoder.positional_embedding", {d.n_text_ctx, st}});
  out.push_back({"decoder.token_embedding.weight", {d.n_vocab, st}});
  for (int i = 0; i < d.n_text_layer; ++i) {
    add_block(out, "decoder.blocks." + std::to_string(i), st, true);
  }
  out.push_back({"decoder.ln.weight", {st}});
  out.push_back({"decoder.ln.bias", {st}});
  return out;
}

}  // namespace wisp::model

// ---- shared ggml helpers (model/ggml_format.h) ----

namespace wisp::model::detail {

void validate_dims(const Dims& d) {
  auto fail = [](const std::string& what) { throw Error("invalid model dimensions: " + what); };
  auto check = [&](const char* name, int v, int lo, int hi) {
    if (v < lo || v > hi) {
      fail(std::string(name) + " = " + std::to_string(v) + " (expected " + std::to_string(lo) + ".." +
           std::to_string(hi) + ")");
    }
  };
  if (d.n_mels != 80 && d.n_mels != 128) fail("n_mels = " + std::to_string(d.n_mels) + " (expected 80 or 128)");
  if (d.n_vocab != 51864 && d.n_vocab != 51865 && d.n_vocab != 51866) {
    fail("n_vocab = " + std::to_string(d.n_vocab) + " (expected 51864, 51865 or 51866)");
  }
  // Limits are generous (large-v3 is 1500/1280/20/32/448) but keep any
  // allocation derived from a header bounded.
  check("n_audio_ctx", d.n_audio_ctx, 1, 1 << 16);
  check("n_audio_state", d.n_audio_state, 1, 1 << 14);
  check("n_audio_head", d.n_audio_head, 1, 1 << 10);
  check("n_audio_layer", d.n_audio_layer, 1, 1 << 10);
  check("n_text_ctx", d.n_text_ctx, 1, 1 << 16);
  check("n_text_state", d.n_text_state, 1, 1 << 14);
  check("n_text_head", d.n_text_head, 1, 1 << 10);
  check("n_text_layer", d.n_text_layer, 1, 1 << 10);
  if (d.n_audio_state % d.n_audio_head != 0) {
    fail("n_audio_head " + std::to_string(d.n_audio_head) + " does not divide n_audio_state " +
         std::to_string(d.n_audio_state));
  }
  if (d.n_text_state % d.n_text_head != 0) {
    fail("n_text_head " + std::to_string(d.n_text_head) + " does not divide n_text_state " +
         std::to_string(d.n_text_state));
  }
}

std::vector<int64_t> squeezed(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  for (int64_t v : shape) {
    if (v != 1) out.push_back(v);
  }
  return out;
}

}  // namespace wisp::model::detail
