// jobs_test: the batch library's parts on their own: ledger states and
// resume rules, input discovery (content probing, hidden files, our outputs,
// globs, input lists), the options hash, and the prefetch queue's bounds.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "audio/probe.h"
#include "common/error.h"
#include "jobs/inputs.h"
#include "jobs/ledger.h"
#include "jobs/options_hash.h"
#include "jobs/prefetch.h"
#include "jobs/runner.h"
#include "jobs/shard.h"

namespace {

namespace fs = std::filesystem;
using namespace wisp::jobs;

const std::string kData = std::string(WISP_TESTDATA_DIR) + "/testdata";

class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() / ("wisp_jobs_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void copy(const std::string& from, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

std::vector<std::string> names(const InputSet& s, const fs::path& base) {
  std::vector<std::string> out;
  for (const Input& in : s.files) out.push_back(fs::relative(in.key, fs::canonical(base)).string());
  return out;
}

// ---- ledger ---------------------------------------------------------------

TEST(Ledger, StatesAttemptsAndPersistence) {
  TempDir d;
  std::string path = d / "sub/.wisp/ledger.sqlite";
  {
    Ledger l(path);  // creates the folders
    l.add_pending({"/a.wav", "/b.wav"});
    l.add_pending({"/a.wav"});  // known inputs are not reset
    ASSERT_TRUE(l.get("/a.wav"));
    EXPECT_EQ(l.get("/a.wav")->state, State::pending);
    EXPECT_FALSE(l.get("/c.wav"));

    Claim c{"m.bin", "h1", {"/a.wav.srt"}, 10, 20, true};
    ASSERT_TRUE(l.claim("/a.wav", c));
    Job a = *l.get("/a.wav");
    EXPECT_EQ(a.state, State::running);
    EXPECT_EQ(a.attempts, 1);
    EXPECT_EQ(a.pid, ::getpid());
    EXPECT_EQ(a.options_hash, "h1");
    EXPECT_EQ(a.input_size, 10);
    l.mark_done("/a.wav", 30.0, 3.0, {"/a.wav.srt"});
    a = *l.get("/a.wav");
    EXPECT_EQ(a.state, State::done);
    EXPECT_EQ(a.completions, 1);
    EXPECT_DOUBLE_EQ(a.realtime_factor, 10.0);
    EXPECT_EQ(a.outputs, std::vector<std::string>{"/a.wav.srt"});
    EXPECT_EQ(a.pid, 0);

    ASSERT_TRUE(l.claim("/b.wav", c));
    l.mark_failed("/b.wav", "not a media file", 0, 0.5);
    ASSERT_TRUE(l.claim("/b.wav", {"m.bin", "h1", {}, 10, 20, false}));
    l.mark_failed("/b.wav", "not a media file", 0, 0.5);
    Job b = *l.get("/b.wav");
    EXPECT_EQ(b.state, State::failed);
    EXPECT_EQ(b.attempts, 2);
    EXPECT_EQ(b.failures, 2);
    EXPECT_EQ(b.error, "not a media file");
    // Done by another wisp since this one planned: not claimed again.
    EXPECT_FALSE(l.claim("/a.wav", {"m.bin", "h1", {}, 10, 20, false, true}));
    EXPECT_EQ(l.get("/a.wav")->attempts, 1);
    EXPECT_TRUE(l.claim("/a.wav", {"m.bin", "h9", {}, 10, 20, false, true}));  // other options: redo
    l.mark_done("/a.wav", 30.0, 3.0, {"/a.wav.srt"});
    // New options reset the failure count; an interrupt gives the attempt back.
    ASSERT_TRUE(l.claim("/b.wav", {"m.bin", "h2", {}, 10, 20, true}));
    l.mark_pending("/b.wav");
    b = *l.get("/b.wav");
    EXPECT_EQ(b.state, State::pending);
    EXPECT_EQ(b.failures, 0);
    EXPECT_EQ(b.attempts, 2);
  }
  // Reopened: the same rows, counted per state; WAL mode is persistent.
  Ledger l(path);
  auto counts = l.counts();
  EXPECT_EQ(counts[static_cast<int>(State::done)].files, 1);
  EXPECT_EQ(counts[static_cast<int>(State::pending)].files, 1);
  EXPECT_DOUBLE_EQ(counts[static_cast<int>(State::done)].audio_seconds, 30.0);
  EXPECT_EQ(l.get("/a.wav")->completions, 2);
  EXPECT_EQ(l.all().size(), 2u);
  std::ifstream f(path, std::ios::binary);
  char header[20];
  f.read(header, sizeof(header));
  EXPECT_EQ(header[18], 2) << "file format write version 2 = WAL";
  EXPECT_EQ(header[19], 2) << "file format read version 2 = WAL";

  Ledger ro = Ledger::open_existing(path);
  EXPECT_EQ(ro.all().size(), 2u);
  EXPECT_THROW(Ledger::open_existing(d / "missing.sqlite"), wisp::Error);
}

TEST(Ledger, AdoptAndHeldElsewhere) {
  TempDir d;
  Ledger l(d / "l.sqlite");
  l.adopt_done("m.bin", "h", {{"/x.wav", {"/x.wav.srt"}, 5, 6}, {"/y.wav", {"/y.wav.srt"}, 7, 8}});
  EXPECT_EQ(l.get("/y.wav")->input_size, 7);
  Job x = *l.get("/x.wav");
  EXPECT_EQ(x.state, State::done);
  EXPECT_EQ(x.options_hash, "h");
  EXPECT_EQ(x.completions, 0);

  Job j;
  j.state = State::running;
  j.host = host_name();
  j.pid = ::getppid();  // alive, not us
  EXPECT_TRUE(Ledger::held_elsewhere(j));
  j.pid = ::getpid();  // our own pid in an old row: a reused pid
  EXPECT_FALSE(Ledger::held_elsewhere(j));
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  j.pid = child;  // gone: a crashed run
  EXPECT_FALSE(Ledger::held_elsewhere(j));
  j.pid = ::getppid();
  j.host = host_name() + "-elsewhere";
  EXPECT_FALSE(Ledger::held_elsewhere(j));
  j.host = host_name();
  j.state = State::done;
  EXPECT_FALSE(Ledger::held_elsewhere(j));
}

TEST(Ledger, RefusesWhatIsNotALedger) {
  TempDir d;
  write(d / "junk.sqlite", "this is not a database, just some text that is long enough to be a header");
  EXPECT_THROW(Ledger(d / "junk.sqlite"), wisp::Error);
  write(d / "file", "x");
  EXPECT_THROW(Ledger(d / "file/ledger.sqlite"), wisp::Error);  // its folder cannot exist
}

// ---- inputs ---------------------------------------------------------------

TEST(Inputs, ProbeMediaByContent) {
  TempDir d;
  EXPECT_TRUE(wisp::audio::probe_media(kData + "/formats/jfk.flac").media);
  EXPECT_NEAR(wisp::audio::probe_media(kData + "/formats/jfk.flac").duration, 11.0, 0.05);
  EXPECT_TRUE(wisp::audio::probe_media(kData + "/formats/jfk_video.mp4").media);
  EXPECT_TRUE(wisp::audio::probe_media(kData + "/bad/corrupt_header.wav").media);  // broken header: decode says why
  EXPECT_TRUE(
      wisp::audio::probe_media(kData + "/bad/video_no_audio.mp4").media);  // a video: decode says "no audio stream"
  EXPECT_FALSE(wisp::audio::probe_media(kData + "/bad/empty.mp3").media);
  EXPECT_FALSE(wisp::audio::probe_media(kData + "/bad/not_audio.mp3").media);
  EXPECT_FALSE(wisp::audio::probe_media(d / "missing.wav").media);
  // The name means nothing: audio named .txt is media, a PNG or an SRT named .mp3 is not.
  copy(kData + "/formats/jfk.mp3", d / "notes.txt");
  EXPECT_TRUE(wisp::audio::probe_media(d / "notes.txt").media);
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0\x90\x91\x68\x36", 33);
  write(d / "cover.mp3", png + std::string(64, '\0'));
  EXPECT_FALSE(wisp::audio::probe_media(d / "cover.mp3").media);
  write(d / "subs.mp3", "1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,000\nworld\n\n");
  EXPECT_FALSE(wisp::audio::probe_media(d / "subs.mp3").media);
}

TEST(Inputs, FolderWalkSkipsHiddenOutputsTempsAndNonMedia) {
  TempDir d;
  std::string r = d / "raw";
  copy(kData + "/formats/jfk.flac", r + "/b.flac");
  copy(kData + "/formats/jfk.mp3", r + "/a/z.mp3");
  copy(kData + "/formats/jfk.mp3", r + "/noextension");
  copy(kData + "/formats/jfk.flac", r + "/.hidden.flac");
  copy(kData + "/formats/jfk.flac", r + "/.cache/c.flac");
  copy(kData + "/formats/jfk.flac", r + "/b.flac.tmp.123.abc");  // a crashed atomic write
  write(r + "/b.flac.srt", "1\n00:00:00,000 --> 00:00:01,000\nx\n\n");
  write(r + "/b.flac.json", "{}");
  write(r + "/readme.txt", "hello");
  write(r + "/saved_404.MP3", "<html>Not Found</html>");  // named like media: an input that will fail
  copy(kData + "/formats/jfk.flac", r + "/out/skipme.flac");
  InputSet s = discover_inputs({r}, {r + "/out"});
  EXPECT_EQ(names(s, r), (std::vector<std::string>{"a/z.mp3", "b.flac", "noextension", "saved_404.MP3"}));
  EXPECT_EQ(s.ignored, std::vector<std::string>{r + "/readme.txt"});
  ASSERT_EQ(s.files.size(), 4u);
  EXPECT_EQ(s.files[0].path, r + "/a/z.mp3");  // shown under the folder as given
  EXPECT_EQ(s.files[0].rel_dir, "a");
  EXPECT_EQ(s.files[1].rel_dir, "");
  EXPECT_NEAR(s.files[1].duration, 11.0, 0.05);
  EXPECT_EQ(s.roots, std::vector<std::string>{fs::canonical(r).string()});
  EXPECT_TRUE(s.unmatched.empty());
}

TEST(Inputs, NamedFilesGlobsDuplicatesAndOrder) {
  TempDir d;
  std::string r = d / "raw";
  copy(kData + "/formats/jfk.flac", r + "/b.flac");
  copy(kData + "/formats/jfk.mp3", r + "/a/z.mp3");
  copy(kData + "/formats/jfk.mp3", r + "/a/deep/y.mp3");
  copy(kData + "/bad/not_audio.mp3", r + "/n.mp3");
  fs::create_symlink(r + "/b.flac", r + "/link.flac");
  // Named explicitly: an input even when not media; the same file three
  // ways (and through a link) is one input; order is by absolute path.
  InputSet s = discover_inputs({r + "/n.mp3", r + "/b.flac", r + "/./b.flac", r + "/link.flac", r + "/missing.wav"});
  EXPECT_EQ(names(s, r), (std::vector<std::string>{"b.flac", "missing.wav", "n.mp3"}));
  // Globs: per component, ** any depth; a glob matching nothing is reported.
  s = discover_inputs({r + "/**/*.mp3", r + "/*.ogg"});
  EXPECT_EQ(names(s, r), (std::vector<std::string>{"a/deep/y.mp3", "a/z.mp3", "n.mp3"}));
  EXPECT_EQ(s.unmatched, std::vector<std::string>{r + "/*.ogg"});
  s = discover_inputs({r + "/a/*"});  // matches a folder: walked
  EXPECT_EQ(names(s, r), (std::vector<std::string>{"a/deep/y.mp3", "a/z.mp3"}));
  EXPECT_EQ(s.roots, std::vector<std::string>{fs::absolute(r + "/a").string()});
}

TEST(Inputs, InputListAndCommonFolder) {
  std::istringstream in("a.wav\r\n\n  \n/abs/b c.mp3\n-starts-with-dash\n");
  EXPECT_EQ(read_input_list(in), (std::vector<std::string>{"a.wav", "/abs/b c.mp3", "-starts-with-dash"}));
  EXPECT_THROW(read_input_list_file("/nonexistent/list.txt"), wisp::Error);
  EXPECT_EQ(common_folder({"/data/raw/a", "/data/raw/b/c", "/data/raw/a/x"}), "/data/raw");
  EXPECT_EQ(common_folder({"/data/raw"}), "/data/raw");
  EXPECT_EQ(common_folder({"/x", "/y"}), "/");
  EXPECT_EQ(default_ledger_path("", {"/data/raw/a", "/data/raw/b"}), "/data/raw/.wisp/ledger.sqlite");
  EXPECT_EQ(default_ledger_path("out", {"/data/raw"}), "out/.wisp/ledger.sqlite");
  Input in1{"raw/a/x.mp3", "/abs/raw/a/x.mp3", "a", -1};
  EXPECT_EQ(output_path(in1, "", "srt"), "raw/a/x.mp3.srt");
  EXPECT_EQ(output_path(in1, "out", "srt"), "out/a/x.mp3.srt");  // the tree is mirrored
}

// ---- options hash ---------------------------------------------------------

TEST(OptionsHash, ChangesWithWhatChangesTheResult) {
  TempDir d;
  write(d / "m.bin", "model");
  wisp::transcribe::Options o;
  std::string h = options_hash(d / "m.bin", o);
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(options_hash(d / "m.bin", o), h);
  wisp::transcribe::Options t = o;
  t.n_threads = 7;  // speed only
  EXPECT_EQ(options_hash(d / "m.bin", t), h);
  t = o;
  t.language = "en";
  EXPECT_NE(options_hash(d / "m.bin", t), h);
  t = o;
  t.decode.sample_len = 8;
  EXPECT_NE(options_hash(d / "m.bin", t), h);
  t = o;
  t.temperatures = {0.0, 0.2};
  EXPECT_NE(options_hash(d / "m.bin", t), h);
  t = o;
  t.decode.beam_size = 5;
  EXPECT_NE(options_hash(d / "m.bin", t), h);
  t = o;
  t.word_timestamps = true;
  EXPECT_NE(options_hash(d / "m.bin", t), h);
  wisp::output::WriterOptions w;
  EXPECT_EQ(options_hash(d / "m.bin", o, w), h);
  w.max_line_width = 42;  // the subtitle layout changes the files
  EXPECT_NE(options_hash(d / "m.bin", o, w), h);
  EXPECT_EQ(options_hash(d / "m.bin", o, {}, "float32"), h);        // the default engine
  EXPECT_NE(options_hash(d / "m.bin", o, {}, "int8"), h);           // another compute type
  EXPECT_NE(options_hash(d / "m.bin", o, {}, "float32", true), h);  // throughput mode
  t = o;
  t.vad.threshold = 0.3;  // VAD settings count only with the filter on
  EXPECT_EQ(options_hash(d / "m.bin", t), h);
  t.vad_filter = true;
  const std::string vad_hash = options_hash(d / "m.bin", t);
  EXPECT_NE(vad_hash, h);
  t.vad.threshold = 0.5;
  EXPECT_NE(options_hash(d / "m.bin", t), vad_hash);
  t = o;
  t.decode.loop_guard.enabled = true;
  EXPECT_NE(options_hash(d / "m.bin", t), h);
  EXPECT_NE(options_hash(d / "other.bin", o), h);
  write(d / "m.bin", "model, retrained");  // same path, new content
  EXPECT_NE(options_hash(d / "m.bin", o), h);
  EXPECT_NE(options_fingerprint(d / "m.bin", o).find("no_speech_threshold=0.59999999999999998"), std::string::npos);
}

// ---- prefetch -------------------------------------------------------------

// --shard: K/N, Slurm arrays (with a minimum and a step), Kubernetes
// indexed jobs, and the errors; every input in exactly one shard.
TEST(Shard, ParsesSpecsAndEnvironment) {
  std::map<std::string, std::string> vars;
  auto env = [&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  Shard s = parse_shard("2/8", env);
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.count, 8);
  EXPECT_EQ(to_string(s), "2/8");
  EXPECT_EQ(parse_shard("1/1", env).count, 1);
  for (const char* bad : {"0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1/", "/3", "", "auto"})
    EXPECT_THROW(parse_shard(bad, env), wisp::Error) << bad;
  // Slurm: --array=1-4 gives ids 1..4, count 4, min 1.
  vars = {{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}};
  s = parse_shard("auto", env);
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  // --array=0-30:10 gives ids 0, 10, 20, 30.
  vars = {{"SLURM_ARRAY_TASK_ID", "20"},
          {"SLURM_ARRAY_TASK_COUNT", "4"},
          {"SLURM_ARRAY_TASK_MIN", "0"},
          {"SLURM_ARRAY_TASK_STEP", "10"}};
  EXPECT_EQ(parse_shard("auto", env).index, 2);
  vars["SLURM_ARRAY_TASK_ID"] = "15";
  EXPECT_THROW(parse_shard("auto", env), wisp::Error);
  vars["SLURM_ARRAY_TASK_ID"] = "x";
  EXPECT_THROW(parse_shard("auto", env), wisp::Error);
  // Kubernetes: the index only; N on the command line.
  vars = {{"JOB_COMPLETION_INDEX", "0"}};
  s = parse_shard("auto/5", env);
  EXPECT_EQ(s.index, 0);
  EXPECT_EQ(s.count, 5);
  EXPECT_THROW(parse_shard("auto", env), wisp::Error);  // no count
  vars = {{"JOB_COMPLETION_INDEX", "5"}};
  EXPECT_THROW(parse_shard("auto/5", env), wisp::Error);  // index not below N
  vars.clear();
  EXPECT_THROW(parse_shard("auto/5", env), wisp::Error);
  // Each rank in exactly one of N shards.
  for (int n : {1, 2, 3, 7}) {
    for (size_t rank = 0; rank < 50; ++rank) {
      int owners = 0;
      for (int k = 0; k < n; ++k) owners += in_shard(rank, Shard{k, n});
      EXPECT_EQ(owners, 1) << rank << " of " << n;
    }
  }
}

TEST(Prefetch, InOrderWithErrorsAndBoundedMemory) {
  // Sizes in floats; the budget is 10000 bytes (2500 floats), two ahead.
  std::vector<size_t> sizes = {1000, 1000, 1000, 20000, 1000, 1000};
  std::vector<std::string> paths;
  for (size_t i = 0; i < sizes.size(); ++i) paths.push_back(std::to_string(i));
  paths.push_back("bad");
  std::atomic<int> loaded{0};
  Prefetcher p(
      paths, {2, 10000},
      [&](const std::string& path) {
        ++loaded;
        if (path == "bad") throw wisp::Error("not a media file");
        return LoadedAudio{std::vector<float>(sizes[std::stoul(path)], 1.0f), nullptr};
      },
      [&](size_t i) { return i < sizes.size() ? sizes[i] * sizeof(float) : size_t{0}; });
  for (size_t i = 0; i < paths.size(); ++i) {
    std::optional<Prefetcher::Item> item = p.next();
    ASSERT_TRUE(item);
    EXPECT_EQ(item->index, i);
    if (i < sizes.size()) {
      EXPECT_EQ(item->audio.samples.size(), sizes[i]);
      EXPECT_TRUE(item->error.empty());
      // While the consumer works on file i, the next one is decoded (the
      // large one only once nothing else is held)...
      size_t want = std::min(i + 2, paths.size());
      if (i == 2 || i == 3) want = i + 1;
      auto t0 = std::chrono::steady_clock::now();
      while (loaded.load() < static_cast<int>(want) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      EXPECT_GE(loaded.load(), static_cast<int>(want)) << i;
      // ...and at most two files wait.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      EXPECT_LE(loaded.load(), static_cast<int>(i) + 3);
    } else {
      EXPECT_EQ(item->error, "not a media file");
    }
  }
  EXPECT_FALSE(p.next());
  // The 80000-byte file was decoded only once nothing else was held.
  EXPECT_EQ(p.peak_bytes(), 80000u);
}

TEST(Prefetch, CancelWhileWaitingAndAbandon) {
  // The loader outlives the test (abandoned): it owns what it uses.
  auto release = std::make_shared<std::atomic<bool>>(false);
  Prefetcher p({"slow"}, {},
               [release](const std::string&) {
                 while (!*release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
                 return LoadedAudio{std::vector<float>(10), nullptr};
               },
               {});
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.next([&] { return std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(100); }));
  p.abandon();  // does not wait for the decode in progress
  *release = true;
}

}  // namespace
