#pragma once
// softmax(q kᵀ + bias) v over many query rows, forward and backward: the
// encoder's attention and the attention of training. ATen's path copies each
// transposed head view contiguous and runs one OpenBLAS call per head; here
// the heads run side by side, one strided GEMM each (strided_gemm.h), reading
// the views where they lie.
#include <ATen/core/Tensor.h>

namespace slt::detail {

/// Whether head_attention takes these: float32 CPU queries [B, H, Sq, d],
/// keys and values [B, H, Sk, d] (any strides), a float32 bias broadcastable
/// to [B, H, Sq, Sk] or none, dropout below 1, and strided_gemm available.
bool takes_head_attention(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& bias, double dropout_p, bool train);

/// slt::attention's result [B, H, Sq, d] (a view of a [B, Sq, H, d] tensor,
/// so that merging the heads back is free), differentiable in queries, keys,
/// values and bias; dropout with slt::dropout's mask when `train`. The
/// softmax and its backward are ATen's.
at::Tensor head_attention(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& bias, double dropout_p, bool train);

}  // namespace slt::detail
