// tests/fuzz/model_fuzz.h: what the four model-format harnesses do with the
// files they write: load them as wisp does, deferred, then read every
// deferred tensor whole and by rows (the paths nn::Whisper takes); with
// `load_all`, also load them whole (Loading::kAll), which only ggml_loader.cc
// reads by another path (the others' kAll is the same read_deferred, and
// their vocabulary and mel filters, read from the assets per load, are most
// of an execution's time).
#pragma once

#include <string>

#include "common/error.h"
#include "model/model.h"

namespace wisp_fuzz {

inline void load_and_read(const std::string& path, bool load_all) {
  using wisp::model::Loading;
  try {
    wisp::model::Model m = wisp::model::load_model(path, Loading::kDeferTensors);
    for (const auto& [name, d] : m.deferred) {
      try {
        m.read_deferred_tensor(name);
        if (!d.shape.empty() && d.shape[0] > 1) m.read_deferred_tensor(name, 1, d.shape[0]);
      } catch (const wisp::Error&) {
      }
    }
  } catch (const wisp::Error&) {
  }
  if (!load_all) return;
  try {
    wisp::model::load_model(path, Loading::kAll);
  } catch (const wisp::Error&) {
  }
}

}  // namespace wisp_fuzz
