#include "slt/video/writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <string>

#include "slt/video/ffmpeg.h"
#include "slt/video/reader.h"

namespace slt::video {

struct VideoWriter::Impl {
  std::filesystem::path path;
  VideoWriterOptions options;
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVStream* stream = nullptr;
  SwsContext* scaler = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  int64_t written = 0;
  bool finished = false;

  [[noreturn]] void fail(const std::string& what, int code) const {
    throw VideoError("cannot write '" + path.string() + "': " + what + (code ? " (" + av_error_text(code) + ")" : ""));
  }

  void check(int code, const char* what) const {
    if (code < 0) fail(what, code);
  }

  ~Impl() {
    if (format && !(format->oformat->flags & AVFMT_NOFILE)) avio_closep(&format->pb);
    avformat_free_context(format);
    avcodec_free_context(&codec);
    sws_freeContext(scaler);
    av_frame_free(&frame);
    av_packet_free(&packet);
  }

  void open() {
    // libx264 reports its statistics at info level, on every file.
    if (av_log_get_level() > AV_LOG_WARNING) av_log_set_level(AV_LOG_WARNING);
    check(avformat_alloc_output_context2(&format, nullptr, "mp4", path.c_str()), "no MP4 muxer");
    const AVCodec* encoder = avcodec_find_encoder(AV_CODEC_ID_H264);
    if (!encoder) fail("this FFmpeg build has no H.264 encoder (libx264)", 0);
    stream = avformat_new_stream(format, nullptr);
    codec = avcodec_alloc_context3(encoder);
    if (!stream || !codec) fail("out of memory", 0);
    codec->width = options.width;
    codec->height = options.height;
    codec->pix_fmt = AV_PIX_FMT_YUV420P;
    codec->time_base = AVRational{1, options.fps};
    codec->framerate = AVRational{options.fps, 1};
    codec->gop_size = 2 * options.fps;
    codec->max_b_frames = 0;  // uniform quality from frame to frame: no B-frame flicker
    codec->thread_count = options.threads;
    if (format->oformat->flags & AVFMT_GLOBALHEADER) codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(codec->priv_data, "preset", "veryfast", 0);
    av_opt_set(codec->priv_data, "crf", std::to_string(options.crf).c_str(), 0);
    check(avcodec_open2(codec, encoder, nullptr), "cannot open the H.264 encoder");
    check(avcodec_parameters_from_context(stream->codecpar, codec), "codec parameters");
    stream->time_base = codec->time_base;
    stream->avg_frame_rate = codec->framerate;
    check(avio_open(&format->pb, path.c_str(), AVIO_FLAG_WRITE), "cannot open the file");
    check(avformat_write_header(format, nullptr), "cannot write the MP4 header");

    frame = av_frame_alloc();
    packet = av_packet_alloc();
    if (!frame || !packet) fail("out of memory", 0);
    frame->format = codec->pix_fmt;
    frame->width = codec->width;
    frame->height = codec->height;
    check(av_frame_get_buffer(frame, 0), "frame buffer");
    scaler = sws_getContext(options.width, options.height, AV_PIX_FMT_RGB24, options.width, options.height,
                            AV_PIX_FMT_YUV420P, SWS_BILINEAR, nullptr, nullptr, nullptr);
    if (!scaler) fail("no RGB -> YUV converter", 0);
  }

  // Sends `input` (nullptr: flush) and writes every packet the encoder returns.
  void encode(AVFrame* input) {
    check(avcodec_send_frame(codec, input), "encoding");
    while (true) {
      int code = avcodec_receive_packet(codec, packet);
      if (code == AVERROR(EAGAIN) || code == AVERROR_EOF) return;
      check(code, "encoding");
      av_packet_rescale_ts(packet, codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      check(av_interleaved_write_frame(format, packet), "writing a packet");
    }
  }
};

VideoWriter::VideoWriter(const std::filesystem::path& path, const VideoWriterOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->options = options;
  impl_->open();
}

VideoWriter::~VideoWriter() = default;

void VideoWriter::write(const uint8_t* rgb) {
  Impl& w = *impl_;
  if (w.finished) w.fail("write after finish()", 0);
  w.check(av_frame_make_writable(w.frame), "frame buffer");
  const uint8_t* source[1] = {rgb};
  const int source_stride[1] = {3 * w.options.width};
  sws_scale(w.scaler, source, source_stride, 0, w.options.height, w.frame->data, w.frame->linesize);
  w.frame->pts = w.written++;
  w.encode(w.frame);
}

void VideoWriter::finish() {
  Impl& w = *impl_;
  if (w.finished) return;
  w.finished = true;
  w.encode(nullptr);
  w.check(av_write_trailer(w.format), "cannot write the MP4 index");
}

int64_t VideoWriter::frames_written() const { return impl_->written; }

}  // namespace slt::video
