#include "slt/video/reader.h"

#include "slt/video/ffmpeg.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cstring>

namespace fs = std::filesystem;

namespace slt::video {

struct VideoReader::Impl {
  std::filesystem::path path;
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  SwsContext* scaler = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  AVFrame* host_frame = nullptr;  // a GPU frame copied back to the host
  AVBufferRef* hardware_device = nullptr;
  AVPixelFormat hardware_format = AV_PIX_FMT_NONE;
  int stream = -1;
  AVRational time_base{0, 1};
  bool flushing = false, finished = false;
  VideoInfo info;
  // libswscale may write past the end of unaligned rows: it converts into an
  // aligned image, copied row by row into the caller's exact-size buffer.
  uint8_t* aligned[4] = {nullptr, nullptr, nullptr, nullptr};
  int aligned_stride[4] = {0, 0, 0, 0};
  int aligned_w = 0, aligned_h = 0;

  [[noreturn]] void fail(const std::string& what, int code) const {
    throw VideoError("cannot decode '" + path.string() + "': " + what + (code ? " (" + av_error_text(code) + ")" : ""));
  }

  ~Impl() {
    av_freep(&aligned[0]);
    sws_freeContext(scaler);
    av_frame_free(&frame);
    av_frame_free(&host_frame);
    av_packet_free(&packet);
    avcodec_free_context(&codec);
    av_buffer_unref(&hardware_device);
    avformat_close_input(&format);
  }

  // Decoding on the GPU when the codec has a CUDA hwaccel and a device opens;
  // libavcodec then asks get_format for the hardware pixel format.
  void try_cuda(const AVCodec* decoder) {
    for (int i = 0;; ++i) {
      const AVCodecHWConfig* config = avcodec_get_hw_config(decoder, i);
      if (!config) return;
      if ((config->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) && config->device_type == AV_HWDEVICE_TYPE_CUDA) {
        hardware_format = config->pix_fmt;
        break;
      }
    }
    if (av_hwdevice_ctx_create(&hardware_device, AV_HWDEVICE_TYPE_CUDA, nullptr, nullptr, 0) < 0) {
      hardware_format = AV_PIX_FMT_NONE;
      return;
    }
    codec->hw_device_ctx = av_buffer_ref(hardware_device);
    codec->opaque = this;
    codec->get_format = [](AVCodecContext* context, const AVPixelFormat* offered) {
      const auto* self = static_cast<const Impl*>(context->opaque);
      for (const AVPixelFormat* f = offered; *f != AV_PIX_FMT_NONE; ++f)
        if (*f == self->hardware_format) return *f;
      return offered[0];  // this stream's profile has no hwaccel: the software decoder's format
    };
  }

  // The frame to convert: `frame` itself, or its copy on the host.
  const AVFrame* host_view() {
    if (frame->format != hardware_format) return frame;  // decoded frames never have AV_PIX_FMT_NONE
    if (!host_frame) host_frame = av_frame_alloc();
    av_frame_unref(host_frame);
    if (int code = av_hwframe_transfer_data(host_frame, frame, 0); code < 0) fail("cannot copy a GPU frame to the host", code);
    return host_frame;
  }

  // The next decoded frame into `frame`; false (then always) at the end.
  bool decode_next() {
    if (finished) return false;
    finished = !receive();
    return !finished;
  }

  // The decoder's next frame into `frame`; false at the end of the stream.
  bool receive() {
    while (true) {
      int got = avcodec_receive_frame(codec, frame);
      if (got == 0) return true;
      if (got == AVERROR_EOF) return false;
      if (got != AVERROR(EAGAIN)) fail("decoding failed", got);
      if (flushing) return false;
      int read = av_read_frame(format, packet);
      if (read == AVERROR_EOF) {
        flushing = true;
        avcodec_send_packet(codec, nullptr);
        continue;
      }
      if (read < 0) fail("reading failed", read);
      if (packet->stream_index == stream) {
        int sent = avcodec_send_packet(codec, packet);
        if (sent < 0 && sent != AVERROR(EAGAIN)) {
          av_packet_unref(packet);
          fail("corrupt packet", sent);
        }
      }
      av_packet_unref(packet);
    }
  }
};

bool cuda_decoding_available() {
  static const bool available = [] {
    AVBufferRef* device = nullptr;
    const bool opened = av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_CUDA, nullptr, nullptr, 0) >= 0;
    av_buffer_unref(&device);
    return opened;
  }();
  return available;
}

VideoReader::VideoReader(const std::filesystem::path& path, int threads, bool cuda) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.path = path;
  // A FIFO or device would block the demuxer forever; a folder is no video.
  if (std::error_code ec; fs::exists(path, ec) && !fs::is_regular_file(path, ec)) d.fail("not a regular file", 0);
  if (int code = avformat_open_input(&d.format, path.c_str(), nullptr, nullptr); code < 0) d.fail("cannot open", code);
  if (int code = avformat_find_stream_info(d.format, nullptr); code < 0) d.fail("no stream information", code);
  // PyAV's container.decode(video=0): the first video stream.
  for (unsigned i = 0; i < d.format->nb_streams && d.stream < 0; ++i)
    if (d.format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) d.stream = static_cast<int>(i);
  if (d.stream < 0) d.fail("no video stream", 0);
  AVStream* stream = d.format->streams[d.stream];
  const AVCodec* decoder = avcodec_find_decoder(stream->codecpar->codec_id);
  if (!decoder) d.fail("no decoder for " + std::string(avcodec_get_name(stream->codecpar->codec_id)), 0);
  d.codec = avcodec_alloc_context3(decoder);
  avcodec_parameters_to_context(d.codec, stream->codecpar);
  if (cuda) d.try_cuda(decoder);
  // NVDEC decodes one frame at a time; frame threads are for the CPU decoder.
  d.codec->thread_count = d.hardware_format != AV_PIX_FMT_NONE ? 1 : threads;
  d.codec->thread_type = FF_THREAD_FRAME;
  if (int code = avcodec_open2(d.codec, decoder, nullptr); code < 0) d.fail("cannot open the decoder", code);
  d.packet = av_packet_alloc();
  d.frame = av_frame_alloc();
  d.time_base = stream->time_base;
  d.info.width = d.codec->width;
  d.info.height = d.codec->height;
  AVRational rate = stream->avg_frame_rate;
  d.info.fps = rate.den ? av_q2d(rate) : 0;
  d.info.average_rate = rate.den == 1 ? std::to_string(rate.num) : std::to_string(rate.num) + "/" + std::to_string(rate.den);
  const char* format_name = av_get_pix_fmt_name(d.codec->pix_fmt);
  d.info.pixel_format = format_name ? format_name : "?";
  d.info.stream_frames = stream->nb_frames;
  if (d.info.width <= 0 || d.info.height <= 0) d.fail("the video stream has no frame size", 0);
}

VideoReader::~VideoReader() = default;

const VideoInfo& VideoReader::info() const { return impl_->info; }

bool VideoReader::hardware_decoding() const { return impl_->hardware_format != AV_PIX_FMT_NONE; }

bool VideoReader::skip() {
  if (!impl_->decode_next()) return false;
  av_frame_unref(impl_->frame);
  return true;
}

bool VideoReader::next(RgbFrame& out) {
  Impl& d = *impl_;
  if (!d.decode_next()) return false;
  const AVFrame* image = d.host_view();
  const int w = image->width, h = image->height;
  // PyAV's to_rgb(): same size, SWS_BILINEAR, libswscale's default matrix.
  d.scaler = sws_getCachedContext(d.scaler, w, h, static_cast<AVPixelFormat>(image->format), w, h, AV_PIX_FMT_RGB24,
                                  SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (!d.scaler) d.fail("no conversion to RGB", 0);
  if (w != d.aligned_w || h != d.aligned_h) {
    av_freep(&d.aligned[0]);
    if (av_image_alloc(d.aligned, d.aligned_stride, w, h, AV_PIX_FMT_RGB24, 64) < 0) d.fail("out of memory", 0);
    d.aligned_w = w;
    d.aligned_h = h;
  }
  sws_scale(d.scaler, image->data, image->linesize, 0, h, d.aligned, d.aligned_stride);
  out.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    std::memcpy(out.rgb.data() + static_cast<size_t>(y) * w * 3, d.aligned[0] + static_cast<size_t>(y) * d.aligned_stride[0],
                static_cast<size_t>(w) * 3);
  int64_t pts = d.frame->pts != AV_NOPTS_VALUE ? d.frame->pts : d.frame->best_effort_timestamp;
  out.pts_seconds = static_cast<double>(pts) * av_q2d(d.time_base);
  av_frame_unref(d.frame);
  return true;
}

}  // namespace slt::video
