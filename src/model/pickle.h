// wisp/model/pickle.h (internal to src/model)
//
// A minimal, bounds-checked unpickler for what torch.save writes into a
// checkpoint's data.pkl (Python pickletools' opcodes of protocols 2-4 that
// dicts, OrderedDicts, tuples, ints, strings and tensors need). It calls
// nothing: the few globals a state_dict uses (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage) are
// recognised by name, anything else is an error, and persistent ids become
// references to the archive's storages (torch serialization.py
// _load persistent_load: ('storage', storage type, key, location, numel)).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wisp::model::detail {

struct PickleValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  int64_t i = 0;              // int and bool; storage: element count; tensor: storage offset (elements)
  double f = 0;               // float
  std::string s;              // str or bytes; global: "module.name"; storage: its key (archive entry data/<key>)
  std::string storage_type;   // storage: torch's class name, e.g. "HalfStorage"
  std::vector<size_t> items;  // tuple, list; dict: key, value, key, value, ...; tensor: its storage
  std::vector<int64_t> size, stride;  // tensor
};

class Pickle {
 public:
  // Runs the pickle; throws wisp::Error ("bad pickle: ... at byte N") on an
  // unknown or unsupported opcode, a truncated argument or a malformed stack.
  explicit Pickle(std::string_view data);

  const PickleValue& root() const { return values_[root_]; }
  const PickleValue& at(size_t index) const { return values_.at(index); }
  // The value under the str key `key` of a dict, or nullptr.
  const PickleValue* find(const PickleValue& dict, std::string_view key) const;

 private:
  friend class Unpickler;
  std::vector<PickleValue> values_;  // containers refer to each other by index: no recursion, no cycles
  size_t root_ = 0;
};

}  // namespace wisp::model::detail
