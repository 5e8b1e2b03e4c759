#pragma once
// Hydra's command-line override grammar, for the forms researchers use:
//   a.b=value   +a.b=value (add)   ++a.b=value (add or change)   ~a.b (delete)
//   group=option (config group choice)   a.b=1,2,3 (sweep, with --multirun)
// Values: null, true/false, ints, floats, 'quoted' or "quoted" strings (a
// quoted comma is not a sweep), [lists], {maps}, interpolations ${...}.
#include <string>
#include <vector>

#include "slt/config/config.h"

namespace slt {

struct Override {
  enum class Kind { Change, Add, ForceAdd, Delete };
  Kind kind = Kind::Change;
  std::string key;
  // One value, or several for a sweep (`a=1,2`); empty for a bare `~a.b`.
  std::vector<ConfigNode> values;
  // The value text as typed, per value (for override_dirname and error messages).
  std::vector<std::string> value_texts;
  std::string text;  // the whole argument

  bool is_sweep() const { return values.size() > 1; }
  // The override as Hydra shows it in override_dirname: key prefix ("+", "~") kept.
  std::string key_element() const;
};

// Throws ConfigError naming the argument and the position of a syntax error.
Override parse_override(const std::string& text);

// Parses the value part of an override: one value, or a sweep's values.
std::vector<ConfigNode> parse_override_values(const std::string& value_text,
                                              std::vector<std::string>* texts = nullptr);

// Expands sweeps into the cartesian product, in Hydra's order (the last
// override varies fastest). Each result has single-valued overrides only.
std::vector<std::vector<Override>> expand_sweeps(const std::vector<Override>& overrides);

}  // namespace slt
