// slt-score: score predictions against references, like sacrebleu's CLI.
//   slt-score outputs.tsv                 (Prediction<TAB>Reference, header optional)
//   slt-score --hyps H.txt --refs R.txt   (one sentence per line)
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command_line.h"
#include "slt/io/files.h"
#include "slt/runtime/app.h"
#include "slt/errors.h"
#include "slt/eval/metrics.h"
#include "slt/text/unicode.h"

namespace po = boost::program_options;
namespace m = slt::metrics;

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in = slt::open_regular_file(path, "text file");
  std::vector<std::string> lines;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (number == 1 && line.rfind("\xef\xbb\xbf", 0) == 0) line.erase(0, 3);  // a UTF-8 BOM marks the file, not the text
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!slt::unicode::is_valid_utf8(line))
      throw slt::UserError(path + ":" + std::to_string(number) + ": not valid UTF-8");
    lines.push_back(line);
  }
  return lines;
}

// Python's str.strip(), as the reference applies to both sides.
std::string strip(const std::string& text) {
  std::u32string s = slt::unicode::decode_utf8(text);
  size_t a = 0, b = s.size();
  while (a < b && slt::unicode::is_python_space(s[a])) ++a;
  while (b > a && slt::unicode::is_python_space(s[b - 1])) --b;
  return slt::unicode::encode_utf8(s.substr(a, b - a));
}

int run(int argc, char** argv) {
  po::options_description options("Usage: slt-score [FILE.tsv | --hyps H --refs R] [--json]\nOptions");
  options.add_options()("help,h", "show this help")("hyps", po::value<std::string>(), "predictions, one per line")(
      "refs", po::value<std::string>(), "references, one per line")("json", "print one JSON object");
  po::options_description hidden;
  hidden.add_options()("tsv", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("tsv", 1);
  auto vm = slt::parse_command_line("slt-score", argc, argv, options, hidden, positional);
  if (vm.count("help")) {
    std::cout << options;
    return 0;
  }
  std::vector<std::string> hyps, refs;
  if (vm.count("tsv")) {
    if (vm.count("hyps") || vm.count("refs")) throw slt::UserError("give either FILE.tsv or --hyps/--refs, not both");
    std::string path = vm["tsv"].as<std::string>();
    auto lines = read_lines(path);
    size_t first = !lines.empty() && lines[0] == "Prediction\tReference" ? 1 : 0;
    for (size_t i = first; i < lines.size(); ++i) {
      size_t tab = lines[i].find('\t');
      if (tab == std::string::npos || lines[i].find('\t', tab + 1) != std::string::npos)
        throw slt::UserError(path + ":" + std::to_string(i + 1) +
                             ": expected two tab-separated columns (prediction, reference)");
      hyps.push_back(strip(lines[i].substr(0, tab)));
      refs.push_back(strip(lines[i].substr(tab + 1)));
    }
  } else if (vm.count("hyps") && vm.count("refs")) {
    for (auto& l : read_lines(vm["hyps"].as<std::string>())) hyps.push_back(strip(l));
    for (auto& l : read_lines(vm["refs"].as<std::string>())) refs.push_back(strip(l));
    if (hyps.size() != refs.size())
      throw slt::UserError(vm["hyps"].as<std::string>() + " has " + std::to_string(hyps.size()) + " lines but " +
                           vm["refs"].as<std::string>() + " has " + std::to_string(refs.size()));
  } else {
    throw slt::UserError("nothing to score: give FILE.tsv or --hyps H.txt --refs R.txt (see slt-score --help)");
  }
  if (hyps.empty()) throw slt::UserError("nothing to score: the input has no sentence pairs");

  m::CorpusScores s = m::score_corpus(hyps, refs);
  if (vm.count("json")) {
    nlohmann::ordered_json j;
    for (int n = 0; n < 4; ++n) j["bleu" + std::to_string(n + 1)] = s.bleu[n];
    j["chrf"] = s.chrf;
    j["rouge1"] = s.rouge.rouge1;
    j["rouge2"] = s.rouge.rouge2;
    j["rougeL"] = s.rouge.rougeL;
    j["rougeLsum"] = s.rouge.rougeLsum;
    j["meteor"] = s.meteor;
    j["signature"] = m::bleu_signature();
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("sentences  %zu\n", s.sentences);
  for (int n = 0; n < 4; ++n) std::printf("BLEU-%d     %.2f\n", n + 1, s.bleu[n]);
  std::printf("chrF       %.2f\n", s.chrf);
  std::printf("ROUGE-1    %.4f\nROUGE-2    %.4f\nROUGE-L    %.4f\nROUGE-Lsum %.4f\n", s.rouge.rouge1, s.rouge.rouge2,
              s.rouge.rougeL, s.rouge.rougeLsum);
  std::printf("METEOR     %.4f\n", s.meteor);
  std::printf("BLEU signature  %s\nchrF signature  %s\n", m::bleu_signature().c_str(), m::chrf_signature().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return slt::run_app("slt-score", run, argc, argv);
}
