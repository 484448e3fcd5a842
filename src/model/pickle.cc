// wisp/model/pickle.cc: the unpickler of pickle.h. Opcode names and
// arguments as in CPython Lib/pickletools.py; what each does as in
// Lib/pickle.py _Unpickler.
#include "model/pickle.h"

#include <bit>
#include <cstring>
#include <unordered_map>

#include "common/error.h"

namespace wisp::model::detail {

using Kind = PickleValue::Kind;

class Unpickler {
 public:
  Unpickler(std::string_view data, Pickle& out) : data_(data), out_(out) {}

  void run() {
    while (true) {
      op_at_ = pos_;
      const uint8_t op = u8();
      if (op == '.') break;  // STOP
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty()) fail("the stack does not end with one value");
    out_.root_ = stack_.back();
  }

 private:
  // Every value takes at least two bytes of a real pickle (an opcode and a
  // memo or argument byte): this bounds what a hostile one can allocate.
  size_t max_values() const { return data_.size() / 2 + 64; }

  [[noreturn]] void fail(const std::string& why) const {
    throw Error("bad pickle: " + why + " at byte " + std::to_string(op_at_));
  }

  // ---- arguments ----
  std::string_view take(uint64_t n) {
    if (n > data_.size() - pos_) fail("argument of " + std::to_string(n) + " bytes past the end");
    const std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  template <class T>
  T le() {
    T v;
    std::memcpy(&v, take(sizeof v).data(), sizeof v);
    return v;
  }
  uint8_t u8() { return le<uint8_t>(); }
  std::string_view line() {
    const size_t nl = data_.find('\n', pos_);
    if (nl == std::string_view::npos) fail("unterminated line argument");
    const size_t len = nl - pos_;
    return take(len + 1).substr(0, len);
  }

  // ---- values and the stack ----
  size_t make(PickleValue v) {
    if (out_.values_.size() >= max_values()) fail("too many values");
    out_.values_.push_back(std::move(v));
    return out_.values_.size() - 1;
  }
  size_t make_int(int64_t i, Kind k = Kind::kInt) {
    PickleValue v;
    v.kind = k;
    v.i = i;
    return make(std::move(v));
  }
  size_t make_string(std::string_view s) {
    PickleValue v;
    v.kind = Kind::kString;
    v.s = s;
    return make(std::move(v));
  }
  PickleValue& val(size_t i) { return out_.values_[i]; }
  void push(size_t v) { stack_.push_back(v); }
  size_t pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("pop from an empty stack");
    const size_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  size_t top() {
    if (stack_.empty()) fail("empty stack");
    return stack_.back();
  }
  // The values above the last MARK, which is removed.
  std::vector<size_t> pop_mark() {
    if (marks_.empty()) fail("no MARK");
    std::vector<size_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  size_t make_seq(Kind k, std::vector<size_t> items) {
    PickleValue v;
    v.kind = k;
    v.items = std::move(items);
    return make(std::move(v));
  }
  PickleValue& expect(size_t i, Kind k, const char* what) {
    if (val(i).kind != k) fail(std::string(what) + " expected");
    return val(i);
  }
  void add_items(size_t container, const std::vector<size_t>& items, Kind k) {
    PickleValue& c = expect(container, k, k == Kind::kDict ? "dict" : "list");
    if (k == Kind::kDict && items.size() % 2 != 0) fail("odd number of dict items");
    c.items.insert(c.items.end(), items.begin(), items.end());
  }
  void memo_put(uint64_t key) { memo_[key] = top(); }
  size_t memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " not defined");
    return it->second;
  }

  // ---- globals, calls and persistent ids (the torch part) ----
  size_t global(std::string_view module, std::string_view name) {
    const std::string full = std::string(module) + "." + std::string(name);
    const bool storage = module == "torch" && name.size() > 7 && name.substr(name.size() - 7) == "Storage";
    if (!storage && full != "collections.OrderedDict" && full != "torch._utils._rebuild_tensor_v2" &&
        full != "torch._utils._rebuild_parameter") {
      fail("unsupported global '" + full + "'");
    }
    PickleValue v;
    v.kind = Kind::kGlobal;
    v.s = full;
    return make(std::move(v));
  }

  std::vector<int64_t> int_tuple(size_t t) {
    std::vector<int64_t> out;
    for (size_t i : expect(t, Kind::kTuple, "tuple of ints").items) out.push_back(expect(i, Kind::kInt, "int").i);
    return out;
  }

  // torch/_utils.py _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata]).
  size_t rebuild_tensor(const std::vector<size_t>& args) {
    if (args.size() < 4) fail("_rebuild_tensor_v2 with " + std::to_string(args.size()) + " arguments");
    expect(args[0], Kind::kStorage, "storage");
    PickleValue t;
    t.kind = Kind::kTensor;
    t.items = {args[0]};
    t.i = expect(args[1], Kind::kInt, "storage offset").i;
    t.size = int_tuple(args[2]);
    t.stride = int_tuple(args[3]);
    if (t.size.size() != t.stride.size()) fail("tensor size and stride of different ranks");
    return make(std::move(t));
  }

  size_t reduce(size_t callable, size_t args_tuple) {
    const std::string& f = expect(callable, Kind::kGlobal, "callable").s;
    const std::vector<size_t> args = expect(args_tuple, Kind::kTuple, "argument tuple").items;
    if (f == "collections.OrderedDict") {
      if (!args.empty()) fail("OrderedDict with arguments");
      return make_seq(Kind::kDict, {});
    }
    if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
    if (f == "torch._utils._rebuild_parameter") {
      if (args.empty()) fail("_rebuild_parameter without arguments");
      expect(args[0], Kind::kTensor, "tensor");
      return args[0];
    }
    fail("unsupported call of '" + f + "'");
  }

  // torch serialization.py persistent_id: ('storage', storage type, key, location, numel).
  size_t persistent_load(size_t pid) {
    const std::vector<size_t> t = expect(pid, Kind::kTuple, "persistent id tuple").items;
    if (t.size() != 5 || val(t[0]).kind != Kind::kString || val(t[0]).s != "storage") {
      fail("unsupported persistent id");
    }
    PickleValue s;
    s.kind = Kind::kStorage;
    const std::string& type = expect(t[1], Kind::kGlobal, "storage type").s;
    s.storage_type = type.substr(type.find('.') + 1);
    s.s = expect(t[2], Kind::kString, "storage key").s;
    s.i = expect(t[4], Kind::kInt, "storage size").i;
    if (s.i < 0) fail("negative storage size");
    return make(std::move(s));
  }

  // ---- opcodes ----
  void step(uint8_t op) {
    switch (op) {
      case 0x80: u8(); break;                            // PROTO
      case 0x95: le<uint64_t>(); break;                  // FRAME (protocol 4): a length only
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0': pop(); break;                            // POP
      case '1': pop_mark(); break;                       // POP_MARK
      case '2': push(top()); break;                      // DUP
      case 'N': push(make(PickleValue{})); break;        // NONE
      case 0x88: push(make_int(1, Kind::kBool)); break;  // NEWTRUE
      case 0x89: push(make_int(0, Kind::kBool)); break;  // NEWFALSE
      case 'J': push(make_int(le<int32_t>())); break;    // BININT
      case 'K': push(make_int(u8())); break;             // BININT1
      case 'M': push(make_int(le<uint16_t>())); break;   // BININT2
      case 0x8a: push(make_int(long1())); break;         // LONG1
      case 'G': {                                        // BINFLOAT: big-endian double
        PickleValue v;
        v.kind = Kind::kFloat;
        v.f = std::bit_cast<double>(big_endian_u64());
        push(make(std::move(v)));
        break;
      }
      case 'X': push(make_string(take(le<uint32_t>()))); break;   // BINUNICODE
      case 0x8c: push(make_string(take(u8()))); break;            // SHORT_BINUNICODE
      case 0x8d: push(make_string(take(le<uint64_t>()))); break;  // BINUNICODE8
      case 'B': push(make_string(take(le<uint32_t>()))); break;   // BINBYTES
      case 'C': push(make_string(take(u8()))); break;             // SHORT_BINBYTES
      case ')': push(make_seq(Kind::kTuple, {})); break;          // EMPTY_TUPLE
      case 't': push(make_seq(Kind::kTuple, pop_mark())); break;  // TUPLE
      case 0x85:                                                  // TUPLE1..3
      case 0x86:
      case 0x87: {
        std::vector<size_t> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(make_seq(Kind::kTuple, std::move(items)));
        break;
      }
      case ']': push(make_seq(Kind::kList, {})); break;          // EMPTY_LIST
      case 'l': push(make_seq(Kind::kList, pop_mark())); break;  // LIST
      case '}': push(make_seq(Kind::kDict, {})); break;          // EMPTY_DICT
      case 'd': {                                                // DICT
        std::vector<size_t> items = pop_mark();
        if (items.size() % 2 != 0) fail("odd number of dict items");
        push(make_seq(Kind::kDict, std::move(items)));
        break;
      }
      case 'a': {  // APPEND
        const size_t v = pop();
        add_items(top(), {v}, Kind::kList);
        break;
      }
      case 'e': {  // APPENDS
        const std::vector<size_t> items = pop_mark();
        add_items(top(), items, Kind::kList);
        break;
      }
      case 's': {  // SETITEM
        const size_t v = pop();
        const size_t k = pop();
        add_items(top(), {k, v}, Kind::kDict);
        break;
      }
      case 'u': {  // SETITEMS
        const std::vector<size_t> items = pop_mark();
        add_items(top(), items, Kind::kDict);
        break;
      }
      case 'q': memo_put(u8()); break;                  // BINPUT
      case 'r': memo_put(le<uint32_t>()); break;        // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;         // MEMOIZE
      case 'h': push(memo_get(u8())); break;            // BINGET
      case 'j': push(memo_get(le<uint32_t>())); break;  // LONG_BINGET
      case 'c': {                                       // GLOBAL "module\nname\n"
        const std::string_view module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const std::string name = expect(pop(), Kind::kString, "global name").s;
        const std::string module = expect(pop(), Kind::kString, "global module").s;
        push(global(module, name));
        break;
      }
      case 'R': {  // REDUCE
        const size_t args = pop();
        push(reduce(pop(), args));
        break;
      }
      case 'b': pop(); break;                         // BUILD: the state (an OrderedDict's _metadata) is not needed
      case 'Q': push(persistent_load(pop())); break;  // BINPERSID
      default: {
        static const char* kHex = "0123456789abcdef";
        fail(std::string("unsupported opcode 0x") + kHex[op >> 4] + kHex[op & 15]);
      }
    }
  }

  uint64_t big_endian_u64() {
    uint64_t v = 0;
    for (char c : take(8)) v = (v << 8) | static_cast<uint8_t>(c);
    return v;
  }

  // LONG1: a little-endian two's complement integer of n <= 8 bytes.
  int64_t long1() {
    const uint8_t n = u8();
    if (n > 8) fail("integer of " + std::to_string(n) + " bytes");
    const std::string_view b = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(b[i]);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }

  std::string_view data_;
  Pickle& out_;
  size_t pos_ = 0;
  size_t op_at_ = 0;
  std::vector<size_t> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK
  std::unordered_map<uint64_t, size_t> memo_;
};

Pickle::Pickle(std::string_view data) { Unpickler(data, *this).run(); }

const PickleValue* Pickle::find(const PickleValue& dict, std::string_view key) const {
  if (dict.kind != Kind::kDict) return nullptr;
  for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const PickleValue& k = values_[dict.items[i]];
    if (k.kind == Kind::kString && k.s == key) return &values_[dict.items[i + 1]];
  }
  return nullptr;
}

}  // namespace wisp::model::detail
