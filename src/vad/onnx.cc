// wisp/vad/onnx.cc: protocol-buffers wire decoding and the ONNX messages we read.
#include "vad/onnx.h"

#include <bit>
#include <cstring>

#include "common/error.h"

namespace wisp::vad::onnx {
namespace {

// Wire types of the protobuf encoding.
constexpr int kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5;
constexpr int kMaxGraphDepth = 32;

struct Field {
  uint32_t number = 0;
  int wire = 0;
  uint64_t value = 0;              // varint, fixed32 or fixed64 payload
  std::span<const uint8_t> bytes;  // length-delimited payload
};

// Walks the fields of one serialized message.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}

  bool next(Field& f) {
    if (pos_ >= b_.size()) return false;
    uint64_t tag = varint();
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire = static_cast<int>(tag & 7);
    if (f.number == 0 || (tag >> 3) > 0x1fffffff) throw Error("corrupt protobuf data: bad field tag");
    f.bytes = {};
    switch (f.wire) {
      case kVarint: f.value = varint(); break;
      case kFixed64: f.value = fixed(8); break;
      case kFixed32: f.value = fixed(4); break;
      case kLen: {
        uint64_t n = varint();
        if (n > b_.size() - pos_) throw Error("truncated protobuf data");
        f.bytes = b_.subspan(pos_, static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n);
        break;
      }
      default: throw Error("corrupt protobuf data: unsupported wire type " + std::to_string(f.wire));
    }
    return true;
  }

  bool at_end() const { return pos_ >= b_.size(); }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) throw Error("truncated protobuf data");
      uint8_t c = b_[pos_++];
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    throw Error("corrupt protobuf data: varint longer than 10 bytes");
  }

 private:
  uint64_t fixed(size_t n) {
    if (n > b_.size() - pos_) throw Error("truncated protobuf data");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }

  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

std::string text(const Field& f) {
  if (f.wire != kLen) throw Error("corrupt ONNX data: string field with wrong wire type");
  return std::string(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
}

std::span<const uint8_t> len_payload(const Field& f) {
  if (f.wire != kLen) throw Error("corrupt ONNX data: message field with wrong wire type");
  return f.bytes;
}

uint64_t varint_value(const Field& f) {
  if (f.wire != kVarint) throw Error("corrupt ONNX data: integer field with wrong wire type");
  return f.value;
}

// A repeated varint field, packed (one LEN field) or not (one varint per element).
void append_varints(const Field& f, std::vector<int64_t>& out) {
  if (f.wire == kVarint) {
    out.push_back(static_cast<int64_t>(f.value));
  } else if (f.wire == kLen) {  // packed: the varints back to back
    Reader r(f.bytes);
    while (!r.at_end()) out.push_back(static_cast<int64_t>(r.varint()));
  } else {
    throw Error("corrupt ONNX data: repeated integer field with wrong wire type");
  }
}

// A repeated float field, packed or not.
void append_floats(const Field& f, std::vector<float>& out) {
  if (f.wire == kFixed32) {
    out.push_back(std::bit_cast<float>(static_cast<uint32_t>(f.value)));
  } else if (f.wire == kLen) {
    if (f.bytes.size() % 4) throw Error("corrupt ONNX data: packed floats not a multiple of 4 bytes");
    for (size_t p = 0; p < f.bytes.size(); p += 4) {
      uint32_t u = 0;
      for (int i = 0; i < 4; ++i) u |= static_cast<uint32_t>(f.bytes[p + i]) << (8 * i);
      out.push_back(std::bit_cast<float>(u));
    }
  } else {
    throw Error("corrupt ONNX data: repeated float field with wrong wire type");
  }
}

Tensor parse_tensor(std::span<const uint8_t> b) {
  Tensor t;
  Reader r(b);
  Field f;
  while (r.next(f)) {
    switch (f.number) {
      case 1: append_varints(f, t.dims); break;
      case 2: t.data_type = static_cast<int32_t>(varint_value(f)); break;
      case 4:
        if (f.wire == kLen) {
          if (!t.float_data.empty()) throw Error("corrupt ONNX data: float_data given twice");
          if (f.bytes.size() % 4) throw Error("corrupt ONNX data: packed floats not a multiple of 4 bytes");
          t.float_data = f.bytes;
        } else {
          append_floats(f, t.float_values);
        }
        break;
      case 5: {  // int32_data: varints of int32 values (sign-extended)
        std::vector<int64_t> v;
        append_varints(f, v);
        for (int64_t x : v) t.int64_values.push_back(static_cast<int32_t>(x));
        break;
      }
      case 7: append_varints(f, t.int64_values); break;
      case 8: t.name = text(f); break;
      case 9: t.raw_data = len_payload(f); break;
      case 14: t.external = varint_value(f) == 1; break;
      default: break;  // segment, string/double/uint64 data, doc_string, external_data
    }
  }
  for (int64_t d : t.dims)
    if (d < 0) throw Error("corrupt ONNX data: negative dimension in tensor '" + t.name + "'");
  return t;
}

Graph parse_graph(std::span<const uint8_t> b, int depth);

Attribute parse_attribute(std::span<const uint8_t> b, int depth) {
  Attribute a;
  Reader r(b);
  Field f;
  while (r.next(f)) {
    switch (f.number) {
      case 1: a.name = text(f); break;
      case 20: a.type = static_cast<int32_t>(varint_value(f)); break;
      case 2:
        if (f.wire != kFixed32) throw Error("corrupt ONNX data: float attribute with wrong wire type");
        a.f = std::bit_cast<float>(static_cast<uint32_t>(f.value));
        break;
      case 3: a.i = static_cast<int64_t>(varint_value(f)); break;
      case 4: a.s = text(f); break;
      case 5: a.t = std::make_shared<Tensor>(parse_tensor(len_payload(f))); break;
      case 6: a.g = std::make_shared<Graph>(parse_graph(len_payload(f), depth + 1)); break;
      case 7: append_floats(f, a.floats); break;
      case 8: append_varints(f, a.ints); break;
      default: break;  // strings, tensors, graphs, sparse tensors, type protos, doc_string
    }
  }
  if (a.type == Attribute::kUndefined) {  // IR < 3 files leave type unset
    a.type = a.g                 ? Attribute::kGraph
             : a.t               ? Attribute::kTensor
             : !a.s.empty()      ? Attribute::kString
             : !a.ints.empty()   ? Attribute::kInts
             : !a.floats.empty() ? Attribute::kFloats
                                 : Attribute::kUndefined;
  }
  return a;
}

Node parse_node(std::span<const uint8_t> b, int depth) {
  Node n;
  Reader r(b);
  Field f;
  while (r.next(f)) {
    switch (f.number) {
      case 1: n.inputs.push_back(text(f)); break;
      case 2: n.outputs.push_back(text(f)); break;
      case 3: n.name = text(f); break;
      case 4: n.op_type = text(f); break;
      case 5: n.attributes.push_back(parse_attribute(len_payload(f), depth)); break;
      case 7: n.domain = text(f); break;
      default: break;
    }
  }
  if (n.op_type.empty()) throw Error("corrupt ONNX data: node without op_type");
  return n;
}

std::string value_info_name(std::span<const uint8_t> b) {
  Reader r(b);
  Field f;
  std::string name;
  while (r.next(f))
    if (f.number == 1) name = text(f);
  return name;
}

Graph parse_graph(std::span<const uint8_t> b, int depth) {
  if (depth > kMaxGraphDepth) throw Error("corrupt ONNX data: graphs nested too deeply");
  Graph g;
  Reader r(b);
  Field f;
  while (r.next(f)) {
    switch (f.number) {
      case 1: g.nodes.push_back(parse_node(len_payload(f), depth)); break;
      case 2: g.name = text(f); break;
      case 5: g.initializers.push_back(parse_tensor(len_payload(f))); break;
      case 11: g.inputs.push_back(value_info_name(len_payload(f))); break;
      case 12: g.outputs.push_back(value_info_name(len_payload(f))); break;
      default: break;
    }
  }
  return g;
}

}  // namespace

int64_t Tensor::element_count() const {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d != 0 && n > (int64_t{1} << 40) / d) throw Error("tensor '" + name + "' is too large");
    n *= d;
  }
  return n;
}

std::vector<float> Tensor::floats() const {
  if (external) throw Error("tensor '" + name + "' keeps its data in an external file (unsupported)");
  if (data_type != kFloat)
    throw Error("tensor '" + name + "' has data type " + std::to_string(data_type) + ", expected float");
  const size_t n = static_cast<size_t>(element_count());
  std::vector<float> out;
  if (!raw_data.empty()) {
    if (raw_data.size() != n * 4)
      throw Error("tensor '" + name + "' holds " + std::to_string(raw_data.size()) + " bytes, expected " +
                  std::to_string(n * 4));
    out.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t u = 0;
      for (int k = 0; k < 4; ++k) u |= static_cast<uint32_t>(raw_data[4 * i + k]) << (8 * k);
      out[i] = std::bit_cast<float>(u);
    }
  } else if (!float_data.empty()) {
    if (float_data.size() != n * 4)
      throw Error("tensor '" + name + "' holds " + std::to_string(float_data.size() / 4) + " floats, expected " +
                  std::to_string(n));
    out.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t u = 0;
      for (int k = 0; k < 4; ++k) u |= static_cast<uint32_t>(float_data[4 * i + k]) << (8 * k);
      out[i] = std::bit_cast<float>(u);
    }
  } else {
    if (float_values.size() != n)
      throw Error("tensor '" + name + "' holds " + std::to_string(float_values.size()) + " floats, expected " +
                  std::to_string(n));
    out = float_values;
  }
  return out;
}

std::vector<int64_t> Tensor::ints() const {
  if (external) throw Error("tensor '" + name + "' keeps its data in an external file (unsupported)");
  const size_t n = static_cast<size_t>(element_count());
  if (data_type == kInt64 && !raw_data.empty()) {
    if (raw_data.size() != n * 8) throw Error("tensor '" + name + "' has the wrong number of bytes");
    std::vector<int64_t> out(n);
    for (size_t i = 0; i < n; ++i) {
      uint64_t u = 0;
      for (int k = 0; k < 8; ++k) u |= static_cast<uint64_t>(raw_data[8 * i + k]) << (8 * k);
      out[i] = static_cast<int64_t>(u);
    }
    return out;
  }
  if (data_type == kInt32 && !raw_data.empty()) {
    if (raw_data.size() != n * 4) throw Error("tensor '" + name + "' has the wrong number of bytes");
    std::vector<int64_t> out(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t u = 0;
      for (int k = 0; k < 4; ++k) u |= static_cast<uint32_t>(raw_data[4 * i + k]) << (8 * k);
      out[i] = static_cast<int32_t>(u);
    }
    return out;
  }
  if (data_type != kInt64 && data_type != kInt32)
    throw Error("tensor '" + name + "' has data type " + std::to_string(data_type) + ", expected int64");
  if (int64_values.size() != n) throw Error("tensor '" + name + "' has the wrong number of values");
  return int64_values;
}

const Attribute* Node::attribute(std::string_view attr_name) const {
  for (const Attribute& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

Model parse_model(std::span<const uint8_t> bytes) {
  if (bytes.empty()) throw Error("empty file");
  Model m;
  bool has_graph = false;
  Reader r(bytes);
  Field f;
  while (r.next(f)) {
    switch (f.number) {
      case 1: m.ir_version = static_cast<int64_t>(varint_value(f)); break;
      case 2: m.producer_name = text(f); break;
      case 7:
        if (has_graph) throw Error("corrupt ONNX data: two graphs");
        m.graph = parse_graph(len_payload(f), 0);
        has_graph = true;
        break;
      case 8: {
        OpsetImport op;
        Reader o(len_payload(f));
        Field g;
        while (o.next(g)) {
          if (g.number == 1) op.domain = text(g);
          if (g.number == 2) op.version = static_cast<int64_t>(varint_value(g));
        }
        m.opset_import.push_back(op);
        break;
      }
      default: break;
    }
  }
  if (!has_graph) throw Error("not an ONNX model: no graph");
  // Every ONNX model names its operator sets (onnx checker: "model with IR
  // version >= 3 must specify opset_import"); its absence also catches files
  // cut right after the graph, since writers put opset_import after it.
  if (m.opset_import.empty()) throw Error("not an ONNX model (or truncated): no opset_import");
  return m;
}

}  // namespace wisp::vad::onnx
