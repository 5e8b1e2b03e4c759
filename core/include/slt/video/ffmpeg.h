#pragma once
// The FFmpeg libraries slt's video code is linked against. This module (the
// `slt_video` library) is the only part of slt that links FFmpeg: neither the
// plugin API (slt_core) nor the runtime does.
#include <filesystem>
#include <optional>
#include <string>

namespace slt::video {

struct FfmpegInfo {
  std::string version;       // av_version_info()
  std::string h264_decoder;  // libavcodec's H.264 decoder; empty when it has none
};

FfmpegInfo ffmpeg_info();

// FFmpeg's text for an error code (av_strerror).
std::string av_error_text(int code);

// The container's duration in seconds (what ffprobe reports); nullopt when
// the file cannot be opened or states none.
std::optional<double> video_duration(const std::filesystem::path& video);

}  // namespace slt::video
