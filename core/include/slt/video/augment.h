#pragma once
// The training augmentations of the reference's feature extraction
// (do_aug=true): torchvision's RandAugment(num_ops=4, magnitude=7) over the
// sampled uint8 frames, then a random crop (not resized) and a horizontal
// flip with probability 0.5, all drawn once per video so that every window of
// it gets the same ones.
//
// Each operation reproduces torchvision.transforms.functional on uint8 tensors
// (nearest interpolation, no fill), with the same ATen operations in the same
// order, so its output is identical byte for byte (tests/python/augment_oracle.py).
//
//   AugmentPlan plan = draw_augment_plan(augment_seed(1, 0, "video.mp4"), 720, 1280, 224);
//   at::Tensor out = apply_rand_augment(frames_nchw_u8, plan.steps);
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace slt::video {

/// RandAugment's operations, in torchvision's order (the drawn index is the
/// position in this list).
enum class AugmentOp {
  Identity,
  ShearX,
  ShearY,
  TranslateX,
  TranslateY,
  Rotate,
  Brightness,
  Color,
  Contrast,
  Sharpness,
  Posterize,
  Solarize,
  AutoContrast,
  Equalize,
};
constexpr int kAugmentOpCount = 14;

const char* augment_op_name(AugmentOp op);

/// One drawn operation with its signed magnitude (degrees for Rotate, pixels
/// for the translations, a factor offset for the colour operations, bits for
/// Posterize, a threshold for Solarize).
struct AugmentStep {
  AugmentOp op = AugmentOp::Identity;
  double magnitude = 0;
};

/// A video's augmentation.
struct AugmentPlan {
  std::vector<AugmentStep> steps;  // RandAugment, applied in order
  int64_t crop_y = 0, crop_x = 0;  // top-left corner of the crop
  bool flip = false;               // mirror the crop left to right
};

/// RandAugment's magnitude of `op` at bin `magnitude` of `bins` for frames of
/// height x width, unsigned (torchvision's _augmentation_space).
double rand_augment_magnitude(AugmentOp op, int magnitude, int bins, int64_t height, int64_t width);

/// `num_ops` operations drawn from `generator` as torchvision's RandAugment
/// draws them (an op index, then a sign for the signed ones), so that a
/// generator seeded like torch.manual_seed(s) gives torch's choices.
std::vector<AugmentStep> draw_rand_augment(at::Generator& generator, int64_t height, int64_t width, int num_ops = 4,
                                           int magnitude = 7, int bins = 31);

/// The generator seed of one video's augmentation in one epoch: a hash of
/// (seed, epoch, video name), so that reruns, resumed shards and any shard
/// split draw the same augmentation for the same video.
uint64_t augment_seed(uint64_t seed, int64_t epoch, const std::string& video_name);

/// A video's plan: RandAugment(4, 7), then the crop corner (each coordinate
/// uniform in [0, size - crop) where the frame is larger, as the reference's
/// np.random.randint), then the flip (probability 0.5).
AugmentPlan draw_augment_plan(uint64_t seed, int64_t height, int64_t width, int64_t crop);

/// One operation on uint8 frames [N, 3, H, W]; returns uint8 [N, 3, H, W].
at::Tensor apply_augment_step(const at::Tensor& frames, const AugmentStep& step);

/// The steps in order.
at::Tensor apply_rand_augment(at::Tensor frames, const std::vector<AugmentStep>& steps);

}  // namespace slt::video
