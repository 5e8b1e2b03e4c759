// Fails while registering its components.
#include <slt/plugin/plugin.h>

#include <stdexcept>

namespace {
void register_components(slt::Registrar&) { throw std::runtime_error("vocabulary file missing"); }
}  // namespace

SLT_PLUGIN("throws_on_register", "0.0.1", register_components)
