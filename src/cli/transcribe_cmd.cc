// `wisp transcribe`: openai/whisper's CLI flags, the seed script's console lines.
#include <memory>

#include "cli/batch.h"
#include "cli/commands.h"
#include "cli/model_source.h"
#include "cli/transcribe_flags.h"
#include "common/error.h"

namespace wisp::cli {
namespace {

int run(const TranscribeArgs& a) {
  // Everything that does not depend on a file is checked before the model loads.
  Prepared p = prepare(a);
  if (a.model.empty())
    throw Error(
        "--model is required: a name such as large-v3 (found in the caches or downloaded), "
        "hf:ORG/REPO, or a model file or folder");
  const std::string model_path = model_path_for(a.model, a.model_source, p.verbose);
  std::unique_ptr<transcribe::Engine> engine = load_engine(a, model_path, p);
  BatchOptions batch = a.batch;
  batch.inputs = a.files;
  batch.output_dir = a.output_dir;
  batch.formats = p.formats;
  batch.writer = p.writer;
  batch.model_path = model_path;
  batch.verbose = p.verbose;
  batch.batch_size = a.batch_size;
  return run_batch(*engine, p.options, batch);
}

}  // namespace

std::function<int()> add_transcribe_command(CLI::App& app) {
  auto args = std::make_shared<TranscribeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "transcribe",
      "Transcribe media files to subtitles and transcripts.\n"
      "Exit status: 0 every file done, 1 some file failed, 2 usage or setup error, 130 interrupted.");
  cmd->add_option("files", args->files, "media files, folders (searched recursively) or glob patterns");
  add_decoding_flags(cmd, *args);
  add_batch_flags(cmd, args->batch);
  return [args] { return run(*args); };
}

}  // namespace wisp::cli
