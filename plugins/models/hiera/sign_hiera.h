#pragma once
// SignHiera (ssvp_slt's sign_hiera.py, after Hiera v0.1.2): a hierarchical
// video transformer whose tokens are kept "unrolled" so that mask-unit
// windows and query pooling are plain reshapes and max-reductions. Parameter
// names follow the reference's state_dict().
#include <torch/torch.h>

#include <vector>

#include "slt/config/config.h"

namespace slt::hiera {

struct HieraConfig {
  std::vector<int64_t> input_size{128, 224, 224};
  int64_t in_chans = 3, embed_dim = 96, num_heads = 1, num_classes = 400;
  std::vector<int64_t> stages{2, 3, 16, 3};
  int64_t q_pool = 3;
  std::vector<int64_t> q_stride{1, 2, 2}, mask_unit_size{1, 8, 8};
  std::vector<bool> mask_unit_attn{true, true, false, false};
  double dim_mul = 2.0, head_mul = 2.0, mlp_ratio = 4.0;
  std::vector<int64_t> patch_kernel{3, 7, 7}, patch_stride{2, 4, 4}, patch_padding{1, 3, 3};
  bool sep_pos_embed = true;
  int64_t attention_block = 0;  // query rows per global-attention block (0: bounded by kScoreBlock)
  std::string init = "reference";  // or "fan_in": see initialise()

  // From a component section (every key present: the schema fills them in).
  static HieraConfig from_section(const ConfigNode& section);
};

// Reorders [B, N, C] tokens so that each q-pooling step is a max over the leading stride groups.
class Unroll {
 public:
  Unroll(std::vector<int64_t> size, std::vector<std::vector<int64_t>> schedule);
  torch::Tensor operator()(torch::Tensor x) const;

 private:
  std::vector<int64_t> size_;
  std::vector<std::vector<int64_t>> schedule_;
};

// Undoes Unroll for the output of block `block`: [B, T', H', W', C].
class Reroll {
 public:
  Reroll(std::vector<int64_t> size, std::vector<std::vector<int64_t>> schedule, const std::vector<int64_t>& stage_ends,
         int64_t q_pool);
  torch::Tensor operator()(const torch::Tensor& x, int64_t block) const;

 private:
  struct Step {
    std::vector<std::vector<int64_t>> schedule;
    std::vector<int64_t> size;
  };
  std::vector<Step> steps_;
};

// Score elements one global-attention block holds by default (1.5 Mi floats,
// 6 MB: 128 query rows over 12,544 keys; measured fastest here, between
// blocks that keep too few rows per GEMM and blocks that spill the cache).
inline constexpr int64_t kScoreBlock = int64_t{3} << 19;

struct MaskUnitAttentionImpl : torch::nn::Module {
  MaskUnitAttentionImpl(int64_t dim, int64_t dim_out, int64_t heads, int64_t q_stride, int64_t window_size,
                        bool use_mask_unit_attn, int64_t query_block = 0);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask);
  // softmax(q k^T) v over every token (q pre-scaled; [B, heads, 1, N, head_dim]) -> [B, heads, Nq, head_dim].
  torch::Tensor global_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& attn_mask) const;

  int64_t dim_out, heads, q_stride, window_size, head_dim;
  bool use_mask_unit_attn;
  int64_t query_block;
  double scale;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(MaskUnitAttention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct HieraBlockImpl : torch::nn::Module {
  HieraBlockImpl(int64_t dim, int64_t dim_out, int64_t heads, double mlp_ratio, int64_t q_stride, int64_t window_size,
                 bool use_mask_unit_attn, int64_t query_block = 0);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& attn_mask);

  int64_t dim, dim_out;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MaskUnitAttention attn{nullptr};
  Mlp mlp{nullptr};
  torch::nn::Linear proj{nullptr};  // only when dim != dim_out
};
TORCH_MODULE(HieraBlock);

/// SignHiera for feature extraction and classification.
///   SignHiera net(config);
///   auto features = net->extract_features(clips, padding);  // [sum kept steps, feature_dim]
class SignHieraImpl : public torch::nn::Module {
 public:
  explicit SignHieraImpl(HieraConfig config);

  // 1 = keep, 0 = padded mask unit: the last padding // (mu_t * patch_stride_t) temporal slices per clip.
  torch::Tensor attention_mask(const torch::Tensor& padding) const;
  // Logits of the head (no softmax) of mean-pooled, normed tokens; the rerolled
  // output of each stage's last block in `intermediates` when given.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask = {},
                        std::vector<torch::Tensor>* intermediates = nullptr);
  torch::Tensor extract_features(const torch::Tensor& x, const torch::Tensor& padding = {});

  const HieraConfig& config() const { return config_; }
  int64_t output_dim() const { return output_dim_; }

 private:
  void initialise();
  // Blocks and intermediates without the pooled head.
  torch::Tensor run_blocks(const torch::Tensor& x, torch::Tensor attn_mask, std::vector<torch::Tensor>* intermediates);

  HieraConfig config_;
  std::vector<int64_t> tokens_shape_, mask_shape_, stage_ends_;
  std::vector<int64_t> q_pool_blocks_;
  int64_t output_dim_ = 0;
  std::unique_ptr<Unroll> unroll_;
  std::unique_ptr<Reroll> reroll_;
  torch::nn::Conv3d patch_proj{nullptr};
  torch::Tensor pos_embed, pos_embed_spatial, pos_embed_temporal;
  torch::nn::ModuleList blocks;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(SignHiera);

}  // namespace slt::hiera
