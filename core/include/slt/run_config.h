#pragma once
// The schema of a translation run: every key of the reference Config
// dataclasses (common, model, data, criterion, optim, dist, wandb, sweep, plus
// debug/fairseq/cmd) with its reference default and help, and slt's own
// additions (common.bf16, plugins.paths). Registered in the ConfigStore as
// `base_config`, which the shipped configs name in their defaults list.
#include <vector>

#include "slt/config.h"
#include "slt/schema.h"

namespace slt {

const ConfigSchema& run_schema();

// Stores `base_config` in ConfigStore::instance() (idempotent).
void register_base_config();

// Validates a job config (without `hydra`) against the run schema, extended by
// `extra` schemas given as {section prefix, schema}.
void validate_run_config(ConfigNode& job,
                         const std::vector<std::pair<std::string, const ConfigSchema*>>& extra = {});

// The model component a run uses, as create_model_and_tokenizer decides:
// fairseq=true -> tarres; "t5" in model.name_or_path -> t5; "bart" -> bart.
// A `model.arch` key, when present, names the component directly.
std::string infer_model_kind(const ConfigNode& job);

}  // namespace slt
