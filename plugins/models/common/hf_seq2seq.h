#pragma once
// The parts every Hugging Face-style model component shares: reading
// config.json from the model folder the host resolved, the section's
// overrides (feature_dim, dropout) and the context's label smoothing, loading
// the weights, the label-smoothed loss, the decoding hooks, Hugging Face's
// generate() with the folder's defaults, and claiming a folder by model_type.
//
// `Net` is the torch module (SignT5, SignBart) with: config(), encode(),
// decode(), decode_step(tokens, hidden, mask, Net::Cache&), and Net::Config
// with from_json() and the fields used below.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "slt/io/files.h"
#include "slt/errors.h"
#include "slt/model/cross_entropy.h"
#include "slt/model/generation.h"
#include "slt/model/model.h"
#include "slt/text/text.h"

namespace slt::models {

// Decoder inputs from labels, as Hugging Face's shift_tokens_right: the start
// token, then the labels without their last position; -100 becomes padding.
inline torch::Tensor shift_tokens_right(const torch::Tensor& labels, int64_t decoder_start, int64_t pad) {
  auto shifted = torch::full_like(labels, decoder_start);
  shifted.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
  return shifted.masked_fill(shifted == -100, pad);
}

inline nlohmann::json read_model_config(const std::filesystem::path& folder) {
  if (!std::filesystem::exists(folder / "config.json")) throw UserError("no config.json in '" + folder.string() + "'");
  std::ifstream in = open_regular_file(folder / "config.json", "model config");
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
  HfSeq2Seq(const ConfigNode& section, const ComponentContext& context, const WeightNames& names,
            void (*apply_dropout)(Config&, double))
      : folder_(context.model_folder) {
    if (folder_.empty()) throw ConfigError("model.name_or_path names no folder (the host resolves it before building the model)");
    Config c;
    try {
      c = Config::from_json(read_model_config(folder_));
    } catch (const nlohmann::json::exception& e) {  // a key of another type than the architecture's
      throw UserError("'" + (folder_ / "config.json").string() + "': unexpected content: " + e.what());
    }
    c.feature_dim = section.get_or<int64_t>("feature_dim", c.feature_dim);
    if (context.label_smoothing) c.label_smoothing = *context.label_smoothing;
    if (auto dropout = section.get<double>("dropout")) apply_dropout(c, *dropout);
    net_ = std::make_shared<Net>(c);
    if (section.get_or<bool>("from_scratch", false)) return;  // _reinit_weights: fresh initialisation
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
    out.loss = slt::cross_entropy(out.logits.reshape({-1, out.logits.size(-1)}), batch.labels.reshape({-1}),
                                  c.pad_token_id, c.label_smoothing);
    return out;
  }

  at::Tensor encode(const at::Tensor& features, const at::Tensor& mask) override { return net_->encode(features, mask); }

  at::Tensor decode_step(const at::Tensor& tokens, const at::Tensor& encoder_hidden, const at::Tensor& encoder_mask,
                         std::unique_ptr<DecoderCache>& cache) override {
    if (!cache) cache = std::make_unique<Cache>();
    return net_->decode_step(tokens, encoder_hidden, encoder_mask, static_cast<Cache&>(*cache));
  }

  SpecialTokens special_tokens() const override { return net_->special_tokens(); }
  bool shares_encoder_rows() const override { return true; }

  // generate() with the folder's generation_config.json / config.json defaults.
  std::unique_ptr<SearchStrategy> make_search(const SearchOptions& options) const override {
    return std::make_unique<HfSearch>(read_generation_config(folder_), options);
  }

 private:
  std::filesystem::path folder_;
  std::shared_ptr<Net> net_;
};

// The keys a model component reads from the `model` section. Null keeps the
// folder's config.json value.
inline ConfigSchema hf_model_schema(const std::string& what) {
  ConfigSchema s;
  s.add_required("name_or_path", ValueType::String, "Hugging Face " + what + " folder, or a hub id in the local cache");
  s.add_optional("feature_dim", ValueType::Int, nullptr, "Dimension of the input features (null: config.json's)");
  s.add_optional("dropout", ValueType::Float, nullptr, "Dropout probability (null: config.json's)").between(0, 1);
  s.add_optional("from_scratch", ValueType::Bool, nullptr, "true: initialise all weights instead of loading them");
  return s;
}

// Claims a folder whose config.json has a model_type containing `family`
// ("t5", "bart"), or, when model.name_or_path names no local folder (a hub id
// not cached yet), a name containing it, as the reference chooses.
inline int claim_hf_family(const ClaimQuery& query, const std::string& family) {
  if (!query.path.empty() && std::filesystem::exists(query.path / "config.json")) {
    try {
      std::string type = read_model_config(query.path).value("model_type", "");
      return ascii_lower(type).find(family) != std::string::npos ? 10 : 0;
    } catch (const std::exception&) {  // unreadable, not JSON, or model_type not a string: not ours
      return 0;
    }
  }
  return ascii_lower(query.name).find(family) != std::string::npos ? 5 : 0;
}

}  // namespace slt::models
