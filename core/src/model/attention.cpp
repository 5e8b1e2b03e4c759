#include "attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dropout_noise.h"
#include "kernel_support.h"
#include "strided_gemm.h"

namespace slt::detail {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Head t = (b, h) of a [B, H, rows, cols] tensor, as a matrix.
MatrixView head(const at::Tensor& t, int64_t task, int64_t heads) {
  return {t.data_ptr<float>() + (task / heads) * t.stride(0) + (task % heads) * t.stride(1), t.stride(2), t.stride(3)};
}

// Head t of a contiguous [B, H, rows, cols] tensor, as a matrix.
MatrixView dense_head(const at::Tensor& t, int64_t task) {
  const int64_t rows = t.size(2), cols = t.size(3);
  return {t.data_ptr<float>() + task * rows * cols, cols, 1};
}

float* dense_head_out(at::Tensor& t, int64_t task) { return t.data_ptr<float>() + task * t.size(2) * t.size(3); }

struct Forward {
  at::Tensor probabilities;  // softmax(q kᵀ + bias) [B, H, Sq, Sk]
  at::Tensor noise;          // the dropout mask (scaled), or undefined
  at::Tensor dropped;        // probabilities * noise
  at::Tensor out;            // [B, H, Sq, d], a view of [B, Sq, H, d]
};

Forward attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                          double dropout_p, bool train) {
  const int64_t batch = q.size(0), heads = q.size(1), queries = q.size(2), keys = k.size(2), dim = q.size(3);
  at::Tensor scores = at::empty({batch, heads, queries, keys}, q.options());
  for_each_task(batch * heads, [&](int64_t t) {
    strided_gemm(head(q, t, heads), head(k, t, heads).transposed(), dense_head_out(scores, t), keys, queries, keys,
                 dim);
  });
  if (bias.defined()) scores.add_(bias);
  Forward f;
  f.probabilities = at::softmax(scores, -1);
  f.dropped = f.probabilities;
  if (train && dropout_p > 0) {
    f.noise = dropout_noise(f.probabilities.sizes(), 1 - dropout_p, seed_from_default_generator());
    f.dropped = f.probabilities * f.noise;
  }
  at::Tensor out = at::empty({batch, queries, heads, dim}, scores.options());
  float* op = out.data_ptr<float>();
  for_each_task(batch * heads, [&](int64_t t) {
    const int64_t b = t / heads, h = t % heads;
    strided_gemm(dense_head(f.dropped, t), head(v, t, heads), op + (b * queries * heads + h) * dim, heads * dim,
                 queries, dim, keys);
  });
  f.out = out.permute({0, 2, 1, 3});
  return f;
}

struct HeadAttention : torch::autograd::Function<HeadAttention> {
  // `bias` is an empty tensor for none: LibTorch's custom functions cannot
  // take undefined tensors.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& bias, double dropout_p, bool train) {
    const bool has_bias = bias.numel() > 0;
    Forward f = attention_forward(q, k, v, has_bias ? bias : at::Tensor(), dropout_p, train);
    ctx->save_for_backward({q, k, v, f.probabilities, f.noise, f.dropped});
    ctx->saved_data["bias_sizes"] = has_bias ? c10::IValue(bias.sizes().vec()) : c10::IValue();
    return f.out;
  }

  // With P the probabilities, D the dropout noise and dO the output's gradient:
  //   dV = (P·D)ᵀ dO,  dS = softmax_backward(dO Vᵀ · D, P),  dQ = dS K,  dK = dSᵀ Q,
  // and the bias's gradient dS, summed over its broadcast dimensions.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probabilities = saved[3], &noise = saved[4],
                     &dropped = saved[5];
    const at::Tensor& d_out = grads[0];
    const int64_t batch = q.size(0), heads = q.size(1), queries = q.size(2), keys = k.size(2), dim = q.size(3);
    const auto options = probabilities.options();
    at::Tensor d_dropped = at::empty({batch, heads, queries, keys}, options);
    at::Tensor dv = at::empty({batch, heads, keys, dim}, options);
    for_each_task(batch * heads, [&](int64_t t) {
      strided_gemm(head(d_out, t, heads), head(v, t, heads).transposed(), dense_head_out(d_dropped, t), keys, queries,
                   keys, dim);
      strided_gemm(dense_head(dropped, t).transposed(), head(d_out, t, heads), dense_head_out(dv, t), dim, keys, dim,
                   queries);
    });
    if (noise.defined()) d_dropped.mul_(noise);
    at::Tensor d_scores = at::_softmax_backward_data(d_dropped, probabilities, -1, at::kFloat);
    at::Tensor dq = at::empty({batch, heads, queries, dim}, options);
    at::Tensor dk = at::empty({batch, heads, keys, dim}, options);
    for_each_task(batch * heads, [&](int64_t t) {
      strided_gemm(dense_head(d_scores, t), head(k, t, heads), dense_head_out(dq, t), dim, queries, dim, keys);
      strided_gemm(dense_head(d_scores, t).transposed(), head(q, t, heads), dense_head_out(dk, t), dim, keys, dim,
                   queries);
    });
    at::Tensor d_bias;
    const c10::IValue& bias_sizes = ctx->saved_data["bias_sizes"];
    if (!bias_sizes.isNone() && ctx->needs_input_grad(3)) d_bias = d_scores.sum_to_size(bias_sizes.toIntVector());
    return {dq, dk, dv, d_bias, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool takes_head_attention(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& bias, double dropout_p, bool train) {
  if (!strided_gemm_available() || (train && dropout_p >= 1)) return false;
  if (!cpu_float({&queries, &keys, &values}, false) || queries.dim() != 4 || keys.dim() != 4 ||
      keys.sizes() != values.sizes())
    return false;
  if (keys.size(0) != queries.size(0) || keys.size(1) != queries.size(1) || keys.size(3) != queries.size(3))
    return false;
  if (queries.numel() == 0 || keys.numel() == 0) return false;
  if (!bias.defined()) return true;
  if (!cpu_float({&bias}, false) || bias.dim() != 4) return false;
  const int64_t target[4] = {queries.size(0), queries.size(1), queries.size(2), keys.size(2)};
  for (int i = 0; i < 4; ++i)
    if (bias.size(i) != 1 && bias.size(i) != target[i]) return false;
  return true;
}

at::Tensor head_attention(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& bias, double dropout_p, bool train) {
  const bool differentiable =
      at::GradMode::is_enabled() && (queries.requires_grad() || keys.requires_grad() || values.requires_grad() ||
                                     (bias.defined() && bias.requires_grad()));
  if (!differentiable) return attention_forward(queries, keys, values, bias, dropout_p, train).out;
  return HeadAttention::apply(queries, keys, values, bias.defined() ? bias : at::empty({0}, queries.options()), dropout_p,
                              train);
}

}  // namespace slt::detail
