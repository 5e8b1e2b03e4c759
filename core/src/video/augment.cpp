#include "slt/video/augment.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <array>
#include <cmath>
#include <stdexcept>

#include "slt/model/random_bits.h"

// Python's math.radians and math.degrees multiply by these constants.
namespace {
constexpr double kDegreesToRadians = M_PI / 180.0;
constexpr double kRadiansToDegrees = 180.0 / M_PI;
}  // namespace

namespace slt::video {

namespace {

bool is_signed(AugmentOp op) {
  switch (op) {
    case AugmentOp::ShearX:
    case AugmentOp::ShearY:
    case AugmentOp::TranslateX:
    case AugmentOp::TranslateY:
    case AugmentOp::Rotate:
    case AugmentOp::Brightness:
    case AugmentOp::Color:
    case AugmentOp::Contrast:
    case AugmentOp::Sharpness:
      return true;
    default:
      return false;
  }
}

// Bin `index` of torch.linspace(start, end, bins) (float32), as a double.
double linspace_bin(double start, double end, int bins, int index) {
  return at::linspace(start, end, bins, at::kFloat)[index].item<float>();
}

// torchvision's _get_inverse_affine_matrix (inverted = true): the map from
// output to input pixel coordinates, relative to the image centre. The same
// double operations in the same order as the Python.
std::array<double, 6> inverse_affine_matrix(double center_x, double center_y, double angle, double translate_x,
                                            double translate_y, double scale, double shear_x, double shear_y) {
  const double rot = angle * kDegreesToRadians, sx = shear_x * kDegreesToRadians, sy = shear_y * kDegreesToRadians;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  std::array<double, 6> m{d, -b, 0.0, -c, a, 0.0};
  for (double& x : m) x /= scale;
  m[2] += m[0] * (-center_x - translate_x) + m[1] * (-center_y - translate_y);
  m[5] += m[3] * (-center_x - translate_x) + m[4] * (-center_y - translate_y);
  m[2] += center_x;
  m[5] += center_y;
  return m;
}

// torchvision's affine warp of uint8 frames [N, C, H, W] (_gen_affine_grid,
// then grid_sample with nearest neighbours and zeros outside, rounded back).
at::Tensor warp(const at::Tensor& frames, const std::array<double, 6>& matrix) {
  const int64_t n = frames.size(0), h = frames.size(2), w = frames.size(3);
  at::Tensor theta =
      at::tensor(std::vector<float>(matrix.begin(), matrix.end()), at::kFloat).reshape({1, 2, 3});
  at::Tensor base = at::empty({1, h, w, 3}, at::kFloat);
  base.select(-1, 0).copy_(at::linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, w, at::kFloat));
  base.select(-1, 1).copy_(at::linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, h, at::kFloat).unsqueeze(-1));
  base.select(-1, 2).fill_(1);
  at::Tensor half_size = at::tensor(std::vector<float>{static_cast<float>(0.5 * w), static_cast<float>(0.5 * h)});
  at::Tensor grid = base.view({1, h * w, 3}).bmm(theta.transpose(1, 2).div(half_size)).view({1, h, w, 2});
  if (n > 1) grid = grid.expand({n, h, w, 2});
  constexpr int64_t kNearest = 1, kZeros = 0;
  at::Tensor out = at::grid_sampler(frames.to(at::kFloat), grid, kNearest, kZeros, /*align_corners=*/false);
  return out.round().to(at::kByte);
}

at::Tensor blend(const at::Tensor& image, const at::Tensor& other, double ratio) {
  return image.mul(ratio).add(other.mul(1.0 - ratio)).clamp(0, 255.0).to(at::kByte);
}

at::Tensor grayscale(const at::Tensor& frames) {
  auto channels = frames.unbind(-3);
  return channels[0].mul(0.2989).add(channels[1].mul(0.587)).add(channels[2].mul(0.114)).to(at::kByte).unsqueeze(-3);
}

// torchvision's _blurred_degenerate_image: a 3x3 smoothing inside, the border kept.
at::Tensor blurred(const at::Tensor& frames) {
  at::Tensor kernel = at::ones({3, 3}, at::kFloat);
  kernel[1][1] = 5.0;
  kernel.div_(kernel.sum());
  const int64_t channels = frames.size(1);
  at::Tensor smooth = at::conv2d(frames.to(at::kFloat), kernel.expand({channels, 1, 3, 3}), at::Tensor(),
                                 at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, channels);
  at::Tensor out = frames.clone();
  out.slice(-2, 1, -1).slice(-1, 1, -1).copy_(smooth.round().to(at::kByte));
  return out;
}

at::Tensor autocontrast(const at::Tensor& frames) {
  at::Tensor minimum = frames.amin({-2, -1}, true).to(at::kFloat);
  at::Tensor maximum = frames.amax({-2, -1}, true).to(at::kFloat);
  // Python's `255.0 / t` is t.reciprocal() * 255.0.
  at::Tensor scale = maximum.sub(minimum).reciprocal().mul(255.0);
  at::Tensor flat = at::isfinite(scale).logical_not();
  minimum.masked_fill_(flat, 0);
  scale.masked_fill_(flat, 1);
  return frames.sub(minimum).mul(scale).clamp(0, 255.0).to(at::kByte);
}

// torchvision's _scale_channel on one plane, in integers (exact).
void equalize_plane(const uint8_t* in, uint8_t* out, int64_t count) {
  std::array<int64_t, 256> histogram{};
  for (int64_t i = 0; i < count; ++i) ++histogram[in[i]];
  int last = 255;
  while (last > 0 && histogram[last] == 0) --last;
  const int64_t step = (count - histogram[last]) / 255;  // all but the last non-empty bin
  if (step == 0) {
    std::copy(in, in + count, out);
    return;
  }
  std::array<uint8_t, 256> lut{};
  int64_t cumulative = 0;
  for (int v = 1; v < 256; ++v) {
    cumulative += histogram[v - 1];
    lut[v] = static_cast<uint8_t>(std::min<int64_t>(255, (cumulative + step / 2) / step));
  }
  for (int64_t i = 0; i < count; ++i) out[i] = lut[in[i]];
}

at::Tensor equalize(const at::Tensor& frames) {
  at::Tensor in = frames.contiguous(), out = at::empty_like(in);
  const int64_t planes = in.size(0) * in.size(1), plane = in.size(2) * in.size(3);
  const uint8_t* src = in.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) equalize_plane(src + p * plane, dst + p * plane, plane);
  });
  return out;
}

}  // namespace

const char* augment_op_name(AugmentOp op) {
  static const char* const names[kAugmentOpCount] = {
      "Identity",   "ShearX", "ShearY",   "TranslateX", "TranslateY", "Rotate",       "Brightness",
      "Color",      "Contrast", "Sharpness", "Posterize", "Solarize",  "AutoContrast", "Equalize"};
  return names[static_cast<int>(op)];
}

double rand_augment_magnitude(AugmentOp op, int magnitude, int bins, int64_t height, int64_t width) {
  if (magnitude < 0 || magnitude >= bins) throw std::invalid_argument("RandAugment magnitude outside its bins");
  switch (op) {
    case AugmentOp::ShearX:
    case AugmentOp::ShearY:
      return linspace_bin(0.0, 0.3, bins, magnitude);
    case AugmentOp::TranslateX:
      return linspace_bin(0.0, 150.0 / 331.0 * static_cast<double>(width), bins, magnitude);
    case AugmentOp::TranslateY:
      return linspace_bin(0.0, 150.0 / 331.0 * static_cast<double>(height), bins, magnitude);
    case AugmentOp::Rotate:
      return linspace_bin(0.0, 30.0, bins, magnitude);
    case AugmentOp::Brightness:
    case AugmentOp::Color:
    case AugmentOp::Contrast:
    case AugmentOp::Sharpness:
      return linspace_bin(0.0, 0.9, bins, magnitude);
    case AugmentOp::Posterize:  // 8 - round(i / ((bins - 1) / 4)), in float32 as torch computes it
      return 8 - at::arange(bins).div((bins - 1) / 4.0).round().to(at::kInt)[magnitude].item<int>();
    case AugmentOp::Solarize:
      return linspace_bin(255.0, 0.0, bins, magnitude);
    default:
      return 0.0;
  }
}

std::vector<AugmentStep> draw_rand_augment(at::Generator& generator, int64_t height, int64_t width, int num_ops,
                                           int magnitude, int bins) {
  std::vector<AugmentStep> steps;
  for (int i = 0; i < num_ops; ++i) {
    AugmentStep step;
    step.op = static_cast<AugmentOp>(at::randint(kAugmentOpCount, {1}, generator, at::kLong).item<int64_t>());
    step.magnitude = rand_augment_magnitude(step.op, magnitude, bins, height, width);
    if (is_signed(step.op) && at::randint(2, {1}, generator, at::kLong).item<int64_t>() != 0) step.magnitude *= -1.0;
    steps.push_back(step);
  }
  return steps;
}

uint64_t augment_seed(uint64_t seed, int64_t epoch, const std::string& video_name) {
  const auto mix = splitmix64_mix;
  const uint64_t h = mix(fnv1a64(video_name) ^ mix(seed + 0x9E3779B97F4A7C15ULL));
  return mix(h ^ mix(static_cast<uint64_t>(epoch) + 0x632BE59BD9B4E019ULL));
}

AugmentPlan draw_augment_plan(uint64_t seed, int64_t height, int64_t width, int64_t crop) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  AugmentPlan plan;
  plan.steps = draw_rand_augment(generator, height, width);
  if (height > crop) plan.crop_y = at::randint(height - crop, {1}, generator, at::kLong).item<int64_t>();
  if (width > crop) plan.crop_x = at::randint(width - crop, {1}, generator, at::kLong).item<int64_t>();
  plan.flip = at::rand({1}, generator, at::kDouble).item<double>() < 0.5;
  return plan;
}

at::Tensor apply_augment_step(const at::Tensor& frames, const AugmentStep& step) {
  if (frames.dim() != 4 || frames.size(1) != 3 || frames.scalar_type() != at::kByte)
    throw std::invalid_argument("augmentation expects uint8 frames [N, 3, H, W]");
  const int64_t h = frames.size(2), w = frames.size(3);
  const double m = step.magnitude;
  switch (step.op) {
    case AugmentOp::Identity:
      return frames;
    case AugmentOp::ShearX:  // about the top-left corner, as RandAugment asks
      return warp(frames, inverse_affine_matrix(-w * 0.5, -h * 0.5, 0.0, 0.0, 0.0, 1.0,
                                                std::atan(m) * kRadiansToDegrees, 0.0));
    case AugmentOp::ShearY:
      return warp(frames, inverse_affine_matrix(-w * 0.5, -h * 0.5, 0.0, 0.0, 0.0, 1.0, 0.0,
                                                std::atan(m) * kRadiansToDegrees));
    case AugmentOp::TranslateX:  // whole pixels, truncated toward zero as Python's int()
      return warp(frames, inverse_affine_matrix(0.0, 0.0, 0.0, std::trunc(m), 0.0, 1.0, 0.0, 0.0));
    case AugmentOp::TranslateY:
      return warp(frames, inverse_affine_matrix(0.0, 0.0, 0.0, 0.0, std::trunc(m), 1.0, 0.0, 0.0));
    case AugmentOp::Rotate:  // counter-clockwise about the centre
      return warp(frames, inverse_affine_matrix(0.0, 0.0, -m, 0.0, 0.0, 1.0, 0.0, 0.0));
    case AugmentOp::Brightness:
      return blend(frames, at::zeros_like(frames), 1.0 + m);
    case AugmentOp::Color:
      return blend(frames, grayscale(frames), 1.0 + m);
    case AugmentOp::Contrast:
      return blend(frames, at::mean(grayscale(frames).to(at::kFloat), {-3, -2, -1}, true), 1.0 + m);
    case AugmentOp::Sharpness:
      if (h <= 2 || w <= 2) return frames;
      return blend(frames, blurred(frames), 1.0 + m);
    case AugmentOp::Posterize:
      return frames.bitwise_and(-(int64_t{1} << (8 - static_cast<int>(m))));
    case AugmentOp::Solarize:  // 255 - v is ~v in uint8
      return at::where(frames.ge(m), frames.bitwise_not(), frames);
    case AugmentOp::AutoContrast:
      return autocontrast(frames);
    case AugmentOp::Equalize:
      return equalize(frames);
  }
  throw std::invalid_argument("unknown augmentation");
}

at::Tensor apply_rand_augment(at::Tensor frames, const std::vector<AugmentStep>& steps) {
  for (const AugmentStep& step : steps) frames = apply_augment_step(frames, step);
  return frames;
}

}  // namespace slt::video
