// slt-translate: features or videos in, sentences out.
//   slt-translate --model PATH [--tokenizer PATH] [--beams N] [--max-length N] [--batch-size N]
//                 [--device cpu|cuda] [--ids] [--json] INPUT.pt...
//   slt-translate --model PATH --extractor SIGNHIERA.pth model_name=NAME [extraction keys] VIDEO.mp4...
//   slt-translate --model RUN_DIR VIDEO.mp4...   (the run records the extractor its features came from)
// PATH is a Hugging Face model folder, an slt run folder (config.yaml +
// best_model.pth) or a checkpoint file inside one.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <set>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "command_line.h"
#include "slt/runtime/app.h"
#include "slt/errors.h"
#include "slt/model/generation.h"
#include "slt/runtime/log.h"
#include "slt/model/model.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/io/tensor_io.h"
#include "slt/data/dataset.h"
#include "slt/data/tokenizer.h"
#include "slt/runtime/components.h"
#include "slt/runtime/threads.h"
#include "slt/train/checkpoint.h"
#include "slt/config/overrides.h"
#include "slt/model/video_encoder.h"
#include "slt/data/feature_stats.h"
#include "slt/data/loader.h"
#include "slt/video/extractor.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

// The model, tokenizer and search of PATH, built as slt-run builds them
// (`search` overrides the run's model.num_beams / data.max_target_positions),
// with what the features must look like for it.
struct LoadedModel {
  slt::ModelBundle bundle;
  std::shared_ptr<const slt::FeatureStats> normalize;  // the run's data.feature_stats
  std::optional<int64_t> feature_dim;                  // the run's model.feature_dim
};

LoadedModel load(const fs::path& path, const std::string& tokenizer_override, const slt::SearchOptions& search,
                 const std::string& device) {
  LoadedModel loaded;
  slt::ConfigNode config;
  fs::path checkpoint;
  if (fs::is_directory(path) && fs::exists(path / "config.json")) {  // Hugging Face folder: its model_type decides
    config = slt::ConfigNode::map();
    config.set("model.name_or_path", path.string());
    config.set("model.dropout", 0.0);
  } else {
    fs::path run_dir = fs::is_directory(path) ? path : path.parent_path();
    checkpoint = fs::is_directory(path) ? run_dir / "best_model.pth" : path;
    if (fs::is_directory(path) && !fs::exists(checkpoint)) {
      // No validation BLEU-4 above 0 yet: the newest checkpoint is the model there is.
      auto checkpoints = slt::list_checkpoints(run_dir);
      if (!checkpoints.empty()) {
        spdlog::warn("{} has no best_model.pth (no validation BLEU-4 above 0): translating with {}", run_dir.string(),
                     checkpoints.back().filename().string());
        checkpoint = checkpoints.back();
      }
    }
    if (!fs::exists(run_dir / "config.yaml"))
      throw slt::UserError("'" + path.string() + "' is neither a Hugging Face folder (config.json) nor an slt run (config.yaml next to the checkpoint)");
    if (!fs::exists(checkpoint)) throw slt::UserError("no checkpoint '" + checkpoint.string() + "'");
    config = slt::load_yaml_file((run_dir / "config.yaml").string());
    loaded.normalize = slt::feature_normalization(config);  // as the run trained on them
    loaded.feature_dim = config.get<int64_t>("model.feature_dim");
  }
  if (search.num_beams) config.set("model.num_beams", *search.num_beams);
  if (search.max_length) config.set("data.max_target_positions", *search.max_length);
  if (!config.at("data.max_target_positions")) config.set("data.max_target_positions", int64_t{128});
  slt::load_plugins(slt::plugin_search_path({}, &config));
  loaded.bundle = slt::create_model_and_tokenizer(config, tokenizer_override, device);
  if (search.length_cap) {  // --max-length binds every search, fairseq's too
    slt::SearchOptions options = search;
    options.num_beams = config.get<int64_t>("model.num_beams");
    loaded.bundle.search = loaded.bundle.model->make_search(options);
  }
  if (!checkpoint.empty()) slt::load_checkpoint_into(loaded.bundle.model->module(), checkpoint.string(), loaded.bundle.kind);
  loaded.bundle.model->module().eval();
  return loaded;
}

// Features the model can translate: [frames > 0, feature_dim], all finite.
void check_features(const at::Tensor& features, const std::string& input, std::optional<int64_t> feature_dim) {
  if (features.dim() != 2) throw slt::UserError("'" + input + "' is not a [frames, feature_dim] tensor");
  if (features.size(0) == 0) throw slt::UserError("'" + input + "' holds no frames");
  if (feature_dim && features.size(1) != *feature_dim)
    throw slt::UserError("'" + input + "' has " + std::to_string(features.size(1)) +
                         " values per frame, but the model's model.feature_dim is " + std::to_string(*feature_dim));
  const at::Tensor values = features.to(at::kFloat).contiguous().cpu();
  slt::require_finite_features(values.data_ptr<float>(), values.size(0), values.size(1), input);
}

// The extraction job for --extractor: slt-extract's keys and defaults with
// the key=value arguments applied (model_name, num_frames, model.embed_dim, ...).
slt::ConfigNode extraction_job(const std::string& checkpoint, const std::vector<std::string>& assignments) {
  slt::video::register_extract_config();
  slt::ConfigNode job = slt::video::extract_schema().defaults();
  job.set("pretrained_model_path", checkpoint);
  for (const auto& text : assignments) {
    slt::Override o = slt::parse_override(text);
    if (o.kind != slt::Override::Kind::Change || o.values.size() != 1)
      throw slt::UserError("'" + text + "': extraction keys are given as key=value");
    job.set(o.key, o.values[0]);
  }
  slt::video::validate_extract_job(job);
  if (job.at("model_name")->is_missing())
    throw slt::UserError("--extractor needs the encoder's preset: add model_name=hiera_base_128x224 (or another "
                         "video_encoder from slt-run --list-plugins) and its model.* keys");
  return job;
}

// As model.num_beams and data.max_target_positions allow in a run config.
constexpr int64_t kMaxBeams = 256;
constexpr int64_t kMaxLength = 65536;
constexpr int64_t kMaxBatch = 4096;
// Inputs read ahead and sorted by length before their batches are formed:
// enough for batches of similar lengths, few enough to print as we go.
constexpr int64_t kBatchesPerWindow = 8;

bool is_video(const fs::path& file) {
  static const std::set<std::string> extensions = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"};
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return extensions.count(ext) > 0;
}

int run(int argc, char** argv) {
  std::vector<std::string> inputs;
  po::options_description options("Usage: slt-translate --model PATH [options] INPUT.pt...\nOptions");
  options.add_options()("help,h", "show this help")("model", po::value<std::string>(), "HF folder, slt run folder or checkpoint")(
      "tokenizer", po::value<std::string>()->default_value(""), "tokenizer folder (default: the model's)")(
      "beams", po::value<int64_t>(), "beam size (default: model.num_beams, or the folder's generation config)")(
      "max-length", po::value<int64_t>(), "longest output in tokens (default: data.max_target_positions or 128)")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu or cuda")(
      "threads", po::value<int64_t>(), "CPU threads (default: every usable CPU, or OMP_NUM_THREADS)")(
      "batch-size", po::value<int64_t>()->default_value(16),
      "inputs translated together, grouped by length (each translation is the same as alone)")(
      "ids", "print token ids")(
      "json", "print one JSON object per input: input, text, ids, score")(
      "extractor", po::value<std::string>(), "SignHiera checkpoint: translate videos (with key=value extraction keys)");
  po::options_description hidden;
  hidden.add_options()("inputs", po::value(&inputs)->composing());
  po::positional_options_description positional;
  positional.add("inputs", -1);
  auto vm = slt::parse_command_line("slt-translate", argc, argv, options, hidden, positional);
  if (vm.count("help")) {
    std::cout << options;
    return 0;
  }
  if (!vm.count("model")) throw slt::UserError("--model PATH is required (see slt-translate --help)");
  std::vector<std::string> assignments, files;
  for (const auto& input : inputs) (input.find('=') != std::string::npos ? assignments : files).push_back(input);
  if (files.empty()) throw slt::UserError("no input: give one or more features .pt files (or videos with --extractor)");
  if (!assignments.empty() && !vm.count("extractor"))
    throw slt::UserError("'" + assignments.front() + "': key=value arguments are extraction keys and need --extractor");
  std::string device_name = vm["device"].as<std::string>();
  if (device_name != "cpu" && device_name != "cuda") throw slt::UserError("--device must be cpu or cuda");
  if (device_name == "cuda" && !at::hasCUDA()) throw slt::UserError("--device cuda, but CUDA is not available here; use --device cpu");
  at::Device device(device_name == "cuda" ? at::kCUDA : at::kCPU);

  slt::configure_threads(vm.count("threads") ? std::optional<int64_t>(vm["threads"].as<int64_t>()) : std::nullopt);
  slt::SearchOptions search;
  if (vm.count("beams")) {
    search.num_beams = vm["beams"].as<int64_t>();
    if (*search.num_beams < 1 || *search.num_beams > kMaxBeams)
      throw slt::UserError("--beams must be from 1 to " + std::to_string(kMaxBeams));
  }
  if (vm.count("max-length")) {
    search.max_length = search.length_cap = vm["max-length"].as<int64_t>();
    if (*search.max_length < 1 || *search.max_length > kMaxLength)
      throw slt::UserError("--max-length must be from 1 to " + std::to_string(kMaxLength));
  }
  const int64_t batch_size = vm["batch-size"].as<int64_t>();
  if (batch_size < 1 || batch_size > kMaxBatch) throw slt::UserError("--batch-size must be from 1 to " + std::to_string(kMaxBatch));
  LoadedModel loaded = load(vm["model"].as<std::string>(), vm["tokenizer"].as<std::string>(), search, device_name);
  slt::ModelBundle& bundle = loaded.bundle;
  bundle.model->module().to(device);
  std::shared_ptr<slt::VideoEncoder> encoder;
  slt::ConfigNode extraction;
  const fs::path model_path = vm["model"].as<std::string>();
  const fs::path recorded = (fs::is_directory(model_path) ? model_path : model_path.parent_path()) / slt::video::kExtractorRecord;
  if (vm.count("extractor")) {
    extraction = extraction_job(vm["extractor"].as<std::string>(), assignments);
  } else if (fs::is_regular_file(recorded) && std::any_of(files.begin(), files.end(), [](const std::string& f) { return is_video(f); })) {
    extraction = slt::video::read_extractor_record(recorded);  // the extractor the run was trained on
    spdlog::debug("videos go through the extractor recorded in {}", recorded.string());
  }
  if (extraction.is_map()) {
    encoder = slt::video::open_video_encoder(extraction);
    encoder->module().to(device);
  }
  auto print = [&](const std::string& input, const slt::Translation& best) {
    const std::vector<int64_t>& ids = best.tokens;
    std::string text = bundle.tokenizer->decode(ids, true);
    if (vm.count("json")) {
      nlohmann::ordered_json j = {{"input", input}, {"text", text}, {"ids", ids}, {"score", best.score}};
      std::cout << j.dump() << "\n";
    } else if (vm.count("ids")) {
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    } else {
      std::cout << text << "\n";
    }
  };
  const size_t window = static_cast<size_t>(batch_size * kBatchesPerWindow);
  for (size_t first = 0; first < files.size(); first += window) {
    const size_t last = std::min(files.size(), first + window);
    std::vector<at::Tensor> features;
    for (size_t k = first; k < last; ++k) {
      const std::string& input = files[k];
      fs::path file(input);
      at::Tensor f;
      if (is_video(file)) {
        if (!encoder)
          throw slt::UserError("'" + input + "' is a video and the model records no extractor.yaml: give the feature "
                               "extractor with --extractor SIGNHIERA.pth "
                               "model_name=NAME (and the model.* keys it was built with)");
        at::InferenceMode inference;
        f = slt::video::extract_video_features(*encoder, file, slt::video::video_feature_options(extraction)).clone();
      } else if (file.extension() == ".pt") {
        f = slt::load_pt_tensor(input).to(at::kFloat);
      } else {
        throw slt::UserError("'" + input + "': slt-translate reads features .pt files and videos (.mp4, .mov, .mkv, ...)");
      }
      check_features(f, input, loaded.feature_dim);
      if (loaded.normalize) f = loaded.normalize->apply(f.cpu(), input);
      features.push_back(f.to(at::kFloat).cpu());
    }
    auto best = slt::translate_by_length(*bundle.search, *bundle.model, features, batch_size, device);
    for (size_t k = first; k < last; ++k) print(files[k], best[k - first]);
    std::cout.flush();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  slt::setup_logging("warn");
  return slt::run_app("slt-translate", run, argc, argv);
}
