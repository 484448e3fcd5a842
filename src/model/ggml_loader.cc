// wisp/model/ggml_loader.cc: reads whisper.cpp ggml model files.
//
// Layout (whisper.cpp whisper_model_load and models/convert-pt-to-ggml.py),
// all little-endian:
//   uint32 magic 0x67676d6c ("ggml")
//   int32  n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//          n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
//          (ftype = quantization_version * 1000 + ggml ftype)
//   int32  filter rows, filter columns, then rows*columns float32
//   int32  token count, then per token: uint32 length, bytes
//   tensors until end of file: int32 n_dims, int32 name length, int32 ggml
//          type, int32 ne[n_dims] (innermost first), name bytes, data.
// The file is streamed once: each tensor's bytes are checked against what is
// left in the file before anything is allocated for it.
#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <map>

#include "common/error.h"
#include "model/file_reader.h"
#include "model/formats.h"
#include "model/fp16.h"
#include "model/ggml_format.h"
#include "model/model.h"

namespace wisp::model {

static_assert(std::endian::native == std::endian::little, "ggml files are little-endian");

namespace {

// ggml.h enum ggml_type values and their block geometry (ggml-common.h).
// i8 and bf16 are never read from a ggml file here: they are how the other
// formats' tensors are deferred (DeferredTensor), read by read_deferred.
struct TypeInfo {
  int id;
  const char* name;
  int block;  // elements per block
  int bytes;  // bytes per block
  bool in_ggml_files = true;
};

constexpr TypeInfo kSupported[] = {
    {0, "f32", 1, 4},
    {1, "f16", 1, 2},
    {2, "q4_0", 32, 18},
    {3, "q4_1", 32, 20},
    {6, "q5_0", 32, 22},
    {7, "q5_1", 32, 24},
    {8, "q8_0", 32, 34},
    {detail::kTypeI8, "i8", 1, 1, false},
    {detail::kTypeBF16, "bf16", 1, 2, false},
};

// Names of the ggml types this loader does not read, for the error message.
std::string ggml_type_name(int t) {
  static constexpr const char* kNames[] = {
      "f32",   "f16",    "q4_0", "q4_1", "q4_2", "q4_3",    "q5_0",   "q5_1",    "q8_0",  "q8_1",   "q2_k",
      "q3_k",  "q4_k",   "q5_k", "q6_k", "q8_k", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
      "iq2_s", "iq4_xs", "i8",   "i16",  "i32",  "i64",     "f64",    "iq1_m",   "bf16"};
  if (t >= 0 && t < static_cast<int>(std::size(kNames))) return kNames[t];
  return "unknown";
}

const TypeInfo* find_type(int t) {
  for (const TypeInfo& ti : kSupported) {
    if (ti.id == t) return &ti;
  }
  return nullptr;
}

using detail::Reader;

using detail::shape_str;

// ggml-quants.c dequantize_row_*: 32 weights per block, scale d (and offset
// m for the _1 types) as f16; element j and j+16 share byte j of the nibbles,
// q5 types take the fifth bit of element k from bit k of the 32-bit qh.
void dequantize(int type, const uint8_t* src, float* dst, int64_t n) {
  const int64_t blocks = n / 32;
  auto half_at = [](const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return half_to_float(h);
  };
  for (int64_t b = 0; b < blocks; ++b) {
    float* y = dst + b * 32;
    switch (type) {
      case 2: {  // q4_0: d, qs[16]; value = (nibble - 8) * d
        const uint8_t* p = src + b * 18;
        const float d = half_at(p);
        for (int j = 0; j < 16; ++j) {
          y[j] = static_cast<float>((p[2 + j] & 0x0f) - 8) * d;
          y[j + 16] = static_cast<float>((p[2 + j] >> 4) - 8) * d;
        }
        break;
      }
      case 3: {  // q4_1: d, m, qs[16]; value = nibble * d + m
        const uint8_t* p = src + b * 20;
        const float d = half_at(p);
        const float m = half_at(p + 2);
        for (int j = 0; j < 16; ++j) {
          y[j] = static_cast<float>(p[4 + j] & 0x0f) * d + m;
          y[j + 16] = static_cast<float>(p[4 + j] >> 4) * d + m;
        }
        break;
      }
      case 6:    // q5_0: d, qh[4], qs[16]; value = (5-bit - 16) * d
      case 7: {  // q5_1: d, m, qh[4], qs[16]; value = 5-bit * d + m
        const bool has_m = type == 7;
        const uint8_t* p = src + b * (has_m ? 24 : 22);
        const float d = half_at(p);
        const float m = has_m ? half_at(p + 2) : 0.0f;
        const uint8_t* qhp = p + (has_m ? 4 : 2);
        const uint8_t* qs = qhp + 4;
        uint32_t qh;
        std::memcpy(&qh, qhp, 4);
        for (int j = 0; j < 16; ++j) {
          const int lo = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
          const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
          if (has_m) {
            y[j] = static_cast<float>(lo) * d + m;
            y[j + 16] = static_cast<float>(hi) * d + m;
          } else {
            y[j] = static_cast<float>(lo - 16) * d;
            y[j + 16] = static_cast<float>(hi - 16) * d;
          }
        }
        break;
      }
      case 8: {  // q8_0: d, int8 qs[32]; value = q * d
        const uint8_t* p = src + b * 34;
        const float d = half_at(p);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(p[2 + j])) * d;
        break;
      }
      default: throw Error("internal: no dequantizer for ggml type " + std::to_string(type));
    }
  }
}

Dims read_dims(Reader& r, int& ftype) {
  Dims d;
  d.n_vocab = r.i32("header");
  d.n_audio_ctx = r.i32("header");
  d.n_audio_state = r.i32("header");
  d.n_audio_head = r.i32("header");
  d.n_audio_layer = r.i32("header");
  d.n_text_ctx = r.i32("header");
  d.n_text_state = r.i32("header");
  d.n_text_head = r.i32("header");
  d.n_text_layer = r.i32("header");
  d.n_mels = r.i32("header");
  ftype = r.i32("header");
  detail::validate_dims(d);
  if (ftype < 0) throw Error("invalid ftype " + std::to_string(ftype) + " in header");
  return d;
}

MelFilters read_filters(Reader& r, const Dims& d) {
  MelFilters f;
  f.n_mels = r.i32("mel filter header");
  f.n_freq = r.i32("mel filter header");
  if (f.n_mels != d.n_mels || f.n_freq != detail::kMelFreqBins) {
    throw Error("mel filter bank is " + std::to_string(f.n_mels) + " x " + std::to_string(f.n_freq) + ", expected " +
                std::to_string(d.n_mels) + " x " + std::to_string(detail::kMelFreqBins));
  }
  const uint64_t n = static_cast<uint64_t>(f.n_mels) * static_cast<uint64_t>(f.n_freq);
  r.need(n * 4, "mel filters");
  f.data.resize(n);
  r.read(f.data.data(), n * 4, "mel filters");
  return f;
}

std::vector<std::string> read_vocab(Reader& r, const Dims& d) {
  const int32_t count = r.i32("vocabulary header");
  // whisper.cpp adds the special tokens itself above the regular ones.
  if (count <= 0 || count > d.n_vocab) {
    throw Error("vocabulary lists " + std::to_string(count) + " tokens, expected 1.." + std::to_string(d.n_vocab));
  }
  std::vector<std::string> vocab;
  // Each token takes at least its 4-byte length: bound the reservation by the file.
  r.need(static_cast<uint64_t>(count) * 4, "vocabulary of " + std::to_string(count) + " tokens");
  vocab.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    const std::string what = "token " + std::to_string(i);
    uint32_t len;
    r.read(&len, 4, what);
    r.need(len, what);
    std::string tok(len, '\0');
    r.read(tok.data(), len, what);
    vocab.push_back(std::move(tok));
  }
  return vocab;
}

// Reads a tensor's data (ggml type `type`, n elements, `bytes` in the
// file) at the reader's position into dst as fp32: f32 directly, f16 and
// the quantized types through `raw`, a slice at a time, so that a load
// holds the slice's raw bytes on top of dst rather than the whole tensor's
// (40 MB more for the token embedding of an f16 tiny model, which is the
// peak of a load).
void read_fp32(Reader& r, int type, uint64_t bytes, int64_t n, float* dst, std::vector<uint8_t>& raw,
               const std::string& what) {
  if (type == 0) {
    r.read(dst, bytes, what);
    return;
  }
  constexpr int64_t kSlice = int64_t{1} << 18;  // elements; a multiple of the 32-value blocks
  uint64_t done = 0;
  for (int64_t i = 0; i < n; i += kSlice) {
    const int64_t len = std::min(kSlice, n - i);
    // Exact: bytes is n / 32 whole blocks (or 2 n for f16) and len a multiple of 32 but for the last.
    const uint64_t end = i + len == n ? bytes : bytes * static_cast<uint64_t>(i + len) / static_cast<uint64_t>(n);
    raw.resize(end - done);
    r.read(raw.data(), end - done, what);
    done = end;
    if (type == 1 || type == detail::kTypeBF16) {
      const auto to_float = type == 1 ? half_to_float : bf16_to_float;
      for (int64_t j = 0; j < len; ++j) {
        uint16_t h;
        std::memcpy(&h, raw.data() + 2 * j, 2);
        dst[i + j] = to_float(h);
      }
    } else if (type == detail::kTypeI8) {
      for (int64_t j = 0; j < len; ++j) dst[i + j] = static_cast<float>(static_cast<int8_t>(raw[j]));
    } else {
      dequantize(type, raw.data(), dst + i, len);
    }
  }
}

// CTranslate2 int8 weights: each row's int8 values divided by its scale
// (CTranslate2 ops::Dequantize; the scale is 127 / max |row|).
void apply_row_scales(const DeferredTensor& d, const std::string& name, int64_t row0, int64_t row1, int64_t row_elems,
                      std::vector<float>& data) {
  const bool int8 = d.ggml_type == detail::kTypeI8;
  const int64_t rows = d.shape.empty() ? 1 : d.shape[0];
  if (int8 != !d.row_scales.empty() || (int8 && static_cast<int64_t>(d.row_scales.size()) != rows)) {
    throw Error("tensor '" + name + "': " + std::to_string(d.row_scales.size()) + " row scales for " +
                std::to_string(int8 ? rows : 0) + " int8 rows");
  }
  for (int64_t r = row0; r < row1 && int8; ++r) {
    const float scale = d.row_scales[static_cast<size_t>(r)];
    float* row = data.data() + (r - row0) * row_elems;
    for (int64_t j = 0; j < row_elems; ++j) row[j] /= scale;
  }
}

void read_tensors(Reader& r, Model& m, int qnt_version, bool defer) {
  std::map<std::string, std::vector<int64_t>> expected;
  for (auto& [name, shape] : expected_tensors(m.dims)) expected.emplace(name, shape);
  std::vector<uint8_t> raw;
  while (r.left() > 0) {
    if (m.tensors.size() + m.deferred.size() == expected.size()) {
      throw Error("unexpected " + std::to_string(r.left()) + " bytes after the last tensor");
    }
    const int32_t n_dims = r.i32("tensor header");
    const int32_t name_len = r.i32("tensor header");
    const int32_t type = r.i32("tensor header");
    if (n_dims < 1 || n_dims > 4) throw Error("invalid tensor header: n_dims = " + std::to_string(n_dims));
    if (name_len < 1 || name_len > 256) {
      throw Error("invalid tensor header: name length " + std::to_string(name_len));
    }
    std::vector<int64_t> ne(static_cast<size_t>(n_dims));
    for (auto& v : ne) {
      v = r.i32("tensor header");
      if (v < 1) throw Error("invalid tensor header: dimension " + std::to_string(v));
    }
    std::string name(static_cast<size_t>(name_len), '\0');
    r.read(name.data(), static_cast<uint64_t>(name_len), "tensor name");

    auto it = expected.find(name);
    if (it == expected.end()) throw Error("unknown tensor '" + name + "' in model file");
    if (m.tensors.count(name) || m.deferred.count(name)) throw Error("duplicate tensor '" + name + "' in model file");
    const TypeInfo* ti = find_type(type);
    if (!ti || !ti->in_ggml_files) {
      throw Error("unsupported tensor type " + std::to_string(type) + " (" + ggml_type_name(type) + ") for '" + name +
                  "'; supported: f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0");
    }
    // The block layouts above are those of ggml's quantization version 2
    // (d as f16 in every type); older files laid blocks out differently.
    if (ti->block > 1 && qnt_version != 2) {
      throw Error("tensor '" + name + "' is " + ti->name + " from quantization version " + std::to_string(qnt_version) +
                  "; only version 2 is supported (re-quantize the model)");
    }
    // ggml lists ne innermost first; PyTorch's shape is outermost first. The
    // converter squeezed size-1 dims and stored conv biases as [n, 1], so
    // compare with the size-1 dims dropped, then use openai's shape.
    std::vector<int64_t> file_shape(ne.rbegin(), ne.rend());
    if (detail::squeezed(file_shape) != detail::squeezed(it->second)) {
      throw Error("tensor '" + name + "' has shape " + shape_str(file_shape) + ", expected " + shape_str(it->second));
    }
    if (name == "decoder.token_embedding.weight") m.weight_type = ti->name;
    Tensor t;
    t.shape = it->second;
    const int64_t n = t.numel();  // bounded by validate_dims: no overflow
    if (ti->block > 1 && ne[0] % ti->block != 0) {
      throw Error("tensor '" + name + "' of type " + ti->name + " has a row of " + std::to_string(ne[0]) +
                  " elements, not a multiple of " + std::to_string(ti->block));
    }
    const uint64_t bytes = static_cast<uint64_t>(n / ti->block) * static_cast<uint64_t>(ti->bytes);
    const std::string what = "tensor '" + name + "'";
    r.need(bytes, what);
    if (defer) {
      m.deferred.emplace(name, DeferredTensor{t.shape, type, r.pos(), bytes, {}, {}, 0});
      r.skip(bytes, what);
      continue;
    }
    t.data.resize(static_cast<size_t>(n));
    read_fp32(r, type, bytes, n, t.data.data(), raw, what);
    m.tensors.emplace(name, std::move(t));
  }
  const size_t present = m.tensors.size() + m.deferred.size();
  if (present != expected.size()) {
    for (auto& [name, shape] : expected_tensors(m.dims)) {
      if (!m.tensors.count(name) && !m.deferred.count(name)) {
        throw Error("truncated model file: tensor '" + name + "' missing (" + std::to_string(present) + " of " +
                    std::to_string(expected.size()) + " tensors present)");
      }
    }
  }
}

}  // namespace

Model load_ggml(const std::string& path, Loading loading) {
  try {
    Reader r(path);
    if (r.left() < 4) {
      throw Error("not a whisper.cpp ggml model (file is " + std::to_string(r.left()) + " bytes)");
    }
    uint32_t magic = 0;
    r.read(&magic, 4, "magic");
    if (magic != detail::kGgmlMagic) {
      if (magic == 0x46554747u) throw Error("GGUF files are not supported; use a whisper.cpp ggml-*.bin model");
      throw Error("not a whisper.cpp ggml model (bad magic)");
    }
    Model m;
    int ftype = 0;
    m.dims = read_dims(r, ftype);
    m.file_ftype = ftype % detail::kQntVersionFactor;
    m.mel_filters = read_filters(r, m.dims);
    m.vocab = read_vocab(r, m.dims);
    m.format = "ggml";
    const bool defer = loading == Loading::kDeferTensors;
    read_tensors(r, m, ftype / detail::kQntVersionFactor, defer);
    if (defer) {
      m.file_path = path;
      m.file_size = r.size();
    }
    return m;
  } catch (const Error& e) {
    throw Error("model '" + path + "': " + e.what());
  } catch (const std::bad_alloc&) {
    throw Error("model '" + path + "': out of memory while loading");
  }
}

namespace detail {

Tensor read_deferred(const std::string& path, uint64_t file_size, const std::string& name, const DeferredTensor& d,
                     int64_t row0, int64_t row1) {
  try {
    Reader r(path);
    if (r.size() != file_size) {
      throw Error("the file changed since it was loaded (" + std::to_string(file_size) + " bytes then, " +
                  std::to_string(r.size()) + " now)");
    }
    const TypeInfo* ti = find_type(d.ggml_type);
    if (!ti) throw Error("unsupported tensor type " + std::to_string(d.ggml_type));
    Tensor t;
    t.shape = d.shape;
    const int64_t n = t.numel();
    if (d.bytes != static_cast<uint64_t>(n / ti->block) * static_cast<uint64_t>(ti->bytes)) {
      throw Error("tensor '" + name + "': size does not match its shape");
    }
    const int64_t rows = d.shape.empty() ? 1 : d.shape[0];
    if (row1 < 0) row1 = rows;
    const int64_t row_elems = rows > 0 ? n / rows : 0;
    if (row0 < 0 || row0 > row1 || row1 > rows) {
      throw Error("tensor '" + name + "': rows [" + std::to_string(row0) + ", " + std::to_string(row1) +
                  ") out of range");
    }
    if ((row0 != 0 || row1 != rows) && row_elems % ti->block != 0) {
      throw Error("tensor '" + name + "': its rows split quantized blocks");
    }
    if (!t.shape.empty()) t.shape[0] = row1 - row0;
    const int64_t count = (row1 - row0) * row_elems;
    const uint64_t row_bytes = rows > 0 ? d.bytes / static_cast<uint64_t>(rows) : 0;
    t.data.resize(static_cast<size_t>(count));
    const std::string what = "tensor '" + name + "'";
    r.seek(d.offset + static_cast<uint64_t>(row0) * row_bytes, what);
    std::vector<uint8_t> raw;
    read_fp32(r, d.ggml_type, static_cast<uint64_t>(row1 - row0) * row_bytes, count, t.data.data(), raw, what);
    apply_row_scales(d, name, row0, row1, row_elems, t.data);
    return t;
  } catch (const Error& e) {
    throw Error("model '" + path + "': " + e.what());
  } catch (const std::bad_alloc&) {
    throw Error("model '" + path + "': out of memory while loading " + name);
  }
}

}  // namespace detail

}  // namespace wisp::model
