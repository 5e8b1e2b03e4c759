#include "slt/model/dropout.h"

#include "dropout_noise.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <mutex>

#include "slt/model/random_bits.h"

namespace slt {

namespace detail {

namespace {

// Elements [2 * begin, 2 * end) of the noise: pair p fills elements 2p and
// 2p + 1 from the low and high halves of one hash. Branch-free, so that the
// compiler vectorises the 64-bit hash.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void noise_pairs(
    float* out, int64_t begin, int64_t end, uint64_t seed, uint64_t threshold, float kept) {
  for (int64_t pair = begin; pair < end; ++pair) {
    const uint64_t bits = splitmix64_mix(seed + static_cast<uint64_t>(pair + 1) * 0x9E3779B97F4A7C15ULL);
    out[2 * pair] = (bits & 0xFFFFFFFFULL) < threshold ? kept : 0.0f;
    out[2 * pair + 1] = (bits >> 32) < threshold ? kept : 0.0f;
  }
}

}  // namespace

uint64_t seed_from_default_generator() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
}

at::Tensor dropout_noise(at::IntArrayRef sizes, double keep_probability, uint64_t seed) {
  at::Tensor noise = at::empty(sizes, at::kFloat);
  float* out = noise.data_ptr<float>();
  const int64_t n = noise.numel();
  // Keep when a uniform 32-bit draw falls below keep_probability * 2^32.
  const uint64_t threshold = static_cast<uint64_t>(keep_probability * 4294967296.0);
  const float kept = 1.0f / static_cast<float>(keep_probability);  // as ATen: noise.div_(1 - p) in float
  at::parallel_for(0, n / 2, 16384,
                   [&](int64_t begin, int64_t end) { noise_pairs(out, begin, end, seed, threshold, kept); });
  if (n % 2) {  // the last element: the low half of its pair's hash
    const uint64_t bits = splitmix64_mix(seed + static_cast<uint64_t>(n / 2 + 1) * 0x9E3779B97F4A7C15ULL);
    out[n - 1] = (bits & 0xFFFFFFFFULL) < threshold ? kept : 0.0f;
  }
  return noise;
}

}  // namespace detail

at::Tensor dropout(const at::Tensor& x, double p, bool train) {
  if (!train || p == 0 || x.numel() == 0) return x;
  if (!x.device().is_cpu() || !x.is_floating_point()) return at::dropout(x, p, train);
  if (p == 1) return x.mul(at::zeros({}, x.options()));
  at::Tensor noise = detail::dropout_noise(x.sizes(), 1 - p, detail::seed_from_default_generator());
  return x * (x.scalar_type() == at::kFloat ? noise : noise.to(x.scalar_type()));
}

}  // namespace slt
