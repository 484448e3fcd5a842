// wisp/model/pt_loader.cc: openai/whisper .pt checkpoints.
//
// torch.save (torch >= 1.6, serialization.py _save) writes a zip archive:
// <stem>/data.pkl, the pickled object, and <stem>/data/<key>, each storage's
// raw little-endian bytes, stored uncompressed. openai's object is
// {"dims": ModelDimensions as a dict, "model_state_dict": OrderedDict of
// name -> tensor} (whisper/__init__.py load_model reads those two keys; a
// third, "alignment_heads", is ignored here as there).
#include <map>

#include "common/error.h"
#include "model/assets.h"
#include "model/file_reader.h"
#include "model/formats.h"
#include "model/ggml_format.h"
#include "model/pickle.h"
#include "model/zip_reader.h"

namespace wisp::model::detail {

namespace {

using Kind = PickleValue::Kind;

// A state_dict pickle is a few bytes per tensor (~100 KB for large-v3).
constexpr uint64_t kMaxPickleBytes = uint64_t{64} << 20;

// The archive's top folder is the file's stem when it was saved: find
// data.pkl by suffix (torch serialization.py _load does the same).
const ZipEntry& find_pickle(const std::vector<ZipEntry>& entries) {
  for (const ZipEntry& e : entries) {
    if (e.name == "data.pkl" || (e.name.size() > 9 && e.name.ends_with("/data.pkl"))) return e;
  }
  throw Error("zip archive without data.pkl (not a torch checkpoint)");
}

const PickleValue& member(const Pickle& p, const PickleValue& dict, const std::string& key, Kind kind) {
  const PickleValue* v = p.find(dict, key);
  if (!v || v->kind != kind) throw Error("checkpoint has no '" + key + "' of the expected type");
  return *v;
}

// openai model.py ModelDimensions, pickled as a dict by dataclasses.asdict.
Dims read_dims(const Pickle& p, const PickleValue& dims) {
  auto get = [&](const char* key) {
    const int64_t v = member(p, dims, key, Kind::kInt).i;
    if (v < 0 || v > (int64_t{1} << 30)) throw Error(std::string("dims: ") + key + " = " + std::to_string(v));
    return static_cast<int>(v);
  };
  Dims d;
  d.n_mels = get("n_mels");
  d.n_audio_ctx = get("n_audio_ctx");
  d.n_audio_state = get("n_audio_state");
  d.n_audio_head = get("n_audio_head");
  d.n_audio_layer = get("n_audio_layer");
  d.n_vocab = get("n_vocab");
  d.n_text_ctx = get("n_text_ctx");
  d.n_text_state = get("n_text_state");
  d.n_text_head = get("n_text_head");
  d.n_text_layer = get("n_text_layer");
  validate_dims(d);
  return d;
}

// torch's legacy storage class names (serialization.py persistent_id).
int storage_type(const std::string& cls, const std::string& name) {
  if (cls == "FloatStorage") return kTypeF32;
  if (cls == "HalfStorage") return kTypeF16;
  if (cls == "BFloat16Storage") return kTypeBF16;
  throw Error("tensor '" + name + "' is a " + cls + "; supported: FloatStorage, HalfStorage, BFloat16Storage");
}

bool row_major(const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  int64_t expect = 1;
  for (size_t i = size.size(); i-- > 0;) {
    if (size[i] != 1 && stride[i] != expect) return false;  // a size-1 dim's stride is free
    expect *= size[i];
  }
  return true;
}

struct Archive {
  std::map<std::string, ZipEntry> entries;
  std::string prefix;  // "<stem>/"
  uint64_t file_size = 0;
};

// A state_dict tensor: a view (offset, size, stride) of a storage whose
// bytes are the archive entry data/<key>.
DeferredTensor stored_tensor(const Pickle& p, const Archive& a, const std::string& name, const PickleValue& t,
                             const std::vector<int64_t>& expected) {
  const PickleValue& s = p.at(t.items.at(0));
  const int type = storage_type(s.storage_type, name);
  const int64_t elem = element_bytes(type);
  auto e = a.entries.find(a.prefix + "data/" + s.s);
  if (e == a.entries.end()) throw Error("tensor '" + name + "': storage data/" + s.s + " missing from the archive");
  if (e->second.method != 0)
    throw Error("tensor '" + name + "': its storage is compressed (only stored entries are supported)");
  if (t.size != expected) {
    throw Error("tensor '" + name + "' has shape " + shape_str(t.size) + ", expected " + shape_str(expected));
  }
  int64_t n = 1;  // bounded: `expected` comes from validated dims
  for (int64_t v : expected) n *= v;
  if (!row_major(t.size, t.stride))
    throw Error("tensor '" + name + "' is not contiguous (stride " + shape_str(t.stride) + ")");
  if (s.i > static_cast<int64_t>(e->second.size / elem) || t.i < 0 || t.i > s.i || n > s.i - t.i) {
    throw Error("tensor '" + name + "': " + std::to_string(n) + " elements at offset " + std::to_string(t.i) +
                " do not fit its storage (" + std::to_string(s.i) + " elements, " + std::to_string(e->second.size) +
                " bytes)");
  }
  const Stored st{name, type, t.size, e->second.data_offset + static_cast<uint64_t>(t.i * elem),
                  static_cast<uint64_t>(n * elem)};
  return check_stored(st, expected, a.file_size);
}

}  // namespace

Model load_pt(const std::string& path, Loading loading) {
  Reader r(path);
  Archive a;
  a.file_size = r.size();
  const std::vector<ZipEntry> entries = read_zip_entries(r);
  const ZipEntry& pkl = find_pickle(entries);
  a.prefix = pkl.name.substr(0, pkl.name.size() - 8);
  for (const ZipEntry& e : entries) a.entries.emplace(e.name, e);
  const Pickle p(read_stored_entry(r, pkl, kMaxPickleBytes));
  if (p.root().kind != Kind::kDict) throw Error("checkpoint is not a dict (not an openai/whisper checkpoint)");

  Model m;
  m.format = "pt";
  m.dims = read_dims(p, member(p, p.root(), "dims", Kind::kDict));
  const PickleValue& state = member(p, p.root(), "model_state_dict", Kind::kDict);
  std::map<std::string, DeferredTensor> stored;
  for (const auto& [name, shape] : expected_tensors(m.dims)) {
    const PickleValue* t = p.find(state, name);
    if (!t) throw Error("tensor '" + name + "' missing from model_state_dict");
    if (t->kind != Kind::kTensor) throw Error("model_state_dict['" + name + "'] is not a tensor");
    stored.emplace(name, stored_tensor(p, a, name, *t, shape));
  }
  m.mel_filters = load_mel_filters(default_assets_dir(), m.dims.n_mels);
  m.vocab = load_tiktoken_vocab(default_assets_dir(), m.dims.n_vocab);
  m.file_path = path;
  m.file_size = r.size();
  finish_load(m, std::move(stored), loading);
  return m;
}

}  // namespace wisp::model::detail
