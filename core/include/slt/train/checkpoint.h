#pragma once
// Checkpoint files in the reference layout (best_model.pth, checkpoint-NNNNN.pth
// holding model, optimizer, scaler, cfg, epoch) and the pieces they are made of.
#include <ATen/core/ivalue.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slt/config/config.h"

namespace torch::optim {
class AdamW;
}

namespace slt {

// "checkpoint-00007.pth"
std::string checkpoint_name(int64_t epoch);
// checkpoint-NNNNN.pth files in `dir`, oldest first.
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& dir);
// Removes the temporary files an interrupted (atomic) checkpoint write left in `dir`.
void remove_unfinished_writes(const std::filesystem::path& dir);
// What a training run resumes from: common.resume (a checkpoint, or the newest
// in a folder; UserError when there is none) or else the newest checkpoint in
// `output_dir`; nullopt for a fresh run.
std::optional<std::filesystem::path> checkpoint_to_resume(const std::filesystem::path& output_dir,
                                                          const std::optional<std::string>& resume);

// The config as the nested dicts the reference's checkpoint "cfg" holds.
c10::IValue config_to_ivalue(const ConfigNode& node);

// What `job` changes against the config a checkpoint was trained with
// ("optim.lr: 0.001 -> 0.002"), over the keys both have that the weights
// depend on (seed, model, data, criterion, optimizer; not optim.epochs, the
// evaluation batch size or beam, data paths). Empty when `saved_cfg` is no dict.
std::vector<std::string> config_changes(const c10::IValue& saved_cfg, const ConfigNode& job);

// AdamW's state as PyTorch's Optimizer.state_dict() lays it out (step as a
// float tensor, exp_avg, exp_avg_sq; parameter groups with their options), and back.
c10::IValue adamw_state_dict(torch::optim::AdamW& optimizer);
void load_adamw_state(torch::optim::AdamW& optimizer, const c10::IValue& saved, const std::string& source);

// dict[key] of a loaded dict, or nullptr.
const c10::IValue* dict_get(const c10::IValue& dict, const std::string& key);
// A number stored as a double, an int or a one-element tensor.
double ivalue_double(const c10::IValue& value);

}  // namespace slt
