#pragma once
// Command-line parsing shared by the apps (Boost.Program_options).
#include <boost/program_options.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "slt/errors.h"
#include "slt/text/text.h"

namespace slt {

// Parses `options` plus `hidden` ones fed by `positional` arguments, notifying
// bound variables. A malformed command line is a UserError pointing at --help.
inline boost::program_options::variables_map parse_command_line(
    const std::string& app, int argc, char** argv, const boost::program_options::options_description& options,
    const boost::program_options::options_description& hidden = {},
    const boost::program_options::positional_options_description& positional = {}) {
  namespace po = boost::program_options;
  po::options_description all;
  all.add(options).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UserError(std::string(e.what()) + " (see " + app + " --help)");
  }
  return vm;
}

#ifdef SLT_SOURCE_CONFIG_DIR
// Where configs are looked up by name: --config-dir folders, SLT_CONFIG_PATH,
// then the configs shipped with slt (installed, else the source tree's).
// Apps using it define SLT_SOURCE_CONFIG_DIR.
inline std::vector<std::filesystem::path> config_search_path(const std::vector<std::string>& config_dirs,
                                                             const char* argv0) {
  namespace fs = std::filesystem;
  std::vector<fs::path> path(config_dirs.begin(), config_dirs.end());
  if (const char* env = std::getenv("SLT_CONFIG_PATH"))
    for (const auto& part : split(env, ':'))
      if (!part.empty()) path.emplace_back(part);
  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec) exe = fs::absolute(argv0);
  fs::path installed = exe.parent_path().parent_path() / "share" / "slt" / "configs";
  if (fs::is_directory(installed)) path.push_back(installed);
  else path.emplace_back(SLT_SOURCE_CONFIG_DIR);
  return path;
}
#endif

}  // namespace slt
