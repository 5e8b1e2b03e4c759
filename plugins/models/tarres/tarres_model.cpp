#include "tarres_model.h"

#include <cmath>

#include "slt/errors.h"
#include "slt/model/decoding_kernels.h"
#include "slt/model/dropout.h"

namespace slt::tarres {

TarresConfig TarresConfig::from_section(const ConfigNode& section, int64_t vocab_size, double label_smoothing) {
  TarresConfig c;
  c.vocab_size = vocab_size;
  c.label_smoothing = label_smoothing;
  auto get_int = [&](const char* key) { return section.require<int64_t>(key); };
  auto get_double = [&](const char* key) { return section.require<double>(key); };
  auto get_bool = [&](const char* key) { return section.require<bool>(key); };
  c.feature_dim = get_int("feature_dim");
  c.encoder_embed_dim = get_int("encoder_embed_dim");
  c.encoder_ffn_embed_dim = get_int("encoder_ffn_embed_dim");
  c.encoder_attention_heads = get_int("encoder_attention_heads");
  c.encoder_layers = get_int("encoder_layers");
  c.decoder_embed_dim = get_int("decoder_embed_dim");
  c.decoder_ffn_embed_dim = get_int("decoder_ffn_embed_dim");
  c.decoder_attention_heads = get_int("decoder_attention_heads");
  c.decoder_layers = get_int("decoder_layers");
  c.max_source_positions = get_int("max_source_positions");
  c.max_target_positions = get_int("max_target_positions");
  c.dropout = get_double("dropout");
  c.attention_dropout = get_double("attention_dropout");
  c.activation_dropout = get_double("activation_dropout");
  c.encoder_layerdrop = get_double("encoder_layerdrop");
  c.decoder_layerdrop = get_double("decoder_layerdrop");
  c.encoder_normalize_before = get_bool("encoder_normalize_before");
  c.decoder_normalize_before = get_bool("decoder_normalize_before");
  c.layernorm_embedding = get_bool("layernorm_embedding");
  c.no_scale_embedding = get_bool("no_scale_embedding");
  c.share_decoder_input_output_embed = get_bool("share_decoder_input_output_embed");
  c.activation_fn = section.require<std::string>("activation_fn");
  if (auto output_dim = section.get<int64_t>("decoder_output_dim"); output_dim && *output_dim != c.decoder_embed_dim)
    throw UserError("model.decoder_output_dim must equal model.decoder_embed_dim (slt has no decoder output projection-in)");
  if (c.activation_fn != "relu" && c.activation_fn != "gelu" && c.activation_fn != "tanh")
    throw UserError("model.activation_fn '" + c.activation_fn + "' is not supported (relu, gelu, tanh)");
  return c;
}

namespace {

torch::nn::LayerNorm layer_norm(int64_t d) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5)); }

// -inf where `padding` [B,K] is true, as an additive [B,1,1,K] bias.
torch::Tensor padding_bias(const torch::Tensor& padding) {
  return torch::zeros(padding.sizes(), torch::kFloat).to(padding.device())
      .masked_fill(padding, -std::numeric_limits<float>::infinity())
      .unsqueeze(1)
      .unsqueeze(1);
}

// fairseq's make_positions: non-padding tokens get padding_idx + 1, + 2, ...
torch::Tensor make_positions(const torch::Tensor& tokens, int64_t padding_idx) {
  auto mask = tokens.ne(padding_idx).to(torch::kInt);
  return (torch::cumsum(mask, 1).to(torch::kInt) * mask).to(torch::kLong) + padding_idx;
}

}  // namespace

torch::Tensor sinusoidal_positions(const torch::Tensor& positions, int64_t dim, int64_t padding_idx) {
  int64_t half = dim / 2;
  double step = std::log(10000.0) / static_cast<double>(half - 1);
  auto freq = torch::exp(torch::arange(half, torch::kFloat) * -step).to(positions.device());
  auto angles = positions.to(torch::kFloat).unsqueeze(-1) * freq;
  auto table = torch::cat({torch::sin(angles), torch::cos(angles)}, -1);
  if (dim % 2 == 1) table = torch::cat({table, torch::zeros_like(angles.narrow(-1, 0, 1))}, -1);
  return table.masked_fill(positions.eq(padding_idx).unsqueeze(-1), 0.0);
}

Sign2Text::Sign2Text(TarresConfig config) : torch::nn::Module("Sign2TextTransformerModel"), config_(std::move(config)) {
  const TarresConfig& c = config_;
  if (c.encoder_embed_dim != c.decoder_embed_dim)
    throw UserError("model.encoder_embed_dim and model.decoder_embed_dim must be equal");
  auto transformer = register_module("transformer", std::make_shared<torch::nn::Module>());
  auto encoder = transformer->register_module("encoder", std::make_shared<torch::nn::Module>());
  feat_proj = encoder->register_module("feat_proj", torch::nn::Linear(c.feature_dim, c.encoder_embed_dim));
  auto encoder_list = encoder->register_module("transformer_layers", torch::nn::ModuleList());
  models::LayerOptions encoder_options{c.encoder_embed_dim, c.encoder_attention_heads, c.encoder_ffn_embed_dim,
                                       c.dropout, c.attention_dropout, c.activation_dropout, c.activation_fn,
                                       c.encoder_normalize_before};
  models::LayerOptions decoder_options{c.decoder_embed_dim, c.decoder_attention_heads, c.decoder_ffn_embed_dim,
                                       c.dropout, c.attention_dropout, c.activation_dropout, c.activation_fn,
                                       c.decoder_normalize_before};
  for (int64_t i = 0; i < c.encoder_layers; ++i) {
    encoder_layers.push_back(models::TransformerLayer(encoder_options, false));
    encoder_list->push_back(encoder_layers.back());
  }
  if (c.encoder_normalize_before) encoder_layer_norm = encoder->register_module("layer_norm", layer_norm(c.encoder_embed_dim));
  auto decoder = transformer->register_module("decoder", std::make_shared<torch::nn::Module>());
  version = decoder->register_buffer("version", torch::full({1}, 3.0));
  embed_tokens = decoder->register_module(
      "embed_tokens", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.decoder_embed_dim).padding_idx(c.pad)));
  if (c.layernorm_embedding) layernorm_embedding = decoder->register_module("layernorm_embedding", layer_norm(c.decoder_embed_dim));
  auto decoder_list = decoder->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.decoder_layers; ++i) {
    decoder_layers.push_back(models::TransformerLayer(decoder_options, true));
    decoder_list->push_back(decoder_layers.back());
  }
  if (c.decoder_normalize_before) decoder_layer_norm = decoder->register_module("layer_norm", layer_norm(c.decoder_embed_dim));
  if (!c.share_decoder_input_output_embed)
    output_projection = decoder->register_module(
        "output_projection", torch::nn::Linear(torch::nn::LinearOptions(c.decoder_embed_dim, c.vocab_size).bias(false)));
  reinit_weights();
}

void Sign2Text::reinit_weights() {
  // fairseq's init_bert_params, then LayerNorms to (1, 0).
  torch::NoGradGuard no_grad;
  for (auto& module : modules(false)) {
    if (auto* linear = module->as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* embedding = module->as<torch::nn::Embedding>()) {
      embedding->weight.normal_(0.0, 0.02);
      if (embedding->options.padding_idx()) embedding->weight[*embedding->options.padding_idx()].zero_();
    } else if (auto* norm = module->as<torch::nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    }
  }
}

torch::Tensor Sign2Text::encode(const torch::Tensor& source, const torch::Tensor& padding_mask) {
  const TarresConfig& c = config_;
  double scale = c.no_scale_embedding ? 1.0 : std::sqrt(static_cast<double>(c.encoder_embed_dim));
  // The bool mask is fed to the positional embedding as if it were tokens with padding_idx 1.
  auto positions = sinusoidal_positions(make_positions(padding_mask.to(torch::kLong), 1), c.encoder_embed_dim, 1);
  auto x = slt::dropout(scale * feat_proj->forward(source) + positions, c.dropout, is_training());
  auto bias = padding_bias(padding_mask);
  for (auto& layer : encoder_layers) {
    if (is_training() && c.encoder_layerdrop > 0 && torch::rand({1}).item<double>() < c.encoder_layerdrop) continue;
    x = layer->forward(x, {}, {}, bias, {}, {}, {});
  }
  return encoder_layer_norm ? encoder_layer_norm->forward(x) : x;
}

torch::Tensor Sign2Text::embed_tokens_at(const torch::Tensor& tokens, const torch::Tensor& positions) {
  const TarresConfig& c = config_;
  double scale = c.no_scale_embedding ? 1.0 : std::sqrt(static_cast<double>(c.decoder_embed_dim));
  auto x = scale * embed_tokens->forward(tokens) + sinusoidal_positions(positions, c.decoder_embed_dim, c.pad);
  if (layernorm_embedding) x = layernorm_embedding->forward(x);
  return slt::dropout(x, c.dropout, is_training());
}

torch::Tensor Sign2Text::output(torch::Tensor x) {
  if (decoder_layer_norm) x = decoder_layer_norm->forward(x);
  return output_projection ? slt::linear(*output_projection, x) : slt::linear(x, embed_tokens->weight, {});
}

torch::Tensor Sign2Text::decode(const torch::Tensor& prev_output_tokens, const torch::Tensor& encoder_out,
                                const torch::Tensor& padding_mask) {
  const TarresConfig& c = config_;
  int64_t length = prev_output_tokens.size(1);
  auto x = embed_tokens_at(prev_output_tokens, make_positions(prev_output_tokens, c.pad));
  auto future = torch::full({length, length}, -std::numeric_limits<float>::infinity(), x.options()).triu(1);
  auto self_bias = future.unsqueeze(0).unsqueeze(0);
  auto pads = prev_output_tokens.eq(c.pad);
  if (pads.any().item<bool>()) self_bias = self_bias + padding_bias(pads);
  auto cross_bias = padding_mask.any().item<bool>() ? padding_bias(padding_mask) : torch::Tensor();
  for (auto& layer : decoder_layers) {
    if (is_training() && c.decoder_layerdrop > 0 && torch::rand({1}).item<double>() < c.decoder_layerdrop) continue;
    auto& ea = *layer->encoder_attn;
    x = layer->forward(x, {}, {}, self_bias, ea.shape(ea.k_proj->forward(encoder_out)),
                       ea.shape(ea.v_proj->forward(encoder_out)), cross_bias);
  }
  return output(x);
}

torch::Tensor Sign2Text::decode_step(const torch::Tensor& tokens, const torch::Tensor& encoder_out,
                                     const torch::Tensor& padding_mask, TransformerDecoderCache& cache) {
  const TarresConfig& c = config_;
  if (cache.cross_keys.empty()) {
    for (auto& layer : decoder_layers) {
      auto& ea = *layer->encoder_attn;
      cache.add_cross_layer(ea.shape(slt::linear(*ea.k_proj, encoder_out)),
                            ea.shape(slt::linear(*ea.v_proj, encoder_out)));
    }
  }
  // Step t of an unpadded prefix sits at position t + 2 (fairseq's padding_idx + 1 offset).
  auto positions = torch::full({tokens.size(0), 1}, cache.self.length() + c.pad + 1, torch::TensorOptions().dtype(torch::kLong).device(tokens.device()));
  auto x = embed_tokens_at(tokens.unsqueeze(1), positions);
  auto cross_bias = padding_mask.any().item<bool>() ? padding_bias(padding_mask) : torch::Tensor();
  for (size_t i = 0; i < decoder_layers.size(); ++i)
    x = decoder_layers[i]->forward_step(x, cache.self, static_cast<int64_t>(i), cache.cross_keys[i],
                                        cache.cross_values[i], cross_bias);
  cache.self.advance();
  return output(x).squeeze(1);
}

}  // namespace slt::tarres
