#pragma once
// Writes RGB frames as an H.264 MP4 (libx264 through libavcodec), the format
// of the reference datasets' videos. Used by the SynthSign generator and tests.
#include <cstdint>
#include <filesystem>
#include <memory>

namespace slt::video {

struct VideoWriterOptions {
  int width = 224;
  int height = 224;
  int fps = 25;
  int crf = 20;          // libx264 constant rate factor (lower: better quality)
  int threads = 1;       // encoder threads; generators run one video per core instead
};

/// Encodes frames into `path`; the file is complete once `finish()` returns.
///
///     VideoWriter out("a.mp4", {.width = 224, .height = 224, .fps = 25});
///     out.write(rgb);   // width * height * 3 bytes, row-major RGB24
///     out.finish();
class VideoWriter {
 public:
  VideoWriter(const std::filesystem::path& path, const VideoWriterOptions& options);
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write(const uint8_t* rgb);
  void finish();  // flushes the encoder and writes the MP4 index
  int64_t frames_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slt::video
