#pragma once
// Kernels for incremental decoding, where each step feeds only a few rows
// (the beams of a batch) through the decoder. General-purpose GEMM libraries
// repack the whole weight matrix on every call, which for a handful of rows
// costs more than the multiplication itself: at 5 rows, a T5-small decoder
// step spends over half its time packing weights. These kernels stream each
// weight once. T5's norm and activation, fused here for decoding, are fused
// for training too.
#include <ATen/core/Tensor.h>

#include <utility>

namespace torch::nn {
class LinearImpl;
}

namespace slt {

/// x W^T + b, as at::linear: x [..., in], weight [out, in], bias [out] or undefined.
/// Contiguous float32 on the CPU outside autograd leaves the GEMM library
/// below 257 rows: on an AVX-512 CPU, for a kernel that streams a copy of the
/// weight packed on first use and repacked after any write to it; elsewhere a
/// few rows (at most kFewRows) take a kernel that reads the weight as it is.
/// Everything else goes to at::linear. Results equal at::linear's up to float
/// rounding (the sums are taken in another order).
///
///   auto logits = slt::linear(hidden, embedding_weight, {});
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
/// The same through a torch::nn::Linear's parameters.
at::Tensor linear(const torch::nn::LinearImpl& layer, const at::Tensor& x);

/// Without the packed kernel, inputs with more rows than this go to the GEMM library.
constexpr int64_t kFewRows = 8;

/// Turns the packed kernel of slt::linear on (the default) or off for the
/// process; off, every CPU takes the few-row kernel and at::linear as CPUs
/// without AVX-512 do. For tests and benchmarks that compare the two.
void enable_packed_linear(bool on);

/// softmax(q·kᵀ + bias)·v, the softmax in float32, for queries [B, H, G, d]
/// against keys and values [B, H, S, d] with `bias` [B|1, 1|H, G|1, S] (or
/// undefined). For a few queries per input and head (G ≤ kFewRows: one
/// decoding step's beams against their input's encoder states) in contiguous
/// float32 on the CPU outside autograd, each key and value row is read once
/// for all G queries and the bias must be [B|1, 1, 1, S] (a padding mask).
/// Other float32 CPU inputs on AVX-512 CPUs (training, the encoder) run each
/// head's products on a thread of its own, reading the head views in place,
/// with a backward of their own (src/model/attention.h); the rest goes
/// through at::matmul and at::softmax. Dropout dropout_p applies to the
/// probabilities when `train`, with slt::dropout's mask.
at::Tensor attention(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& values,
                     const at::Tensor& bias, double dropout_p = 0, bool train = false);

/// log_softmax over the last dimension of [rows, n] logits, computed as
/// at::log_softmax does ((x - max) - log(sum(exp(x - max)))). Contiguous
/// float32 on the CPU is overwritten in place in one parallel pass per row,
/// with a vectorised exp for the sum (within 2 ulp of expf); other inputs go
/// to at::log_softmax. Returns the log-probabilities.
at::Tensor log_softmax_rows(at::Tensor logits);

/// The k largest values of each row of `x` [rows, n] (k <= n) and their
/// column indices, largest first, as at::topk(x, k, 1, true, true). Float32 on
/// the CPU is scanned once per row against the running k-th value, where
/// at::topk partially sorts every row; equal values keep column order.
std::pair<at::Tensor, at::Tensor> top_k_per_row(const at::Tensor& x, int64_t k);

/// T5's RMS norm, weight * (x * rsqrt(mean(x², last dim) + eps)), as one pass
/// per row for contiguous float32 on the CPU; inside autograd, a function
/// whose backward is one pass too (src/model/norm_and_activation.cpp). Other
/// inputs take ATen's operators.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

/// gelu_new(a) * b, T5 v1.1's gated feed-forward activation (gelu_new:
/// 0.5·a·(1 + tanh(√(2/π)·(a + 0.044715·a³)))), as one pass for contiguous
/// float32 on the CPU, forward and (inside autograd) backward; ATen's
/// operators otherwise.
at::Tensor gated_gelu_new(const at::Tensor& a, const at::Tensor& b);

/// One decoding step's self-attention over a history kept in place
/// (DecoderHistory): for each row r and head h,
///   out[r, h] = softmax_j(q[r, h] · K[j, a(r, j), h] + bias[h, j]) · V[j, a(r, j), h]
/// over positions j < length, where a(r, j) = ancestors[r * ancestor_stride + j]
/// names the storage row holding row r's entry for position j. Rows and heads
/// run in parallel; the softmax of each is exact float32.
struct AncestorAttention {
  const float* queries;  // [rows, heads, head_dim]
  const float* keys;     // [positions, storage_rows, heads * head_dim]
  const float* values;   // same layout as keys
  const int64_t* ancestors;
  int64_t ancestor_stride;
  const float* bias;  // [heads, length], or null
  float* out;         // [rows, heads, head_dim]
  int64_t rows, heads, head_dim, length, storage_rows;
};
void attend_over_ancestors(const AncestorAttention& a);

}  // namespace slt
