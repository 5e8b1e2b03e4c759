// Video decoding and clip sampling against the reference's fixtures
// (../shared/fixtures/hiera/decode, see the README there).
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include <ATen/ATen.h>

#include "slt/io/tensor_io.h"
#include "slt/video/clips.h"
#include "slt/video/reader.h"
#include "slt/video/sampling.h"

#include <catch2/catch.hpp>

extern "C" {
#include <libavutil/md5.h>
}

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_helpers.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kHiera = fs::path(SLT_FIXTURES_DIR) / "hiera";

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

const json& index_json() {
  static const json index = read_json(kHiera / "decode" / "index.json");
  return index;
}

fs::path video_path(const std::string& name) { return kHiera / "DATASET" / "videos" / name.substr(0, 5) / name; }

json video_json(const json& entry) { return read_json(kHiera / "decode" / entry["json"].get<std::string>()); }

std::string md5_hex(const std::vector<uint8_t>& bytes) {
  uint8_t digest[16];
  av_md5_sum(digest, bytes.data(), static_cast<int>(bytes.size()));
  char hex[33];
  for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return hex;
}

slt::video::SamplingOptions options_of(const json& config) {
  slt::video::SamplingOptions options;
  options.num_frames = config["num_frames"].get<int64_t>();
  options.sampling_rate = config["sampling_rate"].get<int64_t>();
  options.target_fps = config["target_fps"].get<double>();
  return options;
}

}  // namespace

TEST_CASE("decoding gives PyAV's frames byte for byte, with its fps and timestamps", "[video]") {
  // video_backend=cuda asks for NVDEC: where no CUDA device opens (CI) the
  // reader falls back to the CPU decoder; where one does, the GPU's frames
  // must be the same bytes.
  const bool cuda = GENERATE(false, true);
  for (const auto& entry : index_json()["videos"]) {
    json facts = video_json(entry)["decode"];
    INFO(entry["video_name"].get<std::string>() << (cuda ? " (cuda requested)" : ""));
    slt::video::VideoReader reader(video_path(entry["video_name"].get<std::string>()), 2, cuda);
    if (!cuda || !slt::video::cuda_decoding_available()) CHECK_FALSE(reader.hardware_decoding());
    CHECK(reader.info().fps == facts["fps"].get<double>());
    CHECK(reader.info().average_rate == facts["avg_rate"].get<std::string>());
    CHECK(reader.info().width == facts["width"].get<int>());
    CHECK(reader.info().height == facts["height"].get<int>());
    size_t n = 0;
    for (slt::video::RgbFrame frame; reader.next(frame); ++n) {
      REQUIRE(n < facts["frame_md5_rgb24_hwc"].size());
      CHECK(md5_hex(frame.rgb) == facts["frame_md5_rgb24_hwc"][n].get<std::string>());
      CHECK(frame.pts_seconds == Approx(facts["pts_s"][n].get<double>()).margin(1e-9));
    }
    CHECK(n == facts["num_decoded_frames"].get<size_t>());
  }
}

TEST_CASE("the first and last decoded frames equal the fixture tensors", "[video]") {
  for (const char* stem : {"0000001-tsrc2-25fps-0s50", "2000001-crop-25fps-3s00-w330h250",
                           "3000001-small-25fps-2s00-w160h160"}) {
    INFO(stem);
    auto saved = slt::load_pt((kHiera / "decode" / (std::string(stem) + "__decoded_frames_u8.pt")).string()).toGenericDict();
    at::Tensor expected = saved.at("frames_thwc_u8").toTensor();
    slt::video::VideoReader reader(video_path(std::string(stem) + ".mp4"));
    std::vector<std::vector<uint8_t>> frames;
    for (slt::video::RgbFrame frame; reader.next(frame);) frames.push_back(frame.rgb);
    REQUIRE(frames.size() >= 2);
    for (int64_t k = 0; k < 2; ++k) {
      const auto& frame = k == 0 ? frames.front() : frames.back();
      at::Tensor row = expected[k].contiguous();
      REQUIRE(static_cast<size_t>(row.numel()) == frame.size());
      CHECK(std::equal(frame.begin(), frame.end(), row.data_ptr<uint8_t>()));
    }
  }
}

TEST_CASE("clip windows, frame indices and padding counts are the reference's", "[video]") {
  int checked = 0;
  for (const auto& entry : index_json()["videos"]) {
    json video = video_json(entry);
    const int64_t total = video["decode"]["num_decoded_frames"].get<int64_t>();
    const double fps = video["decode"]["fps"].get<double>();
    for (const auto& [name, expected] : video["configs"].items()) {
      INFO(entry["video_name"].get<std::string>() << " " << name);
      auto windows = slt::video::feature_extraction_windows(total, fps, options_of(expected["config"]));
      REQUIRE(windows.size() == expected["num_clips"].get<size_t>());
      for (size_t k = 0; k < windows.size(); ++k) {
        const json& clip = expected["clips"][k];
        CHECK(windows[k].start_idx == clip["start_idx"].get<double>());
        CHECK(windows[k].end_idx == clip["end_idx"].get<double>());
        CHECK(windows[k].indices == clip["idx"].get<std::vector<int64_t>>());
        CHECK(windows[k].padding == clip["padding"].get<int64_t>());
        ++checked;
      }
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("clips stream window by window with the reference's values", "[video]") {
  for (const auto& entry : index_json()["videos"]) {
    const std::string name = entry["video_name"].get<std::string>();
    if (name.rfind("3000001", 0) == 0) continue;  // smaller than the crop: see the next test
    json video = video_json(entry);
    for (const char* config : {"small", "extra"}) {
      INFO(name << " " << config);
      const json& expected = video["configs"][config];
      slt::video::VideoReader reader(video_path(name));
      slt::video::ClipStream stream(reader, options_of(expected["config"]));
      std::vector<at::Tensor> clips;
      for (slt::video::Clip clip; stream.next(clip);) {
        const json& reference = expected["clips"][clips.size()];
        CHECK(clip.window.indices == reference["idx"].get<std::vector<int64_t>>());
        CHECK(clip.padding == reference["padding"].get<int64_t>());
        clips.push_back(clip.frames);
      }
      REQUIRE(clips.size() == expected["num_clips"].get<size_t>());
      at::Tensor batch = at::stack(clips);  // [B, C, T, H, W], the dataset's frames
      const json& tensor = expected["tensor"];
      for (size_t i = 0; i < tensor["positions_bcthw"].size(); ++i) {
        auto p = tensor["positions_bcthw"][i].get<std::vector<int64_t>>();
        CHECK(batch[p[0]][p[1]][p[2]][p[3]][p[4]].item<float>() == tensor["values_at_positions"][i].get<float>());
      }
      for (size_t b = 0; b < clips.size(); ++b)
        CHECK(clips[b].to(at::kDouble).mean().item<double>() ==
              Approx(tensor["per_clip_mean"][b].get<double>()).epsilon(1e-6));
    }
  }
}

TEST_CASE("a video smaller than the crop is resized to it instead of sliced", "[video]") {
  const std::string name = "3000001-small-25fps-2s00-w160h160.mp4";
  json expected = video_json(json{{"json", "3000001-small-25fps-2s00-w160h160.json"}})["configs"]["small"];
  slt::video::VideoReader reader(video_path(name));
  slt::video::ClipStream stream(reader, options_of(expected["config"]));
  size_t count = 0;
  for (slt::video::Clip clip; stream.next(clip); ++count) {
    CHECK(clip.frames.sizes() == at::IntArrayRef({3, 16, 224, 224}));
    CHECK(clip.padding == expected["padding"][count].get<int64_t>());
  }
  CHECK(count == expected["num_clips"].get<size_t>());
}

TEST_CASE("an unreadable video is an error naming the file", "[video]") {
  slt_test::TempDir dir;
  fs::path bad = dir.write("bad.mp4", "not a video at all");
  CHECK_THROWS_WITH(slt::video::VideoReader(bad), Catch::Contains("bad.mp4"));
  CHECK_THROWS_AS(slt::video::VideoReader(dir.path() / "missing.mp4"), slt::video::VideoError);
  CHECK_THROWS_WITH(slt::video::VideoReader(dir.path()), Catch::Contains("not a regular file"));
  fs::path fifo = dir.path() / "fifo.mp4";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(slt::video::VideoReader(fifo), Catch::Contains("fifo.mp4") && Catch::Contains("not a regular file"));
}
