#pragma once
// Logging setup shared by the apps (spdlog underneath).
#include <filesystem>
#include <memory>
#include <string>

namespace spdlog::sinks {
class sink;
}

namespace slt {

// Console logging at `level` (trace, debug, info, warn, error); SLT_LOG_LEVEL overrides it.
void setup_logging(const std::string& level = "info");

// While alive, everything logged also goes to `path` (appended; folders created).
class LogFile {
 public:
  explicit LogFile(const std::filesystem::path& path);
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

 private:
  std::shared_ptr<spdlog::sinks::sink> sink_;
};

}  // namespace slt
