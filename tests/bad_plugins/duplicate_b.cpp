// Registers a component whose name the other duplicate_* plugin also uses.
#include <slt/plugin/plugin.h>

namespace {
struct Dummy : slt::Component {
  Dummy(const slt::ConfigNode&, const slt::ComponentContext&) {}
};
void register_components(slt::Registrar& r) {
  r.add<Dummy>(slt::kinds::kTokenizer, "same_name", "first or second registration");
}
}  // namespace

SLT_PLUGIN("duplicate_b", "0.0.1", register_components)
