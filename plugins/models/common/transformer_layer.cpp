#include "transformer_layer.h"

#include <cmath>

#include "slt/model/decoding_kernels.h"
#include "slt/model/dropout.h"

namespace slt::models {

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "relu") return torch::relu(x);
  if (name == "silu") return torch::silu(x);
  if (name == "tanh") return torch::tanh(x);
  if (name == "gelu_new")
    return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3.0))));
  return torch::gelu(x);
}

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t dim, int64_t heads_, double dropout_)
    : heads(heads_), head_dim(dim / heads_), dropout(dropout_) {
  k_proj = register_module("k_proj", torch::nn::Linear(dim, dim));
  v_proj = register_module("v_proj", torch::nn::Linear(dim, dim));
  q_proj = register_module("q_proj", torch::nn::Linear(dim, dim));
  out_proj = register_module("out_proj", torch::nn::Linear(dim, dim));
}

torch::Tensor MultiheadAttentionImpl::shape(const torch::Tensor& x) const {
  return x.view({x.size(0), -1, heads, head_dim}).transpose(1, 2);
}

torch::Tensor MultiheadAttentionImpl::attend(const torch::Tensor& query, const torch::Tensor& keys,
                                             const torch::Tensor& values, const torch::Tensor& bias) {
  auto q = shape(slt::linear(*q_proj, query) * std::pow(static_cast<double>(head_dim), -0.5));
  auto out = slt::attention(q, keys, values, bias, dropout, is_training()).transpose(1, 2).contiguous();
  return slt::linear(*out_proj, out.view({out.size(0), -1, heads * head_dim}));
}

TransformerLayerImpl::TransformerLayerImpl(const LayerOptions& o, bool is_decoder) : options(o) {
  auto norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.layer_norm_eps)); };
  self_attn = register_module("self_attn", MultiheadAttention(o.dim, o.heads, o.attention_dropout));
  self_attn_layer_norm = register_module("self_attn_layer_norm", norm());
  if (is_decoder) {
    encoder_attn = register_module("encoder_attn", MultiheadAttention(o.dim, o.heads, o.attention_dropout));
    encoder_attn_layer_norm = register_module("encoder_attn_layer_norm", norm());
  }
  fc1 = register_module("fc1", torch::nn::Linear(o.dim, o.ffn_dim));
  fc2 = register_module("fc2", torch::nn::Linear(o.ffn_dim, o.dim));
  final_layer_norm = register_module("final_layer_norm", norm());
}

torch::Tensor TransformerLayerImpl::sublayer(const torch::Tensor& x, torch::nn::LayerNorm& norm,
                                             const std::function<torch::Tensor(const torch::Tensor&)>& body) {
  const bool pre = options.normalize_before;
  auto h = x + slt::dropout(body(pre ? norm->forward(x) : x), options.dropout, is_training());
  return pre ? h : norm->forward(h);
}

torch::Tensor TransformerLayerImpl::cross_and_feed_forward(torch::Tensor x, const torch::Tensor& cross_k,
                                                           const torch::Tensor& cross_v, const torch::Tensor& cross_bias) {
  if (encoder_attn)
    x = sublayer(x, encoder_attn_layer_norm,
                 [&](const torch::Tensor& h) { return encoder_attn->attend(h, cross_k, cross_v, cross_bias); });
  return sublayer(x, final_layer_norm, [&](const torch::Tensor& h) {
    auto a = slt::dropout(activation(slt::linear(*fc1, h), options.activation), options.activation_dropout,
                            is_training());
    return slt::linear(*fc2, a);
  });
}

torch::Tensor TransformerLayerImpl::forward(torch::Tensor x, const torch::Tensor& self_k, const torch::Tensor& self_v,
                                            const torch::Tensor& self_bias, const torch::Tensor& cross_k,
                                            const torch::Tensor& cross_v, const torch::Tensor& cross_bias) {
  x = sublayer(x, self_attn_layer_norm, [&](const torch::Tensor& h) {
    auto k = self_k.defined() ? self_k : self_attn->shape(slt::linear(*self_attn->k_proj, h));
    auto v = self_v.defined() ? self_v : self_attn->shape(slt::linear(*self_attn->v_proj, h));
    return self_attn->attend(h, k, v, self_bias);
  });
  return cross_and_feed_forward(x, cross_k, cross_v, cross_bias);
}

torch::Tensor TransformerLayerImpl::forward_step(torch::Tensor x, DecoderHistory& history, int64_t index,
                                                 const torch::Tensor& cross_k, const torch::Tensor& cross_v,
                                                 const torch::Tensor& cross_bias) {
  const int64_t rows = x.size(0), width = x.size(2);
  auto& sa = *self_attn;
  x = sublayer(x, self_attn_layer_norm, [&](const torch::Tensor& h) {
    auto q = sa.shape(slt::linear(*sa.q_proj, h) * std::pow(static_cast<double>(sa.head_dim), -0.5));
    auto attended = history.attend(index, q, sa.shape(slt::linear(*sa.k_proj, h)),
                                   sa.shape(slt::linear(*sa.v_proj, h)), {});
    return slt::linear(*sa.out_proj, attended.transpose(1, 2).reshape({rows, 1, width}));
  });
  // The beams of one input, as one sequence of queries against its encoder row.
  const int64_t inputs = cross_k.defined() ? cross_k.size(0) : rows;
  return cross_and_feed_forward(x.view({inputs, rows / inputs, width}), cross_k, cross_v, cross_bias)
      .view({rows, 1, width});
}

}  // namespace slt::models
