#pragma once
// Command-line parsing shared by the apps (Boost.Program_options).
#include <boost/program_options.hpp>
#include <string>

#include "slt/errors.h"

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

}  // namespace slt
