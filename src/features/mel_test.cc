// Tests for the log-mel spectrogram against openai/whisper's own tensors
// (tests/data/golden: the first window transcribe() feeds the encoder,
// pad_or_trim(log_mel_spectrogram(audio, n_mels, padding=480000)[:, :1100])) and for the fast kernels against their
// plain twins.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "features/fft.h"
#include "features/mel.h"
#include "features/mel_stream.h"

namespace wisp::features {
namespace {

const std::string kTestData = WISP_TESTDATA_DIR;
const std::string kAssets = WISP_ASSETS_DIR;

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> read_f32(const std::string& path) {
  std::vector<char> bytes = read_bytes(path);
  if (bytes.size() % 4 != 0) throw std::runtime_error("not raw float32: " + path);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

model::MelFilters load_filters(int n_mels) {
  model::MelFilters f;
  f.n_mels = n_mels;
  f.n_freq = 201;
  f.data = read_f32(kAssets + "/mel_" + std::to_string(n_mels) + ".f32");
  if (f.data.size() != static_cast<size_t>(n_mels) * 201) {
    throw std::runtime_error("unexpected mel filter size");
  }
  return f;
}

uint32_t le32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24);
}
uint16_t le16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}

// Minimal RIFF/WAVE reader for 16 kHz mono PCM s16 (the test's only input):
// walks the chunks, checks "fmt ", returns "data" as int16 / 32768 like
// openai's load_audio.
std::vector<float> read_wav_s16_mono_16k(const std::string& path) {
  std::vector<char> b = read_bytes(path);
  if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) != 0 || std::memcmp(b.data() + 8, "WAVE", 4) != 0) {
    throw std::runtime_error("not a RIFF/WAVE file: " + path);
  }
  bool fmt_ok = false;
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    const char* id = b.data() + pos;
    const size_t size = le32(b.data() + pos + 4);
    const size_t body = pos + 8;
    if (body + size > b.size()) throw std::runtime_error("truncated WAV chunk");
    if (std::memcmp(id, "fmt ", 4) == 0) {
      if (size < 16) throw std::runtime_error("short fmt chunk");
      const char* f = b.data() + body;
      fmt_ok = le16(f) == 1 && le16(f + 2) == 1 && le32(f + 4) == 16000 && le16(f + 14) == 16;
      if (!fmt_ok) throw std::runtime_error("WAV is not 16 kHz mono s16 PCM");
    } else if (std::memcmp(id, "data", 4) == 0) {
      if (!fmt_ok) throw std::runtime_error("WAV data before fmt");
      std::vector<float> samples(size / 2);
      for (size_t i = 0; i < samples.size(); ++i) {
        samples[i] = static_cast<int16_t>(le16(b.data() + body + 2 * i)) / 32768.0f;
      }
      return samples;
    }
    pos = body + size + (size & 1);  // chunks are word-aligned
  }
  throw std::runtime_error("WAV without data chunk");
}

std::vector<float> noise(size_t n, uint32_t seed, float amplitude = 0.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-amplitude, amplitude);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return m;
}

// ---------------------------------------------------------------- FFT ----

std::vector<double> naive_complex_dft(const std::vector<double>& x) {
  const size_t n = x.size() / 2;
  std::vector<double> y(2 * n);
  for (size_t k = 0; k < n; ++k) {
    long double re = 0, im = 0;
    for (size_t j = 0; j < n; ++j) {
      long double a = 2.0L * 3.141592653589793238462643383279502884L * ((j * k) % n) / n;
      re += x[2 * j] * std::cos(a) + x[2 * j + 1] * std::sin(a);
      im += x[2 * j + 1] * std::cos(a) - x[2 * j] * std::sin(a);
    }
    y[2 * k] = static_cast<double>(re);
    y[2 * k + 1] = static_cast<double>(im);
  }
  return y;
}

TEST(Fft, ComplexMatchesNaiveDftForManyLengths) {
  // Every butterfly (4, 2, 3, 5, generic prime) and mixes of them.
  for (int n : {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 16, 20, 25, 49, 60, 77, 100, 200, 210, 400}) {
    std::mt19937 rng(n);
    std::uniform_real_distribution<double> dist(-1, 1);
    std::vector<double> x(2 * n);
    for (double& v : x) v = dist(rng);
    std::vector<double> want = naive_complex_dft(x);
    std::vector<double> got = x, work(2 * n);
    ComplexFft(n).forward(got, work);
    double err = 0;
    for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(got[i] - want[i]));
    EXPECT_LT(err, 1e-12 * n + 1e-13) << "n = " << n;
  }
}

TEST(Fft, RealMatchesReferenceDft) {
  for (int n : {2, 4, 6, 10, 14, 50, 400}) {
    std::mt19937 rng(100 + n);
    std::uniform_real_distribution<double> dist(-1, 1);
    std::vector<double> x(n);
    for (double& v : x) v = dist(rng);
    RealFft fft(n);
    ASSERT_EQ(fft.n_bins(), n / 2 + 1);
    std::vector<double> want(2 * fft.n_bins()), got(2 * fft.n_bins()), work(fft.work_size());
    dft_reference(x, want);
    fft.forward(x, got, work);
    double err = 0;
    for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(got[i] - want[i]));
    EXPECT_LT(err, 1e-12 * n) << "n = " << n;
    std::vector<double> power(fft.n_bins());
    fft.power(x, power, work);
    for (int k = 0; k < fft.n_bins(); ++k) {
      EXPECT_NEAR(power[k], want[2 * k] * want[2 * k] + want[2 * k + 1] * want[2 * k + 1], 1e-11 * n);
    }
  }
}

TEST(Fft, KnownSpectrum) {
  // A cosine at bin 7 of a 400-point transform: only bin 7 is nonzero (200).
  std::vector<double> x(400);
  for (int j = 0; j < 400; ++j) x[j] = std::cos(2 * 3.14159265358979323846 * 7 * j / 400);
  RealFft fft(400);
  std::vector<double> power(201), work(fft.work_size());
  fft.power(x, power, work);
  for (int k = 0; k < 201; ++k) EXPECT_NEAR(power[k], k == 7 ? 200.0 * 200.0 : 0.0, 1e-9) << k;
}

TEST(Fft, BadArgumentsThrow) {
  EXPECT_THROW(ComplexFft(0), Error);
  EXPECT_THROW(RealFft(7), Error);
  RealFft fft(400);
  std::vector<double> x(400), small(10), work(fft.work_size());
  EXPECT_THROW(fft.forward(x, small, work), Error);
  EXPECT_THROW(fft.power(x, small, work), Error);
}

// --------------------------------------------------------- golden mel ----

void check_golden(const std::string& case_name, int n_mels) {
  const std::vector<float> audio = read_wav_s16_mono_16k(kTestData + "/testdata/formats/jfk_s16_16k_mono.wav");
  ASSERT_EQ(audio.size(), 176000u);  // 11 s
  const model::MelFilters filters = load_filters(n_mels);
  const std::vector<float> golden = read_f32(kTestData + "/golden/cases/" + case_name + "/mel.f32");
  ASSERT_EQ(golden.size(), static_cast<size_t>(n_mels) * kChunkFrames);

  const Mel mel = log_mel_spectrogram(audio, kChunkSamples, filters, 2);
  ASSERT_EQ(mel.n_mels, n_mels);
  ASSERT_EQ(mel.n_frames, (176000 + kChunkSamples) / kHopLength);
  // openai transcribe(): content_frames = mel.shape[-1] - N_FRAMES (1100 here,
  // meta.json), and the first window is pad_or_trim(mel[:, 0 : min(3000,
  // content_frames)]): frames past the content are zeros, not padded silence.
  const int content_frames = mel.n_frames - kChunkFrames;
  ASSERT_EQ(content_frames, 1100);
  const std::vector<float> window = mel_window(mel, 0, std::min(kChunkFrames, content_frames));
  const double err = max_abs_diff(window, golden);
  std::printf("[ golden ] %s (%d mels): max abs error %.3g\n", case_name.c_str(), n_mels, err);
  EXPECT_LT(err, 1e-4);
}

TEST(MelGolden, MicroJfkEn) { check_golden("micro-jfk-en", 80); }
TEST(MelGolden, MicroenJfk) { check_golden("microen-jfk", 80); }
TEST(MelGolden, Microv3JfkAuto) { check_golden("microv3-jfk-auto", 128); }

// ------------------------------------------------- fast vs reference ----

TEST(Mel, FastMatchesReference) {
  struct Case {
    size_t n;
    int padding;
  };
  // Interior frames, a reflect tail that runs into the appended zeros
  // (padding 37), one that reflects real samples (padding 0), signals just
  // above the reflect limit, and the zero-centred fallback (L <= 200).
  const Case cases[] = {{6000, 37}, {5123, 0},  {4000, 480}, {201, 0},  {250, 0},
                        {120, 81},  {100, 100}, {0, 170},    {1600, 0}, {0, 3200}};
  for (int n_mels : {80, 128}) {
    const model::MelFilters filters = load_filters(n_mels);
    for (const Case& c : cases) {
      const std::vector<float> audio = noise(c.n, static_cast<uint32_t>(c.n + c.padding));
      const Mel want = log_mel_spectrogram_reference(audio, c.padding, filters);
      for (int threads : {1, 2, 3}) {
        const Mel got = log_mel_spectrogram(audio, c.padding, filters, threads);
        ASSERT_EQ(got.n_frames, want.n_frames);
        ASSERT_EQ(got.n_mels, n_mels);
        EXPECT_LT(max_abs_diff(got.data, want.data), 2e-6)
            << "n " << c.n << " padding " << c.padding << " threads " << threads;
      }
    }
  }
}

TEST(Mel, ThreadCountDoesNotChangeResult) {
  const model::MelFilters filters = load_filters(80);
  const std::vector<float> audio = noise(16000 * 7 + 77, 5);
  const Mel one = log_mel_spectrogram(audio, 4000, filters, 1);
  for (int threads : {2, 3, 8}) {
    const Mel many = log_mel_spectrogram(audio, 4000, filters, threads);
    EXPECT_EQ(many.data, one.data) << threads << " threads";
  }
  EXPECT_EQ(log_mel_spectrogram(audio, 4000, filters, 0).data, one.data);
}

TEST(Mel, ReflectPaddingUsesSignalNotZeros) {
  // With reflect padding the first frame sees the mirrored signal, so a
  // sinusoid gives a strong first frame; zero (constant) padding would halve
  // the window's energy. Pins the padding mode, independently of the twin.
  const model::MelFilters filters = load_filters(80);
  std::vector<float> audio(16000);
  for (size_t i = 0; i < audio.size(); ++i) {
    audio[i] = static_cast<float>(std::cos(2 * 3.14159265358979323846 * 1000.0 * i / 16000));
  }
  const Mel mel = log_mel_spectrogram(audio, 0, filters, 1);
  // Frame 0 (centred on sample 0, reflected cosine is symmetric: identical
  // to an interior frame centred on a cosine peak, e.g. frame 2 at sample 320
  // = 20 periods of 16 samples).
  for (int m = 0; m < 80; ++m) {
    EXPECT_NEAR(mel.data[static_cast<size_t>(m) * mel.n_frames + 0],
                mel.data[static_cast<size_t>(m) * mel.n_frames + 2], 1e-5)
        << "mel " << m;
  }
}

// ------------------------------------------------------- edge cases ----

TEST(Mel, FrameCount) {
  const model::MelFilters filters = load_filters(80);
  for (auto [n, padding] :
       {std::pair{0, 0}, {0, 159}, {0, 160}, {159, 1}, {1600, 0}, {1601, 0}, {1759, 0}, {1760, 0}, {12345, 480000}}) {
    const std::vector<float> audio = noise(static_cast<size_t>(n), 9);
    const Mel mel = log_mel_spectrogram(audio, padding, filters, 2);
    EXPECT_EQ(mel.n_frames, (n + padding) / kHopLength) << n << " + " << padding;
    EXPECT_EQ(mel.data.size(), static_cast<size_t>(80) * mel.n_frames);
  }
}

TEST(Mel, EmptyInputWithPaddingIsSilence) {
  const model::MelFilters filters = load_filters(80);
  const Mel mel = log_mel_spectrogram(std::span<const float>(), kChunkSamples, filters, 2);
  ASSERT_EQ(mel.n_frames, kChunkFrames);
  // All energies clamp to 1e-10: log10 = -10 everywhere, max - 8 = -18 does
  // not bite, (-10 + 4) / 4 = -1.5.
  for (float v : mel.data) ASSERT_EQ(v, -1.5f);
  const std::vector<float> window = mel_window(mel, 0, kChunkFrames);
  EXPECT_EQ(window, mel.data);
}

TEST(Mel, EmptyInputWithoutPadding) {
  const model::MelFilters filters = load_filters(80);
  const Mel mel = log_mel_spectrogram(std::span<const float>(), 0, filters, 2);
  EXPECT_EQ(mel.n_frames, 0);
  EXPECT_TRUE(mel.data.empty());
  const std::vector<float> window = mel_window(mel, 0, kChunkFrames);
  ASSERT_EQ(window.size(), static_cast<size_t>(80) * kChunkFrames);
  for (float v : window) ASSERT_EQ(v, 0.0f);
}

TEST(Mel, ShortInput) {
  const model::MelFilters filters = load_filters(80);
  const std::vector<float> audio = noise(1600, 3);  // 0.1 s
  const Mel bare = log_mel_spectrogram(audio, 0, filters, 2);
  EXPECT_EQ(bare.n_frames, 10);
  const Mel padded = log_mel_spectrogram(audio, kChunkSamples, filters, 2);
  EXPECT_EQ(padded.n_frames, 3010);
  // Values stay in the range the floor and scaling allow.
  float hi = -100, lo = 100;
  for (float v : padded.data) {
    hi = std::max(hi, v);
    lo = std::min(lo, v);
  }
  EXPECT_NEAR(lo, hi - 2.0f, 1e-6);  // the floor (max - 8) / 4 is reached by the padded silence
  for (float v : padded.data) ASSERT_TRUE(std::isfinite(v));
}

TEST(Mel, BadArgumentsThrow) {
  model::MelFilters filters = load_filters(80);
  const std::vector<float> audio = noise(1000, 1);
  EXPECT_THROW(log_mel_spectrogram(audio, -1, filters, 1), Error);
  model::MelFilters wrong = filters;
  wrong.n_freq = 200;
  EXPECT_THROW(log_mel_spectrogram(audio, 0, wrong, 1), Error);
  wrong = filters;
  wrong.data.pop_back();
  EXPECT_THROW(log_mel_spectrogram(audio, 0, wrong, 1), Error);
  wrong = filters;
  wrong.n_mels = 0;
  EXPECT_THROW(log_mel_spectrogram(audio, 0, wrong, 1), Error);
  EXPECT_THROW(log_mel_spectrogram_reference(audio, -5, filters), Error);
}

// -------------------------------------------------------- mel_window ----

Mel numbered_mel(int n_mels, int n_frames) {
  Mel mel;
  mel.n_mels = n_mels;
  mel.n_frames = n_frames;
  mel.data.resize(static_cast<size_t>(n_mels) * n_frames);
  for (int m = 0; m < n_mels; ++m) {
    for (int t = 0; t < n_frames; ++t) {
      mel.data[static_cast<size_t>(m) * n_frames + t] = static_cast<float>(m * 10000 + t + 1);
    }
  }
  return mel;
}

// Expected value of window[m][i] per openai pad_or_trim(mel[:, off:off+len]).
float expected_window(const Mel& mel, int offset, int len, int m, int i) {
  const int t = offset + i;
  if (i >= len || t >= mel.n_frames) return 0.0f;
  return static_cast<float>(m * 10000 + t + 1);
}

TEST(MelWindow, OffsetClippingAndPadding) {
  const Mel mel = numbered_mel(3, 4100);
  const std::pair<int, int> cases[] = {{0, 3000},    {0, 1100},    {1100, 3000}, {2000, 3000}, {3999, 50},
                                       {4100, 3000}, {9000, 3000}, {10, 0},      {5, 5000},    {0, 4100}};
  for (auto [offset, len] : cases) {
    const std::vector<float> w = mel_window(mel, offset, len);
    ASSERT_EQ(w.size(), static_cast<size_t>(3) * kChunkFrames);
    for (int m = 0; m < 3; ++m) {
      for (int i = 0; i < kChunkFrames; ++i) {
        ASSERT_EQ(w[static_cast<size_t>(m) * kChunkFrames + i], expected_window(mel, offset, len, m, i))
            << "offset " << offset << " len " << len << " m " << m << " i " << i;
      }
    }
  }
}

TEST(MelWindow, BadArgumentsThrow) {
  const Mel mel = numbered_mel(2, 10);
  EXPECT_THROW(mel_window(mel, -1, 10), Error);
  EXPECT_THROW(mel_window(mel, 0, -1), Error);
  Mel broken = mel;
  broken.data.pop_back();
  EXPECT_THROW(mel_window(broken, 0, 10), Error);
}

// ---------------------------------------------------------------- speed ----

// ------------------------------------------------------ streaming ----

// A SampleSource over `audio` that hands out at most `piece` samples per
// read, counting how often it was opened.
SampleSource pieces_of(const std::vector<float>& audio, std::size_t piece, int* opened) {
  return [&audio, piece, opened] {
    ++*opened;
    return SampleReader([&audio, piece, pos = std::size_t{0}](std::span<float> out) mutable {
      const std::size_t n = std::min({out.size(), piece, audio.size() - pos});
      std::copy_n(audio.begin() + static_cast<std::ptrdiff_t>(pos), n, out.begin());
      pos += n;
      return n;
    });
  };
}

MelScan scan_of(const std::vector<float>& audio, std::size_t piece, int padding, const model::MelFilters& f,
                int threads) {
  int opened = 0;
  return scan_mel(pieces_of(audio, piece, &opened)(), f, padding, threads);
}

// The two passes give mel_window of the whole spectrogram bit for bit: edges
// that reflect the signal or run into the padding, pieces smaller than a
// frame, windows read forward with overlaps, jumps past frames never
// computed, and a window before the last one (the source opened again).
TEST(MelStream, WindowsEqualTheWholeSpectrogram) {
  struct Case {
    std::size_t n;
    int padding;
    std::size_t piece;
  };
  const Case cases[] = {{16000 * 95 + 123, kChunkSamples, 48000},
                        {16000 * 70, kChunkSamples, 77},
                        {5123, 0, 1000},
                        {201, 0, 7},
                        {250, 3, 1},
                        {120, 81, 50},
                        {0, 170, 10},
                        {16000 * 40, 37, 480000},
                        {0, kChunkSamples, 5}};
  for (int n_mels : {80, 128}) {
    const model::MelFilters filters = load_filters(n_mels);
    for (const Case& c : cases) {
      SCOPED_TRACE("n " + std::to_string(c.n) + " padding " + std::to_string(c.padding) + " piece " +
                   std::to_string(c.piece) + " mels " + std::to_string(n_mels));
      const std::vector<float> audio = noise(c.n, static_cast<uint32_t>(c.n + c.padding + 3));
      const Mel whole = log_mel_spectrogram(audio, c.padding, filters, 2);
      const MelScan scan = scan_of(audio, c.piece, c.padding, filters, 2);
      EXPECT_EQ(scan.n_samples, static_cast<int64_t>(c.n));
      int opened = 0;
      MelWindows windows(pieces_of(audio, c.piece, &opened), scan, filters, c.padding, 3);
      ASSERT_EQ(windows.n_frames(), whole.n_frames);
      const int f = whole.n_frames;
      const std::vector<std::pair<int, int>> asks = {{0, 3000},      {0, 1100},
                                                     {2500, 3000},   {2900, 100},
                                                     {4000, 3000},   {f - 1500, 3000},
                                                     {f + 10, 3000}, {std::max(0, f / 2), 2000},
                                                     {f - 1, 1},     {1, 0}};
      for (auto [offset, n] : asks) {
        if (offset < 0) continue;
        ASSERT_EQ(windows.window(offset, n), mel_window(whole, offset, n)) << "offset " << offset << " n " << n;
      }
      EXPECT_GE(opened, 1);
    }
  }
}

TEST(MelStream, ThreadsAndPiecesDoNotChangeTheScan) {
  const model::MelFilters filters = load_filters(80);
  const std::vector<float> audio = noise(16000 * 50 + 9, 11);
  const MelScan one = scan_of(audio, audio.size(), kChunkSamples, filters, 1);
  for (std::size_t piece : {std::size_t{1} << 10, std::size_t{160}, std::size_t{480000}}) {
    for (int threads : {1, 2, 3}) {
      const MelScan other = scan_of(audio, piece, kChunkSamples, filters, threads);
      EXPECT_EQ(other.n_samples, one.n_samples);
      EXPECT_EQ(other.max_log, one.max_log) << piece << " " << threads;
    }
  }
}

// Audio that is shorter on the second read than the scan said (a file
// rewritten between the passes) is an error, not a silent wrong floor.
TEST(MelStream, AudioThatChangedBetweenPassesIsAnError) {
  const model::MelFilters filters = load_filters(80);
  const std::vector<float> audio = noise(16000 * 45, 12);
  const MelScan scan = scan_of(audio, 4096, kChunkSamples, filters, 1);
  const std::vector<float> shorter(audio.begin(), audio.begin() + 16000 * 40);
  int opened = 0;
  MelWindows windows(pieces_of(shorter, 4096, &opened), scan, filters, kChunkSamples, 1);
  EXPECT_NO_THROW(windows.window(0, 1000));
  try {
    windows.window(3000, 3000);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the audio changed while it was read"), std::string::npos) << e.what();
  }
}

TEST(MelSpeed, FiveMinutesOfNoise) {
  // Informative timing only (no time limit is asserted: machines are shared).
  const model::MelFilters filters = load_filters(80);
  const std::vector<float> audio = noise(16000 * 300, 11);
  for (int threads : {1, 2}) {
    const auto t0 = std::chrono::steady_clock::now();
    const Mel mel = log_mel_spectrogram(audio, kChunkSamples, filters, threads);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ speed  ] 300 s (+30 s padding), 80 mels, %d thread(s): %.3f s\n", threads, s);
    EXPECT_EQ(mel.n_frames, 33000);
  }
}

}  // namespace
}  // namespace wisp::features
