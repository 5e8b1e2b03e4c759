// slt-report: summarise a seed sweep (or any set of runs).
//   slt-report SWEEP_DIR [--output-dir DIR]
// Finds every run folder under SWEEP_DIR (config.yaml + metrics.jsonl), and
// writes report.md (a table of each run's best validation BLEU-4 and test
// metrics, with mean ± sample standard deviation over runs) and report.html
// (the same table and SVG learning curves).
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "command_line.h"
#include "slt/runtime/app.h"
#include "slt/config/config.h"
#include "slt/errors.h"
#include "slt/io/files.h"
#include "slt/runtime/log.h"
#include "slt/io/tensor_io.h"
#include "slt/text/text.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

// Test metrics shown, in this order, with their results.json keys.
const std::vector<std::pair<std::string, std::string>> kTestColumns = {
    {"BLEU-1", "bleu1"}, {"BLEU-2", "bleu2"}, {"BLEU-3", "bleu3"}, {"BLEU-4", "bleu4"},
    {"ROUGE-L", "rougeL"}, {"chrF", "chrf"}, {"METEOR", "meteor"}};

struct Curve {
  std::vector<std::pair<double, double>> points;  // (step, value)
};

struct Run {
  std::string name;  // the overrides that set this run apart, else its path relative to the sweep folder
  std::vector<std::string> overrides;  // overrides.yaml
  std::string seed;
  double best_val_bleu4 = NAN;
  std::vector<double> test;  // kTestColumns, NAN when missing
  Curve val_bleu4, train_loss;
};

Run read_run(const fs::path& folder, const fs::path& sweep) {
  Run run;
  run.name = fs::relative(folder, sweep).string();
  if (run.name == ".") run.name = folder.filename().string();
  auto config = slt::load_yaml_file((folder / "config.yaml").string());
  const slt::ConfigNode* seed = config.at("common.seed");
  run.seed = seed ? seed->scalar_text() : "?";
  if (fs::exists(folder / "overrides.yaml")) {
    auto overrides = slt::load_yaml_file((folder / "overrides.yaml").string());
    if (overrides.is_list())
      for (const auto& o : overrides.elements()) run.overrides.push_back(o.scalar_text());
  }
  std::ifstream metrics(folder / "metrics.jsonl");
  size_t number = 0;
  for (std::string line; std::getline(metrics, line);) {
    ++number;
    if (line.empty()) continue;
    nlohmann::json entry;
    double step = 0, bleu4 = NAN;
    std::string split;
    try {
      entry = nlohmann::json::parse(line);
      step = entry.value("step", 0.0);
      split = entry.value("split", "");
      bleu4 = split == "val" ? entry.value("bleu4", NAN) : split == "epoch" ? entry.value("val_bleu4", NAN) : NAN;
    } catch (const nlohmann::json::exception&) {  // not JSON, not an object, or a field of another type
      spdlog::warn("{}:{}: not a metrics record, skipped", (folder / "metrics.jsonl").string(), number);
      continue;
    }
    if (!std::isnan(bleu4)) {
      run.val_bleu4.points.emplace_back(step, bleu4);
      if (std::isnan(run.best_val_bleu4) || bleu4 > run.best_val_bleu4) run.best_val_bleu4 = bleu4;
    }
    if (split == "train" && entry.contains("loss") && entry["loss"].is_number())
      run.train_loss.points.emplace_back(step, entry["loss"].get<double>());
  }
  run.test.assign(kTestColumns.size(), NAN);
  if (fs::exists(folder / "test_results.json")) {
    const fs::path file = folder / "test_results.json";
    std::ifstream in = slt::open_regular_file(file, "results file");
    try {
      auto results = nlohmann::json::parse(in);
      for (size_t i = 0; i < kTestColumns.size(); ++i)
        if (results.contains(kTestColumns[i].second) && results[kTestColumns[i].second].is_number())
          run.test[i] = results[kTestColumns[i].second].get<double>();
    } catch (const nlohmann::json::exception& e) {
      throw slt::UserError("'" + file.string() + "' is not a results JSON object: " + e.what());
    }
  }
  return run;
}

// Names runs by the overrides not shared by all of them (common.seed=3),
// keeping the folder path when that says nothing.
void name_by_differences(std::vector<Run>& runs) {
  if (runs.size() < 2) return;
  for (auto& run : runs) {
    std::vector<std::string> own;
    for (const auto& o : run.overrides) {
      bool everywhere = std::all_of(runs.begin(), runs.end(), [&](const Run& other) {
        return std::find(other.overrides.begin(), other.overrides.end(), o) != other.overrides.end();
      });
      if (!everywhere) own.push_back(o);
    }
    if (!own.empty()) run.name = slt::join(own, " ");
  }
}

// Mean and sample standard deviation (n - 1) of the values that are present.
std::pair<double, double> mean_std(const std::vector<double>& values) {
  std::vector<double> present;
  for (double v : values)
    if (!std::isnan(v)) present.push_back(v);
  if (present.empty()) return {NAN, NAN};
  double mean = 0;
  for (double v : present) mean += v;
  mean /= static_cast<double>(present.size());
  if (present.size() < 2) return {mean, NAN};
  double squares = 0;
  for (double v : present) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / static_cast<double>(present.size() - 1))};
}

std::string number(double v, int digits = 2) {
  if (std::isnan(v)) return "–";
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << v;
  return out.str();
}

// The metric's scale: ROUGE-L and METEOR are fractions, shown with more digits.
int digits_of(const std::string& key) { return key == "rougeL" || key == "meteor" ? 4 : 2; }

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Table summary_table(const std::vector<Run>& runs) {
  Table table;
  table.header = {"run", "seed", "best val BLEU-4"};
  for (const auto& [title, key] : kTestColumns) table.header.push_back("test " + title);
  std::vector<double> best;
  std::vector<std::vector<double>> columns(kTestColumns.size());
  for (const auto& run : runs) {
    std::vector<std::string> row = {run.name, run.seed, number(run.best_val_bleu4)};
    best.push_back(run.best_val_bleu4);
    for (size_t i = 0; i < kTestColumns.size(); ++i) {
      row.push_back(number(run.test[i], digits_of(kTestColumns[i].second)));
      columns[i].push_back(run.test[i]);
    }
    table.rows.push_back(row);
  }
  auto cell = [](std::pair<double, double> ms, int digits) {
    return number(ms.first, digits) + (std::isnan(ms.second) ? "" : " ± " + number(ms.second, digits));
  };
  std::vector<std::string> summary = {"mean ± std (" + std::to_string(runs.size()) + " runs)", "", cell(mean_std(best), 2)};
  for (size_t i = 0; i < kTestColumns.size(); ++i)
    summary.push_back(cell(mean_std(columns[i]), digits_of(kTestColumns[i].second)));
  table.rows.push_back(summary);
  return table;
}

std::string markdown(const Table& table, const fs::path& sweep) {
  std::ostringstream out;
  out << "# Sweep report: " << sweep.string() << "\n\n";
  out << "| " << slt::join(table.header, " | ") << " |\n|";
  for (size_t i = 0; i < table.header.size(); ++i) out << (i < 2 ? " --- |" : " ---: |");
  out << "\n";
  for (const auto& row : table.rows) out << "| " << slt::join(row, " | ") << " |\n";
  out << "\nBest val BLEU-4: the highest validation BLEU-4 logged during training (metrics.jsonl). "
         "Test metrics: test_results.json (the best model). ± is the sample standard deviation over runs.\n";
  return out.str();
}

std::string escape_html(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// One line chart, a polyline per run.
std::string svg_chart(const std::string& title, const std::vector<Run>& runs, Curve Run::*curve) {
  const double width = 640, height = 320, left = 60, right = 160, top = 30, bottom = 40;
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const auto& run : runs)
    for (const auto& [x, y] : (run.*curve).points) {
      x_min = std::min(x_min, x), x_max = std::max(x_max, x);
      y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"" << left << "\" y=\"18\" font-weight=\"bold\">"
      << escape_html(title) << "</text>\n";
  if (!std::isfinite(x_min)) return svg.str() + "<text x=\"60\" y=\"60\">no data</text>\n</svg>\n";
  if (x_max == x_min) x_max = x_min + 1;
  if (y_max == y_min) y_max = y_min + 1;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return top + plot_h - (y - y_min) / (y_max - y_min) * plot_h; };
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    double y = y_min + (y_max - y_min) * i / 4, x = x_min + (x_max - x_min) * i / 4;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">" << number(y) << "</text>\n";
    svg << "<text x=\"" << px(x) << "\" y=\"" << top + plot_h + 16 << "\" text-anchor=\"middle\">"
        << static_cast<long long>(std::llround(x)) << "</text>\n";
  }
  svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 6 << "\" text-anchor=\"middle\">step</text>\n";
  static const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  for (size_t r = 0; r < runs.size(); ++r) {
    const char* colour = colours[r % 10];
    svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [x, y] : (runs[r].*curve).points) svg << number(px(x), 1) << "," << number(py(y), 1) << " ";
    svg << "\"/>\n<text x=\"" << width - right + 10 << "\" y=\"" << top + 14 * (r + 1) << "\" fill=\"" << colour << "\">"
        << escape_html(runs[r].name) << "</text>\n";
  }
  return svg.str() + "</svg>\n";
}

std::string html(const Table& table, const std::vector<Run>& runs, const fs::path& sweep) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>slt sweep report</title>\n"
         "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
         "tr:last-child{font-weight:bold}</style></head><body>\n<h1>Sweep report: "
      << escape_html(sweep.string()) << "</h1>\n<table>\n<tr>";
  for (const auto& h : table.header) out << "<th>" << escape_html(h) << "</th>";
  out << "</tr>\n";
  for (const auto& row : table.rows) {
    out << "<tr>";
    for (const auto& c : row) out << "<td>" << escape_html(c) << "</td>";
    out << "</tr>\n";
  }
  out << "</table>\n<p>± is the sample standard deviation over runs.</p>\n<h2>Learning curves</h2>\n"
      << svg_chart("validation BLEU-4", runs, &Run::val_bleu4) << svg_chart("training loss", runs, &Run::train_loss)
      << "</body></html>\n";
  return out.str();
}

int run(int argc, char** argv) {
  po::options_description options("Usage: slt-report SWEEP_DIR [--output-dir DIR]\nOptions");
  options.add_options()("help,h", "show this help")("output-dir", po::value<std::string>(),
                                                    "where report.md and report.html go (default: SWEEP_DIR)");
  po::options_description hidden;
  hidden.add_options()("sweep", po::value<std::string>());
  po::positional_options_description positional;
  positional.add("sweep", 1);
  auto vm = slt::parse_command_line("slt-report", argc, argv, options, hidden, positional);
  if (vm.count("help")) {
    std::cout << options;
    return 0;
  }
  if (!vm.count("sweep")) throw slt::UserError("give the sweep folder: slt-report SWEEP_DIR");
  fs::path sweep = vm["sweep"].as<std::string>();
  if (!fs::is_directory(sweep)) throw slt::UserError("'" + sweep.string() + "' is not a folder");
  std::vector<fs::path> folders;
  if (fs::exists(sweep / "config.yaml") && fs::exists(sweep / "metrics.jsonl")) folders.push_back(sweep);
  for (const auto& entry : fs::recursive_directory_iterator(sweep))
    if (entry.is_directory() && fs::exists(entry.path() / "config.yaml") && fs::exists(entry.path() / "metrics.jsonl"))
      folders.push_back(entry.path());
  if (folders.empty())
    throw slt::UserError("no runs under '" + sweep.string() + "' (a run folder has config.yaml and metrics.jsonl)");
  std::sort(folders.begin(), folders.end());
  std::vector<Run> runs;
  for (const auto& folder : folders) runs.push_back(read_run(folder, sweep));
  name_by_differences(runs);
  Table table = summary_table(runs);
  fs::path output = vm.count("output-dir") ? fs::path(vm["output-dir"].as<std::string>()) : sweep;
  fs::create_directories(output);
  std::string md = markdown(table, sweep), page = html(table, runs, sweep);
  slt::write_file_atomically((output / "report.md").string(), md.data(), md.size());
  slt::write_file_atomically((output / "report.html").string(), page.data(), page.size());
  std::cout << md;
  spdlog::info("wrote {} and {} ({} runs)", (output / "report.md").string(), (output / "report.html").string(), runs.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  slt::setup_logging("info");
  return slt::run_app("slt-report", run, argc, argv);
}
