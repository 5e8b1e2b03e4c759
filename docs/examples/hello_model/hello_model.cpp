// hello_model: the smallest slt model plugin that trains, evaluates and
// translates. The encoder projects each feature frame into a small hidden
// space; the decoder predicts the next token from the mean of the real
// (unpadded) frames plus the previous token's embedding. Not a good
// translation model, a template: copy this folder to start a new architecture.
//
//   slt-run --config-name slt_t5 model.arch=hello_model model.hidden_dim=16 ...
#include <slt/model/generation.h>
#include <slt/plugin/plugin.h>
#include <slt/data/tokenizer.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

namespace {

// Every decoding step depends on the previous token alone: nothing to cache.
struct NoCache : slt::DecoderCache {
  void reorder(const at::Tensor&) override {}
};

class HelloModel : public slt::Seq2SeqModel {
 public:
  // `section` is the run's `model` section with hello_schema()'s keys filled
  // in and type-checked; `context` brings the tokenizer the run chose.
  HelloModel(const slt::ConfigNode& section, const slt::ComponentContext& context)
      : feature_dim_(section.require<int64_t>("feature_dim")), hidden_dim_(section.require<int64_t>("hidden_dim")) {
    if (context.tokenizer) {
      special_.vocab_size = context.tokenizer->vocab_size();
      special_.pad = special_.decoder_start = context.tokenizer->pad_id();
      special_.eos = context.tokenizer->eos_id();
    }
    special_.vocab_size = section.get_or<int64_t>("vocab_size", special_.vocab_size);
    if (special_.vocab_size <= 0)
      throw slt::ConfigError("hello_model needs a tokenizer or model.vocab_size to know its output size");
    projection_ = module_.register_module("feature_proj", torch::nn::Linear(feature_dim_, hidden_dim_));
    embedding_ = module_.register_module("embed_tokens", torch::nn::Embedding(special_.vocab_size, hidden_dim_));
    head_ = module_.register_module("lm_head", torch::nn::Linear(hidden_dim_, special_.vocab_size));
  }

  torch::nn::Module& module() override { return module_; }

  at::Tensor encode(const at::Tensor& features, const at::Tensor& attention_mask) override {
    return torch::tanh(projection_->forward(features)) * attention_mask.to(features.dtype()).unsqueeze(-1);
  }

  at::Tensor decode_step(const at::Tensor& tokens, const at::Tensor& encoder_hidden, const at::Tensor& encoder_mask,
                         std::unique_ptr<slt::DecoderCache>& cache) override {
    if (!cache) cache = std::make_unique<NoCache>();
    return next_token_logits(pooled(encoder_hidden, encoder_mask), tokens);
  }

  slt::ModelOutput forward(const slt::Batch& batch) override {
    slt::ModelOutput out;
    out.encoder_hidden_states = encode(batch.features, batch.attention_mask);
    if (!batch.labels.defined()) return out;
    // Teacher forcing: the decoder sees the start token, then the labels shifted right.
    auto previous = torch::full_like(batch.labels, special_.decoder_start);
    previous.narrow(1, 1, batch.labels.size(1) - 1).copy_(batch.labels.narrow(1, 0, batch.labels.size(1) - 1));
    out.logits = next_token_logits(pooled(out.encoder_hidden_states, batch.attention_mask).unsqueeze(1), previous);
    out.loss = torch::nn::functional::cross_entropy(
        out.logits.reshape({-1, special_.vocab_size}), batch.labels.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(special_.pad));
    return out;
  }

  slt::SpecialTokens special_tokens() const override { return special_; }
  // Seq2SeqModel::make_search's default (Hugging Face generate()) suits this model.

 private:
  // Mean of the encoder states over the real frames: [B, H].
  at::Tensor pooled(const at::Tensor& hidden, const at::Tensor& mask) const {
    auto weights = mask.to(hidden.dtype()).unsqueeze(-1);
    return hidden.sum(1) / weights.sum(1).clamp_min(1.0);
  }

  at::Tensor next_token_logits(const at::Tensor& summary, const at::Tensor& previous) {
    return head_->forward(torch::tanh(summary + embedding_->forward(previous)));
  }

  int64_t feature_dim_, hidden_dim_;
  slt::SpecialTokens special_;
  torch::nn::Module module_{"HelloModel"};
  torch::nn::Linear projection_{nullptr};
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Linear head_{nullptr};
};

// The keys hello_model reads from the `model` section. feature_dim has no
// default here: the run schema requires it of every model.
slt::ConfigSchema hello_schema() {
  slt::ConfigSchema schema;
  schema.add_required("feature_dim", slt::ValueType::Int, "Dimension of the input features");
  schema.add("hidden_dim", slt::ValueType::Int, 32, "Width of the pooled summary and the token embeddings");
  schema.add_optional("vocab_size", slt::ValueType::Int, nullptr, "Output ids (null: the tokenizer's vocabulary)");
  return schema;
}

void register_components(slt::Registrar& registrar) {
  // No claim: hello_model is only used when named (model.arch=hello_model).
  registrar.add<HelloModel>(slt::kinds::kModel, "hello_model",
                            "Minimal example: mean-pooled frames + previous token predict the next token",
                            hello_schema());
}

}  // namespace

SLT_PLUGIN("hello_model", "1.0.0", register_components)
