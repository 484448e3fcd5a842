#include "queue/queue.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/hex.h"

namespace wisp::queue {
namespace {

using nlohmann::json;

std::string number(double v) { return json(v).dump(); }

std::vector<std::string> json_strings(const Value& text) {
  std::vector<std::string> out;
  if (!text) return out;
  for (const json& s : json::parse(*text)) out.push_back(s.get<std::string>());
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t p; (p = s.find(sep, start)) != std::string::npos; start = p + 1)
    out.push_back(s.substr(start, p - start));
  out.push_back(s.substr(start));
  return out;
}

double as_double(const Value& v) { return v ? std::stod(*v) : 0.0; }
long long as_ll(const Value& v) { return v ? std::stoll(*v) : 0; }

}  // namespace

size_t add_jobs(Db& db, const JobKind& kind, const std::vector<NewJob>& jobs, const AddOptions& options) {
  if (options.store != "files" && options.store != "db") throw Error("queue: --store must be files or db");
  if (options.max_attempts < 1) throw Error("queue: --max_attempts must be at least 1");
  return db.transaction([&] {
    size_t added = 0;
    for (const NewJob& j : jobs) {
      added += db.exec(
                     "INSERT INTO wisp_jobs (input, model, options_hash, formats, output_dir, outputs, store, "
                     "max_attempts) VALUES ($1, $2, $3, $4, $5, ARRAY(SELECT json_array_elements_text($6::json)), "
                     "$7, $8) ON CONFLICT (input, model, options_hash) DO NOTHING RETURNING id",
                     {j.input, kind.model, kind.options_hash, j.formats, j.output_dir, json(j.outputs).dump(),
                      options.store, std::to_string(options.max_attempts)})
                   .size();
    }
    return added;
  });
}

std::optional<Claimed> claim(Db& db, const std::string& worker, const JobKind& kind, double lease_s) {
  // The oldest open job of this kind that no one holds: pending, or running
  // with a lease that ran out (its worker died or lost the database) and
  // attempts left. SKIP LOCKED: concurrent claims take different rows.
  const std::vector<Row> rows = db.exec(
      "WITH picked AS ("
      "  SELECT id, worker AS previous FROM wisp_jobs"
      "  WHERE model = $2 AND options_hash = $3 AND (state = 'pending' OR"
      "        (state = 'running' AND lease_until < now() AND attempts < max_attempts))"
      "  ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1),"
      " taken AS ("
      "  UPDATE wisp_jobs j SET state = 'running', worker = $1, attempts = j.attempts + 1,"
      "         lease_until = now() + make_interval(secs => $4::double precision), started_at = now()"
      "  FROM picked WHERE j.id = picked.id"
      "  RETURNING j.id, j.input, j.formats, array_to_json(j.outputs)::text, j.store, j.attempts, j.output_dir,"
      "            picked.previous),"
      " logged AS ("
      "  INSERT INTO wisp_job_events (job_id, worker, event, detail)"
      "  SELECT id, $1, 'claimed', CASE WHEN previous IS NOT NULL THEN 'lease of ' || previous || ' ran out' END"
      "  FROM taken)"
      " SELECT id, input, formats, array_to_json, store, attempts, output_dir FROM taken",
      {worker, kind.model, kind.options_hash, number(lease_s)});
  if (rows.empty()) return std::nullopt;
  const Row& r = rows[0];
  Claimed c;
  c.id = as_ll(r[0]);
  c.input = r[1].value_or("");
  c.formats = split(r[2].value_or(""), ',');
  c.outputs = json_strings(r[3]);
  c.store = r[4].value_or("files");
  c.attempt = static_cast<int>(as_ll(r[5]));
  c.output_dir = r[6].value_or("");
  return c;
}

bool renew(Db& db, long long job, const std::string& worker, double lease_s) {
  return !db.exec(
                "UPDATE wisp_jobs SET lease_until = now() + make_interval(secs => $3::double precision) "
                "WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING id",
                {std::to_string(job), worker, number(lease_s)})
              .empty();
}

bool complete(Db& db, long long job, const std::string& worker, double audio_s, double wall_s,
              const std::vector<std::string>& outputs, const std::vector<StoredOutput>& stored) {
  return db.transaction([&] {
    const std::string id = std::to_string(job);
    const bool ours = !db.exec(
                             "UPDATE wisp_jobs SET state = 'done', lease_until = NULL, finished_at = now(), "
                             "error = NULL, audio_seconds = $3, wall_seconds = $4, "
                             "outputs = ARRAY(SELECT json_array_elements_text($5::json)) "
                             "WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING id",
                             {id, worker, number(audio_s), number(wall_s), json(outputs).dump()})
                           .empty();
    if (!ours) return false;
    for (const StoredOutput& o : stored) {
      db.exec(
          "INSERT INTO wisp_outputs (job_id, format, name, content) VALUES ($1, $2, $3, decode($4, 'hex')) "
          "ON CONFLICT (job_id, format) DO UPDATE SET name = EXCLUDED.name, content = EXCLUDED.content",
          {id, o.format, o.name, to_hex(o.content)});
    }
    db.exec("INSERT INTO wisp_job_events (job_id, worker, event) VALUES ($1, $2, 'completed')", {id, worker});
    return true;
  });
}

void fail(Db& db, long long job, const std::string& worker, const std::string& error, double wall_s) {
  db.exec(
      "WITH f AS (UPDATE wisp_jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,"
      "  worker = NULL, lease_until = NULL, error = $3, wall_seconds = $4,"
      "  finished_at = CASE WHEN attempts >= max_attempts THEN now() END"
      "  WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING id, state)"
      " INSERT INTO wisp_job_events (job_id, worker, event, detail)"
      " SELECT id, $2, CASE WHEN state = 'failed' THEN 'failed' ELSE 'attempt failed' END, $3 FROM f",
      {std::to_string(job), worker, error, number(wall_s)});
}

void release(Db& db, long long job, const std::string& worker) {
  db.exec(
      "WITH r AS (UPDATE wisp_jobs SET state = 'pending', worker = NULL, lease_until = NULL,"
      "  attempts = greatest(attempts - 1, 0) WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING id)"
      " INSERT INTO wisp_job_events (job_id, worker, event) SELECT id, $2, 'released' FROM r",
      {std::to_string(job), worker});
}

size_t fail_expired(Db& db) {
  return static_cast<size_t>(first_number(db.exec(
      "WITH f AS (UPDATE wisp_jobs SET state = 'failed', lease_until = NULL, finished_at = now(),"
      "  error = 'its worker ' || coalesce(worker, '?') || ' stopped renewing its lease (crashed, killed or cut off) '"
      "          || 'on attempt ' || attempts || ' of ' || max_attempts"
      "  WHERE state = 'running' AND lease_until < now() AND attempts >= max_attempts RETURNING id, worker),"
      " e AS (INSERT INTO wisp_job_events (job_id, worker, event) SELECT id, worker, 'expired' FROM f)"
      " SELECT count(*) FROM f")));
}

void register_worker(Db& db, const WorkerInfo& w) {
  db.exec(
      "INSERT INTO wisp_workers (id, host, pid, model) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL",
      {w.id, w.host, std::to_string(w.pid), w.model});
}

void heartbeat(Db& db, const std::string& worker, std::optional<long long> current_job) {
  db.exec("UPDATE wisp_workers SET heartbeat_at = now(), current_job = $2 WHERE id = $1",
          {worker, current_job ? Value(std::to_string(*current_job)) : Value()});
}

void worker_finished_job(Db& db, const std::string& worker, bool ok, double audio_s, double wall_s) {
  db.exec(
      "UPDATE wisp_workers SET jobs_done = jobs_done + $2, jobs_failed = jobs_failed + $3, "
      "audio_seconds = audio_seconds + $4, wall_seconds = wall_seconds + $5, current_job = NULL WHERE id = $1",
      {worker, ok ? "1" : "0", ok ? "0" : "1", number(audio_s), number(wall_s)});
}

void worker_stopped(Db& db, const std::string& worker) {
  db.exec("UPDATE wisp_workers SET stopped_at = now(), current_job = NULL WHERE id = $1", {worker});
}

Status status(Db& db) {
  Status s;
  for (const Row& r : db.exec("SELECT state, count(*), coalesce(sum(audio_seconds), 0), coalesce(sum(wall_seconds), 0) "
                              "FROM wisp_jobs GROUP BY state ORDER BY min(CASE state WHEN 'pending' THEN 0 "
                              "WHEN 'running' THEN 1 WHEN 'done' THEN 2 WHEN 'failed' THEN 3 ELSE 4 END)"))
    s.states.push_back({r[0].value_or(""), as_ll(r[1]), as_double(r[2]), as_double(r[3])});
  for (const Row& r : db.exec("SELECT w.id, w.host, w.model, j.input, w.pid, w.jobs_done, w.jobs_failed, "
                              "w.audio_seconds, w.wall_seconds, extract(epoch FROM now() - w.heartbeat_at), "
                              "w.stopped_at IS NOT NULL FROM wisp_workers w LEFT JOIN wisp_jobs j ON "
                              "j.id = w.current_job ORDER BY w.started_at")) {
    WorkerRow w;
    w.id = r[0].value_or("");
    w.host = r[1].value_or("");
    w.model = r[2].value_or("");
    w.current_input = r[3].value_or("");
    w.pid = static_cast<int>(as_ll(r[4]));
    w.jobs_done = as_ll(r[5]);
    w.jobs_failed = as_ll(r[6]);
    w.audio_seconds = as_double(r[7]);
    w.wall_seconds = as_double(r[8]);
    w.heartbeat_age_s = as_double(r[9]);
    w.stopped = r[10].value_or("f") == "t";
    s.workers.push_back(std::move(w));
  }
  for (const Row& r : db.exec("SELECT input, coalesce(error, ''), attempts FROM wisp_jobs WHERE state = 'failed' "
                              "ORDER BY id"))
    s.failed.push_back({r[0].value_or(""), r[1].value_or(""), static_cast<int>(as_ll(r[2]))});
  return s;
}

size_t retry(Db& db, const std::string& like) {
  return static_cast<size_t>(first_number(db.exec(
      "WITH r AS (UPDATE wisp_jobs SET state = 'pending', attempts = 0, error = NULL, worker = NULL, finished_at = NULL"
      "  WHERE state IN ('failed', 'cancelled') AND input LIKE $1 RETURNING id),"
      " e AS (INSERT INTO wisp_job_events (job_id, event) SELECT id, 'retried' FROM r)"
      " SELECT count(*) FROM r",
      {like})));
}

size_t cancel(Db& db, const std::string& like) {
  return static_cast<size_t>(first_number(
      db.exec("WITH c AS (UPDATE wisp_jobs SET state = 'cancelled', lease_until = NULL, finished_at = now()"
              "  WHERE state IN ('pending', 'running') AND input LIKE $1 RETURNING id, worker),"
              " e AS (INSERT INTO wisp_job_events (job_id, worker, event) SELECT id, worker, 'cancelled' FROM c)"
              " SELECT count(*) FROM c",
              {like})));
}

size_t purge(Db& db, const std::string& like, bool all) {
  return static_cast<size_t>(first_number(
      db.exec(all ? "WITH d AS (DELETE FROM wisp_jobs WHERE input LIKE $1 AND state <> 'running' RETURNING id) "
                    "SELECT count(*) FROM d"
                  : "WITH d AS (DELETE FROM wisp_jobs WHERE input LIKE $1 AND state = 'done' RETURNING id) "
                    "SELECT count(*) FROM d",
              {like})));
}

std::vector<std::pair<std::string, std::string>> stored_outputs(Db& db) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Row& r : db.exec("SELECT o.name, encode(o.content, 'hex') FROM wisp_outputs o JOIN wisp_jobs j ON "
                              "j.id = o.job_id WHERE j.state = 'done' ORDER BY o.job_id, o.format")) {
    out.emplace_back(r[0].value_or(""), from_hex(r[1].value_or("")));
  }
  return out;
}

}  // namespace wisp::queue
