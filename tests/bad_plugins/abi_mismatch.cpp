// Claims an ABI version this host does not speak.
#include <slt/plugin/plugin.h>

static void register_nothing(slt::Registrar&) {}

extern "C" __attribute__((visibility("default"))) const SltPluginInfo* slt_plugin_info() {
  static const SltPluginInfo info{SLT_PLUGIN_ABI_VERSION + 41, SLT_BUILD_FINGERPRINT, "abi_mismatch",
                                  "0.0.1", &register_nothing};
  return &info;
}
