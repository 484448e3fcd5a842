// wisp/cli/commands.h: the subcommands of the `wisp` executable.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace wisp::cli {

// Registers `wisp transcribe`; returns the function that runs it (exit status).
std::function<int()> add_transcribe_command(CLI::App& app);
// Registers `wisp dev ...` (developer tools: make-model).
std::function<int()> add_dev_command(CLI::App& app);
// Registers `wisp vad` (Silero VAD probabilities and speech segments).
std::function<int()> add_vad_command(CLI::App& app);
// Registers `wisp status` (a batch's job ledger).
std::function<int()> add_status_command(CLI::App& app);
// Registers `wisp bench` (encoder/decoder timings and peak memory).
std::function<int()> add_bench_command(CLI::App& app);
// Registers `wisp models` (list, download, verify the model caches).
std::function<int()> add_models_command(CLI::App& app);
// Registers `wisp serve` (OpenAI's audio API over HTTP).
std::function<int()> add_serve_command(CLI::App& app);
// Registers `wisp queue` (add, retry, cancel, purge, export: the PostgreSQL job queue).
std::function<int()> add_queue_command(CLI::App& app);
// Registers `wisp worker` (transcribes the queue's jobs).
std::function<int()> add_worker_command(CLI::App& app);

// Every long flag is accepted with '_' and with '-' (openai spells them with
// '_'): "--output_dir" -> "--output_dir,--output-dir".
std::string flag_names(const std::string& name, const std::string& short_name = "");

// The --threads flag's thread count: its value, or every core for 0.
int thread_count(int flag);

// openai str2bool, a little more lenient: True/False, true/false, 1/0, yes/no.
bool parse_bool(const std::string& value, const std::string& flag);

}  // namespace wisp::cli
