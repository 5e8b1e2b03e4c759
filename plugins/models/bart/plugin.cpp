// The `bart` model component: SignBartForConditionalGeneration (BART or mBART)
// from a Hugging Face folder (or a hub id in the local cache).
#include "bart_model.h"
#include "hf_seq2seq.h"
#include "slt/plugin.h"

namespace {

const slt::models::WeightNames kNames = {
    {"model.encoder.feature_projection.feature_proj.weight", "model.encoder.feature_projection.feature_proj.bias",
     "model.encoder.feature_projection.feature_proj_scale", "final_logits_bias"},
    {{"model.encoder.embed_tokens.", "model.shared."},
     {"model.decoder.embed_tokens.", "model.shared."},
     {"model.encoder.feature_proj.", "model.encoder.feature_projection.feature_proj."}}};

struct BartModel : slt::models::HfSeq2Seq<slt::bart::SignBart> {
  explicit BartModel(const slt::ConfigNode& config)
      : HfSeq2Seq(config, kNames, [](slt::bart::BartConfig& c, double p) { c.dropout = p; }) {}
};

void register_components(slt::Registrar& registrar) {
  registrar.add<BartModel>(slt::kinds::kModel, "bart",
                           "SignBart: BART / mBART with a learned feature projection (Hugging Face weights)",
                           slt::models::hf_model_schema("BART"));
}

}  // namespace

SLT_PLUGIN("bart", "0.1.0", register_components)
