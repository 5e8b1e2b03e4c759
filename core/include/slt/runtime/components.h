#pragma once
// The host's side of the plugin boundary: which registered component a run
// uses for its model, tokenizer and datasets, and the validation of a job
// against the run schema plus the schemas of the components it chose.
//
// A component is named in the config (model.arch, model.tokenizer,
// data.dataset) or, when it is not, chosen by asking every registered
// component of the kind to claim the input (Registry::choose). Core never
// knows a component by name.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "slt/config/config.h"
#include "slt/plugin/registry.h"

namespace slt {

class Tokenizer;
class Seq2SeqModel;
class SearchStrategy;

// model.arch, else the model component with the highest claim on
// model.name_or_path (its folder when it resolves, the name otherwise).
std::string choose_model(const ConfigNode& job);

// model.name_or_path as a folder: a path, or a hub id in the local Hugging
// Face cache. nullopt when it is neither (nothing is downloaded).
std::optional<std::filesystem::path> find_model_folder(const ConfigNode& job);

// `kind` when given, else the tokenizer component claiming `folder`.
std::string choose_tokenizer(const std::filesystem::path& folder, const std::string& kind = "");
std::shared_ptr<Tokenizer> open_tokenizer(const std::filesystem::path& folder, const std::string& kind = "",
                                          bool lower_case = false);

// data.dataset, else the dataset component claiming `folder`.
std::string choose_dataset(const ConfigNode& job, const std::filesystem::path& folder);

// The run's model: choose_model(job) built from the job's `model` section,
// `context` completed from the job (model folder, label smoothing, seed).
std::shared_ptr<Seq2SeqModel> open_model(const ConfigNode& job, ComponentContext context = {});

// The model, tokenizer and search strategy of a run, as slt-run and
// slt-translate build them (one translation path for both).
struct ModelBundle {
  std::shared_ptr<Seq2SeqModel> model;
  std::shared_ptr<Tokenizer> tokenizer;
  std::string kind;                              // the model component
  std::shared_ptr<const SearchStrategy> search;  // the model's, with model.num_beams and data.max_target_positions
};

// The tokenizer (model.tokenizer, or the one claiming `tokenizer_folder`, by
// default the model's folder; lower-casing when model.lower_case), then the
// model with that tokenizer and `device` (where it will run) in its context,
// then its search strategy. Plugins must be loaded.
ModelBundle create_model_and_tokenizer(const ConfigNode& job, const std::filesystem::path& tokenizer_folder = {},
                                       const std::string& device = "cpu");

// Whether `key=value` may set `key` although the composed config lacks it (no
// `+` needed): it is declared by the run schema or by a registered component,
// or it lies in a component's section (model.*, data.*), where validate_job
// decides against the chosen component's schema and suggests the closest key.
bool accepts_key(const std::string& key);

// Validates a job (without `hydra`) against the run schema extended by the
// schemas of the components it uses (the chosen model under `model`, each
// data folder's dataset under `data`): unknown keys fail with a suggestion
// from both, types are checked, and keys only a component declares get its
// default when absent. When the model cannot be chosen yet (model.name_or_path
// still ???), only the run schema applies.
void validate_job(ConfigNode& job);

}  // namespace slt
