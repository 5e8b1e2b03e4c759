// slt-tokenize: what a model sees. Encodes each line of standard input to
// space-separated ids exactly as the training collator does (special tokens
// included), or with --decode turns lines of ids back into text as evaluation
// does (skip_special_tokens).
#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>

#include "command_line.h"
#include "slt/runtime/app.h"
#include "slt/errors.h"
#include "slt/runtime/log.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/runtime/components.h"
#include "slt/data/tokenizer.h"

namespace po = boost::program_options;

namespace {

int run(int argc, char** argv) {
  po::options_description options("Usage: slt-tokenize --tokenizer PATH [options] < lines\nOptions");
  std::vector<std::string> plugin_paths;
  options.add_options()("help,h", "show this help")("tokenizer", po::value<std::string>(), "tokenizer folder or model file")(
      "kind", po::value<std::string>(), "tokenizer component (default: the one that claims the folder's files; slt-run --list-plugins)")(
      "decode", "read lines of ids, print text")("keep-special", "with --decode: keep special tokens")(
      "max-length", po::value<int64_t>()->default_value(-1), "truncate to N ids, special tokens included")(
      "lower-case", "lower-case text first (models trained with model.lower_case=true)")(
      "pieces", "print the sub-word pieces instead of ids")(
      "plugin-path", po::value(&plugin_paths)->composing(), "extra plugin folder (repeatable)");
  auto vm = slt::parse_command_line("slt-tokenize", argc, argv, options);
  if (vm.count("help")) {
    std::cout << options;
    return 0;
  }
  if (!vm.count("tokenizer")) throw slt::UserError("--tokenizer PATH is required (see slt-tokenize --help)");
  std::string path = vm["tokenizer"].as<std::string>();
  slt::load_plugins(slt::plugin_search_path(plugin_paths));
  auto tokenizer = slt::open_tokenizer(path, vm.count("kind") ? vm["kind"].as<std::string>() : "", vm.count("lower-case") > 0);
  int64_t max_length = vm["max-length"].as<int64_t>();
  std::string line;
  size_t number = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    if (vm.count("decode")) {
      std::vector<int64_t> ids;
      std::istringstream in(line);
      std::string word;
      while (in >> word) {
        try {
          size_t used = 0;
          ids.push_back(std::stoll(word, &used));
          if (used != word.size()) throw std::invalid_argument(word);
        } catch (const std::exception&) {
          throw slt::UserError("line " + std::to_string(number) + ": '" + word + "' is not a token id");
        }
      }
      try {
        std::cout << tokenizer->decode(ids, !vm.count("keep-special")) << "\n";
      } catch (const slt::UserError& e) {
        throw slt::UserError("line " + std::to_string(number) + ": " + e.what());
      }
    } else if (vm.count("pieces")) {
      auto pieces = tokenizer->tokenize(line);
      for (size_t i = 0; i < pieces.size(); ++i) std::cout << (i ? " " : "") << pieces[i];
      std::cout << "\n";
    } else {
      auto ids = tokenizer->encode(line, true, max_length);
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  slt::setup_logging("warn");
  return slt::run_app("slt-tokenize", run, argc, argv);
}
