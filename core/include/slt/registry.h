#pragma once
// The component registry: kind -> name -> {description, schema, factory}.
// Plugins add components through a Registrar; the host creates them by name
// from config. A miss lists the valid names and the closest one.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "slt/config.h"
#include "slt/errors.h"
#include "slt/schema.h"

namespace slt {

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

using ComponentFactory = std::function<std::shared_ptr<Component>(const ConfigNode& config)>;

struct ComponentInfo {
  std::string kind;
  std::string name;
  std::string description;  // one line
  ConfigSchema schema;      // keys of the component's config section
  ComponentFactory factory;
  // Filled in by the registry: where the component came from.
  std::string plugin_name;
  std::string plugin_path;
};

// What a plugin's registration function receives.
class Registrar {
 public:
  virtual ~Registrar() = default;
  virtual void add(ComponentInfo info) = 0;

  // Convenience: registrar.add<MyModel>(kinds::kModel, "name", "what it is", schema).
  // T must be constructible from `const ConfigNode&` (the whole resolved config).
  template <typename T>
  void add(const std::string& kind, const std::string& name, const std::string& description,
           ConfigSchema schema = {}) {
    add(ComponentInfo{kind, name, description, std::move(schema),
                      [](const ConfigNode& config) -> std::shared_ptr<Component> {
                        return std::make_shared<T>(config);
                      },
                      {}, {}});
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

  // Creates `kind.name` and casts it to the kind's interface T.
  template <typename T>
  std::shared_ptr<T> create(const std::string& kind, const std::string& name,
                            const ConfigNode& config) const {
    auto object = create_component(kind, name, config);
    T* typed = dynamic_cast<T*>(object.get());
    if (!typed)
      throw PluginError("component " + kind + "." + name + " from " + get(kind, name).plugin_path +
                        " does not implement the interface of kind '" + kind + "'");
    return std::shared_ptr<T>(object, typed);
  }

  std::shared_ptr<Component> create_component(const std::string& kind, const std::string& name,
                                              const ConfigNode& config) const;

 private:
  struct Entry {
    ComponentInfo info;
    std::shared_ptr<void> owner;
  };
  std::map<std::string, std::map<std::string, Entry>> entries_;
};

}  // namespace slt
