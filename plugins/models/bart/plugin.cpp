// The `bart` model component: SignBartForConditionalGeneration (BART or mBART)
// from a Hugging Face folder (or a hub id in the local cache).
#include "bart_model.h"
#include "hf_seq2seq.h"
#include "slt/plugin/plugin.h"

namespace {

const slt::models::WeightNames kNames = {
    {"model.encoder.feature_projection.feature_proj.weight", "model.encoder.feature_projection.feature_proj.bias",
     "model.encoder.feature_projection.feature_proj_scale", "final_logits_bias"},
    {{"model.encoder.embed_tokens.", "model.shared."},
     {"model.decoder.embed_tokens.", "model.shared."},
     {"model.encoder.feature_proj.", "model.encoder.feature_projection.feature_proj."}}};

struct BartModel : slt::models::HfSeq2Seq<slt::bart::SignBart> {
  BartModel(const slt::ConfigNode& section, const slt::ComponentContext& context)
      : HfSeq2Seq(section, context, kNames, [](slt::bart::BartConfig& c, double p) { c.dropout = p; }) {}
};

void register_components(slt::Registrar& registrar) {
  registrar.add<BartModel>(slt::kinds::kModel, "bart",
                           "SignBart: BART / mBART with a learned feature projection (Hugging Face weights)",
                           slt::models::hf_model_schema("BART"),
                         [](const slt::ClaimQuery& q) { return slt::models::claim_hf_family(q, "bart"); });
}

}  // namespace

SLT_PLUGIN("bart", "0.1.0", register_components)
