#pragma once
// Logging setup shared by the apps (spdlog underneath).
#include <string>

namespace slt {

// Console logging at `level` (trace, debug, info, warn, error); SLT_LOG_LEVEL overrides it.
void setup_logging(const std::string& level = "info");

}  // namespace slt
