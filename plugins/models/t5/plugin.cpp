// The `t5` model component: SignT5ForConditionalGeneration from a Hugging Face
// folder (or a hub id in the local cache).
#include "hf_seq2seq.h"
#include "slt/plugin/plugin.h"
#include "t5_model.h"

namespace {

const slt::models::WeightNames kNames = {
    {"encoder.feature_projection.feature_proj.weight", "encoder.feature_projection.feature_proj.bias",
     "encoder.feature_projection.feature_proj_scale"},
    {{"encoder.embed_tokens.", "shared."},
     {"decoder.embed_tokens.", "shared."},
     {"encoder.feature_proj.", "encoder.feature_projection.feature_proj."}}};

struct T5Model : slt::models::HfSeq2Seq<slt::t5::SignT5> {
  T5Model(const slt::ConfigNode& section, const slt::ComponentContext& context)
      : HfSeq2Seq(section, context, kNames, [](slt::t5::T5Config& c, double p) { c.dropout_rate = p; }) {}
};

void register_components(slt::Registrar& registrar) {
  registrar.add<T5Model>(slt::kinds::kModel, "t5",
                         "SignT5: T5 / T5 v1.1 with a learned feature projection (Hugging Face weights)",
                         slt::models::hf_model_schema("T5"),
                         [](const slt::ClaimQuery& q) { return slt::models::claim_hf_family(q, "t5"); });
}

}  // namespace

SLT_PLUGIN("t5", "0.1.0", register_components)
