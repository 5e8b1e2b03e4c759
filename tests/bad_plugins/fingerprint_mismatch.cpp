// Pretends to be built by another toolchain.
#include <slt/plugin/plugin.h>

static void register_nothing(slt::Registrar&) {}

extern "C" __attribute__((visibility("default"))) const SltPluginInfo* slt_plugin_info() {
  static const SltPluginInfo info{SLT_PLUGIN_ABI_VERSION,
                                  "compiler=gcc-4.8.5;cxx11abi=0;torch=1.0.0;slt=0.0.1",
                                  "fingerprint_mismatch", "0.0.1", &register_nothing};
  return &info;
}
