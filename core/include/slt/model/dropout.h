#pragma once
// Dropout for the models, as torch.nn.functional.dropout computes it (zero
// each element with probability p, scale the others by 1 / (1 - p)), with the
// mask drawn in parallel from a counter-based generator.
//
// Why: ATen's CPU dropout draws every element in turn from one mt19937 under
// the generator's lock; in a T5-small training step that was 16% of the time
// (a third of the Tarrés step), for masks over every attention probability.
// Here each call takes one 64-bit seed from ATen's default CPU generator and
// hashes (seed, element index) into the mask, on every thread at once. The
// masks have the same distribution and stay reproducible (the seed comes from
// the generator a checkpoint saves, and the result does not depend on the
// thread count), but they are not PyTorch's bits (docs/PORTING.md).
#include <ATen/core/Tensor.h>

namespace slt {

/// x itself when !train or p == 0; otherwise x * mask, differentiable in x.
///
///   hidden = slt::dropout(hidden, config.dropout, is_training());
at::Tensor dropout(const at::Tensor& x, double p, bool train);

}  // namespace slt
