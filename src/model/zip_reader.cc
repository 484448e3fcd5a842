// wisp/model/zip_reader.cc: a zip archive's central directory (APPNOTE.TXT
// 4.3.12 central directory header, 4.3.16 end of central directory record,
// 4.3.14/4.3.15 zip64 end record and locator, 4.5.3 zip64 extra field).
#include "model/zip_reader.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace wisp::model::detail {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndRecord = 0x06054b50;
constexpr uint32_t kZip64EndRecord = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint32_t kNeedsZip64 = 0xffffffffu;

// Little-endian fields of an in-memory record, bounds-checked.
struct Bytes {
  const std::string& s;
  template <class T>
  T at(uint64_t off, const char* what) const {
    if (off > s.size() || sizeof(T) > s.size() - off)
      throw Error(std::string("corrupt zip archive: ") + what + " cut short");
    T v;
    std::memcpy(&v, s.data() + off, sizeof v);
    return v;
  }
};

struct Directory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// The end of central directory record: the last "PK\5\6" within the final
// 64 KiB + 22 bytes (its comment is at most 65535 bytes).
Directory read_end_record(Reader& r) {
  const uint64_t tail_len = std::min<uint64_t>(r.size(), 22 + 65535);
  r.seek(r.size() - tail_len, "zip end record");
  const std::string tail = r.bytes(tail_len, "zip end record");
  const Bytes b{tail};
  for (uint64_t p = tail_len >= 22 ? tail_len - 22 + 1 : 0; p-- > 0;) {
    if (b.at<uint32_t>(p, "end record") != kEndRecord) continue;
    Directory d{b.at<uint16_t>(p + 10, "end record"), b.at<uint32_t>(p + 16, "end record"),
                b.at<uint32_t>(p + 12, "end record")};
    if (d.entries != 0xffff && d.offset != kNeedsZip64 && d.size != kNeedsZip64) return d;
    // zip64: the locator (20 bytes) just before points at the zip64 end record.
    const uint64_t at = r.size() - tail_len + p;
    if (at < 20) throw Error("corrupt zip archive: zip64 locator missing");
    r.seek(at - 20, "zip64 locator");
    const std::string loc = r.bytes(20, "zip64 locator");
    if (Bytes{loc}.at<uint32_t>(0, "zip64 locator") != kZip64Locator) {
      throw Error("corrupt zip archive: zip64 locator missing");
    }
    r.seek(Bytes{loc}.at<uint64_t>(8, "zip64 locator"), "zip64 end record");
    const std::string rec = r.bytes(56, "zip64 end record");
    const Bytes z{rec};
    if (z.at<uint32_t>(0, "zip64 end record") != kZip64EndRecord)
      throw Error("corrupt zip archive: bad zip64 end record");
    return {z.at<uint64_t>(32, "zip64 end record"), z.at<uint64_t>(48, "zip64 end record"),
            z.at<uint64_t>(40, "zip64 end record")};
  }
  throw Error("not a zip archive, or truncated (no end of central directory record)");
}

// The zip64 extra field holds, in this order, each of the uncompressed size,
// compressed size and local header offset whose 32-bit field is 0xffffffff.
void apply_zip64_extra(const Bytes& b, uint64_t extra, uint64_t extra_len, uint64_t& usize, uint64_t& csize,
                       uint64_t& local) {
  for (uint64_t p = extra; p + 4 <= extra + extra_len;) {
    const uint16_t id = b.at<uint16_t>(p, "extra field");
    const uint16_t len = b.at<uint16_t>(p + 2, "extra field");
    if (id == kZip64ExtraId) {
      uint64_t q = p + 4;
      for (uint64_t* v : {&usize, &csize, &local}) {
        if (*v == kNeedsZip64) {
          *v = b.at<uint64_t>(q, "zip64 extra field");
          q += 8;
        }
      }
      return;
    }
    p += 4 + len;
  }
}

// Local header: its name and extra field lengths may differ from the
// central directory's (torch pads the local extra field to align data).
uint64_t data_offset(Reader& r, uint64_t local, const std::string& name) {
  if (local > r.size() || r.size() - local < 30)
    throw Error("corrupt zip archive: entry '" + name + "' header past the end");
  r.seek(local, "zip entry header");
  const std::string h = r.bytes(30, "zip entry '" + name + "' header");
  const Bytes b{h};
  if (b.at<uint32_t>(0, "entry header") != kLocalHeader)
    throw Error("corrupt zip archive: bad header of entry '" + name + "'");
  return local + 30 + b.at<uint16_t>(26, "entry header") + b.at<uint16_t>(28, "entry header");
}

}  // namespace

std::vector<ZipEntry> read_zip_entries(Reader& r) {
  const Directory dir = read_end_record(r);
  constexpr uint64_t kMinHeader = 46;
  if (dir.offset > r.size() || dir.size > r.size() - dir.offset || dir.entries > dir.size / kMinHeader) {
    throw Error("corrupt zip archive: central directory (" + std::to_string(dir.entries) + " entries, " +
                std::to_string(dir.size) + " bytes at " + std::to_string(dir.offset) + ") does not fit the file");
  }
  r.seek(dir.offset, "zip central directory");
  const std::string cd = r.bytes(dir.size, "zip central directory");
  const Bytes b{cd};
  std::vector<ZipEntry> out;
  out.reserve(dir.entries);
  uint64_t p = 0;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    if (b.at<uint32_t>(p, "central directory") != kCentralHeader)
      throw Error("corrupt zip archive: bad central directory entry");
    ZipEntry e;
    e.method = b.at<uint16_t>(p + 10, "central directory");
    uint64_t csize = b.at<uint32_t>(p + 20, "central directory");
    uint64_t usize = b.at<uint32_t>(p + 24, "central directory");
    const uint64_t name_len = b.at<uint16_t>(p + 28, "central directory");
    const uint64_t extra_len = b.at<uint16_t>(p + 30, "central directory");
    const uint64_t comment_len = b.at<uint16_t>(p + 32, "central directory");
    uint64_t local = b.at<uint32_t>(p + 42, "central directory");
    if (p + kMinHeader + name_len + extra_len + comment_len > cd.size())
      throw Error("corrupt zip archive: central directory cut short");
    e.name = cd.substr(p + kMinHeader, name_len);
    apply_zip64_extra(b, p + kMinHeader + name_len, extra_len, usize, csize, local);
    e.size = csize;
    e.data_offset = data_offset(r, local, e.name);
    if (e.data_offset > r.size() || e.size > r.size() - e.data_offset) {
      throw Error("truncated zip archive: entry '" + e.name + "' (" + std::to_string(e.size) +
                  " bytes) ends past the end of the file");
    }
    if (e.method == 0 && csize != usize) throw Error("corrupt zip archive: stored entry '" + e.name + "' changes size");
    out.push_back(std::move(e));
    p += kMinHeader + name_len + extra_len + comment_len;
  }
  return out;
}

std::string read_stored_entry(Reader& r, const ZipEntry& e, uint64_t limit) {
  if (e.method != 0) {
    throw Error("zip entry '" + e.name + "' is compressed (method " + std::to_string(e.method) +
                "); only stored entries are supported, as torch.save writes them");
  }
  if (e.size > limit)
    throw Error("zip entry '" + e.name + "' is implausibly large (" + std::to_string(e.size) + " bytes)");
  r.seek(e.data_offset, "zip entry '" + e.name + "'");
  return r.bytes(e.size, "zip entry '" + e.name + "'");
}

}  // namespace wisp::model::detail
