#include "jobs/ledger.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.h"
#include "common/hex.h"
#include "common/python_text.h"

namespace wisp::jobs {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  path            TEXT PRIMARY KEY,
  state           TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'done', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  failures        INTEGER NOT NULL DEFAULT 0,
  completions     INTEGER NOT NULL DEFAULT 0,
  error           TEXT NOT NULL DEFAULT '',
  audio_seconds   REAL,
  wall_seconds    REAL,
  realtime_factor REAL,
  model           TEXT NOT NULL DEFAULT '',
  options_hash    TEXT NOT NULL DEFAULT '',
  outputs         TEXT NOT NULL DEFAULT '[]',
  input_size      INTEGER,
  input_mtime_ns  INTEGER,
  pid             INTEGER,
  host            TEXT NOT NULL DEFAULT '',
  started_at      REAL,
  updated_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
)sql";

constexpr const char* kColumns =
    "path, state, attempts, failures, completions, error, audio_seconds, wall_seconds, realtime_factor, "
    "model, options_hash, outputs, input_size, input_mtime_ns, pid, host, started_at, updated_at";

double unix_now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// The outputs as a JSON array. A path that is not valid UTF-8 (Linux file
// names are bytes; JSON strings cannot hold them) is stored as {"hex": ...}
// so that it reads back byte for byte.
std::string outputs_json(const std::vector<std::string>& outputs) {
  nlohmann::json a = nlohmann::json::array();
  for (const std::string& o : outputs) {
    if (is_valid_utf8(o)) {
      a.push_back(o);
      continue;
    }
    a.push_back({{"hex", to_hex(o)}});
  }
  return a.dump();
}

std::vector<std::string> parse_outputs(const std::string& text) {
  std::vector<std::string> out;
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_array()) return {};
    for (const auto& e : j) {
      if (e.is_string()) {
        out.push_back(e.get<std::string>());
      } else {
        out.push_back(from_hex(e.at("hex").get<std::string>()));
      }
    }
  } catch (const std::exception&) {
    return {};
  }
  return out;
}

// One prepared statement; finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& ledger) : db_(db), ledger_(ledger) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) fail();
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(s_, i, v));
    return *this;
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  // True when a row is available.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail();
  }
  std::string text(int col) const {
    const unsigned char* t = sqlite3_column_text(s_, col);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  int64_t integer(int col, int64_t null_value = 0) const {
    return sqlite3_column_type(s_, col) == SQLITE_NULL ? null_value : sqlite3_column_int64(s_, col);
  }
  double real(int col) const { return sqlite3_column_double(s_, col); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail();
  }
  [[noreturn]] void fail() { throw Error("ledger " + ledger_ + ": " + sqlite3_errmsg(db_)); }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  const std::string& ledger_;
};

Job read_job(const Stmt& s) {
  Job j;
  j.path = s.text(0);
  j.state = parse_state(s.text(1));
  j.attempts = static_cast<int>(s.integer(2));
  j.failures = static_cast<int>(s.integer(3));
  j.completions = static_cast<int>(s.integer(4));
  j.error = s.text(5);
  j.audio_seconds = s.real(6);
  j.wall_seconds = s.real(7);
  j.realtime_factor = s.real(8);
  j.model = s.text(9);
  j.options_hash = s.text(10);
  j.outputs = parse_outputs(s.text(11));
  j.input_size = s.integer(12, -1);
  j.input_mtime_ns = s.integer(13, -1);
  j.pid = s.integer(14);
  j.host = s.text(15);
  j.started_at = s.real(16);
  j.updated_at = s.real(17);
  return j;
}

// BEGIN IMMEDIATE ... COMMIT, rolled back when an exception leaves the scope.
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& ledger) : db_(db), ledger_(ledger) { run("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    run("COMMIT");
    committed_ = true;
  }

 private:
  void run(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw Error("ledger " + ledger_ + ": " + why);
    }
  }
  sqlite3* db_;
  const std::string& ledger_;
  bool committed_ = false;
};

}  // namespace

std::string_view state_name(State s) {
  switch (s) {
    case State::pending: return "pending";
    case State::running: return "running";
    case State::done: return "done";
    case State::failed: return "failed";
  }
  return "pending";
}

State parse_state(std::string_view name) {
  for (State s : {State::pending, State::running, State::done, State::failed})
    if (state_name(s) == name) return s;
  throw Error("unknown job state '" + std::string(name) + "'");
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

void Ledger::setup() {
  // WAL is persistent and switching to it needs the database to itself:
  // only the run that creates the ledger does it.
  bool wal = false;
  {
    Stmt m(db_, "PRAGMA journal_mode", path_);
    wal = m.step() && m.text(0) == "wal";
  }
  if (!wal) exec("PRAGMA journal_mode=WAL");
  // FULL: a committed "done" survives a power cut, not only a crash.
  exec("PRAGMA synchronous=FULL");
  Transaction t(db_, path_);
  int64_t version = 0;
  {
    Stmt v(db_, "PRAGMA user_version", path_);
    v.step();
    version = v.integer(0);
  }
  if (version > kSchemaVersion)
    throw Error("ledger schema version " + std::to_string(version) + " is newer than this wisp (" +
                std::to_string(kSchemaVersion) + ")");
  exec(kSchema);
  if (version < kSchemaVersion) exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
  t.commit();
}

Ledger::Ledger(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) throw Error("cannot open ledger " + path + ": cannot create folder: " + ec.message());
  int rc =
      sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open ledger " + path + ": " + why);
  }
  try {
    // Another wisp on the same ledger holds the write lock for milliseconds.
    sqlite3_busy_timeout(db_, 30000);
    // Two wisps creating the ledger at once can each hold a read lock the
    // other must upgrade past; SQLite then answers "busy" at once instead of
    // waiting (deadlock avoidance). Setting up again a little later works.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      try {
        setup();
        break;
      } catch (const Error&) {
        int code = sqlite3_errcode(db_) & 0xff;
        if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || std::chrono::steady_clock::now() > deadline) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + ::getpid() % 30));
      }
    }
  } catch (const Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    std::string what = e.what();
    if (what.rfind("ledger ", 0) == 0) throw Error("cannot open " + what);
    throw Error("cannot open ledger " + path + ": " + what);
  }
}

Ledger::Ledger(const std::string& path, ReadOnly) : path_(path) {
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open ledger " + path + ": " + why);
  }
  sqlite3_busy_timeout(db_, 30000);
  try {
    Stmt s(db_, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='jobs'", path_);
    if (!s.step() || s.integer(0) == 0) throw Error("not a wisp ledger (no jobs table)");
  } catch (const Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open ledger " + path + ": " + e.what());
  }
}

Ledger Ledger::open_existing(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error("no ledger at " + path);
  return Ledger(path, ReadOnly{});
}

Ledger::~Ledger() { sqlite3_close(db_); }

void Ledger::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw Error("ledger " + path_ + ": " + why);
  }
}

std::optional<Job> Ledger::get(const std::string& input) const {
  Stmt s(db_, std::string("SELECT ") + kColumns + " FROM jobs WHERE path = ?", path_);
  s.bind(1, input);
  if (!s.step()) return std::nullopt;
  return read_job(s);
}

std::vector<Job> Ledger::all() const {
  Stmt s(db_, std::string("SELECT ") + kColumns + " FROM jobs ORDER BY path", path_);
  std::vector<Job> out;
  while (s.step()) out.push_back(read_job(s));
  return out;
}

std::vector<StateCount> Ledger::counts() const {
  std::vector<StateCount> out;
  for (State st : {State::pending, State::running, State::done, State::failed}) out.push_back({st, 0, 0, 0});
  Stmt s(db_,
         "SELECT state, count(*), coalesce(sum(audio_seconds), 0), coalesce(sum(wall_seconds), 0) "
         "FROM jobs GROUP BY state",
         path_);
  while (s.step()) {
    StateCount& c = out[static_cast<size_t>(parse_state(s.text(0)))];
    c.files = static_cast<int>(s.integer(1));
    c.audio_seconds = s.real(2);
    c.wall_seconds = s.real(3);
  }
  return out;
}

void Ledger::add_pending(const std::vector<std::string>& inputs) {
  Transaction t(db_, path_);
  Stmt s(db_, "INSERT OR IGNORE INTO jobs (path, state, updated_at) VALUES (?, 'pending', ?)", path_);
  double now = unix_now();
  for (const std::string& in : inputs) {
    s.reset();
    s.bind(1, in).bind(2, now);
    s.step();
  }
  t.commit();
}

bool Ledger::held_elsewhere(const Job& job) {
  if (job.state != State::running || job.pid <= 0) return false;
  // A row of another host cannot be checked; treating it as crashed redoes
  // the file at worst (outputs are replaced atomically).
  if (job.host != host_name()) return false;
  // Our own pid in a row from before we started is a reused pid: stale.
  if (job.pid == static_cast<int64_t>(::getpid())) return false;
  if (::kill(static_cast<pid_t>(job.pid), 0) == 0) return true;
  return errno == EPERM;  // alive, owned by another user
}

bool Ledger::claim(const std::string& input, const Claim& c) {
  Transaction t(db_, path_);
  {
    Stmt s(db_, std::string("SELECT ") + kColumns + " FROM jobs WHERE path = ?", path_);
    s.bind(1, input);
    if (s.step()) {
      Job j = read_job(s);
      if (held_elsewhere(j)) return false;
      if (c.unless_done_since && j.state == State::done && j.options_hash == c.options_hash) return false;
    }
  }
  double now = unix_now();
  {
    Stmt ins(db_, "INSERT OR IGNORE INTO jobs (path, state, updated_at) VALUES (?, 'pending', ?)", path_);
    ins.bind(1, input).bind(2, now);
    ins.step();
  }
  Stmt up(db_,
          "UPDATE jobs SET state = 'running', attempts = attempts + 1, "
          "failures = CASE WHEN ?1 THEN 0 ELSE failures END, error = '', model = ?2, options_hash = ?3, "
          "outputs = ?4, input_size = ?5, input_mtime_ns = ?6, pid = ?7, host = ?8, started_at = ?9, "
          "updated_at = ?9 WHERE path = ?10",
          path_);
  up.bind(1, static_cast<int64_t>(c.reset_failures ? 1 : 0))
      .bind(2, c.model)
      .bind(3, c.options_hash)
      .bind(4, outputs_json(c.outputs))
      .bind(5, c.input_size)
      .bind(6, c.input_mtime_ns)
      .bind(7, static_cast<int64_t>(::getpid()))
      .bind(8, host_name())
      .bind(9, now)
      .bind(10, input);
  up.step();
  t.commit();
  return true;
}

void Ledger::finish(const std::string& input, const char* sql_tail, const std::string& error, double audio_seconds,
                    double wall_seconds, const std::vector<std::string>* outputs) {
  std::string sql = std::string("UPDATE jobs SET ") + sql_tail +
                    ", error = ?1, audio_seconds = ?2, wall_seconds = ?3, realtime_factor = ?4, "
                    "outputs = coalesce(?5, outputs), pid = NULL, updated_at = ?6 WHERE path = ?7";
  Transaction t(db_, path_);
  Stmt s(db_, sql, path_);
  s.bind(1, error).bind(2, audio_seconds).bind(3, wall_seconds);
  s.bind(4, wall_seconds > 0 ? audio_seconds / wall_seconds : 0.0);
  if (outputs) s.bind(5, outputs_json(*outputs));
  s.bind(6, unix_now()).bind(7, input);
  s.step();
  t.commit();
}

void Ledger::mark_done(const std::string& input, double audio_seconds, double wall_seconds,
                       const std::vector<std::string>& outputs) {
  finish(input, "state = 'done', completions = completions + 1", "", audio_seconds, wall_seconds, &outputs);
}

void Ledger::mark_failed(const std::string& input, const std::string& error, double audio_seconds,
                         double wall_seconds) {
  finish(input, "state = 'failed', failures = failures + 1", error, audio_seconds, wall_seconds, nullptr);
}

void Ledger::mark_pending(const std::string& input) {
  Transaction t(db_, path_);
  Stmt s(db_,
         "UPDATE jobs SET state = 'pending', attempts = max(attempts - 1, 0), pid = NULL, updated_at = ? "
         "WHERE path = ?",
         path_);
  s.bind(1, unix_now()).bind(2, input);
  s.step();
  t.commit();
}

void Ledger::adopt_done(const std::string& model, const std::string& options_hash, const std::vector<Adopted>& inputs) {
  if (inputs.empty()) return;
  Transaction t(db_, path_);
  Stmt s(db_,
         "INSERT INTO jobs (path, state, model, options_hash, outputs, input_size, input_mtime_ns, updated_at) "
         "VALUES (?1, 'done', ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(path) DO UPDATE SET state = 'done', "
         "model = ?2, options_hash = ?3, outputs = ?4, input_size = ?5, input_mtime_ns = ?6, error = '', "
         "pid = NULL, updated_at = ?7",
         path_);
  double now = unix_now();
  for (const Adopted& a : inputs) {
    s.reset();
    s.bind(1, a.input).bind(2, model).bind(3, options_hash).bind(4, outputs_json(a.outputs));
    s.bind(5, a.input_size).bind(6, a.input_mtime_ns).bind(7, now);
    s.step();
  }
  t.commit();
}

}  // namespace wisp::jobs
