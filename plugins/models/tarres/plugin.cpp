// The `tarres` model component: the fairseq sign-to-text transformer of
// Tarrés et al. (2023) configured by the model.encoder_* / decoder_* keys,
// with the fairseq_spm tokenizer's dictionary in model.name_or_path.
#include <filesystem>
#include <fstream>

#include "slt/io/files.h"
#include "slt/model/cross_entropy.h"
#include "slt/model/generation.h"
#include "slt/plugin/plugin.h"
#include "slt/data/tokenizer.h"
#include "tarres_model.h"

namespace {

using slt::tarres::Sign2Text;
using slt::tarres::TarresConfig;

// len(Dictionary.load(dictionary.txt)): four specials plus one symbol per line.
int64_t dictionary_size(const std::filesystem::path& folder) {
  if (!std::filesystem::exists(folder / "dictionary.txt"))
    throw slt::UserError("no dictionary.txt in '" + folder.string() + "' (model.name_or_path of a tarres model)");
  std::ifstream in = slt::open_regular_file(folder / "dictionary.txt", "fairseq dictionary");
  int64_t lines = 0;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) ++lines;
  return 4 + lines;
}

class TarresModel : public slt::Seq2SeqModel {
 public:
  TarresModel(const slt::ConfigNode& section, const slt::ComponentContext& context) {
    std::filesystem::path folder = section.require<std::string>("name_or_path");
    net_ = std::make_shared<Sign2Text>(
        TarresConfig::from_section(section, dictionary_size(folder), context.label_smoothing.value_or(0.0)));
  }

  torch::nn::Module& module() override { return *net_; }

  slt::ModelOutput forward(const slt::Batch& batch) override {
    const TarresConfig& c = net_->config();
    auto padding = batch.attention_mask.eq(0);
    slt::ModelOutput out;
    out.encoder_hidden_states = net_->encode(batch.features, padding);
    if (!batch.labels.defined()) return out;
    // fairseq's move_eos_to_beginning: [eos, t0, ..., t_{n-1}], padded.
    auto prev = torch::cat({torch::full({batch.labels.size(0), 1}, c.eos, batch.labels.options()),
                            batch.labels.narrow(1, 0, batch.labels.size(1) - 1)},
                           1);
    prev.narrow(1, 1, prev.size(1) - 1).masked_fill_(prev.narrow(1, 1, prev.size(1) - 1).eq(c.eos), c.pad);
    out.logits = net_->decode(prev, out.encoder_hidden_states, padding);
    out.loss = slt::cross_entropy(out.logits.reshape({-1, out.logits.size(-1)}), batch.labels.reshape({-1}), c.pad,
                                  c.label_smoothing);
    return out;
  }

  at::Tensor encode(const at::Tensor& features, const at::Tensor& mask) override {
    return net_->encode(features, mask.eq(0));
  }

  at::Tensor decode_step(const at::Tensor& tokens, const at::Tensor& encoder_hidden, const at::Tensor& mask,
                         std::unique_ptr<slt::DecoderCache>& cache) override {
    if (!cache) cache = std::make_unique<slt::TransformerDecoderCache>();
    return net_->decode_step(tokens, encoder_hidden, mask.eq(0), static_cast<slt::TransformerDecoderCache&>(*cache));
  }
  bool shares_encoder_rows() const override { return true; }

  // The reference decodes the fairseq model with fairseq's SequenceGenerator.
  std::unique_ptr<slt::SearchStrategy> make_search(const slt::SearchOptions& options) const override {
    return std::make_unique<slt::FairseqSearch>(slt::FairseqGenerationConfig{}, options);
  }

  slt::SpecialTokens special_tokens() const override {
    const TarresConfig& c = net_->config();
    slt::SpecialTokens t;
    t.decoder_start = c.eos;  // fairseq decodes from EOS
    t.eos = c.eos;
    t.pad = c.pad;
    t.vocab_size = c.vocab_size;
    return t;
  }

 private:
  std::shared_ptr<Sign2Text> net_;
};

slt::ConfigSchema tarres_schema() {
  using V = slt::ValueType;
  slt::ConfigSchema s;
  s.add_required("name_or_path", V::String, "Folder with the fairseq dictionary.txt and sentencepiece.model");
  s.add_required("feature_dim", V::Int, "Dimension of the input features");
  s.add("encoder_embed_dim", V::Int, 256, "Encoder width");
  s.add("encoder_ffn_embed_dim", V::Int, 1024, "Encoder FFN width");
  s.add("encoder_attention_heads", V::Int, 4, "Encoder attention heads");
  s.add("encoder_layers", V::Int, 6, "Encoder layers");
  s.add("decoder_embed_dim", V::Int, 256, "Decoder width");
  s.add("decoder_ffn_embed_dim", V::Int, 1024, "Decoder FFN width");
  s.add("decoder_attention_heads", V::Int, 4, "Decoder attention heads");
  s.add("decoder_layers", V::Int, 3, "Decoder layers");
  s.add_optional("decoder_output_dim", V::Int, nullptr, "Must equal decoder_embed_dim when set");
  s.add("encoder_layerdrop", V::Float, 0.0, "Encoder LayerDrop rate");
  s.add("decoder_layerdrop", V::Float, 0.0, "Decoder LayerDrop rate");
  s.add_required("max_source_positions", V::Int, "Longest input in frames (the run sets it from data.max_source_positions)");
  s.add_required("max_target_positions", V::Int, "Longest output in tokens (the run sets it from data.max_target_positions)");
  s.add("dropout", V::Float, 0.3, "Dropout after embeddings, attention and FFN blocks").between(0, 1);
  s.add("attention_dropout", V::Float, 0.3, "Dropout on attention weights").between(0, 1);
  s.add("activation_dropout", V::Float, 0.3, "Dropout after the FFN activation").between(0, 1);
  s.add("activation_fn", V::String, "relu", "FFN activation", {"relu", "gelu", "tanh"});
  s.add("encoder_normalize_before", V::Bool, true, "Pre-norm encoder layers");
  s.add("decoder_normalize_before", V::Bool, true, "Pre-norm decoder layers");
  s.add("layernorm_embedding", V::Bool, true, "LayerNorm on the decoder embeddings");
  s.add("no_scale_embedding", V::Bool, false, "Do not scale embeddings by sqrt(dim)");
  s.add("share_decoder_input_output_embed", V::Bool, true, "Tie the output projection to the token embeddings");
  return s;
}

void register_components(slt::Registrar& registrar) {
  registrar.add<TarresModel>(slt::kinds::kModel, "tarres",
                             "Tarres et al. (2023) sign-to-text transformer (fairseq layout)", tarres_schema(),
                             [](const slt::ClaimQuery& q) {
                               // The reference's switch for this model is the top-level fairseq=true.
                               if (q.run && q.run->get_or<bool>("fairseq", false)) return 100;
                               bool fairseq_folder = slt::folder_has(q.path, {"dictionary.txt"}) &&
                                                     !slt::folder_has(q.path, {"config.json"});
                               return fairseq_folder ? 5 : 0;
                             });
}

}  // namespace

SLT_PLUGIN("tarres", "0.1.0", register_components)
