// The `t5` model component: SignT5ForConditionalGeneration from a Hugging Face
// folder (or hub id in the local cache), trained with the reference's
// label-smoothed cross entropy.
#include <spdlog/spdlog.h>

#include <fstream>

#include "slt/plugin.h"
#include "t5_model.h"

namespace {

using slt::t5::SignT5;
using slt::t5::T5Config;

template <typename T>
T value_or(const slt::ConfigNode& config, const char* key, T fallback) {
  const slt::ConfigNode* node = config.at(key);
  if (!node || node->is_null() || node->is_missing()) return fallback;
  if constexpr (std::is_same_v<T, double>) return node->as_double(key);
  else if constexpr (std::is_same_v<T, bool>) return node->as_bool(key);
  else return node->as_int(key);
}

class T5Model : public slt::Seq2SeqModel {
 public:
  explicit T5Model(const slt::ConfigNode& config) {
    const slt::ConfigNode* name = config.at("model.name_or_path");
    if (!name || name->is_missing()) throw slt::ConfigError("model.name_or_path is required for the t5 model");
    folder_ = slt::resolve_model_folder(name->as_string("model.name_or_path"));
    std::ifstream in(folder_ / "config.json");
    if (!in) throw slt::UserError("no config.json in '" + folder_.string() + "'");
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw slt::UserError("'" + (folder_ / "config.json").string() + "' is not valid JSON: " + e.what());
    }
    T5Config c = T5Config::from_json(json);
    // As create_model_and_tokenizer: the run config overrides these three.
    c.feature_dim = value_or<int64_t>(config, "model.feature_dim", c.feature_dim);
    c.dropout_rate = value_or<double>(config, "model.dropout", c.dropout_rate);
    c.label_smoothing = value_or<double>(config, "criterion.label_smoothing", c.label_smoothing);
    model_ = std::make_shared<SignT5>(c);
    if (value_or<bool>(config, "model.from_scratch", false)) return;  // _reinit_weights: fresh initialisation
    auto weights = slt::load_hf_weights(folder_);
    slt::load_state_dict(*model_, weights, folder_.string(),
                         {"encoder.feature_projection.feature_proj.weight", "encoder.feature_projection.feature_proj.bias",
                          "encoder.feature_projection.feature_proj_scale", "lm_head.weight"},
                         {{"encoder.embed_tokens.", "shared."},
                          {"decoder.embed_tokens.", "shared."},
                          {"encoder.feature_proj.", "encoder.feature_projection.feature_proj."}});
  }

  torch::nn::Module& module() override { return *model_; }

  slt::ModelOutput forward(const slt::Batch& batch) override {
    slt::ModelOutput out;
    out.encoder_hidden_states = model_->encode(batch.features, batch.attention_mask);
    if (!batch.labels.defined()) return out;
    out.logits = model_->decode(model_->shift_right(batch.labels), out.encoder_hidden_states, batch.attention_mask);
    const T5Config& c = model_->config();
    out.loss = torch::nn::functional::cross_entropy(
        out.logits.reshape({-1, out.logits.size(-1)}), batch.labels.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(c.pad_token_id).label_smoothing(c.label_smoothing));
    return out;
  }

  at::Tensor encode(const at::Tensor& features, const at::Tensor& mask) override { return model_->encode(features, mask); }

  at::Tensor decode_step(const at::Tensor& tokens, const at::Tensor& encoder_hidden, const at::Tensor& encoder_mask,
                         std::unique_ptr<slt::DecoderCache>& cache) override {
    if (!cache) cache = std::make_unique<slt::t5::T5Cache>();
    return model_->decode_step(tokens, encoder_hidden, encoder_mask, static_cast<slt::t5::T5Cache&>(*cache));
  }

  slt::SpecialTokens special_tokens() const override {
    const T5Config& c = model_->config();
    slt::SpecialTokens t;
    t.decoder_start = c.decoder_start_token_id;
    t.eos = c.eos_token_id;
    t.pad = c.pad_token_id;
    t.vocab_size = c.vocab_size;
    return t;
  }

 private:
  std::filesystem::path folder_;
  std::shared_ptr<SignT5> model_;
};

slt::ConfigSchema t5_schema() {
  slt::ConfigSchema s;
  s.add_required("name_or_path", slt::ValueType::String, "Hugging Face T5 folder, or a hub id in the local cache");
  s.add_required("feature_dim", slt::ValueType::Int, "Dimension of the input features");
  s.add("dropout", slt::ValueType::Float, 0.3, "Dropout probability (T5 dropout_rate)");
  s.add("from_scratch", slt::ValueType::Bool, false, "Initialise all weights instead of loading them");
  s.add("num_beams", slt::ValueType::Int, 5, "Beams for generation");
  return s;
}

void register_components(slt::Registrar& registrar) {
  registrar.add<T5Model>(slt::kinds::kModel, "t5",
                         "SignT5: T5 / T5 v1.1 with a learned feature projection (Hugging Face weights)", t5_schema());
}

}  // namespace

SLT_PLUGIN("t5", "0.1.0", register_components)
