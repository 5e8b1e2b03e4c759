#pragma once
// Human-readable listings for `slt-run --list-plugins` and `--describe`.
#include <string>
#include <vector>

#include "slt/plugin/plugin_loader.h"
#include "slt/plugin/registry.h"

namespace slt {

std::string format_plugin_list(const std::vector<LoadedPlugin>& plugins, const Registry& registry);

// A component's config schema: key, type, default, allowed values and help.
std::string format_component(const ComponentInfo& info);

// A Markdown table of a schema's keys (`prefix` + key, type, default, help),
// for docs/CONFIG.md (`slt-run --config-reference`).
std::string format_schema_markdown(const ConfigSchema& schema, const std::string& prefix = "");

// Every registered component, kind by kind, each with its schema's table.
std::string format_components_markdown(const Registry& registry);

// "model.my_model" -> {"model", "my_model"}; throws UserError when there is no dot.
std::pair<std::string, std::string> split_component_name(const std::string& qualified);

}  // namespace slt
