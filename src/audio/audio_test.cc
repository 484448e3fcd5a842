// Tests for wisp::audio: bit-exact equality with the ffmpeg CLI that
// openai/whisper audio.py load_audio runs, error causes, probe_media.
#include "audio/audio.h"
#include "audio/probe.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "fixture_files.h"

namespace wisp::audio {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(WISP_TESTDATA_DIR) + "/testdata/";

// Back to the int16 the CLI wrote: load_audio returns s16 / 32768, so every
// sample times 32768 must be an integer in int16 range.
std::vector<int16_t> to_s16(const std::vector<float>& x) {
  std::vector<int16_t> out;
  out.reserve(x.size());
  for (float v : x) {
    double s = static_cast<double>(v) * 32768.0;
    EXPECT_EQ(s, std::floor(s)) << "sample is not an int16 / 32768";
    EXPECT_GE(s, -32768.0);
    EXPECT_LE(s, 32767.0);
    out.push_back(static_cast<int16_t>(s));
  }
  return out;
}

// FNV-1a 64 over the little-endian s16 bytes, i.e. over the CLI's stdout.
uint64_t fnv1a(const std::vector<int16_t>& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int16_t v : s) {
    auto u = static_cast<uint16_t>(v);
    for (uint8_t b : {static_cast<uint8_t>(u & 0xff), static_cast<uint8_t>(u >> 8)}) {
      h ^= b;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

std::string error_of(const std::string& path) {
  try {
    load_audio(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

struct Reference {
  const char* file;  // under tests/data/testdata
  std::size_t samples;
  uint64_t fnv;
};

// Produced with FFmpeg 5.1.9 (Debian 12) by running, for each file F,
//   ffmpeg -nostdin -threads 0 -i F -f s16le -ac 1 -acodec pcm_s16le -ar 16000 -
// (openai/whisper audio.py load_audio) and recording the number of samples
// (stdout bytes / 2) and FNV-1a 64 of stdout. Every file that command accepts
// is listed; load_audio must be bit-exact for all of them.
const Reference kReferences[] = {
    {"formats/jfk.flac", 176000, 0xcf9048f28c807968ULL},
    {"formats/jfk.mp3", 176000, 0xbe4be2a3b955363fULL},
    {"formats/jfk.opus", 176000, 0x59c6db1812c67c44ULL},
    {"formats/jfk_8k_mono.wav", 176000, 0xa02a23bb462d0231ULL},
    {"formats/jfk_aac.m4a", 176100, 0x83a9ff94698f4082ULL},
    {"formats/jfk_f32_44k1_stereo.wav", 176000, 0xf474965a5b9ed914ULL},
    {"formats/jfk_lead5min_silence.flac", 4976000, 0x1385837dabc6a54cULL},
    {"formats/jfk_list_chunk.wav", 176000, 0xf474965a5b9ed914ULL},
    {"formats/jfk_opus.webm", 176000, 0xbda945993fa7580fULL},
    {"formats/jfk_s16_16k_mono.wav", 176000, 0xf474965a5b9ed914ULL},
    {"formats/jfk_s24_48k_mono.wav", 176000, 0x3c2d5629f239419dULL},
    {"formats/jfk_video.mp4", 176100, 0x83a9ff94698f4082ULL},
    {"formats/jfk_vorbis.ogg", 176000, 0x5214b754559c4bb3ULL},
    {"speech/de_picovoice.wav", 84096, 0xc114581a26de2ad1ULL},
    {"speech/en-de_mit_license.mp3", 958400, 0x574afd4649cead12ULL},
    {"speech/en_arctic_a0024.wav", 63281, 0x4c451197b7c5e0c3ULL},
    {"speech/en_cards_001.wav", 17526, 0xefa664250a1de037ULL},
    {"speech/en_cards_005.wav", 56040, 0xf53949e88aee0a7bULL},
    {"speech/en_goforward.wav", 44580, 0xc707d21efe09b8f0ULL},
    {"speech/en_jfk.flac", 176000, 0xf474965a5b9ed914ULL},
    {"speech/en_librispeech_1995-1837-0001.wav", 139680, 0xc1250ccd2da9a2b5ULL},
    {"speech/en_librivox_sense_and_sensibility_0870.wav", 113600, 0xe90c5693c4e9c3e9ULL},
    {"speech/en_librivox_sense_and_sensibility_0880.wav", 47840, 0x2d7cc98dad5a23c8ULL},
    {"speech/en_librivox_sense_and_sensibility_0890.wav", 84800, 0x3a586f51c1651312ULL},
    {"speech/en_one_two_three.wav", 43919, 0x63d2238cd8ad32eeULL},
    {"speech/en_stereo_two_speakers.wav", 80000, 0x016afdcce098bf82ULL},
    {"speech/es_picovoice.wav", 138624, 0x22154c3fcff79236ULL},
    {"speech/fr_picovoice.wav", 106752, 0x296d83720e3377baULL},
    {"speech/ja_picovoice.wav", 86976, 0x940ee1e3ed8773b4ULL},
    {"speech/zh_aishell_BAC009S0724W0121.wav", 68496, 0x5ae1a730344c5cabULL},
    {"bad/ASK+NOT+WHAT \u2013 \u00dcn\u00efc\u00f6d\u00e9 \u65e5\u672c\u8a9e test "
     "+clip-TFa539R09EQ.mp3",
     176000, 0xbe4be2a3b955363fULL},
    {"bad/short_0.1s.wav", 1600, 0xd090a6eee0fe88aaULL},
    {"bad/silence_60s.wav", 960000, 0xc45899e28a1a7725ULL},
    {"bad/tones_music_30s.wav", 480000, 0xd3160ed97c95bc78ULL},
    // The CLI logs "invalid new backstep -1" and keeps the 4.4 s that decode.
    {"bad/truncated_mid_frame.mp3", 70652, 0x9225b18fb330c3a5ULL},
    {"bad/white_noise_30s.wav", 480000, 0x218b68d1ae403eb1ULL},
};

class MatchesFfmpegCli : public testing::TestWithParam<Reference> {};

TEST_P(MatchesFfmpegCli, SampleCountAndChecksum) {
  const Reference& ref = GetParam();
  std::vector<float> pcm = load_audio(kData + ref.file);
  ASSERT_EQ(pcm.size(), ref.samples);
  EXPECT_EQ(fnv1a(to_s16(pcm)), ref.fnv);
}

// The same bytes from memory decode to the same samples (the fuzz harness
// tests/fuzz/audio_fuzz.cc drives this entry point).
TEST_P(MatchesFfmpegCli, SameFromMemory) {
  const Reference& ref = GetParam();
  std::ifstream in(kData + ref.file, std::ios::binary);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ASSERT_FALSE(bytes.empty());
  std::vector<float> pcm = load_audio_memory(bytes);
  ASSERT_EQ(pcm.size(), ref.samples);
  EXPECT_EQ(fnv1a(to_s16(pcm)), ref.fnv);
}

INSTANTIATE_TEST_SUITE_P(TestData, MatchesFfmpegCli, testing::ValuesIn(kReferences),
                         [](const testing::TestParamInfo<Reference>& info) {
                           return "file" + std::to_string(info.index);
                         });

// AudioReader's pieces, of any size, put together are load_audio's samples.
TEST_P(MatchesFfmpegCli, ReaderPiecesAreLoadAudio) {
  const Reference& ref = GetParam();
  for (std::size_t piece : {std::size_t{1}, std::size_t{1000}, std::size_t{480000}}) {
    if (piece == 1 && ref.samples > 200000) continue;  // one sample at a time is slow, not different
    AudioReader reader(kData + ref.file);
    std::vector<float> all, buf(piece);
    for (std::size_t got; (got = reader.read(buf)) > 0;) {
      all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
      if (got < piece) {
        EXPECT_EQ(reader.read(buf), 0u) << "a short read must be the end";
        break;
      }
    }
    ASSERT_EQ(all.size(), ref.samples) << piece;
    EXPECT_EQ(fnv1a(to_s16(all)), ref.fnv) << piece;
  }
}

// Every clip in formats/ must be in the table above.
TEST(Audio, EveryFormatsClipHasAReference) {
  std::set<std::string> listed;
  for (const Reference& r : kReferences) listed.insert(r.file);
  int n = 0;
  for (const fs::path& file : wisp::testing_support::fixture_files(kData + "formats")) {
    std::string rel = "formats/" + file.filename().string();
    EXPECT_TRUE(listed.count(rel)) << rel << " has no CLI reference";
    ++n;
  }
  EXPECT_EQ(n, 13);
}

// A 16 kHz mono s16 WAV needs no conversion: the output is its data chunk / 32768.
TEST(Audio, S16MonoWavIsItsRawPcm) {
  std::string path = kData + "formats/jfk_s16_16k_mono.wav";
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 44u);
  ASSERT_EQ(std::string(bytes.data() + 36, 4), "data");  // canonical 44-byte header
  std::vector<float> pcm = load_audio(path);
  ASSERT_EQ(pcm.size(), (bytes.size() - 44) / 2);
  for (std::size_t i = 0; i < pcm.size(); ++i) {
    auto lo = static_cast<uint8_t>(bytes[44 + 2 * i]);
    auto hi = static_cast<uint8_t>(bytes[45 + 2 * i]);
    auto s = static_cast<int16_t>(static_cast<uint16_t>(lo | (hi << 8)));
    ASSERT_EQ(pcm[i], static_cast<float>(s) / 32768.0f) << "sample " << i;
  }
}

// swr's auto matrix for stereo -> mono is 0.5 L + 0.5 R; with s16 in and out it
// is applied in Q15 with rounding, i.e. (L + R + 1) >> 1 (arithmetic shift).
TEST(Audio, StereoIsRoundedMeanOfChannels) {
  std::string path = kData + "speech/en_stereo_two_speakers.wav";  // 16 kHz s16 stereo
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(std::string(bytes.data() + 36, 4), "data");
  std::size_t frames = (bytes.size() - 44) / 4;
  std::vector<int16_t> got = to_s16(load_audio(path));
  ASSERT_EQ(got.size(), frames);
  auto sample = [&](std::size_t k) {
    auto lo = static_cast<uint8_t>(bytes[44 + 2 * k]);
    auto hi = static_cast<uint8_t>(bytes[45 + 2 * k]);
    return static_cast<int>(static_cast<int16_t>(static_cast<uint16_t>(lo | (hi << 8))));
  };
  int differing_channels = 0;
  for (std::size_t i = 0; i < frames; ++i) {
    int l = sample(2 * i), r = sample(2 * i + 1);
    differing_channels += l != r;
    ASSERT_EQ(got[i], (l + r + 1) >> 1) << "frame " << i;
  }
  EXPECT_GT(differing_channels, 1000);  // the two channels really differ
}

// The "silence" clip carries sox's +-1 LSB dither, not digital zeros.
TEST(Audio, SilenceStaysWithinOneLsb) {
  std::vector<float> pcm = load_audio(kData + "bad/silence_60s.wav");
  ASSERT_EQ(pcm.size(), 60u * kSampleRate);
  for (float v : pcm) ASSERT_LE(std::fabs(v), 1.0f / 32768.0f);
}

TEST(Audio, ErrorCauses) {
  EXPECT_EQ(error_of(kData + "bad/empty.mp3"), "empty file");
  EXPECT_EQ(error_of(kData + "bad/not_audio.mp3"), "not a media file");
  EXPECT_EQ(error_of(kData + "bad/video_no_audio.mp4"), "no audio stream");
  // The wav demuxer recognises the RIFF header but rejects its zeroed fmt
  // fields ("Invalid sample rate: 0"); the CLI fails the same way.
  EXPECT_EQ(error_of(kData + "bad/corrupt_header.wav"),
            "corrupt or unsupported wav header: Invalid data found when processing input");
  EXPECT_EQ(error_of(kData + "no/such/file.wav"), "cannot open: No such file or directory");
  EXPECT_EQ(error_of(kData + "formats"), "cannot open: Is a directory");
}

std::string memory_error_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  try {
    load_audio_memory(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// From memory, the causes are those of the same file.
TEST(Audio, MemoryErrorCauses) {
  for (const char* name : {"bad/empty.mp3", "bad/not_audio.mp3", "bad/video_no_audio.mp4", "bad/corrupt_header.wav"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(memory_error_of(kData + name), error_of(kData + name));
  }
  EXPECT_THROW(load_audio_memory(std::span<const uint8_t>()), Error);
}

// FFmpeg must not print anything (its logs would interleave with the CLI's).
TEST(Audio, FfmpegStaysQuiet) {
  testing::internal::CaptureStderr();
  error_of(kData + "bad/corrupt_header.wav");
  error_of(kData + "bad/not_audio.mp3");
  load_audio(kData + "bad/truncated_mid_frame.mp3");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

// Scratch directory for files made by the tests; removed afterwards.
class AudioFiles : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wisp_audio_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::vector<char>& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  static std::vector<char> read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  // formats/jfk.mp3 with n bytes overwritten by a 64-bit LCG (same generator
  // as the script that made the references below).
  std::string corrupted_mp3(int n) {
    std::vector<char> d = read(kData + "formats/jfk.mp3");
    uint64_t st = 12345;
    for (int i = 0; i < n; ++i) {
      st = st * 6364136223846793005ULL + 1442695040888963407ULL;
      std::size_t pos = 1000 + (st >> 33) % (d.size() - 1000);
      d[pos] = static_cast<char>((st >> 13) & 0xff);
    }
    return write("corrupt_" + std::to_string(n) + ".mp3", d);
  }
  fs::path dir_;
};

// Damaged packets are dropped and decoding goes on, as in the CLI; references
// from the ffmpeg command above on the same corrupted bytes.
TEST_F(AudioFiles, DamagedMp3KeepsWhatDecodes) {
  struct Case {
    int n;
    std::size_t samples;
    uint64_t fnv;
  };
  for (Case c : {Case{40, 175560, 0x60368bd9da55d916ULL}, Case{4000, 121589, 0xbbbe3bc77860572eULL},
                 Case{20000, 36303, 0x09b87cfb2b20ed64ULL}}) {
    SCOPED_TRACE(c.n);
    std::vector<float> pcm = load_audio(corrupted_mp3(c.n));
    ASSERT_EQ(pcm.size(), c.samples);
    EXPECT_EQ(fnv1a(to_s16(pcm)), c.fnv);
  }
}

// With 40000 damaged bytes more than 2/3 of decode calls fail: ffmpeg exits
// with status 69 (max_error_rate) and whisper's load_audio raises. wisp
// already refuses it at the probe: too few frames are left to recognise it.
TEST_F(AudioFiles, MostlyUndecodableMp3Throws) {
  std::string err = error_of(corrupted_mp3(40000));
  EXPECT_EQ(err.rfind("not a media file, or too damaged to recognise (it resembles mp3", 0), 0u) << err;
}

// A WAV header with no data: an error saying so, not an empty transcript.
TEST_F(AudioFiles, ZeroSamplesIsAnError) {
  std::vector<char> wav = {'R', 'I', 'F', 'F', 36, 0, 0,   0,   'W', 'A',  'V', 'E', 'f', 'm', 't',
                           ' ', 16,  0,   0,   0,  1, 0,   1,   0,   -128, 62,  0,   0,   0,   125,
                           0,   0,   2,   0,   16, 0, 'd', 'a', 't', 'a',  0,   0,   0,   0};
  const std::string path = write("zero.wav", wav);
  EXPECT_EQ(error_of(path), "no audio: the audio stream decodes to 0 samples");
  AudioReader reader(path);
  std::vector<float> buf(100);
  try {
    reader.read(buf);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "no audio: the audio stream decodes to 0 samples");
  }
}

// A header may claim any rate; resampling 2 GHz to 16 kHz held swr_init for
// seconds and gigabytes (tests/fuzz/audio_fuzz.cc), so such rates are refused.
TEST_F(AudioFiles, AbsurdSampleRateIsRefused) {
  std::vector<char> wav = {'R', 'I', 'F', 'F', 40,  0,   0,   0,   'W',  'A', 'V', 'E', 'f', 'm', 't', ' ',
                           16,  0,   0,   0,   1,   0,   1,   0,   -128, 62,  101, 120, 0,   0,   0,   0,
                           2,   0,   16,  0,   'd', 'a', 't', 'a', 4,    0,   0,   0,   1,   0,   2,   0};
  EXPECT_EQ(error_of(write("rate.wav", wav)), "cannot decode audio: sample rate 2019901056 Hz is over 768000");
  wav[26] = 0, wav[27] = 0;  // 16000 Hz: the same file decodes
  EXPECT_EQ(load_audio(write("rate16k.wav", wav)).size(), 2u);
}

// Random bytes pass libavformat's probe as a few MPEG audio frames (ffmpeg
// warns "misdetection possible" and decodes noise); wisp refuses them.
TEST_F(AudioFiles, RandomBytesAreNotMedia) {
  std::vector<char> bytes(4096);
  uint64_t st = 7;
  for (char& b : bytes) {
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    b = static_cast<char>(st >> 56);
  }
  for (int seed = 0; seed < 8; ++seed) {
    bytes[0] = static_cast<char>(seed);
    const std::string path = write("random" + std::to_string(seed) + ".flac", bytes);
    EXPECT_EQ(error_of(path).rfind("not a media file", 0), 0u) << seed << ": " << error_of(path);
    EXPECT_FALSE(probe_media(path).media) << seed;
  }
}

// Content decides, not the name: a path with ':' is a local file, not a
// protocol; text named .wav is not media.
TEST_F(AudioFiles, NamesDoNotMatter) {
  std::string odd = write("a:b c.ogg", read(kData + "formats/jfk_s16_16k_mono.wav"));
  EXPECT_EQ(load_audio(odd).size(), 176000u);
  EXPECT_TRUE(probe_media(odd).audio);
  std::string text = "this is a plain text file, not audio\n";
  std::string fake = write("notes.wav", std::vector<char>(text.begin(), text.end()));
  EXPECT_EQ(error_of(fake), "not a media file");
  EXPECT_FALSE(probe_media(fake).media);
}

TEST(Audio, ProbeFindsAudioStreams) {
  for (const char* f : {"formats/jfk.flac", "formats/jfk_video.mp4", "formats/jfk_opus.webm",
                        "bad/truncated_mid_frame.mp3", "bad/silence_60s.wav"}) {
    EXPECT_TRUE(probe_media(kData + f).audio) << f;
  }
  for (const char* f : {"bad/empty.mp3", "bad/not_audio.mp3", "bad/video_no_audio.mp4", "bad/corrupt_header.wav",
                        "no/such/file.wav", "formats", "MANIFEST.tsv"}) {
    EXPECT_FALSE(probe_media(kData + f).audio) << f;
  }
  EXPECT_TRUE(probe_media(kData + "bad/ASK+NOT+WHAT \u2013 \u00dcn\u00efc\u00f6d\u00e9 "
                                  "\u65e5\u672c\u8a9e test +clip-TFa539R09EQ.mp3")
                  .audio);
}

}  // namespace
}  // namespace wisp::audio
