// wisp/audio/probe.cc: what a file's content is, by libavformat's probe.
#include "audio/probe.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/log.h>
}

namespace wisp::audio {
namespace {

// ID3v2 tag size (header and footer included) at the start of `buf`, 0 if none.
size_t id3v2_size(const unsigned char* buf, size_t n) {
  if (n < 10 || std::memcmp(buf, "ID3", 3) != 0) return 0;
  size_t size = (size_t{buf[6]} & 0x7f) << 21 | (size_t{buf[7]} & 0x7f) << 14 | (size_t{buf[8]} & 0x7f) << 7 |
                (size_t{buf[9]} & 0x7f);
  return size + 10 + ((buf[5] & 0x10) ? 10 : 0);
}

// Demuxers of still (or animated) images and ANSI art: a video stream, but
// not media anyone wants transcribed.
bool is_image_format(const char* name) {
  std::string n(name);
  n = n.substr(0, n.find(','));
  if (n.size() > 5 && n.compare(n.size() - 5, 5, "_pipe") == 0) return true;
  return n == "image2" || n == "gif" || n == "apng" || n == "ico" || n == "tty";
}

}  // namespace

MediaProbe probe_media(const std::string& path) {
  MediaProbe r;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return r;
  av_log_set_level(AV_LOG_QUIET);
  // The content alone decides (the probe gets no file name), over the first
  // MiB as libavformat's default probe size; an ID3v2 tag (cover art can be
  // larger than that) is skipped first, as av_probe_input_format3 would.
  constexpr size_t kProbeBytes = 1 << 20;
  std::vector<unsigned char> buf(kProbeBytes + AVPROBE_PADDING_SIZE, 0);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(kProbeBytes));
  size_t got = static_cast<size_t>(in.gcount());
  size_t id3 = id3v2_size(buf.data(), got);
  if (id3 >= got / 2 && id3 < static_cast<size_t>(st.st_size)) {
    in.clear();
    in.seekg(static_cast<std::streamoff>(id3));
    std::fill(buf.begin(), buf.end(), 0);
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(kProbeBytes));
    got = static_cast<size_t>(in.gcount());
  }
  AVProbeData pd{};
  pd.filename = "";
  pd.buf = buf.data();
  pd.buf_size = static_cast<int>(got);
  int score = 0;
  const AVInputFormat* fmt = av_probe_input_format3(&pd, 1, &score);
  if (fmt == nullptr || score < AVPROBE_SCORE_RETRY) return r;

  AVFormatContext* ctx = nullptr;
  std::string url = "file:" + path;  // a ':' in the name must not select a protocol
  if (avformat_open_input(&ctx, url.c_str(), fmt, nullptr) < 0) {
    // A recognised container that does not open: media with a broken
    // header; decoding names the cause, which the user wants to see.
    r.media = !is_image_format(fmt->name);
    return r;
  }
  if (ctx->nb_streams == 0) avformat_find_stream_info(ctx, nullptr);
  bool audio = false, video = false;
  for (unsigned i = 0; i < ctx->nb_streams; ++i) {
    const AVCodecParameters* cp = ctx->streams[i]->codecpar;
    audio |= cp->codec_type == AVMEDIA_TYPE_AUDIO;
    video |= cp->codec_type == AVMEDIA_TYPE_VIDEO && !(ctx->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC);
  }
  r.audio = audio;
  r.media = audio || (video && !is_image_format(ctx->iformat->name));
  // Duration from the header alone (avformat_find_stream_info would decode
  // packets: too slow for thousands of files): the container's, else the
  // longest stream's, else size / bit rate.
  if (ctx->duration != AV_NOPTS_VALUE && ctx->duration > 0) {
    r.duration = static_cast<double>(ctx->duration) / AV_TIME_BASE;
  } else {
    int64_t bit_rate = ctx->bit_rate;
    for (unsigned i = 0; i < ctx->nb_streams; ++i) {
      const AVStream* s = ctx->streams[i];
      if (s->duration != AV_NOPTS_VALUE && s->duration > 0)
        r.duration = std::max(r.duration, static_cast<double>(s->duration) * av_q2d(s->time_base));
      if (s->codecpar->codec_type == AVMEDIA_TYPE_AUDIO && bit_rate <= 0) bit_rate = s->codecpar->bit_rate;
    }
    if (r.duration <= 0 && bit_rate > 0)
      r.duration = static_cast<double>(st.st_size) * 8 / static_cast<double>(bit_rate);
  }
  avformat_close_input(&ctx);
  return r;
}

}  // namespace wisp::audio
