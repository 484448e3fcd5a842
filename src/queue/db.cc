#include "queue/db.h"

#include <libpq-fe.h>

#include <memory>

#include "common/error.h"

namespace wisp::queue {
namespace {

std::string message(PGconn* conn) {
  std::string m = conn ? PQerrorMessage(conn) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultFree>;

}  // namespace

Db::Db(const std::string& url) : url_(url) { connect(); }

Db::~Db() {
  if (conn_) PQfinish(conn_);
}

void Db::connect() {
  if (conn_) PQfinish(conn_);
  conn_ = PQconnectdb(url_.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) throw Error("queue: cannot connect: " + message(conn_));
  // Notices (e.g. "relation already exists, skipping") are not for the user.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

std::vector<Row> Db::exec(const std::string& sql, const std::vector<Value>& params) {
  std::vector<const char*> values;
  for (const Value& v : params) values.push_back(v ? v->c_str() : nullptr);
  for (int attempt = 0;; ++attempt) {
    // Without parameters, the simple protocol: it also runs several statements (the migrations).
    Result r(values.empty() ? PQexec(conn_, sql.c_str())
                            : PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                           nullptr, nullptr, 0));
    const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      std::vector<Row> rows(static_cast<size_t>(PQntuples(r.get())));
      const int cols = PQnfields(r.get());
      for (size_t i = 0; i < rows.size(); ++i) {
        for (int c = 0; c < cols; ++c) {
          if (PQgetisnull(r.get(), static_cast<int>(i), c))
            rows[i].emplace_back();
          else
            rows[i].emplace_back(std::string(PQgetvalue(r.get(), static_cast<int>(i), c),
                                             static_cast<size_t>(PQgetlength(r.get(), static_cast<int>(i), c))));
        }
      }
      return rows;
    }
    // A server restart or pg_terminate_backend: reconnect and retry once,
    // unless a transaction was open (its work is gone; the caller redoes it).
    if (PQstatus(conn_) == CONNECTION_BAD && attempt == 0 && !in_transaction_) {
      try {
        connect();
        continue;
      } catch (const Error&) {
      }
    }
    const char* detail = r ? PQresultErrorMessage(r.get()) : nullptr;
    std::string why = detail && *detail ? detail : message(conn_);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    if (PQstatus(conn_) == CONNECTION_BAD) {
      try {
        connect();  // ready for the caller's next attempt
      } catch (const Error&) {
      }
    }
    throw Error("queue: " + why);
  }
}

void Db::rollback_quietly() {
  if (PQstatus(conn_) != CONNECTION_OK) return;
  Result r(PQexec(conn_, "ROLLBACK"));
}

long long first_number(const std::vector<Row>& rows) {
  if (rows.empty() || rows[0].empty() || !rows[0][0]) return 0;
  return std::stoll(*rows[0][0]);
}

}  // namespace wisp::queue
