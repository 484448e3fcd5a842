// wisp/model/zip_reader.h (internal to src/model)
//
// The entries of a zip archive (PKWARE APPNOTE.TXT), as torch.save writes
// them: its central directory read from the end of the file, zip64 records
// included (archives over 4 GB). Only where each entry's bytes lie: torch
// stores its entries uncompressed, and a compressed one is refused when
// it is used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/file_reader.h"

namespace wisp::model::detail {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;       // 0 stored, 8 deflate, ...
  uint64_t data_offset = 0;  // of the (stored) bytes, from the start of the file
  uint64_t size = 0;         // compressed size: the bytes at data_offset
};

// Every entry, in central-directory order; throws wisp::Error if the
// archive is truncated or corrupt (every entry's bytes lie inside the file).
std::vector<ZipEntry> read_zip_entries(Reader& r);

// The entry's bytes, which must be stored uncompressed (and no larger than `limit`).
std::string read_stored_entry(Reader& r, const ZipEntry& e, uint64_t limit);

}  // namespace wisp::model::detail
