#pragma once
// SignBartForConditionalGeneration (ssvp_slt's sign_bart.py): BART (post-norm)
// or mBART (pre-norm with final layer norms) with a learned feature projection
// in front of the encoder. Module and parameter names follow the reference.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "slt/model/model.h"
#include "transformer_layer.h"

namespace slt::bart {

struct BartConfig {
  int64_t vocab_size = 50265, d_model = 768, encoder_layers = 6, decoder_layers = 6, encoder_attention_heads = 12,
          decoder_attention_heads = 12, encoder_ffn_dim = 3072, decoder_ffn_dim = 3072, max_position_embeddings = 1024;
  double dropout = 0.1, attention_dropout = 0.0, activation_dropout = 0.0, init_std = 0.02, label_smoothing = 0.0;
  bool scale_embedding = false, normalize_before = false, add_final_layer_norm = false, tie_word_embeddings = true;
  std::string activation_function = "gelu";
  int64_t feature_dim = 768, pad_token_id = 1, bos_token_id = 0, eos_token_id = 2, decoder_start_token_id = 2,
          forced_bos_token_id = -1, forced_eos_token_id = 2;

  static BartConfig from_json(const nlohmann::json& j);
};

class SignBart : public torch::nn::Module {
 public:
  using Config = BartConfig;
  using Cache = TransformerDecoderCache;
  explicit SignBart(BartConfig config);
  SpecialTokens special_tokens() const;
  const BartConfig& config() const { return config_; }
  torch::Tensor encode(const torch::Tensor& features, const torch::Tensor& mask);
  torch::Tensor decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                       const torch::Tensor& encoder_mask);
  torch::Tensor decode_step(const torch::Tensor& tokens, const torch::Tensor& encoder_hidden,
                            const torch::Tensor& encoder_mask, Cache& cache);
  void reinit_weights();

 private:
  torch::Tensor embed_decoder(const torch::Tensor& ids, int64_t past);
  torch::Tensor logits(torch::Tensor hidden);

  BartConfig config_;
  torch::nn::Embedding shared{nullptr}, encoder_positions{nullptr}, decoder_positions{nullptr};
  torch::nn::Linear feature_proj{nullptr}, lm_head{nullptr};
  torch::Tensor feature_proj_scale, final_logits_bias;
  torch::nn::LayerNorm encoder_layernorm_embedding{nullptr}, decoder_layernorm_embedding{nullptr};
  torch::nn::LayerNorm encoder_final{nullptr}, decoder_final{nullptr};  // mBART only
  std::vector<models::TransformerLayer> encoder_layers, decoder_layers;
};

}  // namespace slt::bart
