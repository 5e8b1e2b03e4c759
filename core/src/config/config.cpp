#include "slt/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <regex>
#include <type_traits>
#include <sstream>

#include "slt/errors.h"
#include "slt/io/files.h"

namespace slt {

const char* type_name(ConfigNode::Type type) {
  switch (type) {
    case ConfigNode::Type::Null: return "null";
    case ConfigNode::Type::Bool: return "bool";
    case ConfigNode::Type::Int: return "int";
    case ConfigNode::Type::Float: return "float";
    case ConfigNode::Type::String: return "string";
    case ConfigNode::Type::List: return "list";
    case ConfigNode::Type::Map: return "map";
  }
  return "?";
}

namespace {

[[noreturn]] void type_mismatch(std::string_view what, const char* expected, const ConfigNode& got) {
  throw ConfigError(std::string(what) + ": expected " + expected + ", got " + type_name(got.type()) +
                    (got.is_scalar() ? " '" + got.scalar_text() + "'" : std::string()));
}

}  // namespace

bool ConfigNode::as_bool(std::string_view what) const {
  if (auto* v = std::get_if<bool>(&value_)) return *v;
  type_mismatch(what, "bool", *this);
}

int64_t ConfigNode::as_int(std::string_view what) const {
  if (auto* v = std::get_if<int64_t>(&value_)) return *v;
  type_mismatch(what, "int", *this);
}

double ConfigNode::as_double(std::string_view what) const {
  if (auto* v = std::get_if<double>(&value_)) return *v;
  if (auto* v = std::get_if<int64_t>(&value_)) return static_cast<double>(*v);
  type_mismatch(what, "float", *this);
}

const std::string& ConfigNode::as_string(std::string_view what) const {
  if (auto* v = std::get_if<std::string>(&value_)) return *v;
  type_mismatch(what, "string", *this);
}

namespace {

template <typename T>
T typed_value(const ConfigNode& node, std::string_view key) {
  std::string what = "config key '" + std::string(key) + "'";
  if constexpr (std::is_same_v<T, bool>) return node.as_bool(what);
  else if constexpr (std::is_same_v<T, int64_t>) return node.as_int(what);
  else if constexpr (std::is_same_v<T, double>) return node.as_double(what);
  else return node.as_string(what);
}

}  // namespace

template <typename T>
std::optional<T> ConfigNode::get(std::string_view path) const {
  const ConfigNode* node = at(path);
  if (!node || node->is_null()) return std::nullopt;
  if (node->is_missing())
    throw ConfigError("config key '" + std::string(path) + "' is ??? (a mandatory value not given yet): set it, e.g. " +
                      std::string(path) + "=...");
  return typed_value<T>(*node, path);
}

template <typename T>
T ConfigNode::require(std::string_view path) const {
  std::optional<T> value = get<T>(path);
  if (!value) throw ConfigError("missing config key '" + std::string(path) + "'");
  return std::move(*value);
}

template std::optional<bool> ConfigNode::get<bool>(std::string_view) const;
template std::optional<int64_t> ConfigNode::get<int64_t>(std::string_view) const;
template std::optional<double> ConfigNode::get<double>(std::string_view) const;
template std::optional<std::string> ConfigNode::get<std::string>(std::string_view) const;
template bool ConfigNode::require<bool>(std::string_view) const;
template int64_t ConfigNode::require<int64_t>(std::string_view) const;
template double ConfigNode::require<double>(std::string_view) const;
template std::string ConfigNode::require<std::string>(std::string_view) const;

const ConfigNode::Map& ConfigNode::items() const {
  if (auto* v = std::get_if<Map>(&value_)) return *v;
  type_mismatch("node", "map", *this);
}
ConfigNode::Map& ConfigNode::items() {
  if (auto* v = std::get_if<Map>(&value_)) return *v;
  type_mismatch("node", "map", *this);
}
const ConfigNode::List& ConfigNode::elements() const {
  if (auto* v = std::get_if<List>(&value_)) return *v;
  type_mismatch("node", "list", *this);
}
ConfigNode::List& ConfigNode::elements() {
  if (auto* v = std::get_if<List>(&value_)) return *v;
  type_mismatch("node", "list", *this);
}

const ConfigNode* ConfigNode::find(std::string_view key) const {
  auto* map = std::get_if<Map>(&value_);
  if (!map) return nullptr;
  for (auto& [k, v] : *map)
    if (k == key) return &v;
  return nullptr;
}

ConfigNode* ConfigNode::find(std::string_view key) {
  return const_cast<ConfigNode*>(static_cast<const ConfigNode*>(this)->find(key));
}

ConfigNode& ConfigNode::operator[](std::string_view key) {
  if (is_null()) value_ = Map{};
  if (auto* existing = find(key)) return *existing;
  auto& map = items();
  map.emplace_back(std::string(key), ConfigNode());
  return map.back().second;
}

bool ConfigNode::erase(std::string_view key) {
  auto* map = std::get_if<Map>(&value_);
  if (!map) return false;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (it->first == key) {
      map->erase(it);
      return true;
    }
  }
  return false;
}

const ConfigNode* ConfigNode::at(std::string_view path) const {
  const ConfigNode* node = this;
  size_t start = 0;
  while (node) {
    size_t dot = path.find('.', start);
    node = node->find(path.substr(start, dot - start));
    if (dot == std::string_view::npos) return node;
    start = dot + 1;
  }
  return nullptr;
}

ConfigNode* ConfigNode::at(std::string_view path) {
  return const_cast<ConfigNode*>(static_cast<const ConfigNode*>(this)->at(path));
}

ConfigNode& ConfigNode::set(std::string_view path, ConfigNode value) {
  ConfigNode* node = this;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string_view key = path.substr(start, dot - start);
    if (!node->is_map() && !node->is_null())
      throw ConfigError("cannot set '" + std::string(path) + "': '" +
                        std::string(path.substr(0, start ? start - 1 : 0)) + "' is a " +
                        type_name(node->type()) + ", not a map");
    node = &(*node)[key];
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  *node = std::move(value);
  return *node;
}

bool ConfigNode::erase_path(std::string_view path) {
  size_t dot = path.rfind('.');
  if (dot == std::string_view::npos) return erase(path);
  ConfigNode* parent = at(path.substr(0, dot));
  return parent && parent->erase(path.substr(dot + 1));
}

void ConfigNode::merge(const ConfigNode& other) {
  if (is_map() && other.is_map()) {
    for (auto& [key, value] : other.items()) {
      if (auto* mine = find(key)) {
        mine->merge(value);
      } else {
        items().emplace_back(key, value);
      }
    }
    return;
  }
  *this = other;
}

std::string format_float(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  // Shortest round-trip digits, laid out like Python's repr: positional for
  // exponents in [-4, 16), scientific otherwise; PyYAML then writes 1.0e-07.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-d.ddde[+-]XX"
  size_t e = sci.find('e');
  int exponent = std::stoi(sci.substr(e + 1));
  std::string sign = sci[0] == '-' ? "-" : "";
  std::string digits;
  for (char c : sci.substr(0, e))
    if (std::isdigit(static_cast<unsigned char>(c))) digits += c;
  if (exponent >= -4 && exponent < 16) {
    std::string text;
    if (exponent < 0) {
      text = "0." + std::string(-exponent - 1, '0') + digits;
    } else {
      if (digits.size() <= static_cast<size_t>(exponent) + 1) digits.resize(exponent + 1, '0');
      text = digits.substr(0, exponent + 1);
      std::string fraction = digits.substr(exponent + 1);
      text += "." + (fraction.empty() ? std::string("0") : fraction);
    }
    return sign + text;
  }
  std::string mantissa = digits.substr(0, 1) + "." + (digits.size() > 1 ? digits.substr(1) : "0");
  char exp_text[16];
  std::snprintf(exp_text, sizeof exp_text, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + mantissa + exp_text;
}

ConfigNode parse_plain_scalar(std::string_view text) {
  static const std::regex null_re("~|null|Null|NULL|");
  static const std::regex true_re("y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON");
  static const std::regex false_re("n|N|no|No|NO|false|False|FALSE|off|Off|OFF");
  static const std::regex int_re("[-+]?(0|[1-9][0-9_]*)");
  // OmegaConf's float resolver: unlike plain YAML 1.1 it accepts 1e-7 without a dot.
  static const std::regex float_re(
      "[-+]?([0-9][0-9_]*)\\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?([0-9][0-9_]*)([eE][-+]?[0-9]+)|"
      "\\.[0-9_]+([eE][-+][0-9]+)?|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)");
  std::string s(text);
  if (std::regex_match(s, null_re)) return ConfigNode();
  // Single letters y/n are strings in OmegaConf (it drops them from the bool resolver).
  if (s.size() > 1 && std::regex_match(s, true_re)) return ConfigNode(true);
  if (s.size() > 1 && std::regex_match(s, false_re)) return ConfigNode(false);
  if (std::regex_match(s, int_re)) {
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    try {
      return ConfigNode(static_cast<int64_t>(std::stoll(s)));
    } catch (const std::out_of_range&) {
      return ConfigNode(std::string(text));
    }
  }
  if (std::regex_match(s, float_re)) {
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (s.find("nan") != std::string::npos || s.find("NaN") != std::string::npos ||
        s.find("NAN") != std::string::npos)
      return ConfigNode(std::nan(""));
    if (s.find("inf") != std::string::npos || s.find("Inf") != std::string::npos ||
        s.find("INF") != std::string::npos)
      return ConfigNode(s[0] == '-' ? -INFINITY : INFINITY);
    // strtod as Python's float(): 1e999 is inf and 1e-999 is 0, never an exception.
    return ConfigNode(std::strtod(s.c_str(), nullptr));
  }
  return ConfigNode(std::string(text));
}

namespace {

// YAML aliases share nodes, so a small file can stand for an exponential tree
// ("billion laughs"); the expansion is bounded in size and depth.
constexpr size_t kMaxYamlValues = 1000000;
constexpr int kMaxYamlDepth = 64;

struct YamlBudget {
  size_t values = 0;
};

ConfigNode from_yaml(const YAML::Node& node, const std::string& source, YamlBudget& budget, int depth) {
  if (++budget.values > kMaxYamlValues)
    throw ConfigError(source + ": more than " + std::to_string(kMaxYamlValues) +
                      " values once YAML aliases are expanded; is this a config file?");
  if (depth > kMaxYamlDepth)
    throw ConfigError(source + ":" + std::to_string(node.Mark().line + 1) + ": nested deeper than " +
                      std::to_string(kMaxYamlDepth) + " levels");
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return ConfigNode();
    case YAML::NodeType::Scalar:
      // Quoted scalars carry the "!" tag: always strings.
      if (node.Tag() == "!") return ConfigNode(node.Scalar());
      return parse_plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      ConfigNode list = ConfigNode::list();
      for (const auto& item : node) list.elements().push_back(from_yaml(item, source, budget, depth + 1));
      return list;
    }
    case YAML::NodeType::Map: {
      ConfigNode map = ConfigNode::map();
      for (const auto& item : node) {
        std::string key = item.first.as<std::string>();
        if (map.find(key))
          throw ConfigError(source + ":" + std::to_string(item.first.Mark().line + 1) +
                            ": duplicate key '" + key + "'");
        map.items().emplace_back(key, from_yaml(item.second, source, budget, depth + 1));
      }
      return map;
    }
  }
  return ConfigNode();
}

bool needs_quotes(const std::string& s) {
  if (s == ConfigNode::kMissing) return false;
  if (s.empty() || !parse_plain_scalar(s).is_string()) return true;
  if (s.front() == ' ' || s.back() == ' ') return true;
  if (s.find_first_of("\n\t\r\\") != std::string::npos) return true;
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) return true;
  return s.find(": ") != std::string::npos || s.find(" #") != std::string::npos ||
         s.back() == ':';
}

std::string quote(const std::string& s) {
  if (s.find_first_of("\n\t\r\\") != std::string::npos) {
    std::string out = "\"";
    for (char c : s) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        default: out += c;
      }
    }
    return out + "\"";
  }
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

}  // namespace

std::string ConfigNode::scalar_text() const {
  switch (type()) {
    case Type::Null: return "null";
    case Type::Bool: return std::get<bool>(value_) ? "true" : "false";
    case Type::Int: return std::to_string(std::get<int64_t>(value_));
    case Type::Float: return format_float(std::get<double>(value_));
    case Type::String: {
      const auto& s = std::get<std::string>(value_);
      return needs_quotes(s) ? quote(s) : s;
    }
    case Type::List: return elements().empty() ? "[]" : to_yaml();
    case Type::Map: return items().empty() ? "{}" : to_yaml();
  }
  return "";
}

std::string ConfigNode::to_yaml(int indent) const {
  std::string pad(indent, ' ');
  std::string out;
  if (is_map()) {
    if (items().empty()) return pad + "{}\n";
    for (const auto& [key, value] : items()) {
      std::string k = needs_quotes(key) ? quote(key) : key;
      if (value.is_map() && !value.items().empty()) {
        out += pad + k + ":\n" + value.to_yaml(indent + 2);
      } else if (value.is_list() && !value.elements().empty()) {
        out += pad + k + ":\n" + value.to_yaml(indent);
      } else {
        out += pad + k + ": " + value.scalar_text() + "\n";
      }
    }
    return out;
  }
  if (is_list()) {
    if (elements().empty()) return pad + "[]\n";
    for (const auto& item : elements()) {
      if (item.is_scalar() || (item.is_map() && item.items().empty()) ||
          (item.is_list() && item.elements().empty())) {
        out += pad + "- " + (item.is_scalar() ? item.scalar_text() : item.is_map() ? "{}" : "[]") + "\n";
      } else {
        // First line of the nested block goes after the dash.
        std::string block = item.to_yaml(indent + 2);
        out += pad + "- " + block.substr(indent + 2);
      }
    }
    return out;
  }
  return pad + scalar_text() + "\n";
}

ConfigNode parse_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  YamlBudget budget;
  return from_yaml(root, source, budget, 0);
}

ConfigNode load_yaml_file(const std::string& path) {
  require_regular_file(path, "config file");
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read config file '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_yaml(buffer.str(), path);
}

}  // namespace slt
