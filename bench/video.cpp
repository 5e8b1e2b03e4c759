// Video input: decode + sample + normalise + crop (slt-extract's clip
// pipeline, 128-frame windows) against the bare libavcodec decode rate of the
// same file in the same run. The target: at least 60% of the bare rate.
//   bench_video [VIDEO] [--repeat 5]
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "slt/runtime/threads.h"
#include "slt/video/clips.h"
#include "slt/video/reader.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path video =
      std::filesystem::path(SLT_FIXTURES_DIR) / "hiera" / "DATASET" / "videos" / "12345" / "1234567-tsrc2-2997fps-14s70.mp4";
  int repeat = 5;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--repeat" && i + 1 < argc) repeat = std::stoi(argv[++i]);
    else video = arg;
  }
  slt::configure_threads(std::nullopt);  // as slt-extract with one worker: every usable CPU
  slt::video::SamplingOptions options;  // the reference defaults: 128 frames, rate 2, 25 fps
  double bare = 0, rgb = 0, pipeline = 0;
  int64_t frames = 0, clips = 0;
  slt::video::Clip clip;  // refilled in place, as one clip stream does from its second clip on
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    slt::video::VideoReader reader(video);
    int64_t n = 0;
    while (reader.skip()) ++n;
    bare += seconds_since(start);
    frames += n;
    start = std::chrono::steady_clock::now();
    slt::video::VideoReader converting(video);
    for (slt::video::RgbFrame frame; converting.next(frame);) {
    }
    rgb += seconds_since(start);
    start = std::chrono::steady_clock::now();
    slt::video::VideoReader source(video);
    slt::video::ClipStream stream(source, options);
    while (stream.next(clip)) ++clips;
    pipeline += seconds_since(start);
  }
  const double bare_rate = frames / bare, pipeline_rate = frames / pipeline;
  std::printf("%s: %lld frames x %d runs, %d threads\n", video.filename().c_str(),
              static_cast<long long>(frames / repeat), repeat, at::get_num_threads());
  std::printf("bare libavcodec decode:               %8.0f frames/s\n", bare_rate);
  std::printf("decode + RGB conversion:              %8.0f frames/s\n", frames / rgb);
  std::printf("decode + sample + normalise + crop:   %8.0f frames/s (%lld clips)\n", pipeline_rate,
              static_cast<long long>(clips));
  std::printf("ratio pipeline / bare decode:          %8.2f\n", pipeline_rate / bare_rate);
  return 0;
}
