// wisp/model/formats.cc: load_model (format recognised by content) and what
// the non-ggml loaders share (formats.h).
#include "model/formats.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "common/error.h"
#include "model/assets.h"
#include "model/file_reader.h"
#include "model/ggml_format.h"

namespace wisp::model {

namespace detail {

int element_bytes(int ggml_type) {
  switch (ggml_type) {
    case kTypeF32: return 4;
    case kTypeF16:
    case kTypeBF16: return 2;
    case kTypeI8: return 1;
    default: return 0;
  }
}

const char* stored_type_name(int ggml_type) {
  switch (ggml_type) {
    case kTypeF32: return "f32";
    case kTypeF16: return "f16";
    case kTypeBF16: return "bf16";
    case kTypeI8: return "i8";
    default: return "unknown";
  }
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

DeferredTensor check_stored(const Stored& s, std::vector<int64_t> expected, uint64_t file_size, int parts) {
  if (!expected.empty()) expected[0] *= parts;
  // Compared before any product of the stored dims: `expected` is bounded by validate_dims.
  if (s.shape != expected) {
    throw Error("tensor '" + s.name + "' has shape " + shape_str(s.shape) + ", expected " + shape_str(expected));
  }
  const int elem = element_bytes(s.type);
  if (elem == 0) throw Error("tensor '" + s.name + "' has an unsupported type");
  DeferredTensor d;
  d.shape = s.shape;
  d.ggml_type = s.type;
  d.offset = s.offset;
  d.bytes = s.bytes;
  int64_t n = 1;
  for (int64_t v : d.shape) n *= v;
  if (s.bytes != static_cast<uint64_t>(n) * static_cast<uint64_t>(elem)) {
    throw Error("tensor '" + s.name + "' has " + std::to_string(s.bytes) + " bytes, its shape " + shape_str(s.shape) +
                " of " + stored_type_name(s.type) + " needs " + std::to_string(n * elem));
  }
  if (s.offset > file_size || s.bytes > file_size - s.offset) {
    throw Error("truncated model file: tensor '" + s.name + "' (" + std::to_string(s.bytes) + " bytes at offset " +
                std::to_string(s.offset) + ") ends past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  return d;
}

DeferredTensor row_part(const DeferredTensor& whole, int part, int parts) {
  DeferredTensor d = whole;
  const int64_t rows = whole.shape.at(0) / parts;
  const uint64_t part_bytes = whole.bytes / static_cast<uint64_t>(parts);
  d.shape[0] = rows;
  d.offset += part_bytes * static_cast<uint64_t>(part);
  d.bytes = part_bytes;
  if (!whole.row_scales.empty()) {
    auto first = whole.row_scales.begin() + rows * part;
    d.row_scales.assign(first, first + rows);
  }
  return d;
}

void finish_load(Model& m, std::map<std::string, DeferredTensor> stored, Loading loading) {
  m.weight_type = stored_type_name(stored.at("decoder.token_embedding.weight").ggml_type);
  if (loading == Loading::kDeferTensors) {
    m.deferred = std::move(stored);
    return;
  }
  for (auto& [name, d] : stored) {
    m.deferred.emplace(name, std::move(d));
    m.tensors.emplace(name, m.take_tensor(name));
  }
}

nlohmann::json read_json(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(name + " is missing");
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(name + " is not valid JSON (" + e.what() + ")");
  }
}

int64_t json_int(const nlohmann::json& j, const std::string& key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) {
    throw Error(where + ": missing integer '" + key + "'");
  }
  return it->get<int64_t>();
}

}  // namespace detail

namespace {

namespace fs = std::filesystem;

enum class Format { kGgml, kPt, kHf, kCt2 };

// The first bytes of a file (fewer if it is shorter).
std::string head(const std::string& path, uint64_t n) {
  detail::Reader r(path);
  return r.bytes(std::min(n, r.size()), "header");
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// CTranslate2 model.bin: u32 binary version, then (version >= 2) the spec
// name as u16 length + bytes + NUL (CTranslate2 models/model.cc load).
bool is_ct2_header(const std::string& h) {
  if (h.size() < 7) return false;
  uint32_t version;
  uint16_t len;
  std::memcpy(&version, h.data(), 4);
  std::memcpy(&len, h.data() + 4, 2);
  return version >= 2 && version <= 64 && len >= 2 && 6u + len <= h.size() && h[5 + len] == '\0' &&
         h.compare(6, len - 1, "WhisperSpec") == 0;
}

// safetensors: u64 header length, then the JSON header's '{'.
bool is_safetensors_header(const std::string& h) { return h.size() >= 9 && h[8] == '{'; }

struct Detected {
  Format format;
  std::string path;  // the file, or the model's folder
};

// GGUF goes to load_ggml too, which explains that it is not supported.
bool is_ggml_header(const std::string& h) {
  uint32_t magic = 0;
  if (h.size() >= 4) std::memcpy(&magic, h.data(), 4);
  return magic == detail::kGgmlMagic || magic == 0x46554747u;
}

Detected detect_file(const std::string& path) {
  const std::string h = head(path, 64);
  if (is_ggml_header(h)) return {Format::kGgml, path};
  if (starts_with(h, std::string_view("PK\x03\x04", 4))) return {Format::kPt, path};
  // torch.save before 1.6 wrote a bare pickle (protocol 2: 0x80 0x02).
  if (starts_with(h, "\x80\x02")) {
    throw Error("a legacy (torch < 1.6) checkpoint; re-save it with a newer torch (zip format)");
  }
  // A folder's weights file named directly: the folder is the model.
  const std::string dir = fs::path(path).parent_path().string();
  if (is_ct2_header(h)) return {Format::kCt2, dir.empty() ? "." : dir};
  if (is_safetensors_header(h)) return {Format::kHf, dir.empty() ? "." : dir};
  throw Error(
      "unrecognised model format (not a whisper.cpp ggml file, an openai/whisper .pt checkpoint, "
      "a Hugging Face safetensors folder or a CTranslate2 folder)");
}

Detected detect_folder(const std::string& dir) {
  std::error_code ec;
  const fs::path d(dir);
  if (fs::is_regular_file(d / "model.bin", ec)) {
    const std::string bin = (d / "model.bin").string();
    return is_ggml_header(head(bin, 4)) ? Detected{Format::kGgml, bin} : Detected{Format::kCt2, dir};
  }
  if (fs::is_regular_file(d / "config.json", ec) && (fs::is_regular_file(d / "model.safetensors", ec) ||
                                                     fs::is_regular_file(d / "model.safetensors.index.json", ec))) {
    return {Format::kHf, dir};
  }
  throw Error(
      "folder is not a Hugging Face model (config.json + model.safetensors) or a CTranslate2 model "
      "(model.bin)");
}

}  // namespace

Model load_model(const std::string& path, Loading loading) {
  Detected d;
  try {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw Error("no such file or folder");
    d = fs::is_directory(path, ec) ? detect_folder(path) : detect_file(path);
    if (d.format == Format::kGgml) return load_ggml(d.path, loading);
    switch (d.format) {
      case Format::kPt: return detail::load_pt(d.path, loading);
      case Format::kHf: return detail::load_hf(d.path, loading);
      default: return detail::load_ct2(d.path, loading);
    }
  } catch (const Error& e) {
    // load_ggml's and read_deferred's errors name their file already.
    const std::string what = e.what();
    if (starts_with(what, "model '")) throw;
    throw Error("model '" + path + "': " + what);
  } catch (const std::bad_alloc&) {
    throw Error("model '" + path + "': out of memory while loading");
  }
}

}  // namespace wisp::model
