#pragma once
// slt::dropout's mask, for kernels that apply it themselves (the attention
// of src/model/attention.cpp multiplies its probabilities by it).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace slt::detail {

/// One 64-bit seed drawn from ATen's default CPU generator (under its lock).
uint64_t seed_from_default_generator();

/// A float32 tensor of `sizes` whose element i is 1 / keep_probability with
/// probability keep_probability, else 0; each pair of elements from one
/// 64-bit hash of (seed, pair index), on all threads.
at::Tensor dropout_noise(at::IntArrayRef sizes, double keep_probability, uint64_t seed);

}  // namespace slt::detail
