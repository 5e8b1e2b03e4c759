#pragma once
// The plugin ABI. Each plugin library exports one C-linkage function,
// slt_plugin_info(), returning a plain struct. The host reads abi_version
// first and only then the rest, so later ABI versions can change the struct.
//
// A plugin author writes:
//
//   static void register_components(slt::Registrar& r) {
//     r.add<MyModel>(slt::kinds::kModel, "my_model", "A new architecture", schema());
//   }
//   SLT_PLUGIN("my_model", "1.0.0", register_components)
//
// docs/PLUGINS.md walks through docs/examples/hello_model.
#include <cstdint>

#include <torch/version.h>

#include "slt/plugin/registry.h"
#include "slt/version.h"

// Bumped whenever SltPluginInfo, Registrar, ComponentInfo or a kind interface changes.
#define SLT_PLUGIN_ABI_VERSION 2u

#define SLT_STRINGIFY_(x) #x
#define SLT_STRINGIFY(x) SLT_STRINGIFY_(x)

// What must match between host and plugin for C++ objects to cross the boundary.
#define SLT_BUILD_FINGERPRINT                                                   \
  "compiler=gcc-" __VERSION__ ";cxx11abi=" SLT_STRINGIFY(_GLIBCXX_USE_CXX11_ABI) \
  ";torch=" TORCH_VERSION ";slt=" SLT_VERSION_STRING

extern "C" {
struct SltPluginInfo {
  uint32_t abi_version;
  const char* build_fingerprint;
  const char* name;
  const char* version;
  void (*register_components)(slt::Registrar& registrar);
};
}

#define SLT_PLUGIN_ENTRY_POINT slt_plugin_info

#define SLT_PLUGIN(NAME, VERSION, REGISTER_FN)                                              \
  extern "C" __attribute__((visibility("default"))) const SltPluginInfo* slt_plugin_info() { \
    static const SltPluginInfo info{SLT_PLUGIN_ABI_VERSION, SLT_BUILD_FINGERPRINT, NAME,     \
                                    VERSION, &REGISTER_FN};                                  \
    return &info;                                                                            \
  }

namespace slt {
// The host's own fingerprint (compiled into libslt_core).
const char* host_build_fingerprint();
}  // namespace slt
