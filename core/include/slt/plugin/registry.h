#pragma once
// The component registry: kind -> name -> {description, schema, factory}.
// Plugins add components through a Registrar; the host creates them by name
// from config. A miss lists the valid names and the closest one.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/errors.h"
#include "slt/config/schema.h"

namespace slt {

class Tokenizer;

// Base of everything a factory makes; kind interfaces (model.h, ...) derive from it.
class Component {
 public:
  virtual ~Component() = default;
};

// The kinds this host knows. A kind is a plain string, so a new kind can be
// added later without changing the plugin ABI of existing ones.
namespace kinds {
inline constexpr const char* kModel = "model";
inline constexpr const char* kVideoEncoder = "video_encoder";
inline constexpr const char* kDataset = "dataset";
inline constexpr const char* kTokenizer = "tokenizer";
}  // namespace kinds
const std::vector<std::string>& known_component_kinds();

// The config section a kind's components read: `model.*` for models and video
// encoders, `data.*` for datasets; tokenizers get a section the host builds
// ({path, lower_case}).
std::string config_section(const std::string& kind);

// What the host hands a factory beside the component's own config section:
// resolved values a component must not look up in the whole job itself.
struct ComponentContext {
  std::string device = "cpu";  // where the model will run (cpu, cuda, cuda:N); the host moves it there
  // model.name_or_path resolved to a folder (a path, or the snapshot of a hub
  // id in the local Hugging Face cache); empty when it names none.
  std::filesystem::path model_folder;
  std::shared_ptr<const Tokenizer> tokenizer;  // models: the run's tokenizer
  std::optional<double> label_smoothing;       // models: criterion.label_smoothing (unset: the model's own)
  std::filesystem::path data_path;             // datasets: the folder to read
  std::string split;                           // datasets: train, val or test
  uint64_t seed = 0;                           // common.seed
  bool debug = false;                          // top-level `debug`
};

// What a component is asked when the config does not name one: the input the
// host needs handled. A claim scores how well the component fits it (0: not
// mine); the highest score wins, as ggml's backend registry picks a device.
struct ClaimQuery {
  std::filesystem::path path;           // model folder, tokenizer folder or dataset folder
  std::string name;                     // model.name_or_path as written (a hub id need not resolve)
  const ConfigNode* run = nullptr;      // the job, read-only (e.g. the reference's `fairseq` flag)
};
using ComponentClaim = std::function<int(const ClaimQuery& query)>;

using ComponentFactory =
    std::function<std::shared_ptr<Component>(const ConfigNode& section, const ComponentContext& context)>;

struct ComponentInfo {
  std::string kind;
  std::string name;
  std::string description;  // one line
  ConfigSchema schema;      // keys of the component's config section
  ComponentFactory factory;
  ComponentClaim claims;    // optional: without it the component is only chosen by name
  // Filled in by the registry: where the component came from.
  std::string plugin_name;
  std::string plugin_path;
};

// What a plugin's registration function receives.
class Registrar {
 public:
  virtual ~Registrar() = default;
  virtual void add(ComponentInfo info) = 0;

  // Convenience: registrar.add<MyModel>(kinds::kModel, "name", "what it is", schema, claims).
  // T must be constructible from (const ConfigNode& section, const ComponentContext&):
  // the section holds the schema's keys, defaults filled in and types checked.
  template <typename T>
  void add(const std::string& kind, const std::string& name, const std::string& description,
           ConfigSchema schema = {}, ComponentClaim claims = {}) {
    add(ComponentInfo{kind, name, description, std::move(schema),
                      [](const ConfigNode& section, const ComponentContext& context) -> std::shared_ptr<Component> {
                        return std::make_shared<T>(section, context);
                      },
                      std::move(claims), {}, {}});
  }
};

class Registry {
 public:
  // The process-wide registry that plugin loading fills.
  static Registry& global();

  // `owner` keeps the plugin library loaded while objects made by it live.
  void add(ComponentInfo info, std::shared_ptr<void> owner = nullptr);

  bool contains(const std::string& kind, const std::string& name) const;
  // Throws UnknownComponentError listing the registered names of the kind.
  const ComponentInfo& get(const std::string& kind, const std::string& name) const;
  std::vector<const ComponentInfo*> list(const std::string& kind = "") const;
  std::vector<std::string> names(const std::string& kind) const;

  // `named` when the config names the component (checked: an unknown name
  // lists the registered ones), else the registered component of `kind` with
  // the highest claim on `query`; throws UserError naming the candidates when
  // none claims it.
  std::string choose(const std::string& kind, const std::optional<std::string>& named, const ClaimQuery& query,
                     const std::string& what) const;

  // The section `name` receives: `section` (may be null) with the schema's
  // defaults filled in where a key is absent or null, validated against the
  // schema (ConfigError naming `prefix.key`).
  ConfigNode section_for(const std::string& kind, const std::string& name, const ConfigNode* section,
                         const std::string& prefix) const;

  // Creates `kind.name` from its section (see section_for) and casts it to the
  // kind's interface T.
  template <typename T>
  std::shared_ptr<T> create(const std::string& kind, const std::string& name, const ConfigNode* section,
                            const ComponentContext& context = {}) const {
    auto object = create_component(kind, name, section, context);
    T* typed = dynamic_cast<T*>(object.get());
    if (!typed)
      throw PluginError("component " + kind + "." + name + " from " + get(kind, name).plugin_path +
                        " does not implement the interface of kind '" + kind + "'");
    return std::shared_ptr<T>(object, typed);
  }

  std::shared_ptr<Component> create_component(const std::string& kind, const std::string& name,
                                              const ConfigNode* section, const ComponentContext& context) const;

 private:
  struct Entry {
    ComponentInfo info;
    std::shared_ptr<void> owner;
  };
  std::map<std::string, std::map<std::string, Entry>> entries_;
};

}  // namespace slt
