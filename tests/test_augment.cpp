// do_aug's augmentations against torchvision (Debian's python3-torchvision as
// the oracle, tests/python/augment_oracle.py): every RandAugment operation
// byte for byte, RandAugment's draws from a seeded generator, and the clips a
// plan makes.
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include "slt/io/tensor_io.h"
#include "slt/video/augment.h"
#include "slt/video/clips.h"
#include "slt/video/reader.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "test_helpers.h"

namespace fs = std::filesystem;
using namespace slt::video;

namespace {

const fs::path kDecode = fs::path(SLT_FIXTURES_DIR) / "hiera" / "decode";

// The oracle's output, run once per test binary.
const std::map<std::string, at::Tensor>& oracle() {
  static const std::map<std::string, at::Tensor> tensors = [] {
    static slt_test::TempDir dir;
    const fs::path out = dir.path() / "augment_oracle.pt";
    auto run = slt_test::run_command(std::string("/usr/bin/python3 ") + SLT_TESTS_DIR + "/python/augment_oracle.py " +
                                     (kDecode / "2000001-crop-25fps-3s00-w330h250__decoded_frames_u8.pt").string() +
                                     " " + out.string());
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    std::map<std::string, at::Tensor> result;
    for (const auto& entry : slt::load_pt(out.string()).toGenericDict())
      result[entry.key().toStringRef()] = entry.value().toTensor();
    return result;
  }();
  return tensors;
}

const at::Tensor& oracle_tensor(const std::string& key) {
  auto it = oracle().find(key);
  INFO(key);
  REQUIRE(it != oracle().end());
  return it->second;
}

// [N, 3, H, W] with the memory layout of the reference's frames: decoded
// [N, H, W, 3], permuted.
at::Tensor as_decoded(const at::Tensor& nchw) { return nchw.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}); }

int64_t differing(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return -1;
  return a.ne(b).sum().item<int64_t>();
}

// The oracle sums in one thread; so do these tests.
struct OneThread {
  int previous = at::get_num_threads();
  OneThread() { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(previous); }
};

}  // namespace

TEST_CASE("each RandAugment operation matches torchvision's byte for byte", "[augment][python]") {
  OneThread one_thread;
  const at::Tensor input = oracle_tensor("input");
  const int64_t height = input.size(2), width = input.size(3);
  int compared = 0;
  for (int op_index = 1; op_index < kAugmentOpCount; ++op_index) {
    const auto op = static_cast<AugmentOp>(op_index);
    for (int bin : {7, 30}) {
      const std::string name = std::string(augment_op_name(op)) + "/" + std::to_string(bin);
      const double magnitude = rand_augment_magnitude(op, bin, 31, height, width);
      INFO(name);
      CHECK(magnitude == oracle_tensor("magnitude/" + name).item<double>());
      for (int sign : {1, -1}) {
        auto expected = oracle().find("op/" + name + "/" + std::to_string(sign));
        if (expected == oracle().end()) continue;  // unsigned operation
        INFO("sign " << sign);
        at::Tensor got = apply_augment_step(as_decoded(input), {op, sign * magnitude});
        CHECK(differing(got, expected->second) == 0);
        ++compared;
      }
    }
  }
  CHECK(compared == 2 * (9 * 2 + 4));  // 9 signed and 4 unsigned operations at 2 bins
}

TEST_CASE("RandAugment draws torch's operations from a seeded generator and applies them as torchvision does",
          "[augment][python]") {
  OneThread one_thread;
  const at::Tensor input = oracle_tensor("input");
  std::set<int> seen;
  for (int seed = 0; seed < 16; ++seed) {
    INFO("seed " << seed);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    const auto steps = draw_rand_augment(generator, input.size(2), input.size(3));
    const at::Tensor ops = oracle_tensor("randaug/" + std::to_string(seed) + "/ops");
    REQUIRE(ops.size(0) == static_cast<int64_t>(steps.size()));
    for (size_t i = 0; i < steps.size(); ++i) {
      CHECK(static_cast<int>(steps[i].op) == ops[i][0].item<double>());
      CHECK(steps[i].magnitude == ops[i][1].item<double>());
      seen.insert(static_cast<int>(steps[i].op));
    }
    CHECK(differing(apply_rand_augment(as_decoded(input), steps), oracle_tensor("randaug/" + std::to_string(seed))) ==
          0);
  }
  CHECK(seen.size() >= 10);  // the seeds reach most operations
}

TEST_CASE("a video's augmentation plan is a function of (seed, epoch, name), with the crop inside the frame",
          "[augment]") {
  CHECK(augment_seed(1, 0, "a.mp4") == augment_seed(1, 0, "a.mp4"));
  CHECK(augment_seed(1, 0, "a.mp4") != augment_seed(1, 1, "a.mp4"));
  CHECK(augment_seed(1, 0, "a.mp4") != augment_seed(2, 0, "a.mp4"));
  CHECK(augment_seed(1, 0, "a.mp4") != augment_seed(1, 0, "b.mp4"));

  int flips = 0;
  std::set<int64_t> ys, xs;
  for (int video = 0; video < 64; ++video) {
    const uint64_t seed = augment_seed(7, 0, "video" + std::to_string(video));
    const AugmentPlan plan = draw_augment_plan(seed, 250, 330, 224);
    const AugmentPlan again = draw_augment_plan(seed, 250, 330, 224);
    REQUIRE(plan.steps.size() == 4);
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      CHECK(plan.steps[i].op == again.steps[i].op);
      CHECK(plan.steps[i].magnitude == again.steps[i].magnitude);
    }
    CHECK(plan.crop_y == again.crop_y);
    CHECK(plan.crop_x == again.crop_x);
    CHECK(plan.flip == again.flip);
    CHECK((plan.crop_y >= 0 && plan.crop_y < 250 - 224));
    CHECK((plan.crop_x >= 0 && plan.crop_x < 330 - 224));
    flips += plan.flip;
    ys.insert(plan.crop_y);
    xs.insert(plan.crop_x);
  }
  CHECK((flips > 16 && flips < 48));
  CHECK(ys.size() > 10);
  CHECK(xs.size() > 20);
  // A frame the size of the crop is not moved.
  const AugmentPlan exact = draw_augment_plan(3, 224, 224, 224);
  CHECK((exact.crop_y == 0 && exact.crop_x == 0));
}

TEST_CASE("an augmented clip is the window's frames through RandAugment, cropped at the plan's corner, normalised "
          "and mirrored",
          "[augment]") {
  const fs::path video = fs::path(SLT_FIXTURES_DIR) / "hiera" / "DATASET" / "videos" / "20000" /
                         "2000001-crop-25fps-3s00-w330h250.mp4";
  REQUIRE(fs::exists(video));
  SamplingOptions options;
  options.num_frames = 128;  // the stream augments 50 frames of 330x250 at a time: three passes
  options.sampling_rate = 2;
  options.target_fps = 25;

  auto first_clip = [&](std::function<AugmentPlan(int64_t, int64_t)> plan_for) {
    VideoReader reader(video);
    ClipStream stream(reader, options, 224, std::move(plan_for));
    Clip clip;
    REQUIRE(stream.next(clip));
    return clip;
  };
  const Clip plain = first_clip({});

  // No operations, the centre corner, no flip: the plain clip.
  AugmentPlan centre;
  centre.crop_y = (250 - 224 + 1) / 2;
  centre.crop_x = (330 - 224 + 1) / 2;
  CHECK(at::equal(first_clip([&](int64_t, int64_t) { return centre; }).frames, plain.frames));

  // Mirrored.
  AugmentPlan mirrored = centre;
  mirrored.flip = true;
  CHECK(at::equal(first_clip([&](int64_t, int64_t) { return mirrored; }).frames, plain.frames.flip({-1})));

  // Operations, another corner, flipped: against the same steps applied to the decoded frames here.
  AugmentPlan plan;
  plan.steps = {{AugmentOp::Rotate, 7.0}, {AugmentOp::Equalize, 0.0}, {AugmentOp::Brightness, -0.21}};
  plan.crop_y = 3;
  plan.crop_x = 101;
  plan.flip = true;
  int64_t asked_height = 0, asked_width = 0;
  const Clip augmented = first_clip([&](int64_t h, int64_t w) {
    asked_height = h;
    asked_width = w;
    return plan;
  });
  CHECK((asked_height == 250 && asked_width == 330));

  std::vector<at::Tensor> decoded;
  {
    VideoReader reader(video);
    RgbFrame frame;
    while (reader.next(frame))
      decoded.push_back(at::from_blob(frame.rgb.data(), {250, 330, 3}, at::kByte).clone());
  }
  std::vector<at::Tensor> window;
  for (int64_t index : plain.window.indices) window.push_back(decoded.at(static_cast<size_t>(index)));
  at::Tensor frames = apply_rand_augment(at::stack(window).permute({0, 3, 1, 2}), plan.steps);
  at::Tensor expected = frames.to(at::kFloat)
                            .div(255.0f)
                            .sub(0.45f)
                            .div(0.225f)
                            .slice(2, 3, 3 + 224)
                            .slice(3, 101, 101 + 224)
                            .permute({1, 0, 2, 3})
                            .flip({-1});
  CHECK(at::equal(augmented.frames, expected));
  CHECK(!at::equal(augmented.frames, plain.frames));
}
