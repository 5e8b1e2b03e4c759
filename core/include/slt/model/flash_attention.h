#pragma once
// Exact attention over long sequences without a score matrix, for inference
// on the CPU: FlashAttention's recurrence (key blocks, a running maximum and
// sum per query row, the partial output rescaled as the maximum grows), with
// the scores, softmax and weighted values of one block kept in cache. Made for
// SignHiera's global stages (12,544 tokens in hiera_base_128x224), where the
// score matrices alone would take 2.5 GB.
//
//   if (slt::flash_attention_supported(q, k, v)) out = slt::flash_attention(q * scale, k, v, padded);
#include <ATen/core/Tensor.h>

namespace slt {

/// Whether flash_attention takes these: float32 CPU tensors q [B, H, Nq, D] and
/// k, v [B, H, Nk, D] whose last dimension is contiguous, D a multiple of 16
/// up to 256, on a CPU with AVX-512 (x86-64-v4).
bool flash_attention_supported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

/// softmax(q kᵀ) v for every (batch, head), as [B, H, Nq, D] (contiguous); q is
/// taken as given (scale it first). `key_padding` [B, Nk] bool, when defined,
/// marks keys no query attends to (softmax as with -inf scores there). Each
/// row equals the plain computation up to float rounding in another order.
at::Tensor flash_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& key_padding = {});

}  // namespace slt
