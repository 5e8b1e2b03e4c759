// slt-data: manifest tools, as the reference's scripts/ do them.
//   slt-data feature-lengths --manifest M.tsv --data-dir FEATURES --output-dir OUT [--num-procs N]
//   slt-data video-durations --manifest M.tsv --data-dir VIDEOS --output PATH [--num-procs N]
//   slt-data train-tokenizer --tsv-file A.tsv [B.tsv ...] --output-dir OUT --vocab-size N
//   slt-data feature-stats --manifest M.tsv --data-dir FEATURES --output STATS.pt
//   slt-data synthsign --output-dir OUT [--train N --val N --test N --seed S --fps F --threads T]
//   slt-data synthetic --sentences FILE --output-dir OUT [--dim D --frames T --train-copies N]
//                            [--vocab-type unigram|bpe|char|word] [--column caption] [--lowercase]
#include <ATen/ATen.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <mutex>
#include <thread>

#include "hf_slow.h"
#include "slt/runtime/app.h"
#include "slt/errors.h"
#include "slt/runtime/log.h"
#include "slt/runtime/threads.h"
#include "slt/io/files.h"
#include "slt/io/tensor_io.h"
#include "slt/text/text.h"
#include "slt/data/feature_stats.h"
#include "slt/synthsign/corpus.h"
#include "slt/video/ffmpeg.h"
#include "spm_client.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

// Runs job(i) for i in [0, n) on up to `threads` threads (no more than items
// or 4 per core), logging progress. The first error stops the others and is
// rethrown here.
template <typename Job>
void parallel_for(size_t n, int threads, const std::string& what, Job job) {
  if (threads < 1) throw slt::UserError("--num-procs must be at least 1");
  const size_t cap = 4 * static_cast<size_t>(slt::usable_cpus());
  const size_t count = std::min({static_cast<size_t>(threads), std::max<size_t>(1, n), cap});
  std::atomic<size_t> next{0}, done{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  auto work = [&] {
    try {
      for (size_t i; (i = next++) < n;) {
        job(i);
        size_t finished = ++done;
        if (finished % 1000 == 0 || finished == n) spdlog::info("{}: {}/{}", what, finished, n);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = n;  // the others stop after their current item
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < count; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      if (pool.empty()) throw;  // not even one thread: the system is out of them
      break;                    // fewer threads than asked: the ones running share the work
    }
  }
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

std::ifstream open_input(const std::string& path) { return slt::open_regular_file(path, "input"); }

po::variables_map parse(const po::options_description& options, const std::vector<std::string>& args) {
  if (std::find(args.begin(), args.end(), "--help") != args.end()) {
    std::cout << options;
    std::exit(0);
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw slt::UserError(std::string(e.what()) + "\n" + [&] {
      std::ostringstream s;
      s << options;
      return s.str();
    }());
  }
  return vm;
}

// Where slt-extract writes the features of a manifest's video: <first 5 chars>/<name, .mp4 -> .pt>.
fs::path feature_file(const fs::path& data_dir, const std::string& video_name) {
  std::string pt = video_name;
  if (size_t pos = pt.find(".mp4"); pos != std::string::npos) pt.replace(pos, 4, ".pt");
  return data_dir / video_name.substr(0, 5) / pt;
}

// scripts/get_feature_lengths.py: <stem>_features<ext> with the number of frames of each features file.
int feature_lengths(const std::vector<std::string>& args) {
  po::options_description options("slt-data feature-lengths");
  options.add_options()("manifest", po::value<std::string>()->required(), "manifest: video_name, duration, label")(
      "data-dir", po::value<std::string>()->required(), "features folder: <first 5 chars>/<name>.pt")(
      "output-dir", po::value<std::string>()->required(), "where <manifest stem>_features<ext> is written")(
      "num-procs", po::value<int>()->default_value(static_cast<int>(std::thread::hardware_concurrency())), "threads");
  auto vm = parse(options, args);
  fs::path manifest = vm["manifest"].as<std::string>(), data_dir = vm["data-dir"].as<std::string>();
  struct Row {
    std::string name, label;
    fs::path file;
    int64_t length = -1;
  };
  std::vector<Row> rows;
  auto in = open_input(manifest.string());
  std::string line;
  size_t columns = 0, number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto fields = slt::split(slt::trim(line), '\t');
    if (columns == 0) columns = fields.size();
    if (fields.size() != columns)
      throw slt::UserError(manifest.string() + ":" + std::to_string(number) + ": " + std::to_string(fields.size()) +
                           " columns, but the first line has " + std::to_string(columns));
    rows.push_back({fields[0], fields.back(), feature_file(data_dir, fields[0])});
  }
  std::atomic<size_t> missing{0};
  parallel_for(rows.size(), vm["num-procs"].as<int>(), "reading feature headers", [&](size_t i) {
    try {
      slt::PtTensorFile file(rows[i].file.string());
      rows[i].length = file.sizes().size() == 2 ? file.sizes()[0] : 1;
    } catch (const std::exception& e) {
      spdlog::warn("{}", e.what());  // recorded as -1, as the reference does
      ++missing;
    }
  });
  fs::create_directories(vm["output-dir"].as<std::string>());
  fs::path output = fs::path(vm["output-dir"].as<std::string>()) /
                    (manifest.stem().string() + "_features" + manifest.extension().string());
  std::ostringstream out;
  for (const auto& r : rows) out << r.name << "\t" << r.length << "\t" << r.label << "\n";
  std::string text = out.str();
  slt::write_file_atomically(output.string(), text.data(), text.size());
  spdlog::info("wrote {} ({} items, {} unreadable with length -1)", output.string(), rows.size(), missing.load());
  return 0;
}

// scripts/get_video_durations.py: video_name start end caption (with header) ->
// video_name duration caption, names numbered as NNNNNNN-<name>.mp4.
int video_durations(const std::vector<std::string>& args) {
  po::options_description options("slt-data video-durations");
  options.add_options()("manifest", po::value<std::string>()->required(), "manifest with header: video_name start end caption")(
      "data-dir", po::value<std::string>()->required(), "videos folder: <first 5 chars>/<name>")(
      "output", po::value<std::string>()->required(), "output manifest path")(
      "num-procs", po::value<int>()->default_value(static_cast<int>(std::thread::hardware_concurrency())), "threads");
  auto vm = parse(options, args);
  std::string manifest = vm["manifest"].as<std::string>();
  fs::path data_dir = vm["data-dir"].as<std::string>();
  auto in = open_input(manifest);
  std::string line;
  if (!std::getline(in, line)) throw slt::UserError(manifest + " is empty");
  auto header = slt::split(slt::trim(line), '\t');
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) throw slt::UserError(manifest + ":1: no '" + name + "' column in the header");
    return static_cast<size_t>(it - header.begin());
  };
  size_t name_col = column("video_name"), caption_col = column("caption");
  struct Row {
    std::string name, caption, duration;
  };
  std::vector<Row> rows;
  size_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto fields = slt::split(line, '\t');
    if (fields.size() != header.size())
      throw slt::UserError(manifest + ":" + std::to_string(number) + ": expected " + std::to_string(header.size()) +
                           " tab-separated columns");
    char numbered[16];
    std::snprintf(numbered, sizeof numbered, "%07zu", rows.size() + 1);
    rows.push_back({std::string(numbered) + "-" + fields[name_col] + ".mp4", fields[caption_col], ""});
  }
  std::atomic<size_t> failed{0};
  parallel_for(rows.size(), vm["num-procs"].as<int>(), "probing videos", [&](size_t i) {
    fs::path video = data_dir / rows[i].name.substr(0, 5) / rows[i].name;
    std::optional<double> seconds = slt::video::video_duration(video);
    if (!seconds) {
      spdlog::warn("cannot read the duration of {}; written as nan", video.string());
      rows[i].duration = "nan";
      ++failed;
      return;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.3f", *seconds);
    rows[i].duration = text;
  });
  std::ostringstream out;
  out << "video_name\tduration\tcaption\n";
  for (const auto& r : rows) out << r.name << "\t" << r.duration << "\t" << r.caption << "\n";
  std::string text = out.str();
  slt::write_file_atomically(vm["output"].as<std::string>(), text.data(), text.size());
  spdlog::info("wrote {} ({} videos, {} unreadable)", vm["output"].as<std::string>(), rows.size(), failed.load());
  return failed == 0 ? 0 : 1;
}

// scripts/train_spm.py: sentencepiece.model + dictionary.txt for the Tarrés model.
int train_tokenizer(const std::vector<std::string>& args) {
  std::vector<std::string> tsv_files;
  po::options_description options("slt-data train-tokenizer");
  options.add_options()("tsv-file", po::value(&tsv_files)->multitoken()->required(), "manifests: video_name, duration, caption")(
      "output-dir", po::value<std::string>()->required(), "folder for sentencepiece.model and dictionary.txt")(
      "vocab-size", po::value<int>()->required(), "vocabulary size")(
      "vocab-type", po::value<std::string>()->default_value("unigram"), "unigram, bpe, char or word")(
      "column", po::value<std::string>()->default_value("caption"), "video_name, duration or caption")(
      "lowercase", "lower-case the sentences (for models with model.lower_case=true)")(
      "num-threads", po::value<int>()->default_value(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      "SentencePiece training threads (1 is reproducible)");
  auto vm = parse(options, args);
  std::string type = vm["vocab-type"].as<std::string>();
  if (type != "unigram" && type != "bpe" && type != "char" && type != "word")
    throw slt::UserError("--vocab-type must be unigram, bpe, char or word, not '" + type + "'");
  std::string column_name = vm["column"].as<std::string>();
  size_t column = column_name == "video_name" ? 0 : column_name == "duration" ? 1 : column_name == "caption" ? 2 : 99;
  if (column == 99) throw slt::UserError("--column must be video_name, duration or caption");
  fs::path output_dir = vm["output-dir"].as<std::string>();
  fs::create_directories(output_dir);
  fs::path sentences = output_dir / "sentences.txt.tmp";
  {
    std::ofstream out(sentences);
    for (const auto& file : tsv_files) {
      auto in = open_input(file);
      std::string line;
      size_t number = 0;
      while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto fields = slt::split(line, '\t');
        if (fields.size() != 3)
          throw slt::UserError(file + ":" + std::to_string(number) + ": expected video_name<TAB>duration<TAB>caption");
        out << (vm.count("lowercase") ? slt::hf::python_lower(fields[column]) : fields[column]) << "\n";
      }
    }
  }
  fs::path model_file = output_dir / "sentencepiece.model";  // fairseq's layout, beside dictionary.txt
  fs::path prefix = output_dir / model_file.stem();
  std::string spm_args = "--input=" + sentences.string() + " --model_prefix=" + prefix.string() + " --model_type=" + type +
                         " --vocab_size=" + std::to_string(vm["vocab-size"].as<int>()) + " --character_coverage=1.0" +
                         " --num_threads=" + std::to_string(vm["num-threads"].as<int>()) +
                         " --unk_id=3 --bos_id=0 --eos_id=2 --pad_id=1";
  try {
    slt::spm::train(spm_args);
  } catch (...) {
    fs::remove(sentences);
    throw;
  }
  fs::remove(sentences);
  slt::spm::Model model(model_file.string());
  std::ostringstream dictionary;
  for (int32_t id = 0; id < model.piece_size(); ++id) {
    std::string piece = model.id_to_piece(id);
    if (piece == "<unk>" || piece == "<s>" || piece == "</s>" || piece == "<pad>") continue;
    dictionary << piece << " 1\n";
  }
  std::string text = dictionary.str();
  slt::write_file_atomically((output_dir / "dictionary.txt").string(), text.data(), text.size());
  spdlog::info("wrote {} and {}", model_file.string(), (output_dir / "dictionary.txt").string());
  return 0;
}

// A learnable toy dataset for smoke tests and benchmarks: each sentence gets a
// random 'sign' vector, and each of its items is that vector plus fresh noise
// on every frame. Train, val and test hold the same sentences with different noise.
int synthetic(const std::vector<std::string>& args) {
  po::options_description options("slt-data synthetic");
  options.add_options()("sentences", po::value<std::string>()->required(), "text file, one sentence a line")(
      "output-dir", po::value<std::string>()->required(), "dataset folder to create (manifests/, features/0/)")(
      "limit", po::value<int>()->default_value(0), "use the first N sentences (0: all)")(
      "train-copies", po::value<int>()->default_value(4), "train items per sentence")(
      "eval-copies", po::value<int>()->default_value(1), "val and test items per sentence")(
      "dim", po::value<int>()->default_value(768), "feature dimension")(
      "frames", po::value<int>()->default_value(16), "frames per item")(
      "noise", po::value<double>()->default_value(0.3), "standard deviation of the per-frame noise")(
      "seed", po::value<unsigned>()->default_value(1), "random seed")(
      "overwrite", "replace the manifests and features of a dataset already in --output-dir");
  auto vm = parse(options, args);
  const fs::path root = vm["output-dir"].as<std::string>();
  if (fs::exists(root) && !fs::is_directory(root))
    throw slt::UserError("--output-dir " + root.string() + " is a file, not a folder");
  if (!vm.count("overwrite") && (fs::exists(root / "manifests") || fs::exists(root / "features")))
    throw slt::UserError("--output-dir " + root.string() + " already holds a dataset (manifests/ or features/); "
                         "choose another folder, or add --overwrite to replace it");
  std::vector<std::string> sentences;
  {
    auto in = open_input(vm["sentences"].as<std::string>());
    std::string line;
    while (std::getline(in, line)) {
      std::string sentence(slt::trim(line));
      if (!sentence.empty()) sentences.push_back(sentence);
    }
  }
  size_t limit = static_cast<size_t>(std::max(0, vm["limit"].as<int>()));
  if (limit && limit < sentences.size()) sentences.resize(limit);
  if (sentences.empty()) throw slt::UserError(vm["sentences"].as<std::string>() + ": no sentences");
  const int dim = vm["dim"].as<int>(), frames = vm["frames"].as<int>();
  if (dim <= 0 || frames <= 0) throw slt::UserError("--dim and --frames must be positive");
  const double noise = vm["noise"].as<double>();
  std::mt19937 rng(vm["seed"].as<unsigned>());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> signs(sentences.size(), std::vector<float>(static_cast<size_t>(dim)));
  for (auto& sign : signs)
    for (auto& v : sign) v = normal(rng);
  fs::create_directories(root / "manifests");
  int64_t item = 0;
  for (const auto& [split, copies] : {std::pair<std::string, int>{"train", vm["train-copies"].as<int>()},
                                      {"val", vm["eval-copies"].as<int>()},
                                      {"test", vm["eval-copies"].as<int>()}}) {
    std::ostringstream manifest;
    for (int copy = 0; copy < copies; ++copy)
      for (size_t s = 0; s < sentences.size(); ++s) {
        char name[32];
        std::snprintf(name, sizeof name, "%07lld-synthetic", static_cast<long long>(item++));
        at::Tensor features = at::empty({frames, dim}, at::kFloat);
        float* data = features.data_ptr<float>();
        for (int t = 0; t < frames; ++t)
          for (int d = 0; d < dim; ++d)
            data[t * dim + d] = signs[s][static_cast<size_t>(d)] + static_cast<float>(noise) * normal(rng);
        fs::path folder = root / "features" / "0" / std::string(name).substr(0, 5);
        fs::create_directories(folder);
        slt::save_pt((folder / (std::string(name) + ".pt")).string(), features);
        manifest << name << ".mp4\t" << frames << "\t" << sentences[s] << "\n";
      }
    std::string text = manifest.str();
    slt::write_file_atomically((root / "manifests" / (split + "_features.tsv")).string(), text.data(), text.size());
  }
  spdlog::info("wrote {} items of {} sentences to {}", item, sentences.size(), root.string());
  return 0;
}

// scripts-style statistics for data.feature_stats: per-dimension mean and std
// over every frame of a split's features.
int feature_stats(const std::vector<std::string>& args) {
  po::options_description options("slt-data feature-stats");
  options.add_options()("manifest", po::value<std::string>()->required(), "manifest (training split): video_name first")(
      "data-dir", po::value<std::string>()->required(), "features folder: <first 5 chars>/<name>.pt")(
      "output", po::value<std::string>()->required(), "the .pt to write ({\"mean\": [D], \"std\": [D]})");
  auto vm = parse(options, args);
  const fs::path manifest = vm["manifest"].as<std::string>(), data_dir = vm["data-dir"].as<std::string>();
  std::vector<fs::path> files;
  auto in = open_input(manifest.string());
  std::string line;
  while (std::getline(in, line)) {
    line = slt::trim(line);
    if (line.empty()) continue;
    files.push_back(feature_file(data_dir, slt::split(line, '\t')[0]));
  }
  if (files.empty()) throw slt::UserError("'" + manifest.string() + "' lists no videos");
  const slt::FeatureStats stats = slt::compute_feature_stats(files);
  const fs::path output = vm["output"].as<std::string>();
  if (output.has_parent_path()) fs::create_directories(output.parent_path());
  stats.save(output);
  spdlog::info("wrote {} ({}-dimensional mean and std of {} files); train with data.feature_stats={}", output.string(),
               stats.dim(), files.size(), output.string());
  return 0;
}

// A generated sign-language video corpus in the reference layout (slt/synthsign/corpus.h).
int synthsign(const std::vector<std::string>& args) {
  po::options_description options("slt-data synthsign");
  options.add_options()("output-dir", po::value<std::string>()->required(), "dataset folder (manifests/, videos/)")(
      "train", po::value<int64_t>()->default_value(400), "training videos")(
      "val", po::value<int64_t>()->default_value(50), "validation videos")(
      "test", po::value<int64_t>()->default_value(50), "test videos")(
      "seed", po::value<uint64_t>()->default_value(0), "sentences and looks are a function of the seed")(
      "fps", po::value<int>()->default_value(25), "frames per second")(
      "threads", po::value<int>()->default_value(0), "videos made side by side (0: every core)");
  auto vm = parse(options, args);
  slt::synthsign::CorpusOptions corpus;
  corpus.output = vm["output-dir"].as<std::string>();
  corpus.train = vm["train"].as<int64_t>();
  corpus.val = vm["val"].as<int64_t>();
  corpus.test = vm["test"].as<int64_t>();
  corpus.seed = vm["seed"].as<uint64_t>();
  corpus.fps = vm["fps"].as<int>();
  corpus.threads = vm["threads"].as<int>();
  const auto summary = slt::synthsign::write_corpus(corpus);
  if (summary.complete_before)
    spdlog::info("SynthSign: {} is complete already (synthsign.json matches); nothing to do", corpus.output.string());
  else
    spdlog::info("SynthSign: {} videos written, {} kept from an earlier run, {} frames; manifests in {}",
                 summary.written, summary.reused, summary.frames, (corpus.output / "manifests").string());
  return 0;
}

int run(int argc, char** argv) {
  const std::string usage =
      "Usage: slt-data COMMAND [options]\n"
      "Commands:\n"
      "  feature-lengths   write <split>_features.tsv with each features file's length\n"
      "  video-durations   turn 'video_name start end caption' into 'video_name duration caption'\n"
      "  train-tokenizer   train sentencepiece.model + dictionary.txt (fairseq_spm) on manifest labels\n"
      "  feature-stats     per-dimension mean/std of a split's features (data.feature_stats)\n"
      "  synthsign         generate SynthSign, a sign-language video corpus (manifests + H.264 videos)\n"
      "  synthetic         write a small learnable features dataset (smoke tests, benchmarks)\n"
      "Run 'slt-data COMMAND --help' for its options.\n";
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << usage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "feature-lengths") return feature_lengths(args);
  if (command == "video-durations") return video_durations(args);
  if (command == "train-tokenizer") return train_tokenizer(args);
  if (command == "synthetic") return synthetic(args);
  if (command == "synthsign") return synthsign(args);
  if (command == "feature-stats") return feature_stats(args);
  throw slt::UserError("unknown command '" + command + "'\n" + usage);
}

}  // namespace

int main(int argc, char** argv) {
  slt::setup_logging("info");
  return slt::run_app("slt-data", run, argc, argv);
}
