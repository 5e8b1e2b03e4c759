#pragma once
// Finds and loads plugin libraries (Boost.DLL). Loaded libraries are never
// unloaded: objects and registry entries may outlive any scope that loaded them.
#include <filesystem>
#include <string>
#include <vector>

#include "slt/config/config.h"

namespace slt {

class Registry;

struct LoadedPlugin {
  std::string name;
  std::string version;
  std::string path;
  std::vector<std::string> components;  // "kind.name"
};

// Plugin folders in search order: `cli_paths` (--plugin-path), SLT_PLUGIN_PATH
// (colon-separated), the config's `plugins.paths`, then the default folder
// next to libslt_core (lib/slt/plugins in both the build and the install tree).
std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::string>& cli_paths,
                                                      const ConfigNode* config = nullptr);
std::filesystem::path default_plugin_dir();

class PluginLoader {
 public:
  explicit PluginLoader(Registry& registry);

  // Loads one library. Throws PluginError for a file that is not an slt plugin,
  // an ABI or build-fingerprint mismatch, or a failing registration. Loading
  // the same file twice is a no-op.
  const LoadedPlugin& load_file(const std::filesystem::path& path);
  // Loads every lib*.so in the folder (not recursive), in name order. A
  // missing folder is skipped.
  void load_directory(const std::filesystem::path& dir);
  void load_all(const std::vector<std::filesystem::path>& dirs);

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }

 private:
  Registry& registry_;
  std::vector<LoadedPlugin> plugins_;
};

// Loads the plugins in `dirs` into Registry::global(); files already loaded
// by an earlier call are not loaded again. Returns every plugin loaded so far.
const std::vector<LoadedPlugin>& load_plugins(const std::vector<std::filesystem::path>& dirs);

}  // namespace slt
