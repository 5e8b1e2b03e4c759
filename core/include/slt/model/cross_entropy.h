#pragma once
// The training loss of every translation model: token-level cross-entropy
// with label smoothing, averaged over the tokens that are not padding.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace slt {

/// torch::nn::functional::cross_entropy(logits, targets) with
/// ignore_index(ignore_index), label_smoothing(smoothing) and mean reduction:
/// over the rows whose target is not ignore_index, the mean of
///   (1 - smoothing) · (lse - x[target]) + smoothing · (lse - mean(x)),
/// lse the row's log-sum-exp. For contiguous float32 logits [N, C] on the CPU
/// it is one autograd function that reads each row twice forward and once
/// backward, where ATen's operators materialise the log-probabilities, the
/// one-hot gradient and the smoothing term as [N, C] tensors; other inputs
/// take ATen's operators. Targets out of [0, C) other than ignore_index are
/// an error, as in ATen.
///
///   auto loss = slt::cross_entropy(logits.reshape({-1, vocab}), labels.reshape({-1}), pad_id, 0.2);
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index, double smoothing);

}  // namespace slt
