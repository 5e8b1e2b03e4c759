// libFuzzer's entry point for the fuzz targets (clang -fsanitize=fuzzer; see
// docs/HARDENING.md). One binary for all targets: SLT_FUZZ_TARGET names the one.
#include <cstdio>
#include <cstdlib>

#include "fuzz_targets.h"
#include "slt/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const slt_fuzz::Target* target = [] {
    const char* name = std::getenv("SLT_FUZZ_TARGET");
    const slt_fuzz::Target* found = name ? slt_fuzz::find_target(name) : nullptr;
    if (found && !found->unavailable.empty()) {
      std::fprintf(stderr, "%s is not in this build: %s\n", found->name.c_str(), found->unavailable.c_str());
      std::abort();
    }
    if (!found) {
      std::fprintf(stderr, "set SLT_FUZZ_TARGET to one of:");
      for (const auto& t : slt_fuzz::targets()) std::fprintf(stderr, " %s", t.name.c_str());
      std::fprintf(stderr, "\n");
      std::abort();
    }
    return found;
  }();
  try {
    target->run(data, size);
  } catch (const slt::UserError&) {
    // refused with a clear error: fine; any other exception reaches libFuzzer as a crash
  }
  return 0;
}
