#pragma once
// Config schemas: each component declares the keys it reads, with type,
// default, help and allowed values (fairseq's config dataclass, in C++).
// The schema is the only place a key and its default are written; the
// registry, `slt-run --describe` and validation all read it.
#include <optional>
#include <string>
#include <vector>

#include "slt/config/config.h"

namespace slt {

enum class ValueType { Bool, Int, Float, String, List, Map, Any };
const char* value_type_name(ValueType type);

struct ConfigField {
  std::string key;              // relative to the schema's section, may be dotted
  ValueType type = ValueType::Any;
  ConfigNode default_value;     // "???" when required
  bool nullable = false;        // Optional[...]: null is a valid value
  std::string help;
  std::vector<std::string> allowed;  // empty: any value of the type
  // Bounds of an Int or Float field (inclusive); unset: unbounded.
  std::optional<double> minimum, maximum;
  // Declared but left out of defaults() until given: a slt addition that must
  // not change the printed config of the reference's files (model.arch).
  bool implicit = false;

  bool required() const { return default_value.is_missing(); }
};

// "at least 0", "at most 1", "between 0 and 1"; empty for an unbounded field.
std::string describe_bounds(const ConfigField& field);

class ConfigSchema {
 public:
  ConfigSchema() = default;

  // Builder: schema.add("seed", ValueType::Int, 42, "Random seed").
  ConfigSchema& add(std::string key, ValueType type, ConfigNode default_value, std::string help,
                    std::vector<std::string> allowed = {});
  // Optional[...] field whose default may be null.
  ConfigSchema& add_optional(std::string key, ValueType type, ConfigNode default_value,
                             std::string help);
  ConfigSchema& add_required(std::string key, ValueType type, std::string help);
  // An optional string naming a component (model.arch, data.dataset), null
  // by default and written out only when given.
  ConfigSchema& add_selector(std::string key, std::string help);
  // An optional key, null by default and written out only when given: an slt
  // addition that leaves the printed config of the reference's files unchanged.
  ConfigSchema& add_implicit(std::string key, ValueType type, std::string help);
  // Bounds for the field added last: schema.add("lr", ...).at_least(0).
  // Values outside are ConfigErrors naming the key and the bounds.
  ConfigSchema& at_least(double minimum);
  ConfigSchema& at_most(double maximum);
  ConfigSchema& between(double minimum, double maximum) { return at_least(minimum).at_most(maximum); }
  // The same fields with "prefix." in front of every key.
  ConfigSchema prefixed(const std::string& prefix) const;
  // Copies every field of `other` whose key is not yet declared here.
  ConfigSchema& extend(const ConfigSchema& other);

  const std::vector<ConfigField>& fields() const { return fields_; }
  const ConfigField* find(const std::string& key) const;
  std::vector<std::string> keys() const;

  // The defaults as a config tree.
  ConfigNode defaults() const;

  // Checks `section` (the node at `prefix`, e.g. "model"): unknown keys
  // (with a did-you-mean), wrong types and values outside `allowed`. Ints
  // given for float fields become floats. Throws ConfigError naming the key.
  void validate(ConfigNode& section, const std::string& prefix) const;

 private:
  std::vector<ConfigField> fields_;
};

// "optim.lr" style key names of `missing` values under `node`, in order.
std::vector<std::string> missing_keys(const ConfigNode& node, const std::string& prefix = "");
// ConfigError listing every missing value and how to set one (before a job runs).
void require_no_missing_keys(const ConfigNode& node);

}  // namespace slt
