#include "queue/schema.h"

#include <string>

#include "common/error.h"

namespace wisp::queue {
namespace {

// Migration N brings the schema from version N-1 to N. Never edit one that
// has shipped: add the next.
const char* const kMigrations[] = {
    // 1: jobs, their history, workers, and outputs kept in the database.
    R"sql(
CREATE TABLE wisp_jobs (
  id            bigserial PRIMARY KEY,
  input         text NOT NULL,
  model         text NOT NULL,
  options_hash  text NOT NULL,
  formats       text NOT NULL,
  output_dir    text NOT NULL DEFAULT '',
  outputs       text[] NOT NULL,
  store         text NOT NULL DEFAULT 'files' CHECK (store IN ('files', 'db')),
  state         text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled')),
  attempts      integer NOT NULL DEFAULT 0,
  max_attempts  integer NOT NULL DEFAULT 3,
  worker        text,
  lease_until   timestamptz,
  error         text,
  audio_seconds double precision,
  wall_seconds  double precision,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz,
  UNIQUE (input, model, options_hash)
);
CREATE INDEX wisp_jobs_open ON wisp_jobs (model, options_hash, id) WHERE state IN ('pending', 'running');
CREATE TABLE wisp_job_events (
  id      bigserial PRIMARY KEY,
  job_id  bigint NOT NULL REFERENCES wisp_jobs (id) ON DELETE CASCADE,
  worker  text,
  event   text NOT NULL,
  at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  detail  text
);
CREATE INDEX wisp_job_events_job ON wisp_job_events (job_id, id);
CREATE TABLE wisp_workers (
  id            text PRIMARY KEY,
  host          text NOT NULL,
  pid           integer NOT NULL,
  model         text NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  stopped_at    timestamptz,
  current_job   bigint,
  jobs_done     integer NOT NULL DEFAULT 0,
  jobs_failed   integer NOT NULL DEFAULT 0,
  audio_seconds double precision NOT NULL DEFAULT 0,
  wall_seconds  double precision NOT NULL DEFAULT 0
);
CREATE TABLE wisp_outputs (
  job_id   bigint NOT NULL REFERENCES wisp_jobs (id) ON DELETE CASCADE,
  format   text NOT NULL,
  name     text NOT NULL,
  content  bytea NOT NULL,
  PRIMARY KEY (job_id, format)
);
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

}  // namespace

void migrate(Db& db) {
  db.transaction([&] {
    // Serialises migrations across processes (the key is arbitrary but fixed).
    db.exec("SELECT pg_advisory_xact_lock(727372)");
    db.exec("CREATE TABLE IF NOT EXISTS wisp_schema (version integer NOT NULL)");
    int version = static_cast<int>(first_number(db.exec("SELECT coalesce(max(version), 0) FROM wisp_schema")));
    if (version > kSchemaVersion)
      throw Error("queue: the database has schema version " + std::to_string(version) + ", newer than this wisp's " +
                  std::to_string(kSchemaVersion) + ": upgrade wisp");
    for (; version < kSchemaVersion; ++version) db.exec(kMigrations[version]);
    db.exec("DELETE FROM wisp_schema");
    db.exec("INSERT INTO wisp_schema (version) VALUES ($1)", {std::to_string(version)});
  });
}

}  // namespace wisp::queue
