#pragma once
// Decoding a video file into RGB frames as the reference's PyAV reader does:
// every frame the decoder outputs, in output order, converted with
// libswscale's default colour matrix (BT.601, limited range) whatever the
// stream's tags say, so frames match PyAV's frame.to_rgb() byte for byte.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "slt/errors.h"

namespace slt::video {

// A video that cannot be opened or decoded; names the file and the reason.
class VideoError : public UserError {
 public:
  using UserError::UserError;
};

struct VideoInfo {
  int width = 0, height = 0;
  double fps = 0;            // float(stream.average_rate), what the sampler uses
  std::string average_rate;  // as a fraction, "30000/1001"
  std::string pixel_format;
  int64_t stream_frames = 0;  // the container's count (may differ from what decodes)
};

struct RgbFrame {
  std::vector<uint8_t> rgb;  // height x width x 3, row-major
  double pts_seconds = 0;    // float(pts * time_base)
};

// Whether libavcodec can open a CUDA device here (checked once per process).
bool cuda_decoding_available();

/// Frames of the first video stream.
///   VideoReader reader("clip.mp4");
///   for (RgbFrame frame; reader.next(frame);) use(frame.rgb);
class VideoReader {
 public:
  // `threads`: decoder threads (0: libavcodec's choice). `cuda`: decode on
  // the GPU (NVDEC through libavcodec's hwaccel) when the FFmpeg build, the
  // machine and the codec allow it, else on the CPU; frames come back to the
  // host for the same RGB conversion either way.
  explicit VideoReader(const std::filesystem::path& path, int threads = 0, bool cuda = false);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;
  // Whether frames are decoded on the GPU.
  bool hardware_decoding() const;
  // The next frame in decoder output order; false after the last.
  bool next(RgbFrame& frame);
  // Decodes the next frame without converting it to RGB (the decoder's own
  // rate, which bench_video compares the whole clip pipeline against).
  bool skip();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slt::video
