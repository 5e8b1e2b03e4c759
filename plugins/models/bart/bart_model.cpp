#include "bart_model.h"

#include <cmath>

#include "slt/errors.h"
#include "slt/model/decoding_kernels.h"
#include "slt/model/dropout.h"

namespace slt::bart {

BartConfig BartConfig::from_json(const nlohmann::json& j) {
  BartConfig c;
  auto opt_int = [&](const char* key, int64_t fallback) {
    return j.contains(key) && !j[key].is_null() ? j[key].get<int64_t>() : fallback;
  };
  c.vocab_size = j.value("vocab_size", c.vocab_size);
  c.d_model = j.value("d_model", c.d_model);
  c.encoder_layers = j.value("encoder_layers", c.encoder_layers);
  c.decoder_layers = j.value("decoder_layers", c.decoder_layers);
  c.encoder_attention_heads = j.value("encoder_attention_heads", c.encoder_attention_heads);
  c.decoder_attention_heads = j.value("decoder_attention_heads", c.decoder_attention_heads);
  c.encoder_ffn_dim = j.value("encoder_ffn_dim", c.encoder_ffn_dim);
  c.decoder_ffn_dim = j.value("decoder_ffn_dim", c.decoder_ffn_dim);
  c.max_position_embeddings = j.value("max_position_embeddings", c.max_position_embeddings);
  c.dropout = j.value("dropout", c.dropout);
  c.attention_dropout = j.value("attention_dropout", c.attention_dropout);
  c.activation_dropout = j.value("activation_dropout", c.activation_dropout);
  c.init_std = j.value("init_std", c.init_std);
  c.label_smoothing = j.value("label_smoothing", c.label_smoothing);
  c.scale_embedding = j.value("scale_embedding", c.scale_embedding);
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);
  c.activation_function = j.value("activation_function", c.activation_function);
  c.feature_dim = j.value("feature_dim", c.feature_dim);
  c.pad_token_id = opt_int("pad_token_id", c.pad_token_id);
  c.bos_token_id = opt_int("bos_token_id", c.bos_token_id);
  c.eos_token_id = opt_int("eos_token_id", c.eos_token_id);
  c.decoder_start_token_id = opt_int("decoder_start_token_id", c.eos_token_id);
  c.forced_bos_token_id = opt_int("forced_bos_token_id", -1);
  c.forced_eos_token_id = opt_int("forced_eos_token_id", -1);
  // mBART: pre-norm layers and a final layer norm after each stack.
  bool mbart = j.value("model_type", std::string("bart")) == "mbart";
  c.normalize_before = j.value("normalize_before", mbart);
  c.add_final_layer_norm = j.value("add_final_layer_norm", mbart);
  if (c.activation_function != "gelu" && c.activation_function != "relu" && c.activation_function != "gelu_new" &&
      c.activation_function != "silu")
    throw UserError("unsupported BART activation_function '" + c.activation_function + "'");
  return c;
}

namespace {

torch::Tensor mask_bias(const torch::Tensor& mask) {
  return (1.0 - mask.to(torch::kFloat)).mul(std::numeric_limits<float>::lowest()).unsqueeze(1).unsqueeze(1);
}

torch::nn::LayerNorm layer_norm(int64_t d) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5)); }

}  // namespace

SignBart::SignBart(BartConfig config) : torch::nn::Module("SignBartForConditionalGeneration"), config_(std::move(config)) {
  const BartConfig& c = config_;
  auto model = register_module("model", std::make_shared<torch::nn::Module>());
  shared = model->register_module("shared", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.d_model).padding_idx(c.pad_token_id)));
  auto encoder = model->register_module("encoder", std::make_shared<torch::nn::Module>());
  auto projection = encoder->register_module("feature_projection", std::make_shared<torch::nn::Module>());
  feature_proj = projection->register_module("feature_proj", torch::nn::Linear(c.feature_dim, c.d_model));
  feature_proj_scale = projection->register_parameter("feature_proj_scale", torch::ones({c.d_model}));
  // BART offsets positions by 2 (a leftover of fairseq's padding_idx).
  encoder_positions = encoder->register_module("embed_positions", torch::nn::Embedding(c.max_position_embeddings + 2, c.d_model));
  auto encoder_list = encoder->register_module("layers", torch::nn::ModuleList());
  models::LayerOptions encoder_options{c.d_model, c.encoder_attention_heads, c.encoder_ffn_dim, c.dropout,
                                       c.attention_dropout, c.activation_dropout, c.activation_function,
                                       c.normalize_before};
  models::LayerOptions decoder_options = encoder_options;
  decoder_options.heads = c.decoder_attention_heads;
  decoder_options.ffn_dim = c.decoder_ffn_dim;
  for (int64_t i = 0; i < c.encoder_layers; ++i) {
    encoder_layers.push_back(models::TransformerLayer(encoder_options, false));
    encoder_list->push_back(encoder_layers.back());
  }
  encoder_layernorm_embedding = encoder->register_module("layernorm_embedding", layer_norm(c.d_model));
  if (c.add_final_layer_norm) encoder_final = encoder->register_module("layer_norm", layer_norm(c.d_model));
  auto decoder = model->register_module("decoder", std::make_shared<torch::nn::Module>());
  decoder_positions = decoder->register_module("embed_positions", torch::nn::Embedding(c.max_position_embeddings + 2, c.d_model));
  auto decoder_list = decoder->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.decoder_layers; ++i) {
    decoder_layers.push_back(models::TransformerLayer(decoder_options, true));
    decoder_list->push_back(decoder_layers.back());
  }
  decoder_layernorm_embedding = decoder->register_module("layernorm_embedding", layer_norm(c.d_model));
  if (c.add_final_layer_norm) decoder_final = decoder->register_module("layer_norm", layer_norm(c.d_model));
  // A tied head is the embedding matrix itself, not a parameter of its own.
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.vocab_size).bias(false)));
  final_logits_bias = register_buffer("final_logits_bias", torch::zeros({1, c.vocab_size}));
  reinit_weights();
}

void SignBart::reinit_weights() {
  torch::NoGradGuard no_grad;
  double std = config_.init_std;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, std);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* embedding = module->as<torch::nn::Embedding>()) {
      embedding->weight.normal_(0.0, std);
      if (embedding->options.padding_idx()) embedding->weight[*embedding->options.padding_idx()].zero_();
    }
  }
  feature_proj_scale.fill_(1.0);
}

torch::Tensor SignBart::encode(const torch::Tensor& features, const torch::Tensor& mask) {
  auto embeds = feature_proj_scale * feature_proj->forward(features);
  auto positions = torch::arange(features.size(1), torch::TensorOptions().dtype(torch::kLong).device(features.device())) + 2;
  auto hidden = encoder_layernorm_embedding->forward(embeds + encoder_positions->forward(positions).unsqueeze(0));
  hidden = slt::dropout(hidden, config_.dropout, is_training());
  auto bias = mask_bias(mask);
  for (auto& layer : encoder_layers) hidden = layer->forward(hidden, {}, {}, bias, {}, {}, {});
  return encoder_final ? encoder_final->forward(hidden) : hidden;
}

torch::Tensor SignBart::embed_decoder(const torch::Tensor& ids, int64_t past) {
  double scale = config_.scale_embedding ? std::sqrt(static_cast<double>(config_.d_model)) : 1.0;
  auto positions = torch::arange(past, past + ids.size(1), torch::TensorOptions().dtype(torch::kLong).device(ids.device())) + 2;
  auto hidden = decoder_layernorm_embedding->forward(shared->forward(ids) * scale + decoder_positions->forward(positions).unsqueeze(0));
  return slt::dropout(hidden, config_.dropout, is_training());
}

torch::Tensor SignBart::logits(torch::Tensor hidden) {
  if (decoder_final) hidden = decoder_final->forward(hidden);
  return (lm_head ? slt::linear(*lm_head, hidden) : slt::linear(hidden, shared->weight, {})) + final_logits_bias;
}

torch::Tensor SignBart::decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                               const torch::Tensor& encoder_mask) {
  int64_t length = decoder_input_ids.size(1);
  auto hidden = embed_decoder(decoder_input_ids, 0);
  auto causal = torch::ones({length, length}, torch::TensorOptions().device(hidden.device())).tril();
  auto self_bias = (1.0 - causal).mul(std::numeric_limits<float>::lowest()).unsqueeze(0).unsqueeze(0);
  auto cross_bias = mask_bias(encoder_mask);
  for (auto& layer : decoder_layers) {
    auto& ea = *layer->encoder_attn;
    hidden = layer->forward(hidden, {}, {}, self_bias, ea.shape(ea.k_proj->forward(encoder_hidden)),
                            ea.shape(ea.v_proj->forward(encoder_hidden)), cross_bias);
  }
  return logits(hidden);
}

torch::Tensor SignBart::decode_step(const torch::Tensor& tokens, const torch::Tensor& encoder_hidden,
                                    const torch::Tensor& encoder_mask, Cache& cache) {
  if (cache.cross_keys.empty()) {
    for (auto& layer : decoder_layers) {
      auto& ea = *layer->encoder_attn;
      cache.add_cross_layer(ea.shape(slt::linear(*ea.k_proj, encoder_hidden)),
                            ea.shape(slt::linear(*ea.v_proj, encoder_hidden)));
    }
  }
  auto hidden = embed_decoder(tokens.unsqueeze(1), cache.self.length());
  auto cross_bias = mask_bias(encoder_mask);
  for (size_t i = 0; i < decoder_layers.size(); ++i)
    hidden = decoder_layers[i]->forward_step(hidden, cache.self, static_cast<int64_t>(i), cache.cross_keys[i],
                                             cache.cross_values[i], cross_bias);
  cache.self.advance();
  return logits(hidden).squeeze(1);
}

SpecialTokens SignBart::special_tokens() const {
  SpecialTokens t;
  t.decoder_start = config_.decoder_start_token_id;
  t.eos = config_.eos_token_id;
  t.pad = config_.pad_token_id;
  t.forced_bos = config_.forced_bos_token_id;
  t.forced_eos = config_.forced_eos_token_id;
  t.vocab_size = config_.vocab_size;
  return t;
}

}  // namespace slt::bart
