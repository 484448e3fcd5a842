// tests/fuzz/ledger_fuzz.cc: the batch ledger (src/jobs/ledger.cc) on a
// corrupt or hostile SQLite file: the input is written as the database,
// opened read-only as `wisp status` does, then read-write as a batch does,
// and every query and state change is tried on it.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "fuzz_util.h"
#include "jobs/ledger.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path dir = wisp_fuzz::scratch_dir() / "ledger";
  std::error_code ec;
  fs::remove_all(dir, ec);  // the -wal and -shm files of the last run too
  fs::create_directories(dir);
  const std::string path = (dir / "ledger.db").string();
  wisp_fuzz::write_file(path, wisp_fuzz::as_view(data, size));
  using wisp::jobs::Ledger;
  try {
    const Ledger ro = Ledger::open_existing(path);
    for (const wisp::jobs::Job& j : ro.all()) {
      ro.get(j.path);
      Ledger::held_elsewhere(j);
    }
    ro.counts();
  } catch (const wisp::Error&) {
  }
  try {
    Ledger l(path);
    const std::string input = "/fuzz/input.wav";
    l.add_pending({input, "/fuzz/other.mp3"});
    wisp::jobs::Claim c;
    c.model = "m";
    c.options_hash = "h";
    c.outputs = {"/fuzz/input.txt"};
    c.unless_done_since = true;
    if (l.claim(input, c)) l.mark_done(input, 1.5, 0.5, {"/fuzz/input.txt"});
    if (l.claim(input, c)) l.mark_failed(input, "fuzz", 1, 1);
    if (l.claim(input, c)) l.mark_pending(input);
    l.adopt_done("m", "h", {{"/fuzz/other.mp3", {"/fuzz/other.txt"}, 1, 2}});
    for (const wisp::jobs::Job& j : l.all()) l.get(j.path);
    l.counts();
  } catch (const wisp::Error&) {
  }
  return 0;
}
