#include "slt/model/model.h"

#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "slt/errors.h"
#include "slt/io/files.h"
#include "slt/text/text.h"

namespace fs = std::filesystem;

namespace slt {

LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors, const std::string& source,
                           const std::set<std::string>& expected_missing,
                           const std::vector<std::pair<std::string, std::string>>& aliases) {
  std::map<std::string, at::Tensor> targets;
  for (const auto& p : module.named_parameters()) targets[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) targets[b.key()] = b.value();
  std::set<std::string> loaded;
  LoadReport report;
  for (const auto& [file_name, tensor] : tensors) {
    std::string name = file_name;
    for (const auto& [from, to] : aliases)
      if (name.rfind(from, 0) == 0) name = to + name.substr(from.size());
    auto it = targets.find(name);
    if (it == targets.end()) {
      report.unexpected.push_back(file_name);
      continue;
    }
    if (it->second.sizes() != tensor.sizes()) {
      std::ostringstream msg;
      msg << "cannot load '" << file_name << "' from " << source << ": it has shape " << tensor.sizes()
          << " but the model expects " << it->second.sizes();
      throw UserError(msg.str());
    }
    at::NoGradGuard no_grad;
    it->second.copy_(tensor);
    loaded.insert(name);
  }
  for (const auto& [name, tensor] : targets)
    if (!loaded.count(name) && !expected_missing.count(name)) report.missing.push_back(name);
  report.loaded = loaded.size();
  if (!report.missing.empty())
    spdlog::warn("{}: {} weights not found and left as initialised: {}", source, report.missing.size(),
                 join(report.missing));
  if (!report.unexpected.empty())
    spdlog::info("{}: {} weights not used by the model: {}", source, report.unexpected.size(), join(report.unexpected));
  return report;
}

fs::path resolve_model_folder(const std::string& name_or_path) {
  if (fs::is_directory(name_or_path)) return name_or_path;
  std::vector<fs::path> roots;
  if (const char* hub = std::getenv("HUGGINGFACE_HUB_CACHE")) roots.emplace_back(hub);
  if (const char* home = std::getenv("HF_HOME")) roots.push_back(fs::path(home) / "hub");
  if (const char* xdg = std::getenv("XDG_CACHE_HOME")) roots.push_back(fs::path(xdg) / "huggingface" / "hub");
  if (const char* user = std::getenv("HOME")) roots.push_back(fs::path(user) / ".cache" / "huggingface" / "hub");
  std::string repo = "models--" + name_or_path;
  for (size_t pos; (pos = repo.find('/')) != std::string::npos;) repo.replace(pos, 1, "--");
  std::vector<std::string> looked = {fs::absolute(name_or_path).string()};
  for (const auto& root : roots) {
    fs::path base = root / repo;
    looked.push_back((base / "snapshots").string());
    if (!fs::is_directory(base / "snapshots")) continue;
    std::ifstream ref(base / "refs" / "main");
    std::string commit;
    if (ref && std::getline(ref, commit) && fs::is_directory(base / "snapshots" / commit)) return base / "snapshots" / commit;
    for (const auto& entry : fs::directory_iterator(base / "snapshots"))
      if (entry.is_directory()) return entry.path();
  }
  throw UserError("model '" + name_or_path + "' not found; slt downloads nothing. Looked in: " + join(looked) +
                  ". Put the Hugging Face model folder (config.json, weights, tokenizer files) there, e.g. with "
                  "`huggingface-cli download " + name_or_path + "` on a machine with network access, "
                  "or set model.name_or_path to the folder");
}

NamedTensors load_checkpoint_weights(const std::string& path) {
  c10::IValue value = load_pt(path);
  if (value.isGenericDict()) {
    auto dict = value.toGenericDict();
    c10::IValue key(std::string("model"));
    if (dict.contains(key)) return flatten_tensors(dict.at(key), path);
  }
  return flatten_tensors(value, path);
}

LoadReport load_checkpoint_into(torch::nn::Module& module, const std::string& path, const std::string& model_kind) {
  LoadReport report = load_state_dict(module, load_checkpoint_weights(path), path);
  if (report.loaded == 0)
    throw UserError("'" + path + "': none of its tensors is a weight of the " + model_kind +
                    " model configured here (is it a checkpoint of another model?)");
  return report;
}

NamedTensors load_hf_weights(const fs::path& folder) {
  for (const char* name : {"model.safetensors", "model.safetensors.index.json"})
    if (fs::exists(folder / name)) return load_safetensors((folder / name).string());
  if (fs::exists(folder / "pytorch_model.bin")) {
    std::string path = (folder / "pytorch_model.bin").string();
    return flatten_tensors(load_pt(path), path);
  }
  if (fs::exists(folder / "pytorch_model.bin.index.json")) {
    const fs::path index_path = folder / "pytorch_model.bin.index.json";
    std::ifstream in = open_regular_file(index_path, "weights index");
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw UserError("'" + index_path.string() + "' is not valid JSON: " + e.what());
    }
    std::vector<std::string> shards;
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw UserError("'" + index_path.string() + "' has no \"weight_map\" object");
    for (const auto& [name, shard] : index.at("weight_map").items())
      if (std::find(shards.begin(), shards.end(), shard.get<std::string>()) == shards.end())
        shards.push_back(shard.get<std::string>());
    NamedTensors all;
    for (const auto& shard : shards) {
      std::string path = (folder / shard).string();
      auto part = flatten_tensors(load_pt(path), path);
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }
  throw UserError("no weights in '" + folder.string() +
                  "': expected model.safetensors, pytorch_model.bin or their .index.json");
}

}  // namespace slt
