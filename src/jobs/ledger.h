// wisp/jobs/ledger.h
//
// The job ledger: one SQLite row per input of a batch, so that a batch left
// running over thousands of files can be stopped, killed or crash and then
// resume where it was. SQLite in WAL mode with synchronous=FULL: every state
// change is one committed transaction, so the ledger is consistent whatever
// point the process dies at.
//
// Schema (table `jobs`, PRAGMA user_version = 1):
//   path            TEXT PRIMARY KEY  absolute input path (symlinks resolved)
//   state           TEXT  pending | running | done | failed
//   attempts        INT   transcription attempts started (a user interrupt
//                         gives its attempt back; a crash keeps it)
//   failures        INT   attempts that ended failed, since the options or the
//                         input last changed (failed inputs are retried while
//                         failures < --max_attempts)
//   completions     INT   attempts that ended done
//   error           TEXT  cause of the last failure ('' otherwise)
//   audio_seconds   REAL  decoded audio duration
//   wall_seconds    REAL  transcription + output writing time
//   realtime_factor REAL  audio_seconds / wall_seconds (x real time, > 1 is
//                         faster than real time)
//   model           TEXT  model path
//   options_hash    TEXT  jobs::options_hash() of the run that did it (or
//                         that adopted outputs found on disk without a row)
//   outputs         TEXT  JSON array of the output paths written
//   input_size, input_mtime_ns  INT  the input when it was claimed (a changed
//                         input is redone)
//   pid, host       the process that holds a running row (a running row whose
//                   process is gone was left by a crash and is redone)
//   started_at, updated_at  REAL  unix seconds
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace wisp::jobs {

enum class State { pending, running, done, failed };

std::string_view state_name(State s);
// Throws wisp::Error for a name that is none of the four.
State parse_state(std::string_view name);

struct Job {
  std::string path;
  State state = State::pending;
  int attempts = 0;
  int failures = 0;
  int completions = 0;
  std::string error;
  double audio_seconds = 0;
  double wall_seconds = 0;
  double realtime_factor = 0;
  std::string model;
  std::string options_hash;
  std::vector<std::string> outputs;
  int64_t input_size = -1;
  int64_t input_mtime_ns = -1;
  int64_t pid = 0;
  std::string host;
  double started_at = 0;
  double updated_at = 0;
};

// What a claim records about the attempt it starts.
struct Claim {
  std::string model;
  std::string options_hash;
  std::vector<std::string> outputs;  // requested outputs
  int64_t input_size = -1;
  int64_t input_mtime_ns = -1;
  bool reset_failures = false;  // options, input or --overwrite changed
  // The row was not done when the batch planned it: if another wisp has
  // since finished it with the same options, the claim is refused.
  bool unless_done_since = false;
};

struct StateCount {
  State state = State::pending;
  int files = 0;
  double audio_seconds = 0;
  double wall_seconds = 0;
};

class Ledger {
 public:
  // Opens (creating the file, its folder and the schema when missing) the
  // ledger at `path`. Throws wisp::Error "cannot open ledger <path>: <cause>".
  explicit Ledger(const std::string& path);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const std::string& path() const { return path_; }

  // Opens an existing ledger read-only (`wisp status`); throws when missing.
  static Ledger open_existing(const std::string& path);

  std::optional<Job> get(const std::string& input) const;
  std::vector<Job> all() const;            // sorted by path
  std::vector<StateCount> counts() const;  // one entry per state, in enum order

  // Adds pending rows for inputs the ledger does not know yet (one transaction).
  void add_pending(const std::vector<std::string>& inputs);

  // Marks `input` running for this process, in one transaction, unless a
  // live process (this host, pid alive, not us) holds it running, or
  // `unless_done_since` and it is done with the claim's options hash: then
  // returns false and changes nothing.
  bool claim(const std::string& input, const Claim& claim);
  void mark_done(const std::string& input, double audio_seconds, double wall_seconds,
                 const std::vector<std::string>& outputs);
  void mark_failed(const std::string& input, const std::string& error, double audio_seconds, double wall_seconds);
  // The user interrupted the attempt: back to pending, the attempt given back.
  void mark_pending(const std::string& input);
  // Outputs of an earlier plain run (no ledger row) exist: recorded as done
  // under `options_hash` without counting a completion (one transaction).
  struct Adopted {
    std::string input;
    std::vector<std::string> outputs;
    int64_t input_size = -1;
    int64_t input_mtime_ns = -1;
  };
  void adopt_done(const std::string& model, const std::string& options_hash, const std::vector<Adopted>& inputs);

  // True when `job` is running in another live process on this host.
  static bool held_elsewhere(const Job& job);

 private:
  struct ReadOnly {};
  Ledger(const std::string& path, ReadOnly);
  void setup();  // WAL, synchronous, schema
  void exec(const char* sql) const;
  void finish(const std::string& input, const char* sql_tail, const std::string& error, double audio_seconds,
              double wall_seconds, const std::vector<std::string>* outputs);

  std::string path_;
  ::sqlite3* db_ = nullptr;
};

// This host's name (for the ledger's `host` column).
std::string host_name();

}  // namespace wisp::jobs
