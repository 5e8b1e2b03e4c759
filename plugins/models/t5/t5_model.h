#pragma once
// SignT5ForConditionalGeneration (ssvp_slt's sign_t5.py): T5 / T5 v1.1 with a
// learned feature projection in front of the encoder. Module and parameter
// names follow the reference state_dict().
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "slt/model/decoder_history.h"
#include "slt/model/model.h"

namespace slt::t5 {

struct T5Config {
  int64_t vocab_size = 32128, d_model = 512, d_kv = 64, d_ff = 2048, num_layers = 6, num_decoder_layers = 6,
          num_heads = 8, relative_attention_num_buckets = 32, relative_attention_max_distance = 128;
  double dropout_rate = 0.1, layer_norm_epsilon = 1e-6, initializer_factor = 1.0, label_smoothing = 0.0;
  bool is_gated_act = false, tie_word_embeddings = true;
  std::string dense_act_fn = "relu";
  int64_t feature_dim = 768, pad_token_id = 0, eos_token_id = 1, decoder_start_token_id = 0;

  // From a Hugging Face config.json (as SignT5Config reads it).
  static T5Config from_json(const nlohmann::json& j);
};

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t size, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(const T5Config& c, bool is_decoder, bool has_relative_attention_bias);
  // Relative position bias [1, H, Q, K] for queries at positions
  // query_offset .. query_offset + Q - 1 against keys 0 .. K - 1.
  torch::Tensor compute_bias(int64_t query_length, int64_t key_length, int64_t query_offset = 0);
  // hidden [B,Q,D]; keys/values [B,H,K,dk] already projected; `bias` [1|B,H,Q,K] added to the scores.
  torch::Tensor attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& values,
                       const torch::Tensor& bias);
  torch::Tensor shape(const torch::Tensor& x) const;  // [B,L,H*dk] -> [B,H,L,dk]
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};
  bool is_decoder, has_relative_attention_bias;
  int64_t n_heads, d_kv, num_buckets, max_distance;
  double dropout;
};
TORCH_MODULE(Attention);

struct FeedForwardImpl : torch::nn::Module {
  explicit FeedForwardImpl(const T5Config& c);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
  bool gated;
  std::string act;
  double dropout;
};
TORCH_MODULE(FeedForward);

// One block: self-attention, cross-attention (decoder), feed-forward; each
// pre-normed with a residual, registered as layer.0/1/2 like the reference.
struct BlockImpl : torch::nn::Module {
  BlockImpl(const T5Config& c, bool is_decoder, bool has_relative_attention_bias);
  Attention self_attention{nullptr}, cross_attention{nullptr};
  RMSNorm self_norm{nullptr}, cross_norm{nullptr}, ff_norm{nullptr};
  FeedForward ff{nullptr};
  double dropout;
};
TORCH_MODULE(Block);

class SignT5 : public torch::nn::Module {
 public:
  using Config = T5Config;
  using Cache = TransformerDecoderCache;
  explicit SignT5(T5Config config);
  SpecialTokens special_tokens() const;
  const T5Config& config() const { return config_; }

  torch::Tensor encode(const torch::Tensor& features, const torch::Tensor& mask);
  // Teacher-forced decoder over all positions.
  torch::Tensor decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                       const torch::Tensor& encoder_mask);
  // One step for `tokens` [N]; `encoder_hidden` has N rows or one per group
  // of N / rows consecutive token rows (Seq2SeqModel::decode_step).
  torch::Tensor decode_step(const torch::Tensor& tokens, const torch::Tensor& encoder_hidden,
                            const torch::Tensor& encoder_mask, Cache& cache);
  // Re-initialises every weight as the reference _init_weights does (model.from_scratch).
  void reinit_weights();

 private:
  torch::Tensor lm_logits(const torch::Tensor& hidden);
  // Block i's cross-attention and feed-forward sublayers.
  torch::Tensor cross_and_feed_forward(size_t i, torch::Tensor hidden, const torch::Tensor& cross_k,
                                       const torch::Tensor& cross_v, const torch::Tensor& cross_bias);

  T5Config config_;
  torch::nn::Embedding shared{nullptr};
  torch::nn::Linear feature_proj{nullptr};
  torch::Tensor feature_proj_scale;
  std::vector<Block> encoder_blocks, decoder_blocks;
  RMSNorm encoder_final_norm{nullptr}, decoder_final_norm{nullptr};
  torch::nn::Linear lm_head{nullptr};
};

}  // namespace slt::t5
