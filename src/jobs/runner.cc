#include "jobs/runner.h"

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "audio/audio.h"
#include "audio/probe.h"
#include "common/error.h"
#include "jobs/ledger.h"
#include "jobs/load.h"
#include "jobs/options_hash.h"
#include "jobs/url_inputs.h"
#include "nn/compute_type.h"
#include "transcribe/batched.h"

namespace wisp::jobs {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr double kFramesPerSecond = 100.0;  // mel frames (openai HOP_LENGTH 160 at 16 kHz)

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct FileStat {
  int64_t size = -1;
  int64_t mtime_ns = -1;
  // Which file the path names: another file renamed over it has another inode.
  dev_t dev = 0;
  ino_t ino = 0;
  bool missing = false;  // stat() said ENOENT: the file is gone
};

FileStat stat_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    FileStat none;
    none.missing = errno == ENOENT;
    return none;
  }
  return {static_cast<int64_t>(st.st_size), int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec, st.st_dev,
          st.st_ino, false};
}

// A URL has no file to stat: its row records -1, which never counts as a change.
FileStat stat_input(const Input& in) { return in.url ? FileStat{} : stat_file(in.path); }

bool all_exist(const std::vector<std::string>& paths) {
  std::error_code ec;
  for (const std::string& p : paths)
    if (!fs::is_regular_file(p, ec)) return false;
  return !paths.empty();
}

bool includes(const std::vector<std::string>& recorded, const std::vector<std::string>& wanted) {
  std::set<std::string> have(recorded.begin(), recorded.end());
  for (const std::string& w : wanted)
    if (!have.count(w)) return false;
  return true;
}

struct Todo {
  const Input* input = nullptr;
  std::vector<std::string> outputs;
  Claim claim;
  double duration = -1;  // header estimate, then the decoded length
  FileStat planned;      // the input as the plan found it
};

// What became of an input file since the batch planned it.
enum class Change { none, deleted, replaced, modified };

// Running totals behind BatchStats.
class Stats {
 public:
  explicit Stats(const std::vector<Todo>& todo) : todo_(todo) {}

  void start() { t0_ = Clock::now(); }
  void set_current(double done) { current_ = done; }
  void finish(bool ok, double audio) {
    ++finished_;
    (ok ? done_ : failed_)++;
    audio_done_ += audio;
    current_ = 0;
  }
  void drop() { ++dropped_; }  // left to another process

  BatchStats snapshot() const {
    BatchStats s;
    s.todo = todo_.size() - dropped_;
    s.finished = finished_;
    s.done = done_;
    s.failed = failed_;
    double known = 0;
    size_t n_known = 0;
    for (const Todo& t : todo_)
      if (t.duration >= 0) known += t.duration, ++n_known;
    // Inputs whose header gave no duration count as the average of the others.
    double avg = n_known ? known / static_cast<double>(n_known) : 0;
    s.audio_total = known + avg * static_cast<double>(todo_.size() - n_known);
    s.audio_done = audio_done_ + current_;
    s.elapsed = seconds_since(t0_);
    if (s.finished == s.todo) {
      s.eta = 0;
    } else if (s.audio_done > 0 && s.elapsed > 0) {
      double rate = s.audio_done / s.elapsed;
      s.eta = std::max(0.0, s.audio_total - s.audio_done) / rate;
    }
    return s;
  }

 private:
  const std::vector<Todo>& todo_;
  Clock::time_point t0_ = Clock::now();
  size_t finished_ = 0, done_ = 0, failed_ = 0, dropped_ = 0;
  double audio_done_ = 0, current_ = 0;
};

// Expected decoded size (16 kHz float) of an input, for the prefetch budget.
size_t expected_bytes(const Todo& t) {
  if (t.duration > 0) return static_cast<size_t>(t.duration * audio::kSampleRate * sizeof(float) * 1.02);
  // No duration in the header: assume a compressed file of about 32 kb/s.
  int64_t size = t.claim.input_size > 0 ? t.claim.input_size : 0;
  return static_cast<size_t>(size) * 16;
}

// output::write_file_atomic's temp name "<output>.<fmt>.tmp.<pid>.<16 hex>":
// the writer's pid, or 0 when `name` is not one.
long temp_writer(const std::string& name) {
  size_t t = name.rfind(".tmp.");
  if (t == std::string::npos) return 0;
  size_t dot = name.find('.', t + 5);
  if (dot == std::string::npos || name.size() - dot - 1 != 16) return 0;
  if (name.find_first_not_of("0123456789abcdef", dot + 1) != std::string::npos) return 0;
  std::string pid = name.substr(t + 5, dot - t - 5);
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos || pid.size() > 9) return 0;
  std::string base = name.substr(0, t);
  bool ours = false;
  for (const char* ext : {".txt", ".vtt", ".srt", ".tsv", ".json"})
    ours |= base.size() > std::strlen(ext) && base.compare(base.size() - std::strlen(ext), std::string::npos, ext) == 0;
  return ours ? std::stol(pid) : 0;
}

// A process killed in the middle of an atomic write leaves its temp file:
// remove those of writers that are gone from the folders this batch writes
// to (a live writer's temp is left alone).
size_t remove_stale_temps(const std::set<std::string>& folders) {
  size_t removed = 0;
  for (const std::string& dir : folders) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      long pid = temp_writer(it->path().filename().string());
      if (pid <= 0) continue;
      // Our own pid: a leftover of an earlier process (we have written nothing yet).
      bool alive = pid != ::getpid() && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
      if (alive) continue;
      std::error_code rec;
      if (fs::remove(it->path(), rec)) ++removed;
    }
  }
  return removed;
}

}  // namespace

std::string default_ledger_path(const std::string& output_dir, const std::vector<std::string>& roots) {
  fs::path base = output_dir.empty() ? fs::path(common_folder(roots)) : fs::path(output_dir);
  return (base / ".wisp" / "ledger.sqlite").string();
}

std::string output_path(const Input& input, const std::string& output_dir, const std::string& ext) {
  fs::path in(input.path);
  std::string name = in.filename().string() + "." + ext;
  if (output_dir.empty()) return (in.parent_path() / name).string();
  fs::path dir(output_dir);
  if (!input.rel_dir.empty()) dir /= input.rel_dir;
  return (dir / name).string();
}

namespace {

// One run of the batch, in the order run_batch() calls its steps: plan (find
// the inputs, decide each one against the ledger), then one run loop
// (sequential or batched) over the prefetched audio, then the summary.
class BatchRun {
 public:
  BatchRun(const transcribe::Engine& engine, const transcribe::Options& options, const BatchConfig& cfg,
           Reporter& reporter, const std::function<bool()>& should_stop)
      : engine_(engine), options_(options), cfg_(cfg), reporter_(reporter), should_stop_(should_stop), stats_(todo_) {}

  // Finds the inputs, decides what this run does with each (the rule is in
  // runner.h) and records it in the ledger. False on a stop request during
  // discovery.
  bool plan() {
    discover();
    if (stop_requested()) {  // Ctrl-C while a big tree was being searched
      sum_.interrupted = true;
      return false;
    }
    ledger_.emplace(plan_.ledger_path);
    hash_ = options_hash(cfg_.model_path, options_, cfg_.writer, nn::compute_type_name(engine_.net().compute_type()),
                         cfg_.batch_size > 0);
    for (const Input& in : set_.files) decide(in);
    record_plan();
    reporter_.plan(plan_);
    sum_.skipped = plan_.skipped;
    sum_.busy = plan_.busy;
    for (const Failure& f : plan_.problems) sum_.failures.push_back(f);
    for (const Failure& f : plan_.gave_up) sum_.failures.push_back(f);
    return true;
  }

  // One input at a time, its segments reported as they are decoded.
  void run_sequential() {
    start_prefetch();
    for (Next n; next_input(n);) {
      Todo& t = *n.todo;
      FileEnd& end = n.end;
      reporter_.file_start({end.number, t.input, t.duration}, stats_.snapshot());
      const auto t0 = Clock::now();
      transcribe::Callbacks cb;
      cb.on_language = [&](const std::string& code, double p) { reporter_.language(code, p); };
      cb.on_segment = [&](const Segment& seg) { reporter_.segment(seg); };
      cb.on_progress = [&](int done, int total) {
        double d = done / kFramesPerSecond;
        stats_.set_current(d);
        reporter_.file_progress(d, std::max(d, total / kFramesPerSecond), stats_.snapshot());
      };
      cb.should_stop = [this] { return stop_requested(); };
      cb.on_window = [this](const transcribe::WindowReport& w) { count_window(w); };
      try {
        Transcript tr = n.audio.streamed ? transcribe::transcribe(engine_, *n.audio.streamed, options_, cb)
                                         : transcribe::transcribe(engine_, n.audio.samples, options_, cb);
        reporter_.run_time(seconds_since(t0));
        finish_done(t, end, tr, seconds_since(t0));
      } catch (const transcribe::Cancelled&) {
        ledger_->mark_pending(t.input->key);
        sum_.interrupted = true;
        sum_.interrupted_input = t.input->path;
        break;
      } catch (const output::WritesRefused& e) {
        stop_for_refused_writes(t, e.what());
        break;
      } catch (const std::exception& e) {
        // A stream read again (load.h) fails when the file changed meanwhile:
        // that is the cause to report.
        if (!ended_by_change(t, end, seconds_since(t0))) finish_failed(t, end, e.what(), seconds_since(t0));
      }
      reporter_.file_end(end, stats_.snapshot());
    }
  }

  // Throughput mode: groups of files whose chunks share the decoder batches.
  void run_batched() {
    start_prefetch();
    for (bool more = true; more && !sum_.interrupted && sum_.stopped.empty();) {
      std::vector<Next> group = next_group(&more);
      if (group.empty()) break;
      run_group(group);
    }
  }

  Summary summary() {
    sum_.inputs = plan_.inputs;
    sum_.ledger_path = plan_.ledger_path;
    sum_.decode_calls = decode_calls_.load();
    sum_.decoded_tokens = decoded_tokens_.load();
    if (prefetch_) {
      sum_.prefetch_peak_bytes = prefetch_->peak_bytes();
      if (sum_.interrupted) prefetch_->abandon();
    }
    sum_.failed = sum_.failures.size();
    sum_.wall_seconds = seconds_since(t_start_);
    return sum_;
  }

 private:
  // An input claimed in the ledger, with its decoded audio.
  struct Next {
    Todo* todo = nullptr;
    FileEnd end;
    LoadedAudio audio;
    std::shared_ptr<void> lease;  // Prefetcher::Item::lease
  };

  bool stop_requested() const { return should_stop_ && should_stop_(); }

  void discover() {
    set_ = discover_inputs(cfg_.inputs, {cfg_.output_dir});
    if (set_.files.empty() && set_.unmatched.empty() && set_.errors.empty()) {
      std::string named;
      for (const std::string& a : cfg_.inputs) named += (named.empty() ? "" : ", ") + a;
      throw Error("no media files found in " + named);
    }
    keep_shard();
    plan_.inputs = set_.files.size();
    plan_.ignored = set_.ignored;
    for (const std::string& p : set_.unmatched) plan_.problems.push_back({p, "no file matches"});
    for (const PathError& e : set_.errors) plan_.problems.push_back(e);
    plan_.ledger_path = cfg_.ledger_path.empty() ? default_ledger_path(cfg_.output_dir, set_.roots) : cfg_.ledger_path;
  }

  // --shard: only this process's share of the inputs, dealt in key order.
  void keep_shard() {
    plan_.shard = cfg_.shard;
    if (cfg_.shard.count <= 1) return;
    std::vector<size_t> order(set_.files.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return set_.files[a].key < set_.files[b].key; });
    std::vector<bool> keep(order.size());
    for (size_t rank = 0; rank < order.size(); ++rank) keep[order[rank]] = in_shard(rank, cfg_.shard);
    std::vector<Input> mine;
    for (size_t i = 0; i < set_.files.size(); ++i)
      if (keep[i]) mine.push_back(std::move(set_.files[i]));
    plan_.other_shards = set_.files.size() - mine.size();
    set_.files = std::move(mine);
  }

  std::vector<std::string> planned_outputs(const Input& in, const std::optional<Job>& row) const {
    std::vector<std::string> outputs;
    if (in.url) {
      // By its name or an earlier run's record; none yet for a page whose
      // name only its download tells (named in name_url_outputs).
      return planned_url_outputs(in.key, cfg_.output_dir, cfg_.formats, row ? row->outputs : outputs);
    }
    // Absolute: the ledger must mean the same files from any working folder.
    for (const std::string& fmt : cfg_.formats) {
      std::error_code ec;
      outputs.push_back(fs::absolute(output_path(in, cfg_.output_dir, fmt), ec).lexically_normal().string());
    }
    return outputs;
  }

  // One input: to do, skipped (done, or outputs adopted), busy elsewhere,
  // given up, or clashing with another input's outputs.
  void decide(const Input& in) {
    std::optional<Job> row = ledger_->get(in.key);
    std::vector<std::string> outputs = planned_outputs(in, row);
    std::string clash;
    for (const std::string& o : outputs) {
      auto [it, fresh] = output_owner_.emplace(o, &in);
      if (!fresh) clash = "its output " + o + " is also the output of " + it->second->path;
    }
    if (!clash.empty()) {
      clashes_.emplace_back(&in, clash);
      return;
    }
    FileStat fst = stat_input(in);
    Todo t{&in, outputs, {}, in.duration, fst};
    t.claim = {cfg_.model_path, hash_, outputs, fst.size, fst.mtime_ns, true, !cfg_.overwrite};
    bool exist = all_exist(outputs);
    if (!row) {
      if (!cfg_.overwrite && exist) {
        adopted_.push_back({in.key, outputs, fst.size, fst.mtime_ns});
        ++plan_.skipped;
        return;
      }
      todo_.push_back(std::move(t));
      return;
    }
    if (Ledger::held_elsewhere(*row)) {
      ++plan_.busy;
      return;
    }
    bool same_input = row->input_size < 0 || (row->input_size == fst.size && row->input_mtime_ns == fst.mtime_ns);
    bool same_options = row->options_hash == hash_;
    t.claim.reset_failures = cfg_.overwrite || !same_input || !same_options;
    t.claim.unless_done_since = !cfg_.overwrite && row->state != State::done;
    if (!cfg_.overwrite) {
      if (row->state == State::done && exist && same_input && same_options && includes(row->outputs, outputs)) {
        ++plan_.skipped;
        return;
      }
      if (row->state == State::failed && !t.claim.reset_failures && row->failures >= cfg_.max_attempts) {
        plan_.gave_up.push_back({in.path, row->error + " (failed " + std::to_string(row->failures) +
                                              " times; not retried, see --max_attempts)"});
        return;
      }
    }
    todo_.push_back(std::move(t));
  }

  // The decisions into the ledger (adopted outputs, pending rows, clashes
  // failed), stale temp files removed, durations probed for the ETA.
  void record_plan() {
    ledger_->adopt_done(cfg_.model_path, hash_, adopted_);
    std::set<std::string> out_folders;
    for (const auto& [out, in] : output_owner_) out_folders.insert(fs::path(out).parent_path().string());
    for (const Input& in : set_.files)
      if (in.url) out_folders.insert(fs::path(url_output_path("x", cfg_.output_dir, "srt")).parent_path().string());
    plan_.removed_temps = remove_stale_temps(out_folders);
    std::vector<std::string> keys;
    for (const Todo& t : todo_) keys.push_back(t.input->key);
    for (const auto& [in, why] : clashes_) keys.push_back(in->key);
    ledger_->add_pending(keys);
    for (const auto& [in, why] : clashes_) {
      FileStat fst = stat_input(*in);
      ledger_->claim(in->key, {cfg_.model_path, hash_, {}, fst.size, fst.mtime_ns, true, false});
      ledger_->mark_failed(in->key, why, 0, 0);
      plan_.problems.push_back({in->path, why});
    }
    // Explicitly named files were not probed while discovering: their header
    // duration feeds the batch's audio total and the prefetch budget.
    for (Todo& t : todo_)
      if (t.duration < 0 && !t.input->url) t.duration = audio::probe_media(t.input->path).duration;
    plan_.todo = todo_.size();
  }

  void start_prefetch() {
    std::vector<std::string> paths;
    std::vector<size_t> expected;
    const double stream_after = stream_after_seconds();
    for (const Todo& t : todo_) {
      paths.push_back(t.input->path);
      size_t bytes = expected_bytes(t);
      if (stream_after >= 0 && !t.input->url)
        bytes = std::min(bytes, static_cast<size_t>(stream_after * audio::kSampleRate * sizeof(float) * 1.02));
      expected.push_back(bytes);
    }
    // The loader and the estimator own what they use: after a Ctrl-C the
    // producer is abandoned and may outlive this run (prefetch.h).
    urls_ = std::make_shared<UrlFetcher>(UrlOptions{});
    prefetch_.emplace(
        paths, cfg_.prefetch,
        [urls = urls_, filters = engine_.mel_filters(), stream_after](const std::string& p) {
          return is_url(p) ? LoadedAudio{urls->load(p), nullptr} : load_file(p, filters, stream_after);
        },
        [expected = std::move(expected)](size_t i) { return expected[i]; });
    stats_.start();
  }

  // Files longer than this are streamed (load.h); -1: none. The batched
  // mode and the VAD filter cut chunks out of the whole audio, so they keep it.
  double stream_after_seconds() const {
    const bool vad_filter = options_.vad_filter && options_.clip_timestamps == "0";
    return cfg_.batch_size > 0 || vad_filter ? -1 : cfg_.stream_after_seconds;
  }

  // A fetched URL's outputs, named now that its name is known; the cause
  // when one is another input's output.
  std::string name_url_outputs(Todo& t) {
    std::vector<std::string> outputs;
    for (const std::string& fmt : cfg_.formats)
      outputs.push_back(url_output_path(urls_->name_of(t.input->key), cfg_.output_dir, fmt));
    for (const std::string& o : outputs) {
      auto [it, fresh] = output_owner_.emplace(o, t.input);
      if (!fresh && it->second != t.input) return "its output " + o + " is also the output of " + it->second->path;
    }
    t.outputs = outputs;
    return "";
  }

  // The next input to run: claimed in the ledger, its audio decoded. False
  // when there is none (or on a stop request); inputs whose audio does not
  // decode are failed here and skipped. `out`'s previous input is released
  // first: its bytes count against the prefetch budget until then (`lease`),
  // so a file bigger than the budget is decoded only once nothing else is
  // held, this one included.
  bool next_input(Next& out) {
    out = Next{};
    auto stop = [this] { return stop_requested(); };
    for (;;) {
      if (stop_requested()) {
        sum_.interrupted = true;
        return false;
      }
      std::optional<Prefetcher::Item> item = prefetch_->next(stop);
      if (!item) {
        sum_.interrupted = stop_requested();
        return false;
      }
      Todo& t = todo_[item->index];
      const Input& in = *t.input;
      if (!ledger_->claim(in.key, t.claim)) {  // another wisp took or finished it meanwhile
        stats_.drop();
        ++sum_.busy;
        continue;
      }
      ++number_;
      FileEnd end{number_, &in, false, "", 0, 0};
      if (item->error.empty() && in.url) item->error = name_url_outputs(t);
      if (!item->error.empty() && change_since_planned(t) == Change::deleted)
        item->error = "deleted after the batch found it (" + item->error + ")";
      if (!item->error.empty()) {
        t.duration = 0;  // no audio: out of the batch's total
        ledger_->mark_failed(in.key, item->error, 0, 0);
        end.error = item->error;
        stats_.finish(false, 0);
        sum_.failures.push_back({in.path, item->error});
        reporter_.file_end(end, stats_.snapshot());
        continue;
      }
      t.duration = end.duration = static_cast<double>(item->audio.n_samples()) / audio::kSampleRate;
      out = Next{&t, end, std::move(item->audio), std::move(item->lease)};
      return true;
    }
  }

  // A group holds enough audio to keep batch_size transcriptions busy for a
  // while (two chunks each), and at most 64 files. `more` turns false when
  // the inputs are exhausted.
  std::vector<Next> next_group(bool* more) {
    const double group_audio = 2.0 * cfg_.batch_size * cfg_.chunk_seconds;
    std::vector<Next> group;
    double audio = 0;
    while (group.size() < 64 && audio < group_audio) {
      Next n;
      if (!next_input(n)) {
        *more = false;
        break;
      }
      audio += n.end.duration;
      // A group waits for its next file while holding the earlier ones:
      // counting them could leave the producer waiting for room that only
      // the group can free. The group's own audio is bounded instead
      // (group_audio plus one file).
      n.lease.reset();
      group.push_back(std::move(n));
    }
    return group;
  }

  void run_group(std::vector<Next>& group) {
    transcribe::BatchedOptions bo;
    bo.batch_size = cfg_.batch_size;
    bo.chunk_seconds = cfg_.chunk_seconds;
    std::vector<transcribe::BatchInput> inputs;
    double audio = 0;
    for (Next& n : group) {
      inputs.push_back({n.audio.samples});  // whole: stream_after() is off in this mode
      audio += n.end.duration;
      reporter_.file_start({n.end.number, n.end.input, n.end.duration}, stats_.snapshot());
    }
    const auto t0 = Clock::now();
    transcribe::Callbacks cb;
    cb.should_stop = [this] { return stop_requested(); };
    cb.on_window = [this](const transcribe::WindowReport& w) { count_window(w); };
    std::vector<transcribe::BatchResult> results;
    try {
      results = transcribe::transcribe_batched(engine_, inputs, options_, bo, nullptr, cb);
    } catch (const std::exception& e) {  // invalid options: every input of the group fails
      results.assign(group.size(), transcribe::BatchResult{});
      for (auto& r : results) r.error = e.what();
    }
    const double wall = seconds_since(t0);
    reporter_.run_time(wall);
    for (size_t i = 0; i < group.size(); ++i) {
      Next& n = group[i];
      transcribe::BatchResult& r = results[i];
      if (!sum_.stopped.empty()) {  // writes refused: the rest of the group waits for the next run
        ledger_->mark_pending(n.end.input->key);
        continue;
      }
      // The group's wall time, shared out by audio length.
      const double share = audio > 0 ? wall * n.end.duration / audio : 0.0;
      if (r.cancelled) {
        ledger_->mark_pending(n.end.input->key);
        sum_.interrupted = true;
        if (sum_.interrupted_input.empty()) sum_.interrupted_input = n.end.input->path;
        continue;
      }
      if (r.detected_language) reporter_.language(r.detected_language->first, r.detected_language->second);
      if (r.transcript) {
        for (const Segment& seg : r.transcript->segments) reporter_.segment(seg);
        try {
          finish_done(*n.todo, n.end, *r.transcript, share);
        } catch (const output::WritesRefused& e) {
          stop_for_refused_writes(*n.todo, e.what());
          continue;
        } catch (const std::exception& e) {
          finish_failed(*n.todo, n.end, e.what(), share);
        }
      } else {
        finish_failed(*n.todo, n.end, r.error, share);
      }
      reporter_.file_end(n.end, stats_.snapshot());
    }
  }

  // Called from the batched mode's worker threads too.
  void count_window(const transcribe::WindowReport& w) {
    decode_calls_.fetch_add(1);
    decoded_tokens_.fetch_add(static_cast<int64_t>(w.result->tokens.size()));
  }

  // Outputs of an input: each written whole (temp + rename) before the
  // ledger says done, so "done" always means "all outputs exist".
  void finish_done(Todo& t, FileEnd& end, const Transcript& tr, double wall) {
    if (ended_by_change(t, end, wall)) return;
    for (size_t i = 0; i < cfg_.formats.size(); ++i) {
      fs::path parent = fs::path(t.outputs[i]).parent_path();
      std::error_code ec;
      // A folder that cannot be made is the cause to report (a read-only
      // file system stops the batch), not the ENOENT of the write after it.
      if (!parent.empty() && !fs::create_directories(parent, ec) && ec)
        output::throw_write_error(parent.string(), ec.value());
      output::write_file_atomic(t.outputs[i], output::render(tr, cfg_.formats[i], cfg_.writer));
      reporter_.output_written(cfg_.formats[i], t.outputs[i]);
    }
    end.wall = wall;
    ledger_->mark_done(t.input->key, end.duration, end.wall, t.outputs);
    end.ok = true;
    stats_.finish(true, end.duration);
    ++sum_.done;
    sum_.audio_seconds += end.duration;
  }

  // An input whose file moved since the batch planned it. Its size or mtime
  // changed: a file still being downloaded, transcribed from what was there.
  // Another file renamed over it (a new inode; a download tool's finished
  // file, say): what was transcribed is no longer what the path holds. Both
  // get no outputs and stay pending, so the next run takes the file as it is
  // then. Deleted: nothing left to transcribe.
  Change change_since_planned(const Todo& t) const {
    if (t.input->url) return Change::none;
    const FileStat now = stat_input(*t.input);
    if (now.missing) return t.planned.missing ? Change::none : Change::deleted;  // deleted, or never there
    if (now.dev != t.planned.dev || now.ino != t.planned.ino) return Change::replaced;
    if (now.size != t.claim.input_size || now.mtime_ns != t.claim.input_mtime_ns) return Change::modified;
    return Change::none;
  }

  // Ends an input whose file changed while it was transcribed (no outputs);
  // false when it did not change.
  bool ended_by_change(Todo& t, FileEnd& end, double wall) {
    switch (change_since_planned(t)) {
      case Change::none: return false;
      case Change::deleted:
        // Nothing left for a next run to do: failed, with the cause.
        finish_failed(t, end, "deleted while it was transcribed; no outputs written", wall);
        return true;
      case Change::replaced:
        leave_for_next_run(
            t, end, wall,
            "replaced while it was transcribed (another file renamed over it); left pending for the next run");
        return true;
      case Change::modified:
        leave_for_next_run(t, end, wall,
                           "changed while it was transcribed (still being written?); left pending for the next run");
        return true;
    }
    return false;
  }

  void leave_for_next_run(Todo& t, FileEnd& end, double wall, const std::string& why) {
    ledger_->mark_pending(t.input->key);
    end.wall = wall;
    end.error = why;
    stats_.finish(false, 0);
    sum_.failures.push_back({t.input->path, end.error});
  }

  // Outputs cannot be written (no space left, or a read-only file system):
  // not this input's fault, and every input after it would fail the same
  // way. It goes back to pending (outputs written before it stay whole: each
  // is a rename) and the batch stops.
  void stop_for_refused_writes(Todo& t, const std::string& why) {
    ledger_->mark_pending(t.input->key);
    sum_.stopped = why + "; " + t.input->path + " is back to pending";
  }

  void finish_failed(Todo& t, FileEnd& end, const std::string& error, double wall) {
    end.wall = wall;
    end.error = error;
    ledger_->mark_failed(t.input->key, end.error, end.duration, end.wall);
    t.duration = 0;
    stats_.finish(false, 0);
    sum_.failures.push_back({t.input->path, end.error});
  }

  const transcribe::Engine& engine_;
  const transcribe::Options& options_;
  const BatchConfig& cfg_;
  Reporter& reporter_;
  const std::function<bool()>& should_stop_;
  const Clock::time_point t_start_ = Clock::now();

  // The plan.
  InputSet set_;
  Plan plan_;
  std::optional<Ledger> ledger_;
  std::string hash_;
  std::vector<Todo> todo_;
  std::vector<std::pair<const Input*, std::string>> clashes_;
  std::map<std::string, const Input*> output_owner_;
  std::vector<Ledger::Adopted> adopted_;

  // The run.
  std::shared_ptr<UrlFetcher> urls_;
  std::optional<Prefetcher> prefetch_;
  Stats stats_;
  size_t number_ = 0;
  std::atomic<int64_t> decode_calls_{0}, decoded_tokens_{0};
  Summary sum_;
};

}  // namespace

Summary run_batch(const transcribe::Engine& engine, const transcribe::Options& options, const BatchConfig& cfg,
                  Reporter& reporter, const std::function<bool()>& should_stop) {
  BatchRun run(engine, options, cfg, reporter, should_stop);
  if (run.plan()) {
    if (cfg.batch_size > 0)
      run.run_batched();
    else
      run.run_sequential();
  }
  return run.summary();
}

}  // namespace wisp::jobs
