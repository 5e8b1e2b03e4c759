#pragma once
// Helpers shared by the model plugins' fixture tests.
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "slt/runtime/components.h"
#include "slt/model/generation.h"
#include "slt/model/model.h"
#include "slt/train/optim.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/io/tensor_io.h"
#include "slt/data/tokenizer.h"

namespace slt_test {

inline const std::filesystem::path& models_dir() {
  static const std::filesystem::path dir = std::filesystem::path(SLT_FIXTURES_DIR) / "models";
  return dir;
}

inline std::map<std::string, at::Tensor> expected_tensors(const std::string& file) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : slt::load_safetensors((models_dir() / file).string())) out[name] = t;
  return out;
}

inline nlohmann::json expected_outputs() {
  std::ifstream in(models_dir() / "expected_outputs.json");
  return nlohmann::json::parse(in);
}

// A fixture model as the reference builds it: feature_dim 32, dropout 0, label smoothing 0.2.
inline std::shared_ptr<slt::Seq2SeqModel> fixture_model(const std::string& kind, const std::string& folder) {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode config = slt::ConfigNode::map();
  config.set("model.name_or_path", (models_dir() / folder).string());
  config.set("model.feature_dim", 32);
  config.set("model.dropout", 0.0);
  config.set("criterion.label_smoothing", 0.2);
  config.set("model.arch", kind);
  auto model = slt::open_model(config);
  model->module().eval();
  return model;
}

// batch_decode(skip_special_tokens=True) of generated rows with the fixture tokenizer.
inline std::vector<std::string> decode_rows(const at::Tensor& sequences, const std::string& tokenizer_folder) {
  auto tokenizer = slt::open_tokenizer(models_dir() / tokenizer_folder);
  std::vector<std::string> out;
  for (int64_t i = 0; i < sequences.size(0); ++i) {
    auto row = sequences[i].contiguous();
    out.push_back(tokenizer->decode(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel())));
  }
  return out;
}

// Total parameter count and the parameter names of a module.
struct ParameterSummary {
  int64_t count = 0;
  std::set<std::string> names;
};
inline ParameterSummary summarize_parameters(torch::nn::Module& module) {
  ParameterSummary summary;
  for (const auto& p : module.named_parameters()) {
    summary.count += p.value().numel();
    summary.names.insert(p.key());
  }
  return summary;
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// `inner` as a search sees a model that does not let beams share encoder
// rows (a plugin written before Seq2SeqModel::shares_encoder_rows): the
// search copies each encoder row once per beam.
class EncoderRowPerBeam : public slt::Seq2SeqModel {
 public:
  explicit EncoderRowPerBeam(std::shared_ptr<slt::Seq2SeqModel> inner) : inner_(std::move(inner)) {}
  torch::nn::Module& module() override { return inner_->module(); }
  slt::ModelOutput forward(const slt::Batch& batch) override { return inner_->forward(batch); }
  at::Tensor encode(const at::Tensor& features, const at::Tensor& mask) override { return inner_->encode(features, mask); }
  at::Tensor decode_step(const at::Tensor& tokens, const at::Tensor& hidden, const at::Tensor& mask,
                         std::unique_ptr<slt::DecoderCache>& cache) override {
    return inner_->decode_step(tokens, hidden, mask, cache);
  }
  slt::SpecialTokens special_tokens() const override { return inner_->special_tokens(); }

 private:
  std::shared_ptr<slt::Seq2SeqModel> inner_;
};

// One training step as the reference's train_one_epoch takes it: forward in
// train mode, backward, clip the gradient norm, AdamW with two groups.
struct TrainStep {
  double loss = 0, grad_norm = 0, loss_after = 0;
};

inline TrainStep run_train_step(slt::Seq2SeqModel& model, const slt::Batch& batch, const nlohmann::json& recipe) {
  model.module().train();
  auto optimizer = slt::make_adamw(model.module(), recipe["lr"].get<double>(), recipe["weight_decay"].get<double>());
  TrainStep result;
  auto loss = model.forward(batch).loss;
  result.loss = loss.item<double>();
  optimizer->zero_grad();
  loss.backward();
  result.grad_norm = slt::clip_grad_norm(model.module(), recipe["clip_grad_norm"].get<double>());
  optimizer->step();
  at::NoGradGuard no_grad;
  result.loss_after = model.forward(batch).loss.item<double>();
  return result;
}

}  // namespace slt_test
