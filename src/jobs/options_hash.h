// wisp/jobs/options_hash.h
//
// The identity of "what produced these outputs": the model file and every
// transcription option that changes the transcript. A done input whose ledger
// row carries another hash is redone.
#pragma once

#include <string>

#include "output/writers.h"
#include "transcribe/transcribe.h"

namespace wisp::jobs {

// Canonical "key=value" lines, one per option that changes the result (the
// model path, size and mtime first). To make a new option count, add one
// line to this function; the hash follows.
// The writer options (subtitle layout) count too: they change the files; so
// does the network's compute type (nn::compute_type_name of the engine's)
// and throughput mode (batched: chunked at pauses, transcribe/batched.h).
std::string options_fingerprint(const std::string& model_path, const transcribe::Options& options,
                                const output::WriterOptions& writer = {}, const std::string& compute_type = "float32",
                                bool batched = false);

// 16 hex digits: FNV-1a 64 of options_fingerprint().
std::string options_hash(const std::string& model_path, const transcribe::Options& options,
                         const output::WriterOptions& writer = {}, const std::string& compute_type = "float32",
                         bool batched = false);

}  // namespace wisp::jobs
