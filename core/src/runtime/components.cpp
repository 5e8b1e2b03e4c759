#include "slt/runtime/components.h"

#include <functional>

#include "slt/errors.h"
#include "slt/model/generation.h"
#include "slt/model/model.h"
#include "slt/config/run_config.h"
#include "slt/text/text.h"
#include "slt/data/tokenizer.h"

namespace fs = std::filesystem;

namespace slt {

std::optional<fs::path> find_model_folder(const ConfigNode& job) {
  std::optional<std::string> name = job.get<std::string>("model.name_or_path");
  if (!name) return std::nullopt;
  try {
    return resolve_model_folder(*name);
  } catch (const UserError&) {
    return std::nullopt;
  }
}

std::string choose_model(const ConfigNode& job) {
  ClaimQuery query;
  query.name = job.get_or<std::string>("model.name_or_path", "");
  auto arch = job.get<std::string>("model.arch");
  if (!arch) query.path = find_model_folder(job).value_or(fs::path());  // claims look into the folder
  query.run = &job;
  return Registry::global().choose(kinds::kModel, arch, query,
                                   "model.name_or_path='" + query.name + "' (set model.arch=NAME)");
}

std::string choose_tokenizer(const fs::path& folder, const std::string& kind) {
  ClaimQuery query;
  query.path = folder;
  return Registry::global().choose(kinds::kTokenizer, kind.empty() ? std::nullopt : std::optional<std::string>(kind),
                                   query, "the tokenizer files in '" + folder.string() + "' (set model.tokenizer=NAME)");
}

std::shared_ptr<Tokenizer> open_tokenizer(const fs::path& folder, const std::string& kind, bool lower_case) {
  ConfigNode section = tokenizer_config(folder, lower_case);
  return Registry::global().create<Tokenizer>(kinds::kTokenizer, choose_tokenizer(folder, kind), &section);
}

std::string choose_dataset(const ConfigNode& job, const fs::path& folder) {
  ClaimQuery query;
  query.path = folder;
  query.run = &job;
  return Registry::global().choose(kinds::kDataset, job.get<std::string>("data.dataset"), query,
                                   "the data folder '" + folder.string() + "' (set data.dataset=NAME)");
}

namespace {

// The model component `name` from the job's `model` section, with `context`
// completed from the job; `folder` is model.name_or_path already resolved.
std::shared_ptr<Seq2SeqModel> build_model(const ConfigNode& job, const std::string& name, const fs::path& folder,
                                          ComponentContext context) {
  context.model_folder = folder;
  if (!context.label_smoothing) context.label_smoothing = job.get<double>("criterion.label_smoothing");
  context.seed = static_cast<uint64_t>(job.get_or<int64_t>("common.seed", 0));
  context.debug = job.get_or<bool>("debug", false);
  return Registry::global().create<Seq2SeqModel>(kinds::kModel, name, job.at("model"), context);
}

}  // namespace

std::shared_ptr<Seq2SeqModel> open_model(const ConfigNode& job, ComponentContext context) {
  std::string name = choose_model(job);
  return build_model(job, name, resolve_model_folder(job.require<std::string>("model.name_or_path")), std::move(context));
}

ModelBundle create_model_and_tokenizer(const ConfigNode& job, const fs::path& tokenizer_folder,
                                       const std::string& device) {
  ModelBundle bundle;
  bundle.kind = choose_model(job);
  fs::path model_folder = resolve_model_folder(job.require<std::string>("model.name_or_path"));  // fails fast, offline
  bundle.tokenizer = open_tokenizer(tokenizer_folder.empty() ? model_folder : tokenizer_folder,
                                    job.get_or<std::string>("model.tokenizer", ""),
                                    job.get_or<bool>("model.lower_case", false));
  ComponentContext context;
  context.tokenizer = bundle.tokenizer;
  context.device = device;
  bundle.model = build_model(job, bundle.kind, model_folder, context);
  SearchOptions options;
  options.num_beams = job.get<int64_t>("model.num_beams");
  options.max_length = job.get<int64_t>("data.max_target_positions");
  bundle.search = bundle.model->make_search(options);
  return bundle;
}

bool accepts_key(const std::string& key) {
  if (run_schema().find(key)) return true;
  size_t dot = key.find('.');
  if (dot == std::string::npos) return false;
  std::string section = key.substr(0, dot);
  for (const std::string& kind : known_component_kinds())
    if (config_section(kind) == section) return true;
  return false;
}

namespace {

bool is_set(const ConfigNode& job, const char* key) {
  const ConfigNode* node = job.at(key);
  return node && !node->is_null() && !node->is_missing();
}

// The data folders a job reads: data.train_data_dirs (comma-separated) and data.val_data_dir.
std::vector<std::string> data_folders(const ConfigNode& job) {
  std::vector<std::string> folders;
  if (is_set(job, "data.train_data_dirs"))
    for (const auto& dir : split(job.require<std::string>("data.train_data_dirs"), ','))
      if (!trim(dir).empty()) folders.emplace_back(trim(dir));
  if (is_set(job, "data.val_data_dir")) folders.push_back(job.require<std::string>("data.val_data_dir"));
  return folders;
}


}  // namespace

void validate_job(ConfigNode& job) {
  const Registry& registry = Registry::global();
  std::vector<ConfigSchema> component_schemas;
  // A component named in the config must exist; an input nobody claims is
  // reported when the run builds its components (so --cfg still prints).
  auto add_schema = [&](const std::string& kind, const char* selector, const std::function<std::string()>& choose) {
    try {
      component_schemas.push_back(registry.get(kind, choose()).schema.prefixed(config_section(kind)));
    } catch (const UnknownComponentError&) {
      throw;
    } catch (const UserError&) {
      if (is_set(job, selector)) throw;
    }
  };
  if (is_set(job, "model.arch") || is_set(job, "model.name_or_path"))
    add_schema(kinds::kModel, "model.arch", [&] { return choose_model(job); });
  for (const auto& folder : data_folders(job))
    add_schema(kinds::kDataset, "data.dataset", [&] { return choose_dataset(job, folder); });

  ConfigSchema schema = run_schema();
  for (const auto& extra : component_schemas) {
    // A key only the component declares is written with its default, so the
    // run's config.yaml records everything the component was built from.
    for (const auto& field : extra.fields())
      if (!schema.find(field.key) && !job.at(field.key) && !field.required() && !field.implicit)
        job.set(field.key, field.default_value);
    schema.extend(extra);
  }
  schema.validate(job, "");
}

}  // namespace slt
