// wisp/audio/audio.cc: media decoding that reproduces openai/whisper audio.py
// load_audio, i.e. the FFmpeg 5.1 command line
//   ffmpeg -nostdin -threads 0 -i F -f s16le -ac 1 -acodec pcm_s16le -ar 16000 -
// followed by int16 / 32768.
//
// What that command does, and what this file therefore does with the same
// libraries:
//  * fftools open_input_file: avformat_open_input + avformat_find_stream_info
//    (a failing find_stream_info is only fatal when no stream was found).
//  * fftools map_auto_audio ("audio: most channels"): every audio stream gets
//    the score channels + 1e8 * (packets seen while probing) + 5e6 * (default
//    disposition); the first stream with the highest score > 0 wins. Unused
//    streams are set to AVDISCARD_ALL.
//  * fftools add_input_streams / guess_input_channel_layout: an unspecified
//    channel layout becomes the default layout for its channel count.
//  * The decoder runs with threads=auto (-threads 0) and is fed packet by
//    packet; a packet that fails to decode is dropped and decoding goes on
//    (no -xerror). At the end the decoder is drained. ffmpeg's main() exits
//    with status 69 when more than 2/3 of decode calls failed (max_error_rate),
//    which makes whisper's load_audio raise: we throw in that case too.
//  * The output side is an aformat=s16:16000:mono filter; libavfilter inserts
//    an aresample filter in front of it with default SwrContext options (the
//    CLI passes no swr options for a 16-bit encoder). Its rematrix is swr's
//    auto matrix (stereo -> mono = 0.5 L + 0.5 R after normalisation, 5.1 uses
//    the -3 dB centre/surround levels, LFE dropped), no dither, swr's default
//    polyphase resampler, and a final flush (swr_convert with no input) at EOF.
//    The swr context is configured from the first decoded frame; when a frame
//    arrives with different parameters the CLI rebuilds the filter graph,
//    dropping what the old resampler still buffered, and so do we.
// Feeding the same decoded frames to a SwrContext set up the same way gives
// the same samples bit for bit (checked for every clip in tests/data/testdata,
// see audio_test.cc).
#include "audio/audio.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
}

namespace wisp::audio {
namespace {

// ---- RAII owners for the FFmpeg objects ------------------------------------

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct SwrFreer {
  void operator()(SwrContext* c) const { swr_free(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using SwrPtr = std::unique_ptr<SwrContext, SwrFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;

// Owns an AVChannelLayout (custom-order layouts hold heap memory).
struct Layout {
  AVChannelLayout v{};
  Layout() = default;
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
  ~Layout() { av_channel_layout_uninit(&v); }
};

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(err, buf, sizeof buf) < 0) return "error " + std::to_string(err);
  return buf;
}

// FFmpeg logs through one process-wide callback and level; libavformat's
// contexts have no per-instance log level, so a per-call silence is not
// possible. Setting the level is idempotent and keeps no state of ours; the
// library must never print to the user's terminal (the CLI reports the
// wisp::Error instead).
void silence_ffmpeg_log() { av_log_set_level(AV_LOG_QUIET); }

// "file:" pins the local file protocol: a path containing ':' is not taken
// for a protocol name, and no network or pipe protocol is ever reached.
std::string file_url(const std::string& path) { return "file:" + path; }

// Checks that `path` exists and is a non-empty regular file before handing it
// to libavformat. Non-regular files are refused because a FIFO without a
// writer or a character device would block or never end.
void check_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(std::string("cannot open: ") + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw Error(std::string("cannot open: ") + std::strerror(EISDIR));
  if (!S_ISREG(st.st_mode)) throw Error("cannot open: not a regular file");
  if (st.st_size == 0) throw Error("empty file");
}

// avformat_open_input failed with `err`: name the cause. libavformat gives
// EINVAL or INVALIDDATA both for content it does not recognise and for a
// recognised container with a broken header, so probe the content the way
// avformat_open_input does to tell the two apart (AVPROBE_SCORE_RETRY is the
// score under which lavf itself warns "misdetection possible").
constexpr std::size_t kProbeBytes = 1 << 20;  // libavformat's default probesize

// `head` holds the input's first bytes (up to kProbeBytes, AVPROBE_PADDING_SIZE
// zeros after them); `url` is its name ("" for a buffer).
[[noreturn]] void throw_open_failure(const std::string& url, std::vector<unsigned char>& head, int got, int err) {
  if (err == AVERROR(ENOENT) || err == AVERROR(EACCES) || err == AVERROR(EPERM) || err == AVERROR(EIO) ||
      err == AVERROR(EISDIR) || err == AVERROR(ENOMEM)) {
    throw Error("cannot open: " + av_error_text(err));
  }
  AVProbeData pd{};
  pd.filename = url.c_str();
  pd.buf = head.data();
  pd.buf_size = got;
  int score = 0;
  const AVInputFormat* fmt = av_probe_input_format3(&pd, 1, &score);
  if (fmt == nullptr || score < AVPROBE_SCORE_RETRY) throw NotMedia("not a media file");
  // Demuxer names can be lists ("mov,mp4,m4a,3gp,3g2,mj2"): the first is enough.
  std::string name(fmt->name);
  name = name.substr(0, name.find(','));
  throw Error("corrupt or unsupported " + name + " header: " + av_error_text(err));
}

[[noreturn]] void throw_open_failure(const std::string& path, int err) {
  std::vector<unsigned char> buf(kProbeBytes + AVPROBE_PADDING_SIZE, 0);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(kProbeBytes));
  throw_open_failure(file_url(path), buf, static_cast<int>(in.gcount()), err);
}

// Under AVPROBE_SCORE_RETRY libavformat warns "misdetection possible":
// random bytes pass as a few MPEG audio frames. ffmpeg would decode them
// to noise; wisp says what they are. Real media scores far above (a
// recognised header or run of frames; a matching extension alone is 50).
[[noreturn]] void throw_chance_resemblance(const AVFormatContext* fmt) {
  const std::string name(fmt->iformat->name);
  throw NotMedia("not a media file, or too damaged to recognise (it resembles " + name.substr(0, name.find(',')) +
                 " only by chance: probe score " + std::to_string(fmt->probe_score) + " of 100)");
}

// Opens the container and reads its stream parameters like fftools
// open_input_file. Returns null instead of throwing when `quiet`.
FormatPtr open_input(const std::string& path, bool quiet) {
  silence_ffmpeg_log();
  if (quiet) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
      return nullptr;
    }
  } else {
    check_file(path);
  }
  std::string url = file_url(path);
  AVDictionary* opts = nullptr;
  // fftools sets scan_all_pmts for every input (matters for MPEG-TS only).
  av_dict_set(&opts, "scan_all_pmts", "1", 0);
  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, url.c_str(), nullptr, &opts);
  av_dict_free(&opts);  // nothing in between can throw
  if (err < 0) {
    if (quiet) return nullptr;
    throw_open_failure(path, err);
  }
  FormatPtr fmt(raw);
  if (fmt->probe_score < AVPROBE_SCORE_RETRY) {
    if (quiet) return nullptr;
    throw_chance_resemblance(fmt.get());
  }
  // A failure here only means some parameters stay unknown; fftools goes on
  // as long as there are streams.
  avformat_find_stream_info(fmt.get(), nullptr);
  return fmt;
}

// The read position in a caller's buffer, for a custom AVIOContext.
struct MemoryInput {
  std::span<const uint8_t> bytes;
  int64_t pos = 0;

  static int read(void* opaque, uint8_t* buf, int size) {
    auto* in = static_cast<MemoryInput*>(opaque);
    const int64_t left = static_cast<int64_t>(in->bytes.size()) - in->pos;
    if (left <= 0) return AVERROR_EOF;
    const int n = static_cast<int>(std::min<int64_t>(left, size));
    std::memcpy(buf, in->bytes.data() + in->pos, static_cast<size_t>(n));
    in->pos += n;
    return n;
  }
  static int64_t seek(void* opaque, int64_t offset, int whence) {
    auto* in = static_cast<MemoryInput*>(opaque);
    const auto size = static_cast<int64_t>(in->bytes.size());
    if (whence & AVSEEK_SIZE) return size;
    int64_t to = offset;
    switch (whence & ~AVSEEK_FORCE) {
      case SEEK_SET: break;
      case SEEK_CUR: to = in->pos + offset; break;
      case SEEK_END: to = size + offset; break;
      default: return AVERROR(EINVAL);
    }
    if (to < 0) return AVERROR(EINVAL);
    in->pos = to;  // past the end: the next read is EOF, as for a file
    return to;
  }
};

struct AvioFreer {
  void operator()(AVIOContext* c) const {
    if (c != nullptr) av_freep(&c->buffer);
    avio_context_free(&c);
  }
};
using AvioPtr = std::unique_ptr<AVIOContext, AvioFreer>;

// open_input over a buffer: the same checks and probe-score rule, with the
// bytes read through `io` (which must outlive the returned context).
FormatPtr open_memory(MemoryInput& in, AvioPtr& io) {
  silence_ffmpeg_log();
  if (in.bytes.empty()) throw Error("empty file");
  constexpr int kIoBuffer = 1 << 15;  // the file protocol's default
  auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBuffer));
  if (buffer == nullptr) throw Error("out of memory");
  io.reset(avio_alloc_context(buffer, kIoBuffer, 0, &in, &MemoryInput::read, nullptr, &MemoryInput::seek));
  if (!io) {
    av_free(buffer);
    throw Error("out of memory");
  }
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) throw Error("out of memory");
  raw->pb = io.get();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;  // avformat_close_input leaves `io` to us
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "scan_all_pmts", "1", 0);
  int err = avformat_open_input(&raw, "", nullptr, &opts);  // frees raw on failure
  av_dict_free(&opts);
  if (err < 0) {
    const size_t got = std::min(in.bytes.size(), kProbeBytes);
    std::vector<unsigned char> head(kProbeBytes + AVPROBE_PADDING_SIZE, 0);
    std::memcpy(head.data(), in.bytes.data(), got);
    throw_open_failure("", head, static_cast<int>(got), err);
  }
  FormatPtr fmt(raw);
  if (fmt->probe_score < AVPROBE_SCORE_RETRY) {
    throw_chance_resemblance(fmt.get());
  }
  avformat_find_stream_info(fmt.get(), nullptr);
  return fmt;
}

// Opens a URL like open_input a file. libavformat's error for content it
// does not recognise is INVALIDDATA (EINVAL from some demuxers' probes); any
// other is the network's or the server's.
FormatPtr open_url(const std::string& url, const NetOptions& net) {
  silence_ffmpeg_log();
  const std::string timeout_us = std::to_string(static_cast<int64_t>(net.timeout_seconds * 1e6));
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "scan_all_pmts", "1", 0);
  av_dict_set(&opts, "protocol_whitelist", "http,https,tcp,tls,httpproxy,crypto", 0);
  av_dict_set(&opts, "rw_timeout", timeout_us.c_str(), 0);  // every read and write
  av_dict_set(&opts, "timeout", timeout_us.c_str(), 0);     // tcp: the connect too
  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, url.c_str(), nullptr, &opts);
  av_dict_free(&opts);
  if (err == AVERROR_INVALIDDATA || err == AVERROR(EINVAL)) throw NotMedia("not a media file");
  if (err < 0) throw Error("cannot open: " + av_error_text(err));
  FormatPtr fmt(raw);
  avformat_find_stream_info(fmt.get(), nullptr);
  return fmt;
}

// fftools map_auto_audio: the audio stream with the highest score, ties going
// to the lower index; -1 when none scores above zero.
int pick_audio_stream(const AVFormatContext* fmt) {
  int best = -1;
  int64_t best_score = 0;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVStream* st = fmt->streams[i];
    if (st->codecpar->codec_type != AVMEDIA_TYPE_AUDIO) continue;
    int64_t score = st->codecpar->ch_layout.nb_channels +
                    100000000LL * ((st->event_flags & AVSTREAM_EVENT_FLAG_NEW_PACKETS) != 0) +
                    5000000LL * ((st->disposition & AV_DISPOSITION_DEFAULT) != 0);
    if (score > best_score) {
      best_score = score;
      best = static_cast<int>(i);
    }
  }
  return best;
}

// Accumulates the output as float (int16 / 32768, openai/whisper audio.py).
// The first reservation comes from the container's duration, but never more
// than the file could plausibly expand to, so a lying header cannot make us
// allocate gigabytes up front; beyond that the buffer grows by half of itself.
// A streaming reader drains it as it goes (consume), so it then holds only
// what one packet decodes to.
class PcmSink {
 public:
  void reserve_for(double seconds, int64_t file_bytes) {
    if (!(seconds > 0)) return;
    double want = seconds * kSampleRate * 1.01 + kSampleRate;
    // 16 kHz float is 64 kB/s; 256x the file size allows compressed inputs
    // down to ~2 kb/s.
    double cap = static_cast<double>(file_bytes) * 256.0 / sizeof(float);
    samples_.reserve(static_cast<std::size_t>(std::min(want, cap)));
  }

  void append(const int16_t* s, std::size_t n) {
    if (samples_.size() + n > samples_.capacity()) {
      std::size_t grow = std::max<std::size_t>(samples_.capacity() / 2, 60 * kSampleRate);
      samples_.reserve(samples_.size() + std::max(n, grow));
    }
    for (std::size_t i = 0; i < n; ++i) samples_.push_back(static_cast<float>(s[i]) / 32768.0f);
    total_ += static_cast<int64_t>(n);
  }

  std::size_t available() const { return samples_.size() - read_; }
  int64_t total() const { return total_; }

  // Moves up to out.size() waiting samples into `out`.
  std::size_t consume(std::span<float> out) {
    const std::size_t n = std::min(out.size(), available());
    std::copy_n(samples_.begin() + static_cast<std::ptrdiff_t>(read_), n, out.begin());
    read_ += n;
    if (read_ == samples_.size()) {
      samples_.clear();
      read_ = 0;
    }
    return n;
  }

  std::vector<float> take() {
    // Give back a large over-reservation (header duration longer than the
    // decodable audio, e.g. a truncated MP3).
    if (samples_.capacity() - samples_.size() > samples_.size() / 4 + kSampleRate) {
      samples_.shrink_to_fit();
    }
    return std::move(samples_);
  }

 private:
  std::vector<float> samples_;
  std::size_t read_ = 0;  // samples_[0, read_) were consumed
  int64_t total_ = 0;     // samples appended since the start
};

// The auto-inserted aresample filter: any decoded format -> s16 mono 16 kHz.
class Resampler {
 public:
  // Converts one decoded frame, (re)building the converter when the frame's
  // parameters differ from the previous frame's.
  void push(const AVFrame* frame, PcmSink& sink) {
    Layout layout;
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
      av_channel_layout_default(&layout.v, frame->ch_layout.nb_channels);
    } else if (av_channel_layout_copy(&layout.v, &frame->ch_layout) < 0) {
      throw Error("out of memory");
    }
    if (!swr_ || frame->format != in_format_ || frame->sample_rate != in_rate_ ||
        av_channel_layout_compare(&layout.v, &in_layout_.v) != 0) {
      configure(frame, layout.v);
    }
    convert(const_cast<const uint8_t**>(frame->extended_data), frame->nb_samples, sink);
  }

  // swr_convert with no input: the resampler's delay line, as aresample
  // flushes it when its input reaches EOF.
  void flush(PcmSink& sink) {
    if (!swr_) return;
    for (int guard = 0; guard < 1024; ++guard) {
      if (convert(nullptr, 0, sink) <= 0) break;
    }
  }

 private:
  void configure(const AVFrame* frame, AVChannelLayout& layout) {  // swr 5.1 takes non-const
    if (frame->sample_rate <= 0 || layout.nb_channels <= 0) {
      throw Error("cannot decode audio: invalid sample rate or channel count");
    }
    // swr_init's filter grows with the rate ratio: a 91-byte WAV header
    // claiming 2 GHz held swr_init over 15 s and 1.3 GB (tests/fuzz/audio_fuzz.cc).
    // No audio in use goes past 768 kHz.
    constexpr int kMaxSampleRate = 768000;
    if (frame->sample_rate > kMaxSampleRate) {
      throw Error("cannot decode audio: sample rate " + std::to_string(frame->sample_rate) + " Hz is over " +
                  std::to_string(kMaxSampleRate));
    }
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    SwrContext* raw = nullptr;
    int err = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_S16, kSampleRate, &layout,
                                  static_cast<AVSampleFormat>(frame->format), frame->sample_rate, 0, nullptr);
    SwrPtr swr(raw);
    if (err >= 0) err = swr_init(swr.get());
    if (err < 0) throw Error("cannot convert audio to 16 kHz mono: " + av_error_text(err));
    swr_ = std::move(swr);
    in_format_ = frame->format;
    in_rate_ = frame->sample_rate;
    av_channel_layout_uninit(&in_layout_.v);
    if (av_channel_layout_copy(&in_layout_.v, &layout) < 0) throw Error("out of memory");
  }

  int convert(const uint8_t** in, int n_in, PcmSink& sink) {
    // Room for everything swr can emit now, so the output buffer never holds
    // input back (aresample allocates n_in * ratio * 2 + 256 for the same reason).
    int64_t room = swr_get_out_samples(swr_.get(), n_in);
    room = std::max<int64_t>(room, static_cast<int64_t>(n_in) * kSampleRate / in_rate_ * 2 + 256);
    if (room > (1 << 26)) throw Error("cannot decode audio: frame too large");
    if (static_cast<int64_t>(out_.size()) < room) out_.resize(static_cast<std::size_t>(room));
    uint8_t* out_planes[1] = {reinterpret_cast<uint8_t*>(out_.data())};
    int n = swr_convert(swr_.get(), out_planes, static_cast<int>(room), in, n_in);
    if (n < 0) throw Error("cannot convert audio to 16 kHz mono: " + av_error_text(n));
    sink.append(out_.data(), static_cast<std::size_t>(n));
    return n;
  }

  SwrPtr swr_;
  int in_format_ = -1;
  int in_rate_ = 0;
  Layout in_layout_;
  std::vector<int16_t> out_;
};

// Decode calls that returned a frame / failed, as fftools check_decode_result
// counts them for its max_error_rate (2/3) check.
struct DecodeStats {
  int64_t ok = 0;
  int64_t failed = 0;
};

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// How a Decoder treats its input.
struct StreamSource {
  int64_t size_bytes = 0;     // bounds the first reservation (0: unknown)
  bool strict_reads = false;  // a read error fails (a URL) instead of ending the audio (a file)
};

// The chosen audio stream of an open container, decoded packet by packet
// into a PcmSink, like fftools' input loop.
class Decoder {
 public:
  Decoder(FormatPtr fmt, const StreamSource& source) : fmt_(std::move(fmt)), source_(source) {
    open_decoder();
    pkt_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    if (!pkt_ || !frame_) throw Error("out of memory");
  }

  PcmSink& sink() { return sink_; }
  bool done() const { return done_; }

  // The container's idea of the stream's length in seconds (0: unknown).
  double duration_hint() const {
    const AVStream* stream = fmt_->streams[index_];
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0)
      return static_cast<double>(stream->duration) * av_q2d(stream->time_base);
    if (fmt_->duration != AV_NOPTS_VALUE && fmt_->duration > 0)
      return static_cast<double>(fmt_->duration) / AV_TIME_BASE;
    return 0;
  }

  // Reads and decodes one packet; at the end of the input drains the
  // decoder and the resampler and sets done(). fftools treats every read
  // error as the end of the input.
  void step() {
    if (done_) return;
    if (av_read_frame(fmt_.get(), pkt_.get()) >= 0) {
      if (pkt_->stream_index == index_) decode_packet(pkt_.get());
      av_packet_unref(pkt_.get());
      return;
    }
    finish();
  }

 private:
  void open_decoder() {
    index_ = pick_audio_stream(fmt_.get());
    if (index_ < 0) throw NotMedia("no audio stream");
    AVStream* stream = fmt_->streams[index_];
    for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
      if (static_cast<int>(i) != index_) fmt_->streams[i]->discard = AVDISCARD_ALL;
    }
    const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
    if (codec == nullptr) {
      throw Error(std::string("unsupported audio codec: ") + avcodec_get_name(stream->codecpar->codec_id));
    }
    dec_.reset(avcodec_alloc_context3(codec));
    if (!dec_) throw Error("out of memory");
    int err = avcodec_parameters_to_context(dec_.get(), stream->codecpar);
    if (err < 0) throw Error("cannot open " + std::string(codec->name) + " decoder: " + av_error_text(err));
    if (dec_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC && dec_->ch_layout.nb_channels > 0) {
      int n = dec_->ch_layout.nb_channels;
      av_channel_layout_uninit(&dec_->ch_layout);
      av_channel_layout_default(&dec_->ch_layout, n);
    }
    dec_->pkt_timebase = stream->time_base;
    AVDictionary* dopts_raw = nullptr;
    av_dict_set(&dopts_raw, "threads", "auto", 0);  // -threads 0
    err = avcodec_open2(dec_.get(), codec, &dopts_raw);
    av_dict_free(&dopts_raw);
    if (err < 0) throw Error("cannot open " + std::string(codec->name) + " decoder: " + av_error_text(err));
  }

  // Sends one packet (null: drain) and converts every frame it yields, like
  // fftools process_input_packet/decode_audio.
  void decode_packet(const AVPacket* pkt) {
    int err = avcodec_send_packet(dec_.get(), pkt);
    if (err < 0 && err != AVERROR_EOF) {
      ++stats_.failed;  // a damaged packet is dropped; decoding goes on
      return;
    }
    for (;;) {
      err = avcodec_receive_frame(dec_.get(), frame_.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
      if (err < 0) {
        ++stats_.failed;
        return;
      }
      ++stats_.ok;
      resampler_.push(frame_.get(), sink_);
      av_frame_unref(frame_.get());
    }
  }

  void finish() {
    done_ = true;
    // A stream cut off by the network is not the end of its audio. The I/O
    // context keeps the transfer's error (demuxers may report it as EOF);
    // content errors, which end a file's audio, stay as they are.
    if (source_.strict_reads && fmt_->pb != nullptr && fmt_->pb->error < 0 && fmt_->pb->error != AVERROR_EOF)
      throw Error("transfer failed: " + av_error_text(fmt_->pb->error));
    decode_packet(nullptr);
    resampler_.flush(sink_);
    // ffmpeg.c main(): exit status 69 when failed decode calls exceed
    // max_error_rate (2/3) of all counted calls; whisper then raises.
    if (3 * stats_.failed > 2 * (stats_.ok + stats_.failed)) {
      throw Error("cannot decode audio: " + std::to_string(stats_.failed) + " of " +
                  std::to_string(stats_.ok + stats_.failed) + " packets are damaged");
    }
    // A stream that decodes to nothing (a WAV header without data, a video
    // whose audio track is empty) is an outcome to report, not an empty
    // transcript marked done (openai's load_audio would return an empty array).
    if (sink_.total() == 0) throw Error("no audio: the audio stream decodes to 0 samples");
  }

  FormatPtr fmt_;
  StreamSource source_;
  int index_ = -1;
  CodecPtr dec_;
  PacketPtr pkt_;
  FramePtr frame_;
  Resampler resampler_;
  DecodeStats stats_;
  PcmSink sink_;
  bool done_ = false;
};

std::vector<float> decode_stream(FormatPtr fmt, const StreamSource& source) {
  Decoder decoder(std::move(fmt), source);
  decoder.sink().reserve_for(decoder.duration_hint(), source.size_bytes);
  while (!decoder.done()) decoder.step();
  return decoder.sink().take();
}

}  // namespace

std::vector<float> load_audio(const std::string& path) {
  try {
    return decode_stream(open_input(path, /*quiet=*/false), {file_size(path), false});
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while decoding audio");
  }
}

std::vector<float> load_audio_memory(std::span<const uint8_t> bytes) {
  try {
    MemoryInput in{bytes};
    AvioPtr io;  // declared before the format context, so it outlives it
    FormatPtr fmt = open_memory(in, io);
    return decode_stream(std::move(fmt), {static_cast<int64_t>(bytes.size()), false});
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while decoding audio");
  }
}

std::vector<float> load_audio_url(const std::string& url, const NetOptions& net) {
  try {
    FormatPtr fmt = open_url(url, net);
    int64_t size = fmt->pb != nullptr ? avio_size(fmt->pb) : 0;  // Content-Length, when sent
    return decode_stream(std::move(fmt), {std::max<int64_t>(size, 0), true});
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while decoding audio");
  }
}

struct AudioReader::Impl {
  Impl(FormatPtr fmt, const StreamSource& source) : decoder(std::move(fmt), source) {}
  Decoder decoder;
};

AudioReader::AudioReader(const std::string& path) {
  try {
    impl_ = std::make_unique<Impl>(open_input(path, /*quiet=*/false), StreamSource{file_size(path), false});
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while decoding audio");
  }
}

AudioReader::~AudioReader() = default;
AudioReader::AudioReader(AudioReader&&) noexcept = default;
AudioReader& AudioReader::operator=(AudioReader&&) noexcept = default;

std::size_t AudioReader::read(std::span<float> out) {
  Decoder& d = impl_->decoder;
  std::size_t n = 0;
  try {
    while (n < out.size()) {
      n += d.sink().consume(out.subspan(n));
      if (n == out.size() || d.done()) break;
      d.step();
    }
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while decoding audio");
  }
  return n;
}

}  // namespace wisp::audio
