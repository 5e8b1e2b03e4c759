#include "slt/config/compose.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <regex>
#include <set>

#include "slt/errors.h"
#include "slt/text/text.h"

namespace fs = std::filesystem;

namespace slt {

ConfigStore& ConfigStore::instance() {
  static ConfigStore store;
  return store;
}

void ConfigStore::store(const std::string& name, ConfigNode node) { nodes_[name] = std::move(node); }

const ConfigNode* ConfigStore::find(const std::string& name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

ConfigNode ComposedRun::job_config() const {
  ConfigNode job = config;
  job.erase("hydra");
  return job;
}

namespace {

// Hydra's own defaults for the parts of its node that slt uses.
ConfigNode hydra_defaults() {
  ConfigNode h = ConfigNode::map();
  h.set("run.dir", "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}");
  h.set("sweep.dir", "multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}");
  h.set("sweep.subdir", "${hydra.job.num}");
  h.set("mode", "RUN");
  h.set("verbose", false);
  h.set("job.name", "slt_run");
  h.set("job.config_name", ConfigNode());
  h.set("job.override_dirname", "");
  h.set("job.id", "0");
  h.set("job.num", 0);
  h.set("job.config.override_dirname.kv_sep", "=");
  h.set("job.config.override_dirname.item_sep", ",");
  h.set("job.config.override_dirname.exclude_keys", ConfigNode::list());
  h.set("runtime.choices", ConfigNode::map());
  h.set("overrides.task", ConfigNode::list());
  h.set("overrides.hydra", ConfigNode::list());
  return h;
}

std::string read_package_header(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  static const std::regex header(R"(^\s*#\s*@package\s+(\S+)\s*$)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, header)) return m[1];
    if (!line.empty() && line[0] != '#') break;
  }
  return "";
}

bool is_hydra_group(const std::string& group) { return group == "hydra" || group.rfind("hydra/", 0) == 0; }

class Composer {
 public:
  Composer(std::vector<fs::path> search_path) : search_path_(std::move(search_path)) {}

  bool is_group(const std::string& name) const {
    for (const auto& dir : search_path_)
      if (fs::is_directory(dir / name)) return true;
    return false;
  }

  std::optional<fs::path> find_file(const std::string& relative) const {
    for (const auto& dir : search_path_) {
      fs::path candidate = dir / (relative + ".yaml");
      if (fs::is_regular_file(candidate)) return candidate;
    }
    return std::nullopt;
  }

  std::vector<std::string> options_of(const std::string& group) const {
    std::set<std::string> options;
    for (const auto& dir : search_path_) {
      if (!fs::is_directory(dir / group)) continue;
      for (const auto& entry : fs::directory_iterator(dir / group))
        if (entry.path().extension() == ".yaml") options.insert(entry.path().stem().string());
    }
    return {options.begin(), options.end()};
  }

  void compose_primary(const fs::path& file, const std::map<std::string, std::string>& cli_choices,
                       const std::vector<std::pair<std::string, std::string>>& cli_additions) {
    cli_choices_ = cli_choices;
    process_file(file, "", "");
    for (const auto& [group, option] : cli_additions) load_group_option(group, option, file.string());
    for (const auto& [group, option] : cli_choices_) {
      if (!used_cli_choices_.count(group))
        throw ConfigError("cannot override config group '" + group +
                          "': it is not in the defaults list of '" + file.string() +
                          "'. To add it, use +" + group + "=" + option);
    }
  }

  ConfigNode& root() { return root_; }
  const std::map<std::string, std::string>& choices() const { return choices_; }

 private:
  void process_file(const fs::path& file, const std::string& package, const std::string& group_dir) {
    std::string key = fs::weakly_canonical(file).string();
    if (std::find(stack_.begin(), stack_.end(), key) != stack_.end())
      throw ConfigError("config '" + file.string() + "' includes itself through its defaults list");
    stack_.push_back(key);
    std::string header = read_package_header(file);
    std::string effective = package;
    if (header == "_global_") effective = "";
    else if (!header.empty() && header != "_group_") effective = header;
    process_node(load_yaml_file(file.string()), effective, group_dir, file.string());
    stack_.pop_back();
  }

  void process_node(ConfigNode node, const std::string& package, const std::string& group_dir,
                    const std::string& source) {
    ConfigNode defaults;
    if (node.is_map()) {
      if (auto* d = node.find("defaults")) {
        defaults = *d;
        node.erase("defaults");
      }
    } else if (!node.is_null()) {
      throw ConfigError(source + ": a config file must hold a map of keys, not a " +
                        type_name(node.type()));
    }
    if (!defaults.is_null() && !defaults.is_list())
      throw ConfigError(source + ": 'defaults' must be a list");

    bool self_done = false;
    auto merge_self = [&] {
      self_done = true;
      if (node.is_null()) return;
      if (package.empty()) {
        root_.merge(node);
      } else {
        ConfigNode* target = root_.at(package);
        if (!target) target = &root_.set(package, ConfigNode::map());
        target->merge(node);
      }
    };

    if (defaults.is_list()) {
      for (const auto& entry : defaults.elements()) {
        if (entry.is_string()) {
          const std::string& name = entry.as_string();
          if (name == "_self_") {
            merge_self();
          } else if (const ConfigNode* stored = ConfigStore::instance().find(name)) {
            root_.merge(*stored);
          } else {
            std::string rel = name.rfind('/', 0) == 0 ? name.substr(1)
                              : group_dir.empty()    ? name
                                                     : group_dir + "/" + name;
            auto file = find_file(rel);
            if (!file)
              throw ConfigError(source + ": defaults entry '" + name +
                                "' is neither a registered structured config nor a file " + rel +
                                ".yaml on the config search path");
            process_file(*file, package, group_dir);
          }
        } else if (entry.is_map() && entry.items().size() == 1) {
          std::string group = entry.items()[0].first;
          const ConfigNode& option = entry.items()[0].second;
          bool is_override = false;
          if (group.rfind("override ", 0) == 0) {
            is_override = true;
            group = group.substr(9);
          } else if (group.rfind("optional ", 0) == 0) {
            group = group.substr(9);
          }
          if (group.rfind('/', 0) == 0) group = group.substr(1);
          else if (!group_dir.empty()) group = group_dir + "/" + group;
          std::string choice = option.is_null() ? "" : option.scalar_text();
          if (is_override) {
            // Applies to a group later in the composition (or to Hydra's own groups).
            if (!cli_choices_.count(group)) override_choices_[group] = choice;
            choices_[group] = cli_choices_.count(group) ? cli_choices_[group] : choice;
            continue;
          }
          load_group_option(group, choice, source);
        } else {
          throw ConfigError(source + ": a defaults entry must be a name or 'group: option'");
        }
      }
    }
    if (!self_done) merge_self();  // Hydra >= 1.1: _self_ comes last unless placed
  }

  void load_group_option(const std::string& group, std::string option, const std::string& source) {
    if (auto it = cli_choices_.find(group); it != cli_choices_.end()) {
      option = it->second;
      used_cli_choices_.insert(group);
    } else if (auto ov = override_choices_.find(group); ov != override_choices_.end()) {
      option = ov->second;
    }
    choices_[group] = option;
    if (option.empty() || option == "null") return;
    if (is_hydra_group(group) && !is_group(group)) return;  // Hydra plugins: choice recorded only
    auto file = find_file(group + "/" + option);
    if (!file) {
      auto options = options_of(group);
      throw ConfigError(source + ": no option '" + option + "' in config group '" + group +
                        "'. Available options: " + (options.empty() ? "none" : join(options)));
    }
    std::string package = group;
    std::replace(package.begin(), package.end(), '/', '.');
    process_file(*file, package, group);
  }

  std::vector<fs::path> search_path_;
  ConfigNode root_ = ConfigNode::map();
  std::vector<std::string> stack_;
  std::map<std::string, std::string> cli_choices_;
  std::set<std::string> used_cli_choices_;
  std::map<std::string, std::string> override_choices_;
  std::map<std::string, std::string> choices_;
};

std::vector<std::string> leaf_keys(const ConfigNode& node, const std::string& prefix = "") {
  std::vector<std::string> keys;
  if (!node.is_map()) return {prefix};
  for (const auto& [key, value] : node.items()) {
    std::string path = prefix.empty() ? key : prefix + "." + key;
    keys.push_back(path);
    if (value.is_map()) {
      auto sub = leaf_keys(value, path);
      keys.insert(keys.end(), sub.begin(), sub.end());
    }
  }
  return keys;
}

void apply_override(ConfigNode& root, const Override& o, const std::function<bool(const std::string&)>& declared_key) {
  ConfigNode* existing = root.at(o.key);
  auto suggestion = [&] {
    std::string s = closest_match(o.key, leaf_keys(root));
    return s.empty() ? std::string() : " (did you mean '" + s + "'?)";
  };
  switch (o.kind) {
    case Override::Kind::Change:
      if (!existing && declared_key && declared_key(o.key)) {
        root.set(o.key, o.values.at(0));
        break;
      }
      if (!existing)
        throw ConfigError("cannot override '" + o.key + "': no such key in the config" +
                          suggestion() + ". To add a new key, use +" + o.key + "=VALUE");
      *existing = o.values.at(0);
      break;
    case Override::Kind::Add:
      if (existing)
        throw ConfigError("cannot add '" + o.key + "': the key already exists; use " + o.key +
                          "=VALUE to change it");
      root.set(o.key, o.values.at(0));
      break;
    case Override::Kind::ForceAdd:
      root.set(o.key, o.values.at(0));
      break;
    case Override::Kind::Delete:
      if (!existing)
        throw ConfigError("cannot delete '" + o.key + "': no such key in the config" + suggestion());
      if (!o.values.empty() && *existing != o.values[0])
        throw ConfigError("cannot delete '" + o.key + "': its value is " +
                          existing->scalar_text() + ", not " + o.values[0].scalar_text());
      root.erase_path(o.key);
      break;
  }
}

// Hydra's override_dirname: sorted `key<kv_sep>value` of the task overrides
// not listed in exclude_keys, joined with item_sep.
std::string override_dirname(const std::vector<Override>& task, const ConfigNode& settings) {
  std::string kv_sep = settings.get_or<std::string>("kv_sep", "=");
  std::string item_sep = settings.get_or<std::string>("item_sep", ",");
  std::set<std::string> excluded;
  if (const ConfigNode* ex = settings.at("exclude_keys"); ex && ex->is_list())
    for (const auto& k : ex->elements()) excluded.insert(k.scalar_text());
  std::vector<std::string> lines;
  for (const auto& o : task) {
    if (excluded.count(o.key)) continue;
    lines.push_back(o.key_element() + "=" + (o.value_texts.empty() ? "" : o.value_texts[0]));
  }
  std::sort(lines.begin(), lines.end());
  std::string joined = join(lines, item_sep);
  std::string out;
  for (char c : joined) out += c == '=' ? kv_sep : std::string(1, c);
  return out;
}

}  // namespace

std::map<std::string, std::vector<std::string>> list_config_groups(
    const std::vector<fs::path>& search_path) {
  std::map<std::string, std::vector<std::string>> groups;
  Composer composer(search_path);
  for (const auto& dir : search_path) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_directory())
        groups[entry.path().filename().string()] = composer.options_of(entry.path().filename().string());
  }
  return groups;
}

std::vector<ComposedRun> compose_runs(const ComposeRequest& request) {
  std::vector<fs::path> search_path = request.search_path;
  fs::path primary = request.config_file;
  std::string config_name;
  if (!primary.empty()) {
    if (!fs::is_regular_file(primary))
      throw ConfigError("config file '" + primary.string() + "' does not exist");
    search_path.insert(search_path.begin(), fs::absolute(primary).parent_path());
    config_name = primary.stem().string();
  } else {
    config_name = request.config_name;
    if (config_name.empty())
      throw ConfigError("no config given: use --config PATH or --config-name NAME");
    bool found = false;
    for (const auto& dir : search_path) {
      if (fs::is_regular_file(dir / (config_name + ".yaml"))) {
        primary = dir / (config_name + ".yaml");
        found = true;
        break;
      }
    }
    if (!found) {
      std::vector<std::string> dirs;
      for (const auto& d : search_path) dirs.push_back(d.string());
      throw ConfigError("no config named '" + config_name + "' (looked for " + config_name +
                        ".yaml in: " + (dirs.empty() ? "nothing" : join(dirs)) +
                        "); use --config-dir DIR or --config PATH");
    }
  }

  Composer probe(search_path);
  std::vector<Override> parsed;
  for (const auto& text : request.overrides) {
    Override o = parse_override(text);
    if (o.is_sweep() && !request.multirun)
      throw ConfigError("ambiguous value in '" + text +
                        "': to sweep over it add --multirun; to pass a list write " + o.key +
                        "=[...]; to pass a string containing commas quote it: " + o.key +
                        "='...'");
    parsed.push_back(std::move(o));
  }

  std::vector<ComposedRun> runs;
  auto points = expand_sweeps(parsed);
  std::time_t started = std::time(nullptr);
  for (size_t num = 0; num < points.size(); ++num) {
    const auto& overrides = points[num];
    std::map<std::string, std::string> cli_choices;
    std::vector<std::pair<std::string, std::string>> cli_additions;
    std::vector<Override> config_overrides, task_overrides, hydra_overrides;
    for (const auto& o : overrides) {
      bool group = o.key.find('.') == std::string::npos && !o.values.empty() &&
                   o.values[0].is_scalar() && (probe.is_group(o.key) || is_hydra_group(o.key)) &&
                   o.key != "hydra";
      bool hydra_key = o.key == "hydra" || o.key.rfind("hydra.", 0) == 0 || is_hydra_group(o.key);
      (hydra_key ? hydra_overrides : task_overrides).push_back(o);
      if (group) {
        std::string option = o.values[0].is_null() ? "" : o.values[0].scalar_text();
        if (o.values[0].is_string()) option = o.values[0].as_string();
        if (o.kind == Override::Kind::Add) cli_additions.emplace_back(o.key, option);
        else cli_choices[o.key] = option;
      } else {
        config_overrides.push_back(o);
      }
    }

    Composer composer(search_path);
    composer.compose_primary(primary, cli_choices, cli_additions);
    ConfigNode& root = composer.root();
    ConfigNode hydra = hydra_defaults();
    if (const ConfigNode* from_files = root.find("hydra")) hydra.merge(*from_files);
    root["hydra"] = hydra;
    for (const auto& o : config_overrides) apply_override(root, o, request.declared_key);

    ConfigNode& h = root["hydra"];
    h.set("job.config_name", config_name);
    h.set("job.num", static_cast<int64_t>(num));
    h.set("job.id", std::to_string(num));
    h.set("mode", request.multirun ? "MULTIRUN" : "RUN");
    ConfigNode choices = ConfigNode::map();
    for (const auto& [group, option] : composer.choices())
      choices[group] = option.empty() ? ConfigNode() : ConfigNode(option);
    h["runtime"]["choices"] = choices;
    ConfigNode task_list = ConfigNode::list(), hydra_list = ConfigNode::list();
    std::vector<std::string> task_texts;
    for (const auto& o : task_overrides) {
      std::string text = o.key_element() + (o.values.empty() ? "" : "=" + o.value_texts[0]);
      task_list.elements().emplace_back(text);
      task_texts.push_back(text);
    }
    for (const auto& o : hydra_overrides)
      hydra_list.elements().emplace_back(o.key_element() + (o.values.empty() ? "" : "=" + o.value_texts[0]));
    h["overrides"]["task"] = task_list;
    h["overrides"]["hydra"] = hydra_list;
    const ConfigNode* dirname_settings = h.at("job.config.override_dirname");
    h.set("job.override_dirname",
          override_dirname(task_overrides, dirname_settings ? *dirname_settings : ConfigNode::map()));
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", std::localtime(&started));
    h.set("runtime.started", std::string(stamp));
    if (root.find("cmd")) root["cmd"] = request.command_line;

    resolve_interpolations(root);
    runs.push_back({root, task_texts});
  }
  return runs;
}

// ---------------------------------------------------------------------------
// Interpolation

namespace {

class Resolver {
 public:
  explicit Resolver(ConfigNode& root) : root_(root), now_(std::time(nullptr)) {}

  void resolve_all(ConfigNode& node, const std::string& path) {
    if (node.is_map()) {
      for (auto& [key, value] : node.items()) resolve_all(value, path.empty() ? key : path + "." + key);
    } else if (node.is_list()) {
      for (size_t i = 0; i < node.elements().size(); ++i)
        resolve_all(node.elements()[i], path + "[" + std::to_string(i) + "]");
    } else if (node.is_string() && node.as_string().find("${") != std::string::npos) {
      resolve_node(node, path);
    }
  }

 private:
  void resolve_node(ConfigNode& node, const std::string& path) {
    if (!node.is_string() || node.as_string().find("${") == std::string::npos) return;
    if (std::find(in_progress_.begin(), in_progress_.end(), path) != in_progress_.end()) {
      in_progress_.push_back(path);
      throw ConfigError("interpolation cycle: " + join(in_progress_, " -> "));
    }
    in_progress_.push_back(path);
    node = evaluate(node.as_string(), path);
    in_progress_.pop_back();
  }

  // A string that is exactly one ${...} takes the target's type; otherwise the
  // pieces are concatenated as text.
  ConfigNode evaluate(const std::string& text, const std::string& path) {
    size_t pos = 0;
    std::string out;
    std::vector<ConfigNode> pieces;
    bool only_interpolation = true;
    while (pos < text.size()) {
      size_t start = text.find("${", pos);
      if (start == std::string::npos) {
        out += text.substr(pos);
        only_interpolation = false;
        break;
      }
      if (start > pos) only_interpolation = false;
      out += text.substr(pos, start - pos);
      size_t end = matching_brace(text, start + 2, path);
      ConfigNode value = evaluate_expression(text.substr(start + 2, end - start - 2), path);
      pos = end + 1;
      if (start == 0 && pos == text.size() && only_interpolation) return value;
      if (value.is_missing()) return ConfigNode::missing();
      out += value.is_string() ? value.as_string() : value.scalar_text();
    }
    return ConfigNode(out);
  }

  size_t matching_brace(const std::string& text, size_t from, const std::string& path) {
    int depth = 1;
    for (size_t i = from; i < text.size(); ++i) {
      if (text.compare(i, 2, "${") == 0) {
        ++depth;
        ++i;
      } else if (text[i] == '}' && --depth == 0) {
        return i;
      }
    }
    throw ConfigError("config key '" + path + "': unterminated interpolation in '" + text + "'");
  }

  ConfigNode evaluate_expression(const std::string& expr, const std::string& path) {
    static const std::regex resolver_call(R"(^\s*([A-Za-z_][\w.]*)\s*:(.*)$)");
    std::smatch m;
    if (std::regex_match(expr, m, resolver_call)) {
      std::string name = m[1];
      std::string args = m[2];
      if (args.find("${") != std::string::npos) {
        ConfigNode expanded = evaluate(args, path);
        args = expanded.is_string() ? expanded.as_string() : expanded.scalar_text();
      }
      return call_resolver(name, args, path);
    }
    std::string target = expr;
    target.erase(0, target.find_first_not_of(' '));
    target.erase(target.find_last_not_of(' ') + 1);
    return lookup(target, path);
  }

  ConfigNode lookup(const std::string& target, const std::string& path) {
    ConfigNode* node = root_.at(target);
    if (!node)
      throw ConfigError("config key '" + path + "': interpolation target '" + target +
                        "' does not exist");
    resolve_node(*node, target);
    return *node;
  }

  ConfigNode call_resolver(const std::string& name, const std::string& args, const std::string& path) {
    if (name == "oc.env" || name == "env") {
      size_t comma = args.find(',');
      std::string var = args.substr(0, comma);
      var.erase(var.find_last_not_of(' ') + 1);
      if (const char* value = std::getenv(var.c_str())) return ConfigNode(std::string(value));
      if (var == "PWD") return ConfigNode(fs::current_path().string());
      if (comma == std::string::npos)
        throw ConfigError("config key '" + path + "': environment variable " + var +
                          " is not set (and ${oc.env:" + var + "} has no default)");
      std::string fallback = args.substr(comma + 1);
      fallback.erase(0, fallback.find_first_not_of(' '));
      auto values = parse_override_values(fallback);
      return values.size() == 1 ? values[0] : ConfigNode(fallback);
    }
    if (name == "hydra") return lookup("hydra." + args, path);
    if (name == "now") {
      char buf[256];
      std::strftime(buf, sizeof buf, args.c_str(), std::localtime(&now_));
      return ConfigNode(std::string(buf));
    }
    throw ConfigError("config key '" + path + "': unknown resolver '" + name +
                      "' (slt knows oc.env, hydra and now)");
  }

  ConfigNode& root_;
  std::time_t now_;
  std::vector<std::string> in_progress_;
};

}  // namespace

void resolve_interpolations(ConfigNode& root) { Resolver(root).resolve_all(root, ""); }

}  // namespace slt
