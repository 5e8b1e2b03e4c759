#include "slt/config/schema.h"

#include <cstdio>

#include "slt/errors.h"
#include "slt/text/text.h"

namespace slt {

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::Bool: return "bool";
    case ValueType::Int: return "int";
    case ValueType::Float: return "float";
    case ValueType::String: return "str";
    case ValueType::List: return "list";
    case ValueType::Map: return "map";
    case ValueType::Any: return "any";
  }
  return "?";
}

std::string describe_bounds(const ConfigField& field) {
  auto number = [](double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", v);
    return std::string(text);
  };
  if (field.minimum && field.maximum) return "between " + number(*field.minimum) + " and " + number(*field.maximum);
  if (field.minimum) return "at least " + number(*field.minimum);
  if (field.maximum) return "at most " + number(*field.maximum);
  return "";
}

ConfigSchema& ConfigSchema::at_least(double minimum) {
  fields_.back().minimum = minimum;
  return *this;
}

ConfigSchema& ConfigSchema::at_most(double maximum) {
  fields_.back().maximum = maximum;
  return *this;
}

ConfigSchema& ConfigSchema::add(std::string key, ValueType type, ConfigNode default_value,
                                std::string help, std::vector<std::string> allowed) {
  ConfigField field;
  field.key = std::move(key);
  field.type = type;
  field.default_value = std::move(default_value);
  field.help = std::move(help);
  field.allowed = std::move(allowed);
  field.nullable = field.default_value.is_null();
  fields_.push_back(std::move(field));
  return *this;
}

ConfigSchema& ConfigSchema::add_optional(std::string key, ValueType type, ConfigNode default_value,
                                         std::string help) {
  add(std::move(key), type, std::move(default_value), std::move(help));
  fields_.back().nullable = true;
  return *this;
}

ConfigSchema& ConfigSchema::add_required(std::string key, ValueType type, std::string help) {
  return add(std::move(key), type, ConfigNode::missing(), std::move(help));
}

ConfigSchema& ConfigSchema::add_selector(std::string key, std::string help) {
  return add_implicit(std::move(key), ValueType::String, std::move(help));
}

ConfigSchema& ConfigSchema::add_implicit(std::string key, ValueType type, std::string help) {
  add_optional(std::move(key), type, nullptr, std::move(help));
  fields_.back().implicit = true;
  return *this;
}

ConfigSchema ConfigSchema::prefixed(const std::string& prefix) const {
  ConfigSchema out = *this;
  for (auto& field : out.fields_) field.key = prefix + "." + field.key;
  return out;
}

ConfigSchema& ConfigSchema::extend(const ConfigSchema& other) {
  for (const auto& field : other.fields_)
    if (!find(field.key)) fields_.push_back(field);
  return *this;
}

const ConfigField* ConfigSchema::find(const std::string& key) const {
  for (const auto& field : fields_)
    if (field.key == key) return &field;
  return nullptr;
}

std::vector<std::string> ConfigSchema::keys() const {
  std::vector<std::string> keys;
  for (const auto& field : fields_) keys.push_back(field.key);
  return keys;
}

ConfigNode ConfigSchema::defaults() const {
  ConfigNode root = ConfigNode::map();
  for (const auto& field : fields_)
    if (!field.implicit) root.set(field.key, field.default_value);
  return root;
}

namespace {

// Interpolations are checked after they resolve; "???" is reported by missing_keys.
bool is_deferred(const ConfigNode& value) {
  return value.is_missing() ||
         (value.is_string() && value.as_string().find("${") != std::string::npos);
}

void check_type(const ConfigField& field, ConfigNode& value, const std::string& full_key) {
  if (is_deferred(value)) return;
  if (value.is_null()) {
    if (field.nullable || field.type == ValueType::Any) return;
    throw ConfigError("config key '" + full_key + "': expected " + value_type_name(field.type) +
                      ", got null (this key cannot be null)");
  }
  using T = ConfigNode::Type;
  bool ok = true;
  switch (field.type) {
    case ValueType::Bool: ok = value.type() == T::Bool; break;
    case ValueType::Int: ok = value.type() == T::Int; break;
    case ValueType::Float:
      ok = value.type() == T::Float || value.type() == T::Int;
      if (value.type() == T::Int) value = ConfigNode(value.as_double());
      break;
    case ValueType::String:
      // OmegaConf turns numbers and bools given for str fields into text.
      ok = value.is_scalar();
      if (ok && !value.is_string()) value = ConfigNode(value.scalar_text());
      break;
    case ValueType::List: ok = value.is_list(); break;
    case ValueType::Map: ok = value.is_map(); break;
    case ValueType::Any: break;
  }
  if (!ok)
    throw ConfigError("config key '" + full_key + "': expected " + value_type_name(field.type) +
                      ", got " + type_name(value.type()) +
                      (value.is_scalar() ? " '" + value.scalar_text() + "'" : std::string()));
  if ((field.minimum || field.maximum) && (value.type() == T::Int || value.type() == T::Float)) {
    const double number = value.as_double();
    if ((field.minimum && !(number >= *field.minimum)) || (field.maximum && !(number <= *field.maximum)))
      throw ConfigError("config key '" + full_key + "': " + value.scalar_text() + " is out of range (" +
                        describe_bounds(field) + ")");
  }
  if (!field.allowed.empty() && value.is_scalar()) {
    std::string text = value.is_string() ? value.as_string() : value.scalar_text();
    bool allowed = false;
    for (const auto& a : field.allowed) allowed = allowed || a == text;
    if (!allowed)
      throw ConfigError("config key '" + full_key + "': '" + text + "' is not one of: " +
                        join(field.allowed));
  }
}

void validate_map(const ConfigSchema& schema, ConfigNode& node, const std::string& rel,
                  const std::string& prefix) {
  for (auto& [key, value] : node.items()) {
    std::string rel_key = rel.empty() ? key : rel + "." + key;
    std::string full_key = prefix.empty() ? rel_key : prefix + "." + rel_key;
    if (const ConfigField* field = schema.find(rel_key)) {
      check_type(*field, value, full_key);
      continue;
    }
    // A map whose children are declared (dotted keys in the schema).
    bool is_parent = false;
    for (const auto& f : schema.fields())
      is_parent = is_parent || f.key.rfind(rel_key + ".", 0) == 0;
    if (is_parent && value.is_map()) {
      validate_map(schema, value, rel_key, prefix);
      continue;
    }
    std::vector<std::string> candidates;
    for (const auto& f : schema.fields())
      candidates.push_back(prefix.empty() ? f.key : prefix + "." + f.key);
    std::string suggestion = closest_match(full_key, candidates);
    throw ConfigError("unknown config key '" + full_key + "'" +
                      (suggestion.empty() ? std::string()
                                          : " (did you mean '" + suggestion + "'?)") +
                      "; `slt-run --describe KIND.NAME` lists the keys a component accepts");
  }
}

}  // namespace

void ConfigSchema::validate(ConfigNode& section, const std::string& prefix) const {
  if (!section.is_map())
    throw ConfigError("config key '" + prefix + "': expected a map, got " +
                      type_name(section.type()));
  validate_map(*this, section, "", prefix);
}

std::vector<std::string> missing_keys(const ConfigNode& node, const std::string& prefix) {
  std::vector<std::string> keys;
  if (node.is_missing()) {
    keys.push_back(prefix);
  } else if (node.is_map()) {
    for (const auto& [key, value] : node.items()) {
      auto sub = missing_keys(value, prefix.empty() ? key : prefix + "." + key);
      keys.insert(keys.end(), sub.begin(), sub.end());
    }
  } else if (node.is_list()) {
    for (size_t i = 0; i < node.elements().size(); ++i) {
      auto sub = missing_keys(node.elements()[i], prefix + "[" + std::to_string(i) + "]");
      keys.insert(keys.end(), sub.begin(), sub.end());
    }
  }
  return keys;
}

void require_no_missing_keys(const ConfigNode& node) {
  auto missing = missing_keys(node);
  if (missing.empty()) return;
  throw ConfigError("missing mandatory value" + std::string(missing.size() > 1 ? "s" : "") + ": " + join(missing) +
                    " (set it on the command line, e.g. " + missing.front() + "=...)");
}

}  // namespace slt
