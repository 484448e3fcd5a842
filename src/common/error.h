// wisp/common/error.h
//
// Library code reports failures by throwing wisp::Error with one line that
// names the cause ("not a media file", "truncated tensor data", ...). Only the
// CLI decides what a failure means for the process (exit status, next file).
#pragma once

#include <stdexcept>
#include <string>

namespace wisp {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace wisp
