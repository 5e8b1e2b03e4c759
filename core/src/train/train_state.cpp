#include "slt/train/train_state.h"

#include <ATen/ATen.h>
#include <ATen/core/Dict.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <regex>

#include "slt/errors.h"
#include "slt/io/tensor_io.h"
#include "slt/train/checkpoint.h"
#include "slt/version.h"

namespace slt {

void TrainState::start_epoch() {
  if (batches_done != 0) return;
  best_bleu_at_epoch_start = best_bleu;
  epoch_loss = {};
  epoch_acc = {};
}

bool TrainState::record_step_evaluation(double bleu4) {
  if (bleu4 <= best_bleu) return false;
  best_bleu = bleu4;
  return true;
}

TrainState::EpochVerdict TrainState::close_epoch(double bleu4, int64_t patience_limit, bool early_stopping) {
  EpochVerdict verdict;
  const double best_inner = best_bleu;  // includes this epoch's step evaluations
  if (bleu4 <= best_bleu_at_epoch_start && best_inner <= best_bleu_at_epoch_start) {
    --patience;
  } else {
    patience = patience_limit;
    verdict.is_best = bleu4 > best_inner;
  }
  best_bleu = std::max({best_bleu_at_epoch_start, best_inner, bleu4});
  verdict.stop = early_stopping && patience <= 0;
  stopped_early = verdict.stop;
  return verdict;
}

namespace {

at::Generator cuda_generator(const c10::Device& device) {
  return at::detail::getCUDAHooks().getDefaultCUDAGenerator(device.index() < 0 ? 0 : device.index());
}

}  // namespace

c10::IValue train_state_entry(const TrainState& state, bool epoch_finished, const std::string& model_kind,
                              const c10::Device& device) {
  c10::impl::GenericDict entry(c10::StringType::get(), c10::AnyType::get());
  entry.insert("version", kTrainStateVersion);
  entry.insert("slt_version", std::string(SLT_VERSION_STRING));
  entry.insert("model_kind", model_kind);
  entry.insert("resume_epoch", epoch_finished ? state.epoch + 1 : state.epoch);
  entry.insert("batches_done", epoch_finished ? int64_t{0} : state.batches_done);
  entry.insert("optimizer_steps", state.optimizer_steps);
  entry.insert("best_bleu", state.best_bleu);
  entry.insert("best_bleu_at_epoch_start", state.best_bleu_at_epoch_start);
  entry.insert("patience", state.patience);
  entry.insert("stopped_early", state.stopped_early);
  entry.insert("epoch_loss", c10::ivalue::Tuple::create({state.epoch_loss.total, state.epoch_loss.count}));
  entry.insert("epoch_acc", c10::ivalue::Tuple::create({state.epoch_acc.total, state.epoch_acc.count}));
  entry.insert("metrics_bytes", static_cast<int64_t>(state.metrics_bytes));
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    entry.insert("rng_cpu", generator.get_state());
  }
  if (device.is_cuda()) {
    auto generator = cuda_generator(device);
    std::lock_guard<std::mutex> lock(generator.mutex());
    entry.insert("rng_cuda", generator.get_state());
  }
  return entry;
}

bool restore_train_state(const c10::IValue& checkpoint, const std::filesystem::path& path, TrainState& state,
                         const c10::Device& device) {
  const c10::IValue* trainer = dict_get(checkpoint, "slt");
  if (!trainer) {
    const c10::IValue* epoch = dict_get(checkpoint, "epoch");
    std::smatch match;
    std::string name = path.filename().string();
    if (epoch) state.epoch = static_cast<int64_t>(ivalue_double(*epoch)) + 1;
    else if (std::regex_match(name, match, std::regex(R"(.*-(\d+)\.pth)"))) state.epoch = std::stoll(match[1]) + 1;
    else spdlog::warn("'{}' says nothing of its epoch: starting at epoch {}", path.string(), state.epoch);
    spdlog::warn("'{}' was not written by slt: best BLEU and patience start afresh, as the reference does",
                 path.string());
    return false;
  }
  int64_t version = static_cast<int64_t>(ivalue_double(*dict_get(*trainer, "version")));
  if (version > kTrainStateVersion)
    throw TensorFileError("'" + path.string() + "' has training state version " + std::to_string(version) +
                          "; this slt reads up to version " + std::to_string(kTrainStateVersion) +
                          ": resume it with a newer slt");
  auto get = [&](const char* key) {
    const c10::IValue* v = dict_get(*trainer, key);
    if (!v) throw TensorFileError("'" + path.string() + "': training state lacks '" + key + "'");
    return *v;
  };
  state.epoch = get("resume_epoch").toInt();
  state.batches_done = get("batches_done").toInt();
  state.optimizer_steps = get("optimizer_steps").toInt();
  state.best_bleu = get("best_bleu").toDouble();
  state.best_bleu_at_epoch_start = get("best_bleu_at_epoch_start").toDouble();
  state.patience = get("patience").toInt();
  state.stopped_early = get("stopped_early").toBool();
  auto loss = get("epoch_loss").toTuple();
  state.epoch_loss = {loss->elements()[0].toDouble(), loss->elements()[1].toInt()};
  auto acc = get("epoch_acc").toTuple();
  state.epoch_acc = {acc->elements()[0].toDouble(), acc->elements()[1].toInt()};
  state.metrics_bytes = static_cast<uint64_t>(get("metrics_bytes").toInt());
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(get("rng_cpu").toTensor());
  }
  if (device.is_cuda())
    if (const c10::IValue* cuda_state = dict_get(*trainer, "rng_cuda")) {
      auto generator = cuda_generator(device);
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(cuda_state->toTensor());
    }
  return true;
}

}  // namespace slt
