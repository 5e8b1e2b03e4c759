// slt-translate: features in, sentences out.
//   slt-translate --model PATH [--tokenizer PATH] [--beams N] [--max-length N]
//                 [--device cpu|cuda] [--ids] [--json] INPUT.pt...
// PATH is a Hugging Face model folder, an slt run folder (config.yaml +
// best_model.pth) or a checkpoint file inside one.
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command_line.h"
#include "slt/app.h"
#include "slt/errors.h"
#include "slt/generation.h"
#include "slt/log.h"
#include "slt/model.h"
#include "slt/plugin_loader.h"
#include "slt/run_config.h"
#include "slt/tensor_io.h"
#include "slt/tokenizer.h"
#include "slt/trainer.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

struct Loaded {
  std::shared_ptr<slt::Seq2SeqModel> model;
  std::shared_ptr<slt::Tokenizer> tokenizer;
  std::string kind;
  slt::ConfigNode config;
  fs::path hf_folder;  // for the generation defaults, when there is one
};

Loaded load(const fs::path& path, const std::string& tokenizer_override) {
  Loaded out;
  fs::path checkpoint;
  if (fs::is_directory(path) && fs::exists(path / "config.json")) {  // Hugging Face folder
    std::ifstream in(path / "config.json");
    auto json = nlohmann::json::parse(in);
    std::string type = json.value("model_type", "");
    out.kind = type.find("t5") != std::string::npos ? "t5" : type.find("bart") != std::string::npos ? "bart" : "";
    if (out.kind.empty()) throw slt::UserError("'" + path.string() + "' has model_type '" + type + "'; slt translates with t5 and bart folders");
    out.config = slt::ConfigNode::map();
    out.config.set("model.name_or_path", path.string());
    if (json.contains("feature_dim")) out.config.set("model.feature_dim", json["feature_dim"].template get<int64_t>());
    out.config.set("model.dropout", 0.0);
    out.config.set("model.arch", out.kind);  // the folder's model_type, whatever the folder is called
  } else {
    fs::path run_dir = fs::is_directory(path) ? path : path.parent_path();
    checkpoint = fs::is_directory(path) ? run_dir / "best_model.pth" : path;
    if (!fs::exists(run_dir / "config.yaml"))
      throw slt::UserError("'" + path.string() + "' is neither a Hugging Face folder (config.json) nor an slt run (config.yaml next to the checkpoint)");
    if (!fs::exists(checkpoint)) throw slt::UserError("no checkpoint '" + checkpoint.string() + "'");
    out.config = slt::load_yaml_file((run_dir / "config.yaml").string());
  }
  slt::load_plugins(slt::plugin_search_path({}, &out.config));
  slt::ModelBundle bundle = slt::create_model_and_tokenizer(out.config, tokenizer_override);
  out.model = bundle.model;
  out.tokenizer = bundle.tokenizer;
  out.kind = bundle.kind;
  out.hf_folder = bundle.hf_folder;
  if (!checkpoint.empty()) slt::load_state_dict(out.model->module(), slt::load_checkpoint_weights(checkpoint.string()), checkpoint.string());
  out.model->module().eval();
  return out;
}

int run(int argc, char** argv) {
  std::vector<std::string> inputs;
  po::options_description options("Usage: slt-translate --model PATH [options] INPUT.pt...\nOptions");
  options.add_options()("help,h", "show this help")("model", po::value<std::string>(), "HF folder, slt run folder or checkpoint")(
      "tokenizer", po::value<std::string>()->default_value(""), "tokenizer folder (default: the model's)")(
      "beams", po::value<int64_t>(), "beam size (default: model.num_beams, or the folder's generation config)")(
      "max-length", po::value<int64_t>(), "longest output in tokens (default: data.max_target_positions or 128)")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu or cuda")("ids", "print token ids")(
      "json", "print one JSON object per input: input, text, ids, score");
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
  if (inputs.empty()) throw slt::UserError("no input: give one or more features .pt files");
  std::string device_name = vm["device"].as<std::string>();
  if (device_name != "cpu" && device_name != "cuda") throw slt::UserError("--device must be cpu or cuda");
  if (device_name == "cuda" && !at::hasCUDA()) throw slt::UserError("--device cuda, but CUDA is not available here; use --device cpu");
  at::Device device(device_name == "cuda" ? at::kCUDA : at::kCPU);

  Loaded loaded = load(vm["model"].as<std::string>(), vm["tokenizer"].as<std::string>());
  loaded.model->module().to(device);
  const slt::ConfigNode* max_target = loaded.config.at("data.max_target_positions");
  int64_t max_length = vm.count("max-length") ? vm["max-length"].as<int64_t>()
                       : max_target && max_target->type() == slt::ConfigNode::Type::Int ? max_target->as_int() : 128;
  const slt::ConfigNode* beams_key = loaded.config.at("model.num_beams");
  for (const auto& input : inputs) {
    fs::path file(input);
    if (file.extension() != ".pt")
      throw slt::UserError("'" + input + "': slt-translate reads features .pt files; video input needs feature extraction, which this build does not have yet");
    at::Tensor features = slt::load_pt_tensor(input).to(at::kFloat);
    if (features.dim() != 2) throw slt::UserError("'" + input + "' is not a [frames, feature_dim] tensor");
    features = features.unsqueeze(0).to(device);
    auto mask = at::ones({1, features.size(1)}, at::TensorOptions().device(device));
    std::vector<int64_t> ids;
    double score = 0;
    if (loaded.kind == "tarres") {
      slt::FairseqGenerationConfig config;
      if (vm.count("beams")) config.beam = vm["beams"].as<int64_t>();
      auto hyp = slt::generate_fairseq(*loaded.model, features, mask, config)[0][0];
      ids = hyp.tokens;
      score = hyp.score;
    } else {
      slt::GenerationConfig config = slt::read_generation_config(loaded.hf_folder);
      config.max_length = max_length;
      config.num_beams = vm.count("beams") ? vm["beams"].as<int64_t>()
                         : beams_key && beams_key->type() == slt::ConfigNode::Type::Int ? beams_key->as_int()
                                                                                      : config.num_beams;
      auto out = slt::generate(*loaded.model, features, mask, config);
      auto row = out.sequences[0].cpu();
      ids.assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
      if (out.sequences_scores.defined()) score = out.sequences_scores[0].item<double>();
    }
    std::string text = loaded.tokenizer->decode(ids, true);
    if (vm.count("json")) {
      nlohmann::ordered_json j = {{"input", input}, {"text", text}, {"ids", ids}, {"score", score}};
      std::cout << j.dump() << "\n";
    } else if (vm.count("ids")) {
      for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
      std::cout << "\n";
    } else {
      std::cout << text << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  slt::setup_logging("warn");
  return slt::run_app("slt-translate", run, argc, argv);
}
