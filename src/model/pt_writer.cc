// wisp/model/pt_writer.cc: openai/whisper .pt checkpoints, as
// torch.save({"dims": asdict(dims), "model_state_dict": state_dict}) writes
// them (torch serialization.py _save, torch >= 1.6): a zip archive of stored
// entries <stem>/data.pkl (pickle protocol 2), <stem>/data/<key> (each
// storage's raw bytes) and <stem>/version. Read back by pt_loader.cc.
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "model/writer_common.h"
#include "model/writers.h"

namespace wisp::model {

namespace {

using detail::AtomicFile;

// ---- zip (PKWARE APPNOTE.TXT), stored entries only ----

constexpr std::array<uint32_t, 256> crc32_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t crc32(const std::string& bytes) {
  static constexpr std::array<uint32_t, 256> kTable = crc32_table();
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) c = kTable[(c ^ b) & 0xffu] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

constexpr uint32_t kFieldMax = 0xffffffffu;  // a 32-bit field that says "see the zip64 record"

class ZipWriter {
 public:
  explicit ZipWriter(AtomicFile& out) : out_(out) {}

  // Local header, then the bytes (no data descriptor: sizes and CRC are known).
  void add_stored(const std::string& name, const std::string& bytes) {
    if (bytes.size() >= kFieldMax) throw Error("zip entry '" + name + "' is 4 GB or more");
    const Entry e{name, crc32(bytes), bytes.size(), out_.pos()};
    out_.put<uint32_t>(0x04034b50);
    put_common(e);
    out_.put<uint16_t>(0);  // extra field length
    out_.write(name);
    out_.write(bytes);
    entries_.push_back(e);
  }

  // Central directory and end record; zip64 records where an offset passes 4 GB.
  void finish() {
    const uint64_t cd_offset = out_.pos();
    for (const Entry& e : entries_) {
      const bool far = e.offset >= kFieldMax;
      out_.put<uint32_t>(0x02014b50);
      out_.put<uint16_t>(far ? 45 : 20);  // version made by
      put_common(e);
      out_.put<uint16_t>(far ? 12 : 0);  // extra field: the zip64 offset
      out_.put<uint16_t>(0);             // comment
      out_.put<uint16_t>(0);             // disk
      out_.put<uint16_t>(0);             // internal attributes
      out_.put<uint32_t>(0);             // external attributes
      out_.put<uint32_t>(far ? kFieldMax : static_cast<uint32_t>(e.offset));
      out_.write(e.name);
      if (far) {
        out_.put<uint16_t>(0x0001);
        out_.put<uint16_t>(8);
        out_.put<uint64_t>(e.offset);
      }
    }
    const uint64_t cd_size = out_.pos() - cd_offset;
    const bool zip64 = cd_offset >= kFieldMax || entries_.size() >= 0xffff;
    if (zip64) write_zip64_end(cd_offset, cd_size);
    out_.put<uint32_t>(0x06054b50);
    out_.put<uint16_t>(0);  // this disk
    out_.put<uint16_t>(0);  // directory's disk
    const uint16_t n = zip64 ? 0xffff : static_cast<uint16_t>(entries_.size());
    out_.put<uint16_t>(n);
    out_.put<uint16_t>(n);
    out_.put<uint32_t>(zip64 ? kFieldMax : static_cast<uint32_t>(cd_size));
    out_.put<uint32_t>(zip64 ? kFieldMax : static_cast<uint32_t>(cd_offset));
    out_.put<uint16_t>(0);  // comment
  }

 private:
  struct Entry {
    std::string name;
    uint32_t crc;
    uint64_t size;
    uint64_t offset;  // of the local header
  };

  // The fields the local header and the central directory share, from "version needed".
  void put_common(const Entry& e) {
    out_.put<uint16_t>(20);      // version needed
    out_.put<uint16_t>(0);       // flags
    out_.put<uint16_t>(0);       // method: stored
    out_.put<uint16_t>(0);       // time
    out_.put<uint16_t>(0x0021);  // date: 1980-01-01, so that the archive is reproducible
    out_.put<uint32_t>(e.crc);
    out_.put<uint32_t>(static_cast<uint32_t>(e.size));
    out_.put<uint32_t>(static_cast<uint32_t>(e.size));
    out_.put<uint16_t>(static_cast<uint16_t>(e.name.size()));
  }

  void write_zip64_end(uint64_t cd_offset, uint64_t cd_size) {
    const uint64_t record = out_.pos();
    out_.put<uint32_t>(0x06064b50);
    out_.put<uint64_t>(44);  // size of the rest of the record
    out_.put<uint16_t>(45);
    out_.put<uint16_t>(45);
    out_.put<uint32_t>(0);
    out_.put<uint32_t>(0);
    out_.put<uint64_t>(entries_.size());
    out_.put<uint64_t>(entries_.size());
    out_.put<uint64_t>(cd_size);
    out_.put<uint64_t>(cd_offset);
    out_.put<uint32_t>(0x07064b50);  // locator
    out_.put<uint32_t>(0);
    out_.put<uint64_t>(record);
    out_.put<uint32_t>(1);
  }

  AtomicFile& out_;
  std::vector<Entry> entries_;
};

// ---- pickle protocol 2 (Python pickle.py _Pickler, without the memo) ----

class Pickler {
 public:
  Pickler() {
    op(0x80);  // PROTO 2
    byte(2);
  }

  void op(uint8_t code) { out_.push_back(static_cast<char>(code)); }
  void mark() { op('('); }
  // BINUNICODE: a u32 length and UTF-8 bytes (protocol 2 has no shorter form).
  void str(const std::string& s) {
    op('X');
    le(static_cast<uint32_t>(s.size()), 4);
    out_ += s;
  }
  // save_long: BININT1, BININT2 or BININT by size, else LONG1.
  void integer(int64_t v) {
    if (v >= 0 && v <= 0xff) {
      op('K'), byte(static_cast<uint8_t>(v));
    } else if (v >= 0 && v <= 0xffff) {
      op('M'), le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J'), le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      op(0x8a), byte(8), le(static_cast<uint64_t>(v), 8);
    }
  }
  void global(const std::string& module, const std::string& name) {
    op('c');
    out_ += module + "\n" + name + "\n";
  }
  // A tuple of ints: EMPTY_TUPLE, TUPLE1..3, or MARK ... TUPLE.
  void int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return op(')');
    if (v.size() > 3) mark();
    for (int64_t x : v) integer(x);
    op(v.size() == 1 ? 0x85 : v.size() == 2 ? 0x86 : v.size() == 3 ? 0x87 : 't');
  }
  // collections.OrderedDict(): the global called with no arguments.
  void empty_ordered_dict() {
    global("collections", "OrderedDict");
    op(')'), op('R');
  }
  std::string finish() {
    op('.');
    return std::move(out_);
  }

 private:
  void byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) byte(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::string out_;
};

// openai model.py ModelDimensions, as dataclasses.asdict orders it.
void pickle_dims(Pickler& p, const Dims& d) {
  p.op('}');
  p.mark();
  const std::pair<const char*, int> fields[] = {{"n_mels", d.n_mels},
                                                {"n_audio_ctx", d.n_audio_ctx},
                                                {"n_audio_state", d.n_audio_state},
                                                {"n_audio_head", d.n_audio_head},
                                                {"n_audio_layer", d.n_audio_layer},
                                                {"n_vocab", d.n_vocab},
                                                {"n_text_ctx", d.n_text_ctx},
                                                {"n_text_state", d.n_text_state},
                                                {"n_text_head", d.n_text_head},
                                                {"n_text_layer", d.n_text_layer}};
  for (const auto& [key, value] : fields) p.str(key), p.integer(value);
  p.op('u');  // SETITEMS
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
// requires_grad, backward_hooks) over a persistent storage
// ('storage', torch.<Type>Storage, key, location, numel): the whole storage,
// row-major (torch serialization.py persistent_id, Tensor.__reduce_ex__).
void pickle_tensor(Pickler& p, const Tensor& t, const std::string& key, WeightType type) {
  p.global("torch._utils", "_rebuild_tensor_v2");
  p.mark();
  p.mark();
  p.str("storage");
  p.global("torch", type == WeightType::kF16 ? "HalfStorage" : "FloatStorage");
  p.str(key);
  p.str("cpu");
  p.integer(t.numel());
  p.op('t');
  p.op('Q');  // BINPERSID
  p.integer(0);
  p.int_tuple(t.shape);
  std::vector<int64_t> stride(t.shape.size());
  int64_t s = 1;
  for (size_t i = t.shape.size(); i-- > 0;) stride[i] = s, s *= t.shape[i];
  p.int_tuple(stride);
  p.op(0x89);  // requires_grad = False
  p.empty_ordered_dict();
  p.op('t');
  p.op('R');
}

// The storage keys in state_dict order, and the order torch writes their
// entries in (sorted as strings: "0", "1", "10", "11", ..., "2").
struct StorageKeys {
  std::vector<std::string> by_tensor;
  std::map<std::string, size_t> sorted;  // key -> tensor index
};

StorageKeys storage_keys(size_t n) {
  StorageKeys k;
  for (size_t i = 0; i < n; ++i) {
    k.by_tensor.push_back(std::to_string(i));
    k.sorted.emplace(k.by_tensor.back(), i);
  }
  return k;
}

std::string archive_stem(const std::string& path) {
  const std::string stem = std::filesystem::path(path).stem().string();
  return stem.empty() ? "archive" : stem;
}

}  // namespace

void write_pt(const Model& model, WeightType type, const std::string& path) {
  if (type == WeightType::kI8) throw Error("openai checkpoints hold float32 or float16 weights, not int8");
  const auto tensors = detail::checked_tensors(model);
  const StorageKeys keys = storage_keys(tensors.size());

  // data.pkl: {"dims": {...}, "model_state_dict": OrderedDict(name -> tensor)}.
  Pickler p;
  p.op('}');
  p.mark();
  p.str("dims");
  pickle_dims(p, model.dims);
  p.str("model_state_dict");
  p.empty_ordered_dict();
  p.mark();
  for (size_t i = 0; i < tensors.size(); ++i) {
    p.str(tensors[i].first);
    pickle_tensor(p, *tensors[i].second, keys.by_tensor[i], type);
  }
  p.op('u');
  p.op('u');

  const std::string stem = archive_stem(path);
  AtomicFile out(path);
  ZipWriter zip(out);
  zip.add_stored(stem + "/data.pkl", p.finish());
  for (const auto& [key, index] : keys.sorted) {
    zip.add_stored(stem + "/data/" + key, detail::stored_bytes(tensors[index].second->data, type));
  }
  zip.add_stored(stem + "/version", "3\n");
  zip.finish();
  out.commit();
}

}  // namespace wisp::model
