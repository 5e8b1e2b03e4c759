#include "t5_model.h"

#include <cmath>

#include "slt/errors.h"
#include "slt/model/decoding_kernels.h"
#include "slt/model/dropout.h"

namespace slt::t5 {

T5Config T5Config::from_json(const nlohmann::json& j) {
  T5Config c;
  c.vocab_size = j.value("vocab_size", c.vocab_size);
  c.d_model = j.value("d_model", c.d_model);
  c.d_kv = j.value("d_kv", c.d_kv);
  c.d_ff = j.value("d_ff", c.d_ff);
  c.num_layers = j.value("num_layers", c.num_layers);
  c.num_decoder_layers = j.contains("num_decoder_layers") && !j["num_decoder_layers"].is_null()
                             ? j["num_decoder_layers"].get<int64_t>()
                             : c.num_layers;
  c.num_heads = j.value("num_heads", c.num_heads);
  c.relative_attention_num_buckets = j.value("relative_attention_num_buckets", c.relative_attention_num_buckets);
  c.relative_attention_max_distance = j.value("relative_attention_max_distance", c.relative_attention_max_distance);
  c.dropout_rate = j.value("dropout_rate", c.dropout_rate);
  c.layer_norm_epsilon = j.value("layer_norm_epsilon", c.layer_norm_epsilon);
  c.initializer_factor = j.value("initializer_factor", c.initializer_factor);
  c.label_smoothing = j.value("label_smoothing", c.label_smoothing);
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);
  c.feature_dim = j.value("feature_dim", c.feature_dim);
  c.pad_token_id = j.value("pad_token_id", c.pad_token_id);
  c.eos_token_id = j.value("eos_token_id", c.eos_token_id);
  c.decoder_start_token_id = j.contains("decoder_start_token_id") && !j["decoder_start_token_id"].is_null()
                                 ? j["decoder_start_token_id"].get<int64_t>()
                                 : c.pad_token_id;
  std::string proj = j.value("feed_forward_proj", std::string("relu"));
  size_t dash = proj.find('-');
  c.is_gated_act = dash != std::string::npos && proj.substr(0, dash) == "gated";
  c.dense_act_fn = dash == std::string::npos ? proj : proj.substr(dash + 1);
  if (proj == "gated-gelu") c.dense_act_fn = "gelu_new";  // as SignT5Config, for backwards compatibility
  if (c.dense_act_fn != "relu" && c.dense_act_fn != "gelu_new" && c.dense_act_fn != "gelu" && c.dense_act_fn != "silu")
    throw UserError("unsupported T5 feed_forward_proj '" + proj + "' (relu, gated-gelu, gated-silu, gelu)");
  return c;
}

namespace {

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "silu") return torch::silu(x);
  // gelu_new, HF's NewGELUActivation (the tanh approximation, written out).
  return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3.0))));
}

// Additive mask: 0 where attended, the most negative float where masked.
torch::Tensor mask_bias(const torch::Tensor& mask) {
  return (1.0 - mask.to(torch::kFloat)).mul(std::numeric_limits<float>::lowest()).unsqueeze(1).unsqueeze(1);
}

}  // namespace

RMSNormImpl::RMSNormImpl(int64_t size, double eps_) : eps(eps_) { weight = register_parameter("weight", torch::ones({size})); }

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) { return slt::rms_norm(x, weight, eps); }

AttentionImpl::AttentionImpl(const T5Config& c, bool decoder, bool relative)
    : is_decoder(decoder),
      has_relative_attention_bias(relative),
      n_heads(c.num_heads),
      d_kv(c.d_kv),
      num_buckets(c.relative_attention_num_buckets),
      max_distance(c.relative_attention_max_distance),
      dropout(c.dropout_rate) {
  int64_t inner = c.num_heads * c.d_kv;
  q = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, inner).bias(false)));
  k = register_module("k", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, inner).bias(false)));
  v = register_module("v", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, inner).bias(false)));
  o = register_module("o", torch::nn::Linear(torch::nn::LinearOptions(inner, c.d_model).bias(false)));
  if (relative)
    relative_attention_bias = register_module("relative_attention_bias", torch::nn::Embedding(num_buckets, n_heads));
}

torch::Tensor AttentionImpl::shape(const torch::Tensor& x) const {
  return x.view({x.size(0), -1, n_heads, d_kv}).transpose(1, 2);
}

torch::Tensor AttentionImpl::compute_bias(int64_t query_length, int64_t key_length, int64_t query_offset) {
  auto device = relative_attention_bias->weight.device();
  auto context = torch::arange(query_offset, query_offset + query_length,
                               torch::TensorOptions().dtype(torch::kLong).device(device))
                     .unsqueeze(1);
  auto memory = torch::arange(key_length, torch::TensorOptions().dtype(torch::kLong).device(device)).unsqueeze(0);
  auto relative = memory - context;
  // Mesh TensorFlow's relative position buckets.
  int64_t buckets = num_buckets;
  auto result = torch::zeros_like(relative);
  if (!is_decoder) {
    buckets /= 2;
    result = result + (relative > 0).to(torch::kLong) * buckets;
    relative = relative.abs();
  } else {
    relative = -torch::min(relative, torch::zeros_like(relative));
  }
  int64_t max_exact = buckets / 2;
  auto is_small = relative < max_exact;
  auto if_large = max_exact + (torch::log(relative.to(torch::kFloat) / max_exact) /
                               std::log(static_cast<double>(max_distance) / max_exact) * (buckets - max_exact))
                                  .to(torch::kLong);
  if_large = torch::min(if_large, torch::full_like(if_large, buckets - 1));
  result = result + torch::where(is_small, relative, if_large);
  return relative_attention_bias->forward(result).permute({2, 0, 1}).unsqueeze(0);  // [1, H, Q, K]
}

torch::Tensor AttentionImpl::attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& values,
                                    const torch::Tensor& bias) {
  auto queries = shape(slt::linear(*q, query));  // T5: no 1/sqrt(d)
  auto out = slt::attention(queries, keys, values, bias, dropout, is_training()).transpose(1, 2).contiguous();
  return slt::linear(*o, out.view({out.size(0), -1, n_heads * d_kv}));
}

FeedForwardImpl::FeedForwardImpl(const T5Config& c) : gated(c.is_gated_act), act(c.dense_act_fn), dropout(c.dropout_rate) {
  if (gated) {
    wi_0 = register_module("wi_0", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.d_ff).bias(false)));
    wi_1 = register_module("wi_1", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.d_ff).bias(false)));
  } else {
    wi = register_module("wi", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.d_ff).bias(false)));
  }
  wo = register_module("wo", torch::nn::Linear(torch::nn::LinearOptions(c.d_ff, c.d_model).bias(false)));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  torch::Tensor h;
  if (!gated) h = activation(slt::linear(*wi, x), act);
  else if (act == "gelu_new") h = slt::gated_gelu_new(slt::linear(*wi_0, x), slt::linear(*wi_1, x));
  else h = activation(slt::linear(*wi_0, x), act) * slt::linear(*wi_1, x);
  return slt::linear(*wo, slt::dropout(h, dropout, is_training()));
}

BlockImpl::BlockImpl(const T5Config& c, bool is_decoder, bool relative) : dropout(c.dropout_rate) {
  auto layers = register_module("layer", torch::nn::ModuleList());
  auto self_layer = std::make_shared<torch::nn::Module>();
  self_attention = self_layer->register_module("SelfAttention", Attention(c, is_decoder, relative));
  self_norm = self_layer->register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
  layers->push_back(self_layer);
  if (is_decoder) {
    auto cross_layer = std::make_shared<torch::nn::Module>();
    cross_attention = cross_layer->register_module("EncDecAttention", Attention(c, true, false));
    cross_norm = cross_layer->register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
    layers->push_back(cross_layer);
  }
  auto ff_layer = std::make_shared<torch::nn::Module>();
  ff = ff_layer->register_module("DenseReluDense", FeedForward(c));
  ff_norm = ff_layer->register_module("layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
  layers->push_back(ff_layer);
}

SignT5::SignT5(T5Config config) : torch::nn::Module("SignT5ForConditionalGeneration"), config_(std::move(config)) {
  const T5Config& c = config_;
  shared = register_module("shared", torch::nn::Embedding(c.vocab_size, c.d_model));
  auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  auto projection = encoder->register_module("feature_projection", std::make_shared<torch::nn::Module>());
  feature_proj = projection->register_module("feature_proj", torch::nn::Linear(c.feature_dim, c.d_model));
  feature_proj_scale = projection->register_parameter("feature_proj_scale", torch::ones({c.d_model}));
  auto encoder_list = encoder->register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    encoder_blocks.push_back(Block(c, false, i == 0));
    encoder_list->push_back(encoder_blocks.back());
  }
  encoder_final_norm = encoder->register_module("final_layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
  auto decoder = register_module("decoder", std::make_shared<torch::nn::Module>());
  auto decoder_list = decoder->register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_decoder_layers; ++i) {
    decoder_blocks.push_back(Block(c, true, i == 0));
    decoder_list->push_back(decoder_blocks.back());
  }
  decoder_final_norm = decoder->register_module("final_layer_norm", RMSNorm(c.d_model, c.layer_norm_epsilon));
  // A tied head is the embedding matrix itself, not a parameter of its own.
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.vocab_size).bias(false)));
  reinit_weights();
}

void SignT5::reinit_weights() {
  torch::NoGradGuard no_grad;
  const T5Config& c = config_;
  double f = c.initializer_factor;
  shared->weight.normal_(0.0, f * 1.0);
  if (lm_head) lm_head->weight.normal_(0.0, f * 1.0);
  feature_proj->weight.normal_(0.0, f * std::pow(c.d_model, -0.5));
  feature_proj->bias.zero_();
  feature_proj_scale.fill_(1.0);
  auto init_attention = [&](AttentionImpl& a) {
    a.q->weight.normal_(0.0, f * std::pow(c.d_model * c.d_kv, -0.5));
    a.k->weight.normal_(0.0, f * std::pow(c.d_model, -0.5));
    a.v->weight.normal_(0.0, f * std::pow(c.d_model, -0.5));
    a.o->weight.normal_(0.0, f * std::pow(c.num_heads * c.d_kv, -0.5));
    if (a.has_relative_attention_bias) a.relative_attention_bias->weight.normal_(0.0, f * std::pow(c.d_model, -0.5));
  };
  for (auto* blocks : {&encoder_blocks, &decoder_blocks}) {
    for (auto& block : *blocks) {
      init_attention(*block->self_attention);
      block->self_norm->weight.fill_(f);
      if (block->cross_attention) {
        init_attention(*block->cross_attention);
        block->cross_norm->weight.fill_(f);
      }
      auto& ff = *block->ff;
      for (auto* w : {&ff.wi, &ff.wi_0, &ff.wi_1})
        if (*w) (*w)->weight.normal_(0.0, f * std::pow(c.d_model, -0.5));
      ff.wo->weight.normal_(0.0, f * std::pow(c.d_ff, -0.5));
      block->ff_norm->weight.fill_(f);
    }
  }
  encoder_final_norm->weight.fill_(f);
  decoder_final_norm->weight.fill_(f);
}

torch::Tensor SignT5::encode(const torch::Tensor& features, const torch::Tensor& mask) {
  const double p = config_.dropout_rate;
  auto hidden = slt::dropout(feature_proj_scale * feature_proj->forward(features), p, is_training());
  auto bias = mask_bias(mask);  // [B,1,1,T]
  torch::Tensor position_bias;
  for (auto& block : encoder_blocks) {
    auto& attention = *block->self_attention;
    if (!position_bias.defined()) position_bias = attention.compute_bias(hidden.size(1), hidden.size(1)) + bias;
    auto normed = block->self_norm->forward(hidden);
    auto keys = attention.shape(attention.k->forward(normed)), values = attention.shape(attention.v->forward(normed));
    hidden = hidden + slt::dropout(attention.attend(normed, keys, values, position_bias), p, is_training());
    hidden = hidden + slt::dropout(block->ff->forward(block->ff_norm->forward(hidden)), p, is_training());
  }
  return slt::dropout(encoder_final_norm->forward(hidden), p, is_training());
}

torch::Tensor SignT5::cross_and_feed_forward(size_t i, torch::Tensor hidden, const torch::Tensor& cross_k,
                                             const torch::Tensor& cross_v, const torch::Tensor& cross_bias) {
  const double p = config_.dropout_rate;
  auto& block = decoder_blocks[i];
  auto normed = block->cross_norm->forward(hidden);
  hidden = hidden + slt::dropout(block->cross_attention->attend(normed, cross_k, cross_v, cross_bias), p, is_training());
  return hidden + slt::dropout(block->ff->forward(block->ff_norm->forward(hidden)), p, is_training());
}

torch::Tensor SignT5::lm_logits(const torch::Tensor& hidden) {
  auto out = slt::dropout(decoder_final_norm->forward(hidden), config_.dropout_rate, is_training());
  if (!lm_head) return slt::linear(out * std::pow(config_.d_model, -0.5), shared->weight, {});  // rescaled, as HF
  return slt::linear(*lm_head, out);
}

torch::Tensor SignT5::decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& encoder_hidden,
                             const torch::Tensor& encoder_mask) {
  int64_t length = decoder_input_ids.size(1);
  auto hidden = slt::dropout(shared->forward(decoder_input_ids), config_.dropout_rate, is_training());
  auto causal = torch::ones({length, length}, torch::TensorOptions().device(hidden.device())).tril();
  auto self_bias = decoder_blocks[0]->self_attention->compute_bias(length, length) +
                   (1.0 - causal).mul(std::numeric_limits<float>::lowest()).unsqueeze(0).unsqueeze(0);
  auto cross_bias = mask_bias(encoder_mask);
  for (size_t i = 0; i < decoder_blocks.size(); ++i) {
    auto& block = decoder_blocks[i];
    auto normed = block->self_norm->forward(hidden);
    auto& sa = *block->self_attention;
    auto& ca = *block->cross_attention;
    auto attended = sa.attend(normed, sa.shape(sa.k->forward(normed)), sa.shape(sa.v->forward(normed)), self_bias);
    hidden = hidden + slt::dropout(attended, config_.dropout_rate, is_training());
    hidden = cross_and_feed_forward(i, hidden, ca.shape(ca.k->forward(encoder_hidden)),
                                    ca.shape(ca.v->forward(encoder_hidden)), cross_bias);
  }
  return lm_logits(hidden);
}

torch::Tensor SignT5::decode_step(const torch::Tensor& tokens, const torch::Tensor& encoder_hidden,
                                  const torch::Tensor& encoder_mask, Cache& cache) {
  const double p = config_.dropout_rate;
  if (cache.cross_keys.empty()) {
    for (auto& block : decoder_blocks) {
      auto& ca = *block->cross_attention;
      cache.add_cross_layer(ca.shape(slt::linear(*ca.k, encoder_hidden)),
                            ca.shape(slt::linear(*ca.v, encoder_hidden)));
    }
  }
  const int64_t rows = tokens.size(0), inputs = encoder_hidden.size(0);
  if (inputs == 0 || rows % inputs != 0)
    throw std::invalid_argument("SignT5::decode_step: " + std::to_string(rows) + " token rows for " +
                                std::to_string(inputs) + " encoder rows");
  auto hidden = slt::dropout(shared->forward(tokens.unsqueeze(1)), p, is_training());
  const int64_t position = cache.self.length();
  // The relative bias of the newest query against every position so far.
  auto self_bias = decoder_blocks[0]->self_attention->compute_bias(1, position + 1, position);
  auto cross_bias = mask_bias(encoder_mask);
  for (size_t i = 0; i < decoder_blocks.size(); ++i) {
    auto& sa = *decoder_blocks[i]->self_attention;
    auto normed = decoder_blocks[i]->self_norm->forward(hidden);
    auto attended = cache.self.attend(static_cast<int64_t>(i), sa.shape(slt::linear(*sa.q, normed)),
                                      sa.shape(slt::linear(*sa.k, normed)), sa.shape(slt::linear(*sa.v, normed)),
                                      self_bias);
    auto merged = attended.transpose(1, 2).reshape({rows, 1, sa.n_heads * sa.d_kv});
    hidden = hidden + slt::dropout(slt::linear(*sa.o, merged), p, is_training());
    // The beams of one input, as one sequence of queries against its encoder row.
    hidden = cross_and_feed_forward(i, hidden.view({inputs, rows / inputs, -1}), cache.cross_keys[i],
                                    cache.cross_values[i], cross_bias)
                 .view({rows, 1, -1});
  }
  cache.self.advance();
  return lm_logits(hidden).squeeze(1);
}

SpecialTokens SignT5::special_tokens() const {
  SpecialTokens t;
  t.decoder_start = config_.decoder_start_token_id;
  t.eos = config_.eos_token_id;
  t.pad = config_.pad_token_id;
  t.vocab_size = config_.vocab_size;
  return t;
}

}  // namespace slt::t5
