// hello_model: the smallest useful slt model plugin. It projects each feature
// frame into a small hidden space, pools over the real (unpadded) frames and
// predicts every target token from that summary. Not a translation model, a
// template: copy this folder to start a new architecture.
#include <slt/model.h>
#include <slt/plugin.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>

namespace {

class HelloModel : public slt::TranslationModel {
 public:
  explicit HelloModel(const slt::ConfigNode& config)
      : feature_dim_(config.at("model.feature_dim")->as_int("model.feature_dim")),
        hidden_dim_(config.at("model.hidden_dim")->as_int("model.hidden_dim")),
        vocab_size_(config.at("model.vocab_size")->as_int("model.vocab_size")) {
    projection_ = module_.register_module("feature_proj", torch::nn::Linear(feature_dim_, hidden_dim_));
    head_ = module_.register_module("lm_head", torch::nn::Linear(hidden_dim_, vocab_size_));
  }

  torch::nn::Module& module() override { return module_; }

  slt::ModelOutput forward(const slt::Batch& batch) override {
    auto mask = batch.attention_mask.to(torch::kFloat).unsqueeze(-1);       // [B, T, 1]
    auto hidden = torch::tanh(projection_->forward(batch.features)) * mask;  // [B, T, H]
    auto pooled = hidden.sum(1) / mask.sum(1).clamp_min(1.0);                // [B, H]
    int64_t length = batch.labels.defined() ? batch.labels.size(1) : 1;
    auto logits = head_->forward(pooled).unsqueeze(1).expand({-1, length, -1});
    slt::ModelOutput out;
    out.logits = logits;
    if (batch.labels.defined())
      out.loss = torch::nn::functional::cross_entropy(logits.reshape({-1, vocab_size_}),
                                                      batch.labels.reshape({-1}));
    return out;
  }

 private:
  int64_t feature_dim_, hidden_dim_, vocab_size_;
  torch::nn::Module module_{"HelloModel"};
  torch::nn::Linear projection_{nullptr};
  torch::nn::Linear head_{nullptr};
};

slt::ConfigSchema hello_schema() {
  slt::ConfigSchema schema;
  schema.add("feature_dim", slt::ValueType::Int, 768, "Dimension of the input features");
  schema.add("hidden_dim", slt::ValueType::Int, 32, "Width of the pooled summary");
  schema.add("vocab_size", slt::ValueType::Int, 100, "Number of output token ids");
  return schema;
}

void register_components(slt::Registrar& registrar) {
  registrar.add<HelloModel>(slt::kinds::kModel, "hello_model",
                            "Minimal example: mean-pooled projection predicting every token",
                            hello_schema());
}

}  // namespace

SLT_PLUGIN("hello_model", "1.0.0", register_components)
