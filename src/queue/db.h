// wisp/queue/db.h
//
// One PostgreSQL connection (libpq) with what the queue needs: statements
// with text parameters, rows of text, transactions, and a reconnect after
// the server restarted or cut the connection. Errors throw wisp::Error
// "queue: <cause>".
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

struct pg_conn;

namespace wisp::queue {

using Value = std::optional<std::string>;  // NULL is nullopt
using Row = std::vector<Value>;

class Db {
 public:
  // `url`: a libpq connection string or postgresql:// URI.
  explicit Db(const std::string& url);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one statement with $1..$n bound to `params` (without parameters,
  // `sql` may hold several); returns the rows of the last.
  // A connection found broken is re-established once and the statement
  // retried, unless inside a transaction (then the error is thrown).
  std::vector<Row> exec(const std::string& sql, const std::vector<Value>& params = {});

  // BEGIN ... COMMIT around `work`; ROLLBACK if it throws.
  template <class F>
  auto transaction(F&& work) {
    exec("BEGIN");
    in_transaction_ = true;
    try {
      if constexpr (std::is_void_v<decltype(work())>) {
        work();
        in_transaction_ = false;
        exec("COMMIT");
      } else {
        auto result = work();
        in_transaction_ = false;
        exec("COMMIT");
        return result;
      }
    } catch (...) {
      in_transaction_ = false;
      rollback_quietly();
      throw;
    }
  }

 private:
  void connect();
  void rollback_quietly();

  std::string url_;
  pg_conn* conn_ = nullptr;
  bool in_transaction_ = false;
};

// The first column of the first row as a number (0 when there is none).
long long first_number(const std::vector<Row>& rows);

}  // namespace wisp::queue
