#include "slt/runtime/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

namespace slt {

namespace {
constexpr const char* kPattern = "[%Y-%m-%d %H:%M:%S] [%^%l%$] %v";
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::get("slt");
  if (!logger) logger = spdlog::stderr_color_mt("slt");
  logger->set_pattern(kPattern);
  spdlog::set_default_logger(logger);
  const char* env = std::getenv("SLT_LOG_LEVEL");
  spdlog::set_level(spdlog::level::from_str(env ? env : level));
}

LogFile::LogFile(const std::filesystem::path& path) {
  std::filesystem::create_directories(path.parent_path());
  sink_ = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path.string());
  sink_->set_pattern("[%Y-%m-%d %H:%M:%S] [%l] %v");
  spdlog::default_logger()->sinks().push_back(sink_);
}

LogFile::~LogFile() {
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  sink_->flush();
}

}  // namespace slt
