// wisp/queue/queue.h
//
// A job queue in PostgreSQL that several wisp workers share (issue: many
// machines). A job is one input with the model, options hash, output formats
// and planned output paths it was added with; adding it again is a no-op.
// Workers claim jobs with FOR UPDATE SKIP LOCKED and hold a lease that their
// heartbeat renews; a lease that runs out (a dead or cut-off worker) lets
// another worker take the job, up to max_attempts, after which it fails.
// Every state change of a job is a row in wisp_job_events, so the history
// shows who held what when. Schema: schema.h, docs/design/queue.md.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "queue/db.h"

namespace wisp::queue {

// What a job is transcribed with: a worker claims only jobs whose model and
// options hash are its own.
struct JobKind {
  std::string model;
  std::string options_hash;
};

struct NewJob {
  std::string input;                 // absolute path, or an http(s) URL
  std::string formats;               // "srt,txt"
  std::vector<std::string> outputs;  // one path (files) or name (db) per format; empty: named by the worker
  std::string output_dir;            // for outputs the worker names (a page's, once downloaded)
};

struct AddOptions {
  std::string store = "files";  // "files": outputs at their paths; "db": in wisp_outputs
  int max_attempts = 3;
};

// Adds jobs; an input already queued with the same kind is left as it is.
// Returns how many were new.
size_t add_jobs(Db& db, const JobKind& kind, const std::vector<NewJob>& jobs, const AddOptions& options);

struct Claimed {
  long long id = 0;
  std::string input;
  std::vector<std::string> formats;
  std::vector<std::string> outputs;  // empty: the worker names them (a URL whose name only its download tells)
  std::string output_dir;
  std::string store;
  int attempt = 0;  // 1 on the first claim
};

// Takes the oldest pending job of `kind` (or one whose lease ran out) for
// `worker`, leased for `lease_s` seconds. nullopt when there is none.
std::optional<Claimed> claim(Db& db, const std::string& worker, const JobKind& kind, double lease_s);

// Extends the lease; false when the job is no longer this worker's (its
// lease ran out and another took it, or it was cancelled).
bool renew(Db& db, long long job, const std::string& worker, double lease_s);

// An output kept in the database (--store db).
struct StoredOutput {
  std::string format, name, content;
};

// Marks the job done with the outputs it wrote (paths or names) and its
// stored outputs, in one transaction; false when the job was no longer this
// worker's.
bool complete(Db& db, long long job, const std::string& worker, double audio_s, double wall_s,
              const std::vector<std::string>& outputs, const std::vector<StoredOutput>& stored);

// A failed attempt: back to pending while attempts < max_attempts, else
// failed with `error`.
void fail(Db& db, long long job, const std::string& worker, const std::string& error, double wall_s);

// Gives the job back untried (SIGTERM): pending, the attempt not counted.
void release(Db& db, long long job, const std::string& worker);

// Jobs whose lease ran out after their last allowed attempt: failed.
// Returns how many.
size_t fail_expired(Db& db);

// Workers: one row each, kept fresh by the heartbeat.
struct WorkerInfo {
  std::string id, host, model;
  int pid = 0;
};
void register_worker(Db& db, const WorkerInfo& w);
void heartbeat(Db& db, const std::string& worker, std::optional<long long> current_job);
void worker_finished_job(Db& db, const std::string& worker, bool ok, double audio_s, double wall_s);
void worker_stopped(Db& db, const std::string& worker);

// `wisp status --queue`.
struct StateRow {
  std::string state;
  long long jobs = 0;
  double audio_seconds = 0, wall_seconds = 0;
};
struct WorkerRow {
  std::string id, host, model, current_input;
  int pid = 0;
  long long jobs_done = 0, jobs_failed = 0;
  double audio_seconds = 0, wall_seconds = 0;
  double heartbeat_age_s = 0;
  bool stopped = false;
};
struct FailedRow {
  std::string input, error;
  int attempts = 0;
};
struct Status {
  std::vector<StateRow> states;
  std::vector<WorkerRow> workers;
  std::vector<FailedRow> failed;
};
Status status(Db& db);

// `wisp queue retry|cancel|purge`: jobs whose input matches `like` (SQL
// LIKE; "%" all). Return how many changed.
size_t retry(Db& db, const std::string& like);            // failed or cancelled -> pending, attempts reset
size_t cancel(Db& db, const std::string& like);           // pending or running -> cancelled
size_t purge(Db& db, const std::string& like, bool all);  // done (all: every state) -> deleted

// Outputs stored in the database (--store db): (name, content) of done jobs.
std::vector<std::pair<std::string, std::string>> stored_outputs(Db& db);

}  // namespace wisp::queue
