#include "golden/golden_cases.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "backend/backend.h"
#include "model/model.h"
#include "model/random_model.h"
#ifdef WISP_HAVE_CUDA
#include "cuda/cuda_network.h"
#endif

namespace wisp::golden {
namespace fs = std::filesystem;

std::vector<std::string> case_dirs() {
  std::vector<std::string> out;
  for (const char* sub : {"/golden/cases", "/golden/scripted/cases"}) {
    for (const auto& e : fs::directory_iterator(std::string(WISP_TESTDATA_DIR) + sub))
      if (e.is_directory()) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

static nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(f);
}

Case load_case(const std::string& dir) {
  Case c;
  c.dir = dir;
  nlohmann::json cj = read_json(dir + "/case.json");
  c.name = cj["case"];
  c.model = cj["model"];
  c.audio = std::string(WISP_TESTDATA_DIR) + "/testdata/" + cj["audio"].get<std::string>();
  for (const auto& a : cj["options"]) c.args.push_back(a);
  c.scripted = dir.find("/scripted/") != std::string::npos;
  c.ref = read_json(dir + "/ref.json");
  return c;
}

transcribe::Options case_options(const Case& c, std::string* unsupported) {
  // The reference runner's arguments (tests/data/golden/README.md "Cases").
  transcribe::Options o;
  o.n_threads = 1;  // ctest runs tests in parallel on 2 cores; results do not depend on threads
  unsupported->clear();
  for (size_t i = 0; i < c.args.size(); ++i) {
    const std::string& a = c.args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= c.args.size()) throw std::runtime_error("missing value for " + a);
      return c.args[++i];
    };
    auto opt_double = [&]() -> std::optional<double> { return std::stod(value()); };
    if (a == "-l")
      o.language = value();
    else if (a == "--task")
      o.task = value();
    else if (a == "--initial-prompt")
      o.initial_prompt = value();
    else if (a == "--no-timestamps")
      o.decode.without_timestamps = true;
    else if (a == "--no-condition-on-previous-text")
      o.condition_on_previous_text = false;
    else if (a == "--carry-initial-prompt")
      o.carry_initial_prompt = true;
    else if (a == "--clip-timestamps")
      o.clip_timestamps = value();
    else if (a == "--max-initial-timestamp")
      o.decode.max_initial_timestamp = std::stof(value());
    else if (a == "--logprob-threshold")
      o.logprob_threshold = opt_double();
    else if (a == "--no-speech-threshold")
      o.no_speech_threshold = opt_double();
    else if (a == "--compression-ratio-threshold")
      o.compression_ratio_threshold = opt_double();
    else if (a == "--temperatures") {
      std::string v = value();
      o.temperatures.clear();
      size_t pos = 0;
      while (pos <= v.size()) {
        size_t comma = v.find(',', pos);
        o.temperatures.push_back(std::stod(v.substr(pos, comma - pos)));
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    } else if (a == "--seed")
      o.seed = std::stoull(value());
    else if (a == "--beam-size")
      o.decode.beam_size = std::stoi(value());
    else if (a == "--patience")
      o.decode.patience = std::stof(value());
    else if (a == "--length-penalty")
      o.decode.length_penalty = std::stof(value());
    else if (a == "--word-timestamps")
      o.word_timestamps = true;
    else {
      // An option this engine does not know (each takes a value).
      if (unsupported->empty()) *unsupported = a;
      value();
    }
  }
  return o;
}

std::string TypeUnderTest::name() const {
  std::string n = std::string(nn::compute_type_name(type)) + (int8_encoder ? std::string("_") + int8_encoder : "");
  if (std::string(device) != "cpu") n += std::string("_") + (std::string(device) == "cuda" ? "cuda" : "hostcuda");
  return n;
}

bool cuda_built() {
#ifdef WISP_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::vector<TypeUnderTest> fast_types() {
  using nn::ComputeType;
  std::vector<TypeUnderTest> types = {{ComputeType::kFloat16},      {ComputeType::kBFloat16},
                                      {ComputeType::kInt8, "wisp"}, {ComputeType::kInt8, "onednn"},
                                      {ComputeType::kInt8Float32},  {ComputeType::kInt8BFloat16},
                                      {ComputeType::kAuto}};
  // On a GPU, its half types too (the CUDA backend runs no int8).
  if (backend::cuda_usable()) {
    types.push_back({ComputeType::kFloat16, nullptr, "cuda"});
    types.push_back({ComputeType::kBFloat16, nullptr, "cuda"});
  }
  return types;
}

namespace {

// WISP_INT8_ENCODER set to `value` for the scope (if value is set), the old
// value back after.
class Int8EncoderScope {
 public:
  explicit Int8EncoderScope(const char* value) : set_(value != nullptr) {
    if (!set_) return;
    if (const char* old = std::getenv("WISP_INT8_ENCODER")) old_ = old;
    ::setenv("WISP_INT8_ENCODER", value, 1);
  }
  ~Int8EncoderScope() {
    if (!set_) return;
    if (old_) {
      ::setenv("WISP_INT8_ENCODER", old_->c_str(), 1);
    } else {
      ::unsetenv("WISP_INT8_ENCODER");
    }
  }
  Int8EncoderScope(const Int8EncoderScope&) = delete;
  Int8EncoderScope& operator=(const Int8EncoderScope&) = delete;

 private:
  bool set_;
  std::optional<std::string> old_;
};

model::Model golden_model(const std::string& name) {
  if (name.rfind("scripted-", 0) == 0) {
    return model::load_ggml(std::string(WISP_TESTDATA_DIR) + "/golden/scripted/models/ggml-" + name + "-f16.bin");
  }
  // "micro-s1" -> preset "micro", seed 1; "micro-en-s2"; "micro-v3-s3"; "tiny-s4".
  const size_t dash = name.rfind("-s");
  auto dims = model::preset_dims(name.substr(0, dash));
  if (!dims) throw std::runtime_error("unknown golden model " + name);
  return model::make_random_model(*dims, std::stoull(name.substr(dash + 2)), false, WISP_ASSETS_DIR);
}

}  // namespace

namespace {

const transcribe::Engine& cached_engine(const std::string& key, const std::function<model::Model()>& load,
                                        const TypeUnderTest& type) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<transcribe::Engine>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  Int8EncoderScope scope(type.int8_encoder);
  std::unique_ptr<transcribe::Engine> engine;
  const std::string device = type.device;
  if (device == "cpu") {
    engine = std::make_unique<transcribe::Engine>(load(), type.type);
  } else if (device == "cuda") {
    engine = std::make_unique<transcribe::Engine>(
        load(), backend::NetworkOptions{type.type, 1, backend::Device{backend::Device::Kind::kCuda, 0}});
  } else {
#ifdef WISP_HAVE_CUDA
    const model::Model m = load();
    engine = std::make_unique<transcribe::Engine>(m, cuda::make_host_network(m, type.type));
#else
    throw std::runtime_error("device host-cuda needs the CUDA backend (WISP_CUDA)");
#endif
  }
  return *cache.emplace(key, std::move(engine)).first->second;
}

}  // namespace

const transcribe::Engine& engine_for_path(const std::string& path) {
  return cached_engine("file:" + path, [&] { return model::load_model(path); }, {});
}

const transcribe::Engine& engine_for_f16(const std::string& name) {
  return cached_engine("f16:" + name,
                       [&] {
                         const size_t dash = name.rfind("-s");
                         auto dims = model::preset_dims(name.substr(0, dash));
                         if (!dims) throw std::runtime_error("unknown golden model " + name);
                         return model::make_random_model(*dims, std::stoull(name.substr(dash + 2)), true,
                                                         WISP_ASSETS_DIR);
                       },
                       {});
}

const transcribe::Engine& engine_for(const std::string& name, const TypeUnderTest& type) {
  return cached_engine(
      name + "/" + type.name(), [&] { return golden_model(name); }, type);
}

}  // namespace wisp::golden
