#pragma once
// The parts every Hugging Face-style model component shares: reading
// config.json from the model folder (or hub cache), the run-config overrides
// create_model_and_tokenizer applies (feature_dim, dropout, label smoothing),
// loading the weights, the label-smoothed loss and the decoding hooks.
//
// `Net` is the torch module (SignT5, SignBart) with: config(), encode(),
// decode(), decode_step(tokens, hidden, mask, Net::Cache&), and Net::Config
// with from_json() and the fields used below.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "slt/errors.h"
#include "slt/model.h"

namespace slt::models {

template <typename T>
T config_value(const ConfigNode& config, const char* key, T fallback) {
  const ConfigNode* node = config.at(key);
  if (!node || node->is_null() || node->is_missing()) return fallback;
  if constexpr (std::is_same_v<T, double>) return node->as_double(key);
  else if constexpr (std::is_same_v<T, bool>) return node->as_bool(key);
  else return node->as_int(key);
}

// Decoder inputs from labels, as Hugging Face's shift_tokens_right: the start
// token, then the labels without their last position; -100 becomes padding.
inline torch::Tensor shift_tokens_right(const torch::Tensor& labels, int64_t decoder_start, int64_t pad) {
  auto shifted = torch::full_like(labels, decoder_start);
  shifted.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
  return shifted.masked_fill(shifted == -100, pad);
}

inline nlohmann::json read_model_config(const std::filesystem::path& folder) {
  std::ifstream in(folder / "config.json");
  if (!in) throw UserError("no config.json in '" + folder.string() + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw UserError("'" + (folder / "config.json").string() + "' is not valid JSON: " + e.what());
  }
}

struct WeightNames {
  std::set<std::string> expected_missing;  // fresh parameters (the feature projection)
  std::vector<std::pair<std::string, std::string>> aliases;  // tied copies and old names
};

template <typename Net>
class HfSeq2Seq : public Seq2SeqModel {
 public:
  using Config = typename Net::Config;
  using Cache = typename Net::Cache;

  // `apply_dropout` sets the run's model.dropout on the architecture's own key.
  HfSeq2Seq(const ConfigNode& config, const WeightNames& names, void (*apply_dropout)(Config&, double)) {
    const ConfigNode* name = config.at("model.name_or_path");
    if (!name || name->is_missing()) throw ConfigError("model.name_or_path is required");
    folder_ = resolve_model_folder(name->as_string("model.name_or_path"));
    Config c = Config::from_json(read_model_config(folder_));
    c.feature_dim = config_value<int64_t>(config, "model.feature_dim", c.feature_dim);
    c.label_smoothing = config_value<double>(config, "criterion.label_smoothing", c.label_smoothing);
    if (const ConfigNode* d = config.at("model.dropout"); d && !d->is_null()) apply_dropout(c, d->as_double("model.dropout"));
    net_ = std::make_shared<Net>(c);
    if (config_value<bool>(config, "model.from_scratch", false)) return;  // _reinit_weights: fresh initialisation
    load_state_dict(*net_, load_hf_weights(folder_), folder_.string(), names.expected_missing, names.aliases);
  }

  torch::nn::Module& module() override { return *net_; }
  Net& net() { return *net_; }

  ModelOutput forward(const Batch& batch) override {
    ModelOutput out;
    out.encoder_hidden_states = net_->encode(batch.features, batch.attention_mask);
    if (!batch.labels.defined()) return out;
    const Config& c = net_->config();
    out.logits = net_->decode(shift_tokens_right(batch.labels, c.decoder_start_token_id, c.pad_token_id),
                              out.encoder_hidden_states, batch.attention_mask);
    out.loss = torch::nn::functional::cross_entropy(
        out.logits.reshape({-1, out.logits.size(-1)}), batch.labels.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(c.pad_token_id).label_smoothing(c.label_smoothing));
    return out;
  }

  at::Tensor encode(const at::Tensor& features, const at::Tensor& mask) override { return net_->encode(features, mask); }

  at::Tensor decode_step(const at::Tensor& tokens, const at::Tensor& encoder_hidden, const at::Tensor& encoder_mask,
                         std::unique_ptr<DecoderCache>& cache) override {
    if (!cache) cache = std::make_unique<Cache>();
    return net_->decode_step(tokens, encoder_hidden, encoder_mask, static_cast<Cache&>(*cache));
  }

  SpecialTokens special_tokens() const override { return net_->special_tokens(); }

 private:
  std::filesystem::path folder_;
  std::shared_ptr<Net> net_;
};

// The keys a model component reads from the `model` section.
inline ConfigSchema hf_model_schema(const std::string& what) {
  ConfigSchema s;
  s.add_required("name_or_path", ValueType::String, "Hugging Face " + what + " folder, or a hub id in the local cache");
  s.add_required("feature_dim", ValueType::Int, "Dimension of the input features");
  s.add("dropout", ValueType::Float, 0.3, "Dropout probability");
  s.add("from_scratch", ValueType::Bool, false, "Initialise all weights instead of loading them");
  s.add("num_beams", ValueType::Int, 5, "Beams for generation");
  return s;
}

}  // namespace slt::models
