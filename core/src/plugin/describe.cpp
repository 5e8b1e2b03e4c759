#include "slt/plugin/describe.h"

#include <algorithm>
#include <tuple>

#include "slt/errors.h"

namespace slt {

std::string format_plugin_list(const std::vector<LoadedPlugin>& plugins, const Registry& registry) {
  if (plugins.empty()) return "no plugins found (see `slt-run --doctor` for the plugin path)\n";
  std::string out;
  for (const auto& plugin : plugins) {
    out += plugin.name + " " + plugin.version + "  " + plugin.path + "\n";
    for (const auto& qualified : plugin.components) {
      auto [kind, name] = split_component_name(qualified);
      const ComponentInfo& info = registry.get(kind, name);
      std::string label = "  " + qualified;
      label.resize(std::max<size_t>(label.size() + 2, 30), ' ');
      out += label + info.description + "\n";
    }
  }
  return out;
}

namespace {

// A default as one would type it on the command line: [16, 224, 224], {}.
std::string inline_value(const ConfigNode& value) {
  if (value.is_list()) {
    std::string out;
    for (const auto& e : value.elements()) out += (out.empty() ? "" : ", ") + inline_value(e);
    return "[" + out + "]";
  }
  if (value.is_map()) {
    std::string out;
    for (const auto& [k, v] : value.items()) out += (out.empty() ? "" : ", ") + k + ": " + inline_value(v);
    return "{" + out + "}";
  }
  return value.scalar_text();
}

}  // namespace

std::string format_component(const ComponentInfo& info) {
  std::string out = info.kind + "." + info.name + ": " + info.description + "\n";
  out += "plugin: " + info.plugin_name + " (" + info.plugin_path + ")\n";
  if (info.schema.fields().empty()) return out + "config: no keys\n";
  out += "config keys (" + config_section(info.kind) + ".KEY=VALUE):\n";
  for (const auto& field : info.schema.fields()) {
    std::string type = value_type_name(field.type);
    if (field.nullable) type = "optional " + type;
    std::string head = "  " + field.key + " (" + type + ")";
    if (field.required()) {
      head += " required";
    } else {
      head += " = " + inline_value(field.default_value);
    }
    out += head + "\n";
    if (!field.allowed.empty()) {
      std::string allowed;
      for (const auto& a : field.allowed) allowed += (allowed.empty() ? "" : ", ") + a;
      out += "      one of: " + allowed + "\n";
    }
    if (std::string bounds = describe_bounds(field); !bounds.empty()) out += "      " + bounds + "\n";
    if (!field.help.empty()) out += "      " + field.help + "\n";
  }
  return out;
}

namespace {

std::string markdown_cell(std::string text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string format_schema_markdown(const ConfigSchema& schema, const std::string& prefix) {
  if (schema.fields().empty()) return "No keys.\n";
  std::string out = "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& field : schema.fields()) {
    std::string type = value_type_name(field.type);
    if (field.nullable) type = "optional " + type;
    std::string value = field.required() ? "required" : "`" + inline_value(field.default_value) + "`";
    if (field.implicit) value += " (not printed until set)";
    std::string help = field.help;
    if (!field.allowed.empty()) {
      std::string allowed;
      for (const auto& a : field.allowed) allowed += (allowed.empty() ? "" : ", ") + ("`" + a + "`");
      help += (help.empty() ? "" : "; ") + ("one of " + allowed);
    }
    if (std::string bounds = describe_bounds(field); !bounds.empty()) help += (help.empty() ? "" : "; ") + bounds;
    out += "| `" + prefix + field.key + "` | " + type + " | " + markdown_cell(value) + " | " + markdown_cell(help) + " |\n";
  }
  return out;
}

std::string format_components_markdown(const Registry& registry) {
  std::vector<const ComponentInfo*> components = registry.list();
  std::sort(components.begin(), components.end(), [](const ComponentInfo* a, const ComponentInfo* b) {
    return std::tie(a->kind, a->name) < std::tie(b->kind, b->name);
  });
  std::string out;
  for (const ComponentInfo* info : components) {
    const std::string section = config_section(info->kind);
    out += "### " + info->kind + "." + info->name + "\n\n" + info->description + " (plugin `" + info->plugin_name +
           "`). Keys under `" + section + ".`:\n\n" + format_schema_markdown(info->schema, section + ".") + "\n";
  }
  return out;
}

std::pair<std::string, std::string> split_component_name(const std::string& qualified) {
  size_t dot = qualified.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == qualified.size())
    throw UserError("'" + qualified + "' is not a component name: write KIND.NAME as `slt-run --list-plugins` lists it");
  return {qualified.substr(0, dot), qualified.substr(dot + 1)};
}

}  // namespace slt
