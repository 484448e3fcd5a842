// wisp/common/hex.h
//
// Bytes as lowercase hex and back: how arbitrary bytes travel through text
// (a file name that is not UTF-8 in the ledger's JSON, bytea over libpq).
#pragma once

#include <string>
#include <string_view>

namespace wisp {

std::string to_hex(std::string_view bytes);

// The bytes of `hex` (either case). Throws wisp::Error on an odd length or
// a character that is not a hex digit.
std::string from_hex(std::string_view hex);

}  // namespace wisp
