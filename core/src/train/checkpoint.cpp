#include "slt/train/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/core/Dict.h>
#include <c10/util/string_utils.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "slt/errors.h"
#include "slt/io/tensor_io.h"

namespace fs = std::filesystem;

namespace slt {

std::string checkpoint_name(int64_t epoch) {
  char name[32];
  std::snprintf(name, sizeof name, "checkpoint-%05lld.pth", static_cast<long long>(epoch));
  return name;
}

std::vector<fs::path> list_checkpoints(const fs::path& dir) {
  static const std::regex pattern(R"(checkpoint-\d+\.pth)");
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (std::regex_match(entry.path().filename().string(), pattern)) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

void remove_unfinished_writes(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.find(".pth.tmp.") != std::string::npos) {
      spdlog::warn("removing {} (an unfinished checkpoint write)", entry.path().string());
      fs::remove(entry.path(), ec);
    }
  }
}

std::optional<fs::path> checkpoint_to_resume(const fs::path& output_dir, const std::optional<std::string>& resume) {
  if (resume) {
    fs::path path = *resume;
    if (fs::is_directory(path)) {
      auto found = list_checkpoints(path);
      if (found.empty()) throw UserError("common.resume=" + *resume + ": no checkpoint-NNNNN.pth in that folder");
      path = found.back();
    }
    if (!fs::exists(path)) throw UserError("common.resume=" + *resume + ": no such checkpoint");
    return path;
  }
  auto found = list_checkpoints(output_dir);
  if (found.empty()) return std::nullopt;
  return found.back();
}

c10::IValue config_to_ivalue(const ConfigNode& node) {
  switch (node.type()) {
    case ConfigNode::Type::Null: return c10::IValue();
    case ConfigNode::Type::Bool: return node.as_bool();
    case ConfigNode::Type::Int: return node.as_int();
    case ConfigNode::Type::Float: return node.as_double();
    case ConfigNode::Type::String: return node.as_string();
    case ConfigNode::Type::List: {
      c10::impl::GenericList list(c10::AnyType::get());
      for (const auto& e : node.elements()) list.push_back(config_to_ivalue(e));
      return list;
    }
    case ConfigNode::Type::Map: {
      c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
      for (const auto& [k, v] : node.items()) dict.insert(k, config_to_ivalue(v));
      return dict;
    }
  }
  return c10::IValue();
}

namespace {

// Keys whose change makes another experiment: the seed, the model, the data,
// the loss and the optimizer. A resume may still train longer (optim.epochs),
// stop differently, evaluate with another batch size or beam, and read the
// data from a moved folder; logging, I/O, devices and workers are free.
bool weights_depend_on(const std::string& key) {
  static const char* const kSections[] = {"model.", "data.", "criterion.", "optim."};
  static const char* const kKeys[] = {"common.seed", "debug", "fairseq"};
  static const char* const kFree[] = {"optim.epochs", "optim.patience", "optim.early_stopping", "optim.val_batch_size",
                                      "optim.epoch_offset", "data.train_data_dirs", "data.val_data_dir",
                                      "model.num_beams"};
  for (const char* k : kFree)
    if (key == k) return false;
  for (const char* k : kKeys)
    if (key == k) return true;
  for (const char* section : kSections)
    if (key.rfind(section, 0) == 0) return true;
  return false;
}

std::string ivalue_text(const c10::IValue& v) {
  if (v.isNone()) return "null";
  if (v.isBool()) return v.toBool() ? "true" : "false";
  if (v.isInt()) return std::to_string(v.toInt());
  if (v.isDouble()) return fmt::format("{}", v.toDouble());
  if (v.isString()) return v.toStringRef();
  if (v.isList()) {
    std::string out = "[";
    for (const auto& e : v.toListRef()) out += (out.size() > 1 ? ", " : "") + ivalue_text(e);
    return out + "]";
  }
  return "<" + v.tagKind() + ">";
}

bool same_value(const c10::IValue& saved, const ConfigNode& now) {
  using T = ConfigNode::Type;
  switch (now.type()) {
    case T::Null: return saved.isNone();
    case T::Bool: return saved.isBool() && saved.toBool() == now.as_bool();
    case T::Int:
    case T::Float: {
      if (!saved.isInt() && !saved.isDouble()) return false;
      const double a = saved.isInt() ? static_cast<double>(saved.toInt()) : saved.toDouble();
      const double b = now.as_double();
      return a == b || std::abs(a - b) <= 1e-12 * std::max(std::abs(a), std::abs(b));
    }
    case T::String: return saved.isString() && saved.toStringRef() == now.as_string();
    case T::List: {
      if (!saved.isList() || saved.toListRef().size() != now.elements().size()) return false;
      for (size_t i = 0; i < now.elements().size(); ++i)
        if (!same_value(saved.toListRef()[i], now.elements()[i])) return false;
      return true;
    }
    case T::Map: return saved.isGenericDict() && saved.toGenericDict().empty() && now.items().empty();
  }
  return false;
}

void collect_changes(const c10::IValue& saved, const ConfigNode& now, const std::string& prefix,
                     std::vector<std::string>& changes) {
  if (now.is_map() && saved.isGenericDict() && !now.items().empty()) {
    for (const auto& [key, value] : now.items()) {
      const c10::IValue* old = dict_get(saved, key);
      if (old) collect_changes(*old, value, prefix.empty() ? key : prefix + "." + key, changes);
    }
    return;
  }
  if (!weights_depend_on(prefix) || same_value(saved, now)) return;
  changes.push_back(prefix + ": " + ivalue_text(saved) + " -> " +
                    (now.is_scalar() || now.is_null() ? now.scalar_text() : now.to_yaml()));
}

}  // namespace

std::vector<std::string> config_changes(const c10::IValue& saved_cfg, const ConfigNode& job) {
  std::vector<std::string> changes;
  if (saved_cfg.isGenericDict()) collect_changes(saved_cfg, job, "", changes);
  return changes;
}

const c10::IValue* dict_get(const c10::IValue& dict, const std::string& key) {
  if (!dict.isGenericDict()) return nullptr;
  auto d = dict.toGenericDict();
  auto it = d.find(key);
  return it == d.end() ? nullptr : &it->value();
}

double ivalue_double(const c10::IValue& v) {
  if (v.isDouble()) return v.toDouble();
  if (v.isInt()) return static_cast<double>(v.toInt());
  if (v.isTensor()) return v.toTensor().item<double>();
  throw Error("expected a number in the checkpoint");
}

c10::IValue adamw_state_dict(torch::optim::AdamW& optimizer) {
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  c10::impl::GenericList groups(c10::AnyType::get());
  int64_t index = 0;
  for (auto& group : optimizer.param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    c10::impl::GenericDict g(c10::StringType::get(), c10::AnyType::get());
    g.insert("lr", options.lr());
    g.insert("betas", c10::ivalue::Tuple::create({std::get<0>(options.betas()), std::get<1>(options.betas())}));
    g.insert("eps", options.eps());
    g.insert("weight_decay", options.weight_decay());
    g.insert("amsgrad", options.amsgrad());
    g.insert("foreach", c10::IValue());
    g.insert("maximize", false);
    g.insert("capturable", false);
    c10::impl::GenericList params(c10::AnyType::get());
    for (const auto& p : group.params()) {
      auto it = optimizer.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it != optimizer.state().end()) {
        auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
        c10::impl::GenericDict entry(c10::StringType::get(), c10::AnyType::get());
        entry.insert("step", at::scalar_tensor(static_cast<double>(s.step()), at::kFloat));
        entry.insert("exp_avg", s.exp_avg().cpu());
        entry.insert("exp_avg_sq", s.exp_avg_sq().cpu());
        state.insert(index, entry);
      }
      params.push_back(index++);
    }
    g.insert("params", params);
    groups.push_back(g);
  }
  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  out.insert("state", state);
  out.insert("param_groups", groups);
  return out;
}

void load_adamw_state(torch::optim::AdamW& optimizer, const c10::IValue& saved, const std::string& source) {
  const c10::IValue* state = dict_get(saved, "state");
  const c10::IValue* groups = dict_get(saved, "param_groups");
  if (!state || !groups || !state->isGenericDict() || !groups->isList())
    throw TensorFileError("'" + source + "': the optimizer entry is not an optimizer state_dict");
  auto saved_groups = groups->toList();
  auto& param_groups = optimizer.param_groups();
  if (saved_groups.size() != param_groups.size())
    throw TensorFileError("'" + source + "': optimizer has " + std::to_string(saved_groups.size()) +
                          " parameter groups, the model " + std::to_string(param_groups.size()));
  auto states = state->toGenericDict();
  int64_t index = 0;
  for (size_t g = 0; g < param_groups.size(); ++g) {
    c10::IValue saved_group = saved_groups.get(g);
    if (const c10::IValue* lr = dict_get(saved_group, "lr"))
      static_cast<torch::optim::AdamWOptions&>(param_groups[g].options()).lr(ivalue_double(*lr));
    for (const auto& p : param_groups[g].params()) {
      auto it = states.find(index++);
      if (it == states.end()) continue;
      const c10::IValue& entry = it->value();
      auto param_state = std::make_unique<torch::optim::AdamWParamState>();
      param_state->step(static_cast<int64_t>(ivalue_double(*dict_get(entry, "step"))));
      param_state->exp_avg(dict_get(entry, "exp_avg")->toTensor().to(p.device()));
      param_state->exp_avg_sq(dict_get(entry, "exp_avg_sq")->toTensor().to(p.device()));
      if (!param_state->exp_avg().sizes().equals(p.sizes()))
        throw TensorFileError("'" + source + "': optimizer state " + std::to_string(index - 1) +
                              " does not match the model's parameter shape");
      optimizer.state()[c10::guts::to_string(p.unsafeGetTensorImpl())] = std::move(param_state);
    }
  }
}

}  // namespace slt
