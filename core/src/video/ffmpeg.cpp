#include "slt/video/ffmpeg.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
}

namespace slt::video {

FfmpegInfo ffmpeg_info() {
  FfmpegInfo info;
  info.version = av_version_info();
  if (const AVCodec* h264 = avcodec_find_decoder(AV_CODEC_ID_H264)) info.h264_decoder = h264->name;
  return info;
}

std::string av_error_text(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof text);
  return text;
}

std::optional<double> video_duration(const std::filesystem::path& video) {
  AVFormatContext* context = nullptr;
  std::optional<double> seconds;
  if (avformat_open_input(&context, video.c_str(), nullptr, nullptr) == 0 &&
      avformat_find_stream_info(context, nullptr) >= 0 && context->duration != AV_NOPTS_VALUE)
    seconds = static_cast<double>(context->duration) / AV_TIME_BASE;
  if (context) avformat_close_input(&context);
  return seconds;
}

}  // namespace slt::video
