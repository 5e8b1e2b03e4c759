#include "slt/plugin/plugin_loader.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <map>
#include <mutex>

#include "slt/errors.h"
#include "slt/plugin/plugin.h"
#include "slt/text/text.h"

namespace fs = std::filesystem;

namespace slt {

fs::path default_plugin_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&default_plugin_dir), &info) && info.dli_fname) {
    return fs::path(info.dli_fname).parent_path() / "slt" / "plugins";
  }
  return {};
}

std::vector<fs::path> plugin_search_path(const std::vector<std::string>& cli_paths,
                                         const ConfigNode* config) {
  std::vector<fs::path> dirs;
  for (const auto& p : cli_paths)
    for (const auto& part : split(p, ':'))
      if (!part.empty()) dirs.emplace_back(part);
  if (const char* env = std::getenv("SLT_PLUGIN_PATH"))
    for (const auto& part : split(env, ':'))
      if (!part.empty()) dirs.emplace_back(part);
  if (config) {
    if (const ConfigNode* paths = config->at("plugins.paths"); paths && paths->is_list())
      for (const auto& p : paths->elements()) dirs.emplace_back(p.as_string("plugins.paths[]"));
  }
  fs::path fallback = default_plugin_dir();
  if (!fallback.empty()) dirs.push_back(fallback);
  return dirs;
}

namespace {

// Libraries stay loaded until the process ends: a Component's vtable and
// destructor live in them. Intentionally never destroyed.
std::vector<std::shared_ptr<boost::dll::shared_library>>& library_handles() {
  static auto* handles = new std::vector<std::shared_ptr<boost::dll::shared_library>>();
  return *handles;
}

class PluginRegistrar : public Registrar {
 public:
  PluginRegistrar(Registry& registry, LoadedPlugin& plugin, std::shared_ptr<void> owner)
      : registry_(registry), plugin_(plugin), owner_(std::move(owner)) {}
  void add(ComponentInfo info) override {
    info.plugin_name = plugin_.name;
    info.plugin_path = plugin_.path;
    plugin_.components.push_back(info.kind + "." + info.name);
    registry_.add(std::move(info), owner_);
  }

 private:
  Registry& registry_;
  LoadedPlugin& plugin_;
  std::shared_ptr<void> owner_;
};

}  // namespace

PluginLoader::PluginLoader(Registry& registry) : registry_(registry) {}

const LoadedPlugin& PluginLoader::load_file(const fs::path& path) {
  std::error_code ec;
  fs::path canonical = fs::canonical(path, ec);
  if (ec) throw PluginError("plugin file '" + path.string() + "' does not exist");
  for (const auto& p : plugins_)
    if (p.path == canonical.string()) return p;

  auto library = std::make_shared<boost::dll::shared_library>();
  try {
    library->load(canonical.string(), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginError("cannot load plugin '" + canonical.string() + "': " + e.what());
  }
  const char* entry = SLT_STRINGIFY(SLT_PLUGIN_ENTRY_POINT);
  if (!library->has(entry))
    throw PluginError("'" + canonical.string() + "' is not an slt plugin: it does not export " +
                      entry + "() (declare one with the SLT_PLUGIN macro from slt/plugin.h)");
  library_handles().push_back(library);

  auto info_fn = library->get<const SltPluginInfo*()>(entry);
  const SltPluginInfo* info = info_fn();
  if (!info) throw PluginError("plugin '" + canonical.string() + "': " + entry + "() returned null");
  if (info->abi_version != SLT_PLUGIN_ABI_VERSION)
    throw PluginError("plugin '" + canonical.string() + "' was built for slt plugin ABI version " +
                      std::to_string(info->abi_version) + ", but this slt uses ABI version " +
                      std::to_string(SLT_PLUGIN_ABI_VERSION) + "; rebuild the plugin against this slt");
  std::string fingerprint = info->build_fingerprint ? info->build_fingerprint : "";
  if (fingerprint != host_build_fingerprint())
    throw PluginError("plugin '" + canonical.string() + "' was built with a different toolchain:\n" +
                      "  plugin: " + fingerprint + "\n  slt:    " + host_build_fingerprint() +
                      "\nrebuild the plugin with the same compiler, LibTorch and slt");

  LoadedPlugin plugin;
  plugin.name = info->name ? info->name : "";
  plugin.version = info->version ? info->version : "";
  plugin.path = canonical.string();
  PluginRegistrar registrar(registry_, plugin, library);
  try {
    info->register_components(registrar);
  } catch (const PluginError&) {
    throw;
  } catch (const std::exception& e) {
    throw PluginError("plugin '" + canonical.string() + "' failed to register its components: " +
                      e.what());
  }
  spdlog::debug("loaded plugin {} {} from {}", plugin.name, plugin.version, plugin.path);
  plugins_.push_back(std::move(plugin));
  return plugins_.back();
}

void PluginLoader::load_directory(const fs::path& dir) {
  if (!fs::is_directory(dir)) {
    spdlog::debug("plugin folder {} does not exist; skipped", dir.string());
    return;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (entry.is_regular_file() && name.rfind("lib", 0) == 0 && entry.path().extension() == ".so")
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) load_file(file);
}

void PluginLoader::load_all(const std::vector<fs::path>& dirs) {
  for (const auto& dir : dirs) load_directory(dir);
}

const std::vector<LoadedPlugin>& load_plugins(const std::vector<fs::path>& dirs) {
  static std::mutex mutex;
  static auto* loader = new PluginLoader(Registry::global());  // lives as long as the process
  std::lock_guard<std::mutex> lock(mutex);
  loader->load_all(dirs);
  return loader->plugins();
}

}  // namespace slt
