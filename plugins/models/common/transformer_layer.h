#pragma once
// The transformer layer BART and fairseq share (same parameter names:
// self_attn.{q,k,v,out}_proj, self_attn_layer_norm, encoder_attn,
// encoder_attn_layer_norm, fc1, fc2, final_layer_norm), pre- or post-norm.
#include <torch/torch.h>

#include <functional>
#include <string>

#include "slt/model/decoder_history.h"

namespace slt::models {

// fairseq / BART multi-head attention: q scaled by head_dim^-0.5, biases on all projections.
struct MultiheadAttentionImpl : torch::nn::Module {
  MultiheadAttentionImpl(int64_t dim, int64_t heads, double dropout);
  torch::Tensor shape(const torch::Tensor& x) const;  // [B,L,D] -> [B,H,L,dh]
  // `bias`: additive [1|B, 1|H, Q, K] mask (may be undefined). Softmax in float32.
  torch::Tensor attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& values,
                       const torch::Tensor& bias);
  torch::nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};
  int64_t heads, head_dim;
  double dropout;
};
TORCH_MODULE(MultiheadAttention);

struct LayerOptions {
  int64_t dim, heads, ffn_dim;
  double dropout, attention_dropout, activation_dropout;
  std::string activation;  // relu, gelu, gelu_new, silu, tanh
  bool normalize_before;
  double layer_norm_eps = 1e-5;
};

struct TransformerLayerImpl : torch::nn::Module {
  TransformerLayerImpl(const LayerOptions& options, bool is_decoder);
  // Self-attention over (self_k, self_v) when given (cached decoding), else
  // over the layer's own input; cross-attention when the layer has one.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& self_k, const torch::Tensor& self_v,
                        const torch::Tensor& self_bias, const torch::Tensor& cross_k, const torch::Tensor& cross_v,
                        const torch::Tensor& cross_bias);
  // One decoding step: `x` [N, 1, dim] attends to its history in `history`
  // (as decoder layer `index`), then to cross_k/cross_v, which have N rows or
  // one per group of N / rows consecutive rows (the beams of one input).
  torch::Tensor forward_step(torch::Tensor x, DecoderHistory& history, int64_t index, const torch::Tensor& cross_k,
                             const torch::Tensor& cross_v, const torch::Tensor& cross_bias);

  LayerOptions options;
  // x + body(norm(x)) before or after the norm, as options.normalize_before says.
  torch::Tensor sublayer(const torch::Tensor& x, torch::nn::LayerNorm& norm,
                         const std::function<torch::Tensor(const torch::Tensor&)>& body);
  torch::Tensor cross_and_feed_forward(torch::Tensor x, const torch::Tensor& cross_k, const torch::Tensor& cross_v,
                                       const torch::Tensor& cross_bias);
  MultiheadAttention self_attn{nullptr}, encoder_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr}, encoder_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(TransformerLayer);

torch::Tensor activation(const torch::Tensor& x, const std::string& name);

}  // namespace slt::models
