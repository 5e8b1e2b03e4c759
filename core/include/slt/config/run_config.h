#pragma once
// The schema of a translation run: every key of the reference Config
// dataclasses (common, model, data, criterion, optim, dist, wandb, sweep, plus
// debug/fairseq/cmd) with its reference default and help, and slt's own
// additions (common.bf16, plugins.paths, and the component selectors
// model.arch, model.tokenizer and data.dataset; see components.h). Registered in the ConfigStore as
// `base_config`, which the shipped configs name in their defaults list.
#include "slt/config/config.h"
#include "slt/config/schema.h"

namespace slt {

const ConfigSchema& run_schema();

// Stores `base_config` in ConfigStore::instance() (idempotent).
void register_base_config();

}  // namespace slt
