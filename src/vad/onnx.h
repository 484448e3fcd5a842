// wisp/vad/onnx.h
//
// A small reader for ONNX model files: the protocol-buffers wire format
// (varints, fixed32/64, length-delimited fields) and only the parts of
// onnx.proto that loading Silero VAD needs: ModelProto.graph/opset_import,
// GraphProto.node/initializer/input/output, NodeProto, AttributeProto and
// TensorProto (dims, data_type, raw_data, float_data, int64_data).
// Field numbers are those of onnx/onnx.proto (IR version 3 and later).
//
// Why our own reader: onnx.proto is not in Debian's protobuf packages and the
// model needs a few dozen fields; decoding them by hand keeps wisp free of a
// protobuf dependency. Unknown fields are skipped, as protobuf parsers do.
//
// Tensors keep views into the file's bytes (no copies): an OnnxModel is valid
// only while the buffer it was parsed from lives.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wisp::vad::onnx {

// TensorProto.DataType values used here.
enum DataType : int32_t { kFloat = 1, kInt32 = 6, kInt64 = 7 };

struct Tensor {
  std::string name;
  std::vector<int64_t> dims;
  int32_t data_type = 0;
  std::span<const uint8_t> raw_data;    // little-endian element bytes, or empty
  std::span<const uint8_t> float_data;  // packed float_data (fixed32 LE), or empty
  std::vector<float> float_values;      // float_data written unpacked (rare)
  std::vector<int64_t> int64_values;    // int64_data / int32_data
  bool external = false;                // data_location == EXTERNAL (unsupported)

  int64_t element_count() const;  // product of dims (1 for a scalar)
  // The elements as floats; throws wisp::Error unless data_type is FLOAT and
  // the stored data holds exactly element_count() values.
  std::vector<float> floats() const;
  // The elements as int64 (INT64 or INT32 tensors); same checks.
  std::vector<int64_t> ints() const;
};

struct Graph;

struct Attribute {
  enum Type : int32_t {
    kUndefined = 0,
    kFloat = 1,
    kInt = 2,
    kString = 3,
    kTensor = 4,
    kGraph = 5,
    kFloats = 6,
    kInts = 7,
    kStrings = 8
  };
  std::string name;
  int32_t type = kUndefined;  // as stored; may be 0 in old files (then infer from the fields)
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<Tensor> t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

struct Node {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;

  const Attribute* attribute(std::string_view name) const;  // null if absent
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<Tensor> initializers;
  std::vector<std::string> inputs, outputs;  // ValueInfoProto names
};

struct OpsetImport {
  std::string domain;
  int64_t version = 0;
};

struct Model {
  int64_t ir_version = 0;
  std::string producer_name;
  std::vector<OpsetImport> opset_import;
  Graph graph;
};

// Parses a serialized ModelProto. Throws wisp::Error with the cause
// ("truncated protobuf data", "not an ONNX model: no graph", ...) on anything
// malformed. Nested graphs deeper than 32 levels are refused.
Model parse_model(std::span<const uint8_t> bytes);

}  // namespace wisp::vad::onnx
