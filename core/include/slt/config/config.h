#pragma once
// The configuration tree: what YAML files, structured defaults and command-line
// overrides compose into (OmegaConf's DictConfig, without the magic).
//
// A node is null, a bool, an int, a float, a string, a list or a map. Maps keep
// insertion order so that printed configs read like the files they came from.
// The string "???" marks a mandatory value that has not been given.
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace slt {

class ConfigNode {
 public:
  enum class Type { Null, Bool, Int, Float, String, List, Map };
  using List = std::vector<ConfigNode>;
  using Map = std::vector<std::pair<std::string, ConfigNode>>;

  static constexpr std::string_view kMissing = "???";

  ConfigNode() = default;
  ConfigNode(std::nullptr_t) {}
  ConfigNode(bool v) : value_(v) {}
  ConfigNode(int v) : value_(int64_t{v}) {}
  ConfigNode(int64_t v) : value_(v) {}
  ConfigNode(double v) : value_(v) {}
  ConfigNode(const char* v) : value_(std::string(v)) {}
  ConfigNode(std::string v) : value_(std::move(v)) {}
  ConfigNode(List v) : value_(std::move(v)) {}
  ConfigNode(Map v) : value_(std::move(v)) {}

  static ConfigNode map() { return ConfigNode(Map{}); }
  static ConfigNode list() { return ConfigNode(List{}); }
  static ConfigNode missing() { return ConfigNode(std::string(kMissing)); }

  Type type() const { return static_cast<Type>(value_.index()); }
  bool is_null() const { return type() == Type::Null; }
  bool is_map() const { return type() == Type::Map; }
  bool is_list() const { return type() == Type::List; }
  bool is_string() const { return type() == Type::String; }
  bool is_scalar() const { return !is_map() && !is_list(); }
  bool is_missing() const { return is_string() && std::get<std::string>(value_) == kMissing; }

  // Typed access; each throws ConfigError naming `what` (usually the key) on a type mismatch.
  bool as_bool(std::string_view what = "value") const;
  int64_t as_int(std::string_view what = "value") const;
  double as_double(std::string_view what = "value") const;  // ints convert
  const std::string& as_string(std::string_view what = "value") const;

  const Map& items() const;
  Map& items();
  const List& elements() const;
  List& elements();

  // Direct children of a map.
  const ConfigNode* find(std::string_view key) const;
  ConfigNode* find(std::string_view key);
  ConfigNode& operator[](std::string_view key);  // inserts null when absent (turns null into a map)
  bool erase(std::string_view key);

  // Dotted paths ("optim.lr"). `at` returns nullptr when any part is absent.
  const ConfigNode* at(std::string_view path) const;
  ConfigNode* at(std::string_view path);
  // Creates intermediate maps as needed.
  ConfigNode& set(std::string_view path, ConfigNode value);
  bool erase_path(std::string_view path);

  // Typed access by dotted path, T one of bool, int64_t, double, std::string.
  // A missing or mistyped key is a ConfigError naming the key, the expected
  // type and the value found; never a crash.
  //   int64_t beams = section.require<int64_t>("num_beams");       // must be set
  //   std::optional<std::string> arch = job.get<std::string>("model.arch");  // absent/null: nullopt
  //   double p = section.get_or<double>("dropout", 0.1);          // absent/null: 0.1
  template <typename T>
  T require(std::string_view path) const;
  template <typename T>
  std::optional<T> get(std::string_view path) const;
  template <typename T>
  T get_or(std::string_view path, T fallback) const {
    std::optional<T> value = get<T>(path);
    return value ? std::move(*value) : std::move(fallback);
  }

  // Deep merge: maps merge key by key, everything else replaces.
  void merge(const ConfigNode& other);

  // A scalar as text the way YAML would show it.
  std::string scalar_text() const;
  // Block-style YAML; `indent` spaces before each line.
  std::string to_yaml(int indent = 0) const;
  friend bool operator==(const ConfigNode& a, const ConfigNode& b) { return a.value_ == b.value_; }
  friend bool operator!=(const ConfigNode& a, const ConfigNode& b) { return !(a == b); }

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, List, Map> value_;
};

const char* type_name(ConfigNode::Type type);

// Parses YAML text the way OmegaConf's loader does (YAML 1.1 scalars: yes/no are
// bools, 5e-4 is a float). `source` names the file in error messages.
ConfigNode parse_yaml(const std::string& text, const std::string& source);
ConfigNode load_yaml_file(const std::string& path);

// Infers the type of an unquoted YAML/override scalar: null, bool, int, float or string.
ConfigNode parse_plain_scalar(std::string_view text);

// Python-repr-like formatting of a float ("0.0005", "1.0e-07", "100.0").
std::string format_float(double value);

}  // namespace slt
