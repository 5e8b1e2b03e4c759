#pragma once
// Hydra-compatible config composition: a primary YAML file, its `defaults:`
// list (structured configs from the ConfigStore, other files, config group
// choices such as `run: local`), `# @package` headers, command-line overrides,
// the `hydra` node with its runtime values, and interpolation.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/config/overrides.h"

namespace slt {

// Named structured configs (Hydra's ConfigStore): `- base_config` in a defaults
// list loads the node registered here under that name.
class ConfigStore {
 public:
  static ConfigStore& instance();
  void store(const std::string& name, ConfigNode node);
  const ConfigNode* find(const std::string& name) const;

 private:
  std::map<std::string, ConfigNode> nodes_;
};

struct ComposeRequest {
  std::filesystem::path config_file;       // --config PATH, or
  std::string config_name;                 // --config-name NAME, looked up in search_path
  std::vector<std::filesystem::path> search_path;
  std::vector<std::string> overrides;      // as typed on the command line
  bool multirun = false;
  std::string command_line;                // recorded in the `cmd` key of every run
  // Keys that `key=value` may set although the composed config lacks them
  // (declared by a schema, e.g. a plugin's model.hidden_dim): no `+` needed.
  std::function<bool(const std::string& key)> declared_key;
};

struct ComposedRun {
  ConfigNode config;  // resolved, with the `hydra` node
  std::vector<std::string> task_overrides;
  // The config without `hydra`, as the job sees it.
  ConfigNode job_config() const;
};

// Composes one run per sweep point (one run without --multirun). Throws
// ConfigError naming the file, key or override at fault.
std::vector<ComposedRun> compose_runs(const ComposeRequest& request);

// Resolves ${a.b}, ${oc.env:VAR,default}, ${hydra:key} and ${now:fmt} in
// place. Values that are "???" stay missing. Cycles and missing targets are
// errors naming the key.
void resolve_interpolations(ConfigNode& root);

// The config groups (sub-folders with YAML files) found on the search path,
// with their options.
std::map<std::string, std::vector<std::string>> list_config_groups(
    const std::vector<std::filesystem::path>& search_path);

}  // namespace slt
