#pragma once
// The sign-to-text transformer of Tarrés et al. (2023), as ssvp_slt builds it
// with fairseq (Sign2TextTransformerModel): a linear feature projection and
// sinusoidal positions into a pre-norm transformer encoder, and fairseq's
// TransformerDecoder with a tied output projection. Names follow the
// reference state_dict (transformer.encoder.*, transformer.decoder.*).
#include <torch/torch.h>

#include "slt/config/config.h"
#include "slt/model/model.h"
#include "transformer_layer.h"

namespace slt::tarres {

// The architecture; every field but the special ids comes from the `model`
// section (tarres_schema() in plugin.cpp holds the defaults).
struct TarresConfig {
  int64_t feature_dim = 0, encoder_embed_dim = 0, encoder_ffn_embed_dim = 0, encoder_attention_heads = 0,
          encoder_layers = 0, decoder_embed_dim = 0, decoder_ffn_embed_dim = 0, decoder_attention_heads = 0,
          decoder_layers = 0, max_source_positions = 0, max_target_positions = 0, vocab_size = 0;
  double dropout = 0, attention_dropout = 0, activation_dropout = 0, encoder_layerdrop = 0, decoder_layerdrop = 0,
         label_smoothing = 0;
  bool encoder_normalize_before = false, decoder_normalize_before = false, layernorm_embedding = false,
       no_scale_embedding = false, share_decoder_input_output_embed = false;
  std::string activation_fn;
  int64_t bos = 0, pad = 1, eos = 2, unk = 3;  // fairseq Dictionary's special ids

  // From the component's `model` section (defaults filled in, types checked).
  static TarresConfig from_section(const ConfigNode& section, int64_t vocab_size, double label_smoothing);
};

// fairseq's SinusoidalPositionalEmbedding table row for `position`.
torch::Tensor sinusoidal_positions(const torch::Tensor& positions, int64_t dim, int64_t padding_idx);

class Sign2Text : public torch::nn::Module {
 public:
  explicit Sign2Text(TarresConfig config);
  const TarresConfig& config() const { return config_; }
  // [B,T,C] (batch first; fairseq's encoder_out is its transpose).
  torch::Tensor encode(const torch::Tensor& source, const torch::Tensor& padding_mask);
  torch::Tensor decode(const torch::Tensor& prev_output_tokens, const torch::Tensor& encoder_out,
                       const torch::Tensor& padding_mask);
  torch::Tensor decode_step(const torch::Tensor& tokens, const torch::Tensor& encoder_out,
                            const torch::Tensor& padding_mask, TransformerDecoderCache& cache);
  // _reinit_weights of the reference (from_scratch).
  void reinit_weights();

 private:
  torch::Tensor embed_tokens_at(const torch::Tensor& tokens, const torch::Tensor& positions);
  torch::Tensor output(torch::Tensor x);

  TarresConfig config_;
  torch::nn::Linear feat_proj{nullptr};
  std::vector<models::TransformerLayer> encoder_layers, decoder_layers;
  torch::nn::LayerNorm encoder_layer_norm{nullptr}, decoder_layer_norm{nullptr}, layernorm_embedding{nullptr};
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::Linear output_projection{nullptr};  // untied only
  torch::Tensor version;
};

}  // namespace slt::tarres
