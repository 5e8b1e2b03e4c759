#include "slt/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace slt {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("slt");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  const char* env = std::getenv("SLT_LOG_LEVEL");
  spdlog::set_level(spdlog::level::from_str(env ? env : level));
}

}  // namespace slt
