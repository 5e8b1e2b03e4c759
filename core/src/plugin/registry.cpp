#include "slt/plugin/registry.h"

#include "slt/plugin/plugin.h"
#include "slt/text/text.h"

namespace slt {

const char* host_build_fingerprint() { return SLT_BUILD_FINGERPRINT; }

const std::vector<std::string>& known_component_kinds() {
  static const std::vector<std::string> kinds = {kinds::kModel, kinds::kVideoEncoder,
                                                 kinds::kDataset, kinds::kTokenizer};
  return kinds;
}

std::string config_section(const std::string& kind) {
  if (kind == kinds::kDataset) return "data";
  if (kind == kinds::kVideoEncoder) return "model";
  return kind;
}

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

void Registry::add(ComponentInfo info, std::shared_ptr<void> owner) {
  if (info.name.empty() || info.kind.empty())
    throw PluginError("a component from " + info.plugin_path + " has an empty kind or name");
  if (!info.factory)
    throw PluginError("component " + info.kind + "." + info.name + " from " + info.plugin_path +
                      " has no factory");
  auto& by_name = entries_[info.kind];
  if (auto it = by_name.find(info.name); it != by_name.end()) {
    throw PluginError("duplicate component " + info.kind + "." + info.name + ": registered by " +
                      it->second.info.plugin_path + " and again by " + info.plugin_path +
                      "; remove one of the two libraries from the plugin path");
  }
  std::string name = info.name;
  by_name.emplace(name, Entry{std::move(info), std::move(owner)});
}

bool Registry::contains(const std::string& kind, const std::string& name) const {
  auto it = entries_.find(kind);
  return it != entries_.end() && it->second.count(name);
}

const ComponentInfo& Registry::get(const std::string& kind, const std::string& name) const {
  auto it = entries_.find(kind);
  if (it != entries_.end()) {
    if (auto found = it->second.find(name); found != it->second.end()) return found->second.info;
  }
  std::vector<std::string> available = names(kind);
  std::string message = "unknown " + kind + " '" + name + "'. Registered " + kind + "s: " +
                        (available.empty() ? "none" : join(available));
  std::string suggestion = closest_match(name, available);
  if (!suggestion.empty()) message += ". Did you mean '" + suggestion + "'?";
  if (available.empty())
    message += ". Check the plugin path with `slt-run --list-plugins`";
  throw UnknownComponentError(message);
}

std::vector<const ComponentInfo*> Registry::list(const std::string& kind) const {
  std::vector<const ComponentInfo*> out;
  for (const auto& [k, by_name] : entries_) {
    if (!kind.empty() && k != kind) continue;
    for (const auto& [name, entry] : by_name) out.push_back(&entry.info);
  }
  return out;
}

std::vector<std::string> Registry::names(const std::string& kind) const {
  std::vector<std::string> out;
  if (auto it = entries_.find(kind); it != entries_.end())
    for (const auto& [name, entry] : it->second) out.push_back(name);
  return out;
}

std::string Registry::choose(const std::string& kind, const std::optional<std::string>& named, const ClaimQuery& query,
                             const std::string& what) const {
  if (named) return get(kind, *named).name;
  std::string best;
  int best_score = 0;
  std::vector<std::string> tied;
  if (auto it = entries_.find(kind); it != entries_.end()) {
    for (const auto& [name, entry] : it->second) {
      if (!entry.info.claims) continue;
      int score = entry.info.claims(query);
      if (score > best_score) {
        best_score = score;
        best = name;
        tied = {name};
      } else if (score > 0 && score == best_score) {
        tied.push_back(name);
      }
    }
  }
  if (tied.size() > 1)
    throw UserError(what + " is claimed equally by " + kind + "s " + join(tied) + "; choose one with " +
                    config_section(kind) + "." + (kind == kinds::kModel ? "arch" : kind) + "=NAME");
  if (best.empty()) {
    std::vector<std::string> available = names(kind);
    throw UserError("no registered " + kind + " (" + (available.empty() ? std::string("none loaded") : join(available)) +
                    ") recognises " + what + "; name one explicitly, or check the plugin path with "
                    "`slt-run --list-plugins`");
  }
  return best;
}

ConfigNode Registry::section_for(const std::string& kind, const std::string& name, const ConfigNode* section,
                                 const std::string& prefix) const {
  const ConfigSchema& schema = get(kind, name).schema;
  ConfigNode out = ConfigNode::map();
  for (const auto& field : schema.fields()) {
    const ConfigNode* given = section ? section->at(field.key) : nullptr;
    bool use_default = !given || given->is_null() || given->is_missing();
    if (use_default && field.required())
      throw ConfigError("missing config key '" + prefix + "." + field.key + "' (" + kind + " " + name +
                        " requires it: " + field.help + ")");
    out.set(field.key, use_default ? field.default_value : *given);
  }
  schema.validate(out, prefix);
  return out;
}

std::shared_ptr<Component> Registry::create_component(const std::string& kind, const std::string& name,
                                                      const ConfigNode* section,
                                                      const ComponentContext& context) const {
  const ComponentInfo& info = get(kind, name);
  const Entry& entry = entries_.at(kind).at(name);
  std::shared_ptr<Component> object = info.factory(section_for(kind, name, section, config_section(kind)), context);
  if (!object)
    throw PluginError("factory of " + kind + "." + name + " (" + info.plugin_path +
                      ") returned nothing");
  if (!entry.owner) return object;
  // The returned pointer also owns the library handle, so the code of the
  // object's destructor stays mapped for as long as the object lives.
  auto holder = std::make_shared<std::pair<std::shared_ptr<Component>, std::shared_ptr<void>>>(
      object, entry.owner);
  return std::shared_ptr<Component>(holder, object.get());
}

}  // namespace slt
