#include "slt/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Dict.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/util/string_utils.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "slt/runtime/components.h"
#include "slt/data/loader.h"
#include "slt/errors.h"
#include "slt/io/event_log.h"
#include "slt/model/generation.h"
#include "slt/runtime/log.h"
#include "slt/eval/metrics.h"
#include "slt/model/model.h"
#include "slt/train/optim.h"
#include "slt/io/tensor_io.h"
#include "slt/text/text.h"
#include "slt/data/tokenizer.h"
#include "slt/version.h"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace slt {

namespace {

// Version of the "slt" entry of checkpoints (the resume state).
constexpr int64_t kCheckpointStateVersion = 1;

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

// ---------------------------------------------------------------------------
// Devices and precision

at::Device run_device(const ConfigNode& job) {
  std::string name = job.require<std::string>("common.device");
  if (name == "cpu") return at::Device(at::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA())
      throw UserError("common.device=" + name +
                      ", but CUDA is not available on this machine (no GPU, or LibTorch built without CUDA); "
                      "run on the CPU with common.device=cpu");
    return at::Device(name);
  }
  throw UserError("common.device='" + name + "': expected cpu, cuda or cuda:N");
}

struct Precision {
  bool autocast = false;
  at::ScalarType dtype = at::kFloat;
  bool scale_loss = false;  // fp16 on CUDA
  std::string describe() const { return autocast ? std::string(c10::toString(dtype)) + " autocast" : "fp32"; }
};

Precision run_precision(const ConfigNode& job, const at::Device& device) {
  bool fp16 = job.require<bool>("common.fp16"), bf16 = job.require<bool>("common.bf16");
  if (fp16 && bf16) throw ConfigError("common.fp16=true and common.bf16=true: choose one mixed precision");
  Precision p;
  if (!fp16 && !bf16) return p;
  p.autocast = true;
  if (device.is_cuda()) {
    p.dtype = fp16 ? at::kHalf : at::kBFloat16;
    p.scale_loss = fp16;
  } else {
    // The run is on the CPU by choice (common.device=cpu): CPU autocast only does bf16.
    p.dtype = at::kBFloat16;
    spdlog::warn("common.{}=true on the CPU: using bf16 CPU autocast (fp16 autocast needs CUDA); "
                 "set common.{}=false to train in full fp32",
                 fp16 ? "fp16" : "bf16", fp16 ? "fp16" : "bf16");
  }
  return p;
}

// torch.autocast for one region (autocast state is thread-local).
class AutocastScope {
 public:
  AutocastScope(const Precision& precision, const at::Device& device)
      : active_(precision.autocast), cuda_(device.is_cuda()) {
    if (!active_) return;
    if (cuda_) {
      previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(precision.dtype);
      at::autocast::set_enabled(true);
    } else {
      previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(precision.dtype);
      at::autocast::set_cpu_enabled(true);
    }
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
      at::autocast::set_enabled(false);
      at::autocast::set_autocast_gpu_dtype(previous_dtype_);
    } else {
      at::autocast::set_cpu_enabled(false);
      at::autocast::set_autocast_cpu_dtype(previous_dtype_);
    }
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_, cuda_;
  at::ScalarType previous_dtype_ = at::kFloat;
};

double resident_memory_gib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0 * 1024.0);
}

// ---------------------------------------------------------------------------
// Signals: SIGINT/SIGTERM ask the training loop to save and stop; a second
// SIGINT kills the process the usual way.

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) {
  if (g_stop_signal) {
    std::signal(signal, SIG_DFL);
    std::raise(signal);
  }
  g_stop_signal = signal;
}

class StopSignals {
 public:
  StopSignals() {
    sigaction(SIGINT, nullptr, &previous_int_);
    sigaction(SIGTERM, nullptr, &previous_term_);
    catch_stop_signals();
  }
  ~StopSignals() {
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }
  static int pending() { return g_stop_signal; }

 private:
  struct sigaction previous_int_ {}, previous_term_ {};
};

// ---------------------------------------------------------------------------
// Progress bar on a terminal; nothing otherwise (the periodic log lines are the progress then).

class ProgressBar {
 public:
  ProgressBar() : enabled_(::isatty(STDERR_FILENO) == 1) {}
  void start(int64_t epoch, int64_t total, int64_t done) {
    epoch_ = epoch;
    total_ = total;
    first_ = done;
    started_ = std::chrono::steady_clock::now();
  }
  void update(int64_t done, double loss) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    double elapsed = std::chrono::duration<double>(now - started_).count();
    double rate = done > first_ ? (done - first_) / std::max(elapsed, 1e-9) : 0;
    int64_t eta = rate > 0 ? static_cast<int64_t>((total_ - done) / rate) : 0;
    constexpr int kWidth = 30;
    int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(stderr, "\r\033[Kepoch %lld [%s] %lld/%lld ETA %02lld:%02lld:%02lld loss %.4f",
                 static_cast<long long>(epoch_), bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), static_cast<long long>(eta / 3600),
                 static_cast<long long>(eta / 60 % 60), static_cast<long long>(eta % 60), loss);
    std::fflush(stderr);
    drawn_ = true;
  }
  // Clears the bar before a log line.
  void clear() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  bool enabled_, drawn_ = false;
  int64_t epoch_ = 0, total_ = 0, first_ = 0;
  std::chrono::steady_clock::time_point started_, last_draw_;
};

// ---------------------------------------------------------------------------
// Metrics sinks: TensorBoard events and metrics.jsonl (one JSON object a line).

class MetricsSink {
 public:
  // Opens <dir>/metrics.jsonl truncated to `keep_bytes` (what the checkpoint
  // being resumed had seen) and a new TensorBoard file under <dir>/tb.
  MetricsSink(const fs::path& dir, uint64_t keep_bytes, int64_t resume_step) : jsonl_path_(dir / "metrics.jsonl") {
    std::error_code ec;
    if (fs::exists(jsonl_path_, ec)) fs::resize_file(jsonl_path_, std::min<uint64_t>(keep_bytes, fs::file_size(jsonl_path_)));
    jsonl_ = std::fopen(jsonl_path_.c_str(), "ab");
    if (!jsonl_) throw Error("cannot write '" + jsonl_path_.string() + "'");
    events_ = std::make_unique<EventLog>(dir / "tb");
    if (resume_step > 0) events_->session_start(resume_step);
  }
  ~MetricsSink() {
    if (jsonl_) std::fclose(jsonl_);
  }
  void scalars(const std::string& prefix, const json& values, int64_t step) {
    for (const auto& [key, value] : values.items())
      if (value.is_number()) events_->add_scalar(prefix + "/" + key, value.get<double>(), step);
    events_->flush();
  }
  void record(const json& line) {
    std::string text = line.dump() + "\n";
    std::fwrite(text.data(), 1, text.size(), jsonl_);
    std::fflush(jsonl_);
  }
  uint64_t jsonl_bytes() const {
    std::error_code ec;
    auto size = fs::file_size(jsonl_path_, ec);
    return ec ? 0 : size;
  }

 private:
  fs::path jsonl_path_;
  std::FILE* jsonl_ = nullptr;
  std::unique_ptr<EventLog> events_;
};

// ---------------------------------------------------------------------------
// Evaluation

// compute_accuracy of the reference: 100 * correct / non-pad targets, in float32.
double token_accuracy(const at::Tensor& logits, const at::Tensor& labels, int64_t pad) {
  auto flat_logits = logits.reshape({-1, logits.size(-1)});
  auto flat_labels = labels.reshape({-1});
  auto mask = flat_labels.ne(pad);
  auto correct = flat_logits.argmax(1).masked_select(mask).eq(flat_labels.masked_select(mask)).sum();
  auto total = mask.sum();
  return (correct * 100).div(total).item<float>();
}

struct Meter {  // SmoothedValue's global average
  double total = 0;
  int64_t count = 0;
  void update(double value, int64_t n = 1) {
    total += value * static_cast<double>(n);
    count += n;
  }
  double average() const { return count ? total / static_cast<double>(count) : 0.0; }
};

struct Evaluation {
  json stats;  // loss, acc, bleu1..4, rouge1, rouge2, rougeL, rougeLsum, meteor, chrf
  std::vector<std::string> predictions, references;
};

// ---------------------------------------------------------------------------
// Checkpoints

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

// Everything that moves during training, beyond model and optimizer.
struct TrainState {
  int64_t epoch = 0;          // the epoch in progress
  int64_t batches_done = 0;   // batches of `epoch` already trained on
  int64_t optimizer_steps = 0;
  double best_bleu = 0;             // best validation BLEU-4 so far
  double best_bleu_at_epoch_start = 0;
  int64_t patience = 0;
  bool stopped_early = false;       // optim.patience ran out
  Meter epoch_loss, epoch_acc;      // train averages of the epoch in progress
  uint64_t metrics_bytes = 0;       // size of metrics.jsonl when the checkpoint was taken
};

}  // namespace

// ---------------------------------------------------------------------------

namespace {

class Engine {
 public:
  explicit Engine(const ConfigNode& job) : job_(job) {
    eval_only_ = job.require<bool>("common.eval");
    if (eval_only_) {
      auto load = job.get<std::string>("common.load_model");
      if (!load)
        throw ConfigError("common.eval=true needs the model to evaluate: add common.load_model=PATH/best_model.pth");
      output_dir_ = fs::absolute(*load).parent_path();  // as the reference: results go next to the model
    } else {
      output_dir_ = job.require<std::string>("common.output_dir");
    }
    fs::create_directories(output_dir_);
    log_file_ = std::make_unique<LogFile>(output_dir_ / "logs" / (eval_only_ ? "eval.log" : "train.log"));
    spdlog::default_logger()->flush_on(spdlog::level::info);
  }

  RunOutcome run() {
    StopSignals signals;  // from the start: SLURM may preempt a job that is still loading
    RunOutcome outcome;
    outcome.output_dir = output_dir_;
    spdlog::info("slt {}: {} in {}", SLT_VERSION_STRING, eval_only_ ? "evaluation" : "training", output_dir_.string());
    spdlog::info("config:\n{}", job_.to_yaml());
    if (job_.require<bool>("dist.enabled"))
      spdlog::warn("dist.enabled=true: this slt trains in one process on one device (no distributed data parallelism yet)");
    if (job_.require<bool>("common.compute_bleurt"))
      spdlog::warn("common.compute_bleurt=true: BLEURT is not available in slt; the other metrics are computed");
    at::manual_seed(static_cast<uint64_t>(job_.require<int64_t>("common.seed")));
    // A model missing from the Hugging Face cache is the commonest first-run mistake: say so first.
    resolve_model_folder(job_.require<std::string>("model.name_or_path"));
    device_ = run_device(job_);
    precision_ = run_precision(job_, device_);
    bundle_ = create_model_and_tokenizer(job_);
    module().to(device_);
    spdlog::info("model {}, decoding with {}", bundle_.kind, bundle_.search->describe());
    pad_ = bundle_.tokenizer->pad_id();
    lower_case_ = job_.require<bool>("model.lower_case");

    std::optional<fs::path> resume = eval_only_ ? std::nullopt : checkpoint_to_resume();
    if (!eval_only_ && !resume) clear_earlier_results();
    if (auto load = job_.get<std::string>("common.load_model"); load && (eval_only_ || !resume)) {
      spdlog::info("loading model weights from {}", *load);
      load_state_dict(module(), load_checkpoint_weights(*load), *load);
    }
    if (eval_only_) {
      evaluate_full();
      return outcome;
    }
    outcome.status = train(resume);
    outcome.train_items = trained_items_;
    outcome.train_seconds = training_seconds_;
    // A signal during the last epoch's checkpoint: that checkpoint is the resume point.
    if (outcome.status == RunOutcome::Status::Interrupted || StopSignals::pending()) {
      outcome.status = RunOutcome::Status::Interrupted;
      outcome.stop_signal = StopSignals::pending();
      return outcome;
    }
    if (job_.require<bool>("common.eval_best_model_after_training")) {
      fs::path best = output_dir_ / "best_model.pth";
      if (fs::exists(best)) {
        spdlog::info("loading the best model ({}) for the full evaluation", best.string());
        load_state_dict(module(), load_checkpoint_weights(best.string()), best.string());
      } else {
        spdlog::warn("no validation BLEU-4 above 0 during training, so there is no best_model.pth; "
                     "evaluating the last weights");
      }
      evaluate_full();
    }
    return outcome;
  }

 private:
  torch::nn::Module& module() { return bundle_.model->module(); }

  // The training datasets, opened once for the loader and the truecaser.
  const std::vector<std::shared_ptr<FeatureDataset>>& train_datasets() {
    if (train_datasets_.empty()) train_datasets_ = open_split_datasets(job_, "train");
    return train_datasets_;
  }

  std::unique_ptr<FeatureLoader> make_loader(const std::string& split) {
    LoaderOptions options;
    bool train = split == "train";
    options.batch_size = job_.require<int64_t>(train ? "optim.train_batch_size" : "optim.val_batch_size");
    options.shuffle = train;
    options.drop_last = train;
    options.seed = static_cast<uint64_t>(job_.require<int64_t>("common.seed"));
    options.num_workers = static_cast<int>(std::clamp<int64_t>(job_.require<int64_t>("common.num_workers"), 0, 4));
    options.max_target_length = job_.require<int64_t>("data.max_target_positions");
    auto loader = std::make_unique<FeatureLoader>(train ? train_datasets() : open_split_datasets(job_, split),
                                                  bundle_.tokenizer, options);
    if (loader->size() == 0) throw UserError("the " + split + " split has no items (see the dataset messages above)");
    return loader;
  }

  slt::Batch to_device(const FeatureBatch& batch) const {
    return {batch.features.to(device_), batch.attention_mask.to(device_), batch.labels.to(device_)};
  }

  // ---- evaluation ----------------------------------------------------------

  const metrics::Truecaser* truecaser() {
    if (!lower_case_) return nullptr;
    if (!truecaser_) {
      std::vector<std::string> labels;
      for (const auto& dataset : train_datasets())
        for (size_t i = 0; i < dataset->size(); ++i) labels.push_back(dataset->label(i));
      truecaser_ = std::make_unique<metrics::Truecaser>();
      truecaser_->fit(labels);
      spdlog::info("truecasing predictions (model.lower_case): {} words learned from the training labels",
                   truecaser_->vocabulary_size());
    }
    return truecaser_.get();
  }

  Evaluation evaluate(FeatureLoader& loader, const std::string& name) {
    module().eval();
    torch::NoGradGuard no_grad;
    Evaluation result;
    Meter loss, acc;
    bool print_samples = job_.require<bool>("common.eval_print_samples");
    const metrics::Truecaser* caser = truecaser();
    auto started = std::chrono::steady_clock::now();
    loader.start_epoch(0);
    FeatureBatch batch;
    size_t samples_seen = 0, batches = 0;
    while (loader.next(batch)) {
      slt::Batch b = to_device(batch);
      std::vector<Translation> generated;
      {
        AutocastScope autocast(precision_, device_);
        ModelOutput out = bundle_.model->forward(b);
        loss.update(out.loss.item<double>());
        acc.update(token_accuracy(out.logits, b.labels, pad_), static_cast<int64_t>(batch.labels_text.size()));
        generated = bundle_.search->translate(*bundle_.model, b.features, b.attention_mask);
      }
      samples_seen += generated.size();
      for (size_t i = 0; i < generated.size(); ++i) {
        std::string prediction(trim(bundle_.tokenizer->decode(generated[i].tokens, true)));
        if (caser) prediction = caser->apply(prediction);
        std::string reference(trim(batch.labels_text[i]));
        // The reference numbers samples after counting the batch: P-<seen + i>.
        if (print_samples) spdlog::info("P-{}: {}\nR-{}: {}", samples_seen + i, prediction, samples_seen + i, reference);
        result.predictions.push_back(std::move(prediction));
        result.references.push_back(std::move(reference));
      }
      if (++batches % 10 == 0) spdlog::info("eval {}: {}/{} batches", name, batches, loader.num_batches());
    }
    auto scores = metrics::score_corpus(result.predictions, result.references);
    result.stats["loss"] = loss.average();
    result.stats["acc"] = acc.average();
    for (int n = 0; n < 4; ++n) result.stats["bleu" + std::to_string(n + 1)] = scores.bleu[n];
    result.stats["rouge1"] = scores.rouge.rouge1;
    result.stats["rouge2"] = scores.rouge.rouge2;
    result.stats["rougeL"] = scores.rouge.rougeL;
    result.stats["rougeLsum"] = scores.rouge.rougeLsum;
    result.stats["meteor"] = scores.meteor;
    result.stats["chrf"] = scores.chrf;
    spdlog::info("* {} bleu1 {:.2f} bleu2 {:.2f} bleu3 {:.2f} bleu4 {:.2f} rouge-l {:.3f} chrf {:.3f} acc {:.3f} loss {:.3f} "
                 "({} items, {:.1f} s)",
                 name, scores.bleu[0], scores.bleu[1], scores.bleu[2], scores.bleu[3], scores.rouge.rougeL, scores.chrf,
                 acc.average(), loss.average(), result.predictions.size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return result;
  }

  void evaluate_full() {
    spdlog::info("full evaluation on val and test");
    for (const std::string split : {"val", "test"}) {
      auto loader = make_loader(split);
      Evaluation result = evaluate(*loader, split);
      std::string tsv = "Prediction\tReference\n";
      for (size_t i = 0; i < result.predictions.size(); ++i)
        tsv += result.predictions[i] + "\t" + result.references[i] + "\n";
      write_file_atomically((output_dir_ / (split + "_outputs.tsv")).string(), tsv.data(), tsv.size());
      std::string results = result.stats.dump(4);
      write_file_atomically((output_dir_ / (split + "_results.json")).string(), results.data(), results.size());
      spdlog::info("{} results: {}", split, result.stats.dump());
    }
    spdlog::info("wrote outputs to {}", output_dir_.string());
  }

  // ---- checkpoints -----------------------------------------------------------

  std::optional<fs::path> checkpoint_to_resume() {
    // A crash while writing leaves only a temporary file (writes are atomic): drop it.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(output_dir_, ec)) {
      std::string name = entry.path().filename().string();
      if (name.find(".pth.tmp.") != std::string::npos) {
        spdlog::warn("removing {} (an unfinished checkpoint write)", entry.path().string());
        fs::remove(entry.path(), ec);
      }
    }
    if (auto resume = job_.get<std::string>("common.resume")) {
      fs::path path = *resume;
      if (fs::is_directory(path)) {
        auto found = list_checkpoints(path);
        if (found.empty()) throw UserError("common.resume=" + *resume + ": no checkpoint-NNNNN.pth in that folder");
        path = found.back();
      }
      if (!fs::exists(path)) throw UserError("common.resume=" + *resume + ": no such checkpoint");
      return path;
    }
    auto found = list_checkpoints(output_dir_);
    if (found.empty()) return std::nullopt;
    return found.back();
  }

  // A fresh run must not mix with what an earlier run left: a stale
  // best_model.pth would be evaluated as this run's best. What an attempt
  // killed before its first checkpoint left (metrics, event files) goes quietly.
  void clear_earlier_results() {
    std::vector<fs::path> earlier;
    for (const char* name : {"best_model.pth", "val_results.json", "test_results.json", "val_outputs.tsv", "test_outputs.tsv"})
      if (fs::exists(output_dir_ / name)) earlier.push_back(output_dir_ / name);
    if (!earlier.empty() && !job_.require<bool>("common.overwrite_output_dir"))
      throw UserError("common.output_dir=" + output_dir_.string() + " holds results of an earlier run (" +
                      earlier.front().filename().string() + ", ...) but no checkpoint to resume from; set "
                      "common.overwrite_output_dir=true to start afresh there, or choose another common.output_dir");
    for (const auto& path : earlier) {
      spdlog::warn("common.overwrite_output_dir: removing {}", path.string());
      fs::remove(path);
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(output_dir_ / "tb", ec))
      if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) fs::remove(entry.path());
  }

  c10::IValue optimizer_state_dict() {
    c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
    c10::impl::GenericList groups(c10::AnyType::get());
    int64_t index = 0;
    for (auto& group : optimizer_->param_groups()) {
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
        auto it = optimizer_->state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
        if (it != optimizer_->state().end()) {
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

  void load_optimizer_state(const c10::IValue& saved, const std::string& source) {
    const c10::IValue* state = dict_get(saved, "state");
    const c10::IValue* groups = dict_get(saved, "param_groups");
    if (!state || !groups || !state->isGenericDict() || !groups->isList())
      throw TensorFileError("'" + source + "': the optimizer entry is not an optimizer state_dict");
    auto saved_groups = groups->toList();
    auto& param_groups = optimizer_->param_groups();
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
        optimizer_->state()[c10::guts::to_string(p.unsafeGetTensorImpl())] = std::move(param_state);
      }
    }
  }

  // The checkpoint of epoch `state_.epoch`: finished (training goes on at the
  // next epoch) or `state_.batches_done` batches in.
  c10::IValue checkpoint_value(bool epoch_finished) {
    c10::impl::GenericDict model(c10::StringType::get(), c10::TensorType::get());
    for (const auto& p : module().named_parameters()) model.insert(p.key(), p.value().detach().cpu());
    for (const auto& b : module().named_buffers()) model.insert(b.key(), b.value().detach().cpu());
    c10::impl::GenericDict scaler(c10::StringType::get(), c10::AnyType::get());
    if (scaler_->enabled()) {
      scaler.insert("scale", scaler_->scale_value);
      scaler.insert("growth_factor", LossScaler::kGrowthFactor);
      scaler.insert("backoff_factor", LossScaler::kBackoffFactor);
      scaler.insert("growth_interval", LossScaler::kGrowthInterval);
      scaler.insert("_growth_tracker", scaler_->growth_tracker);
    }
    c10::impl::GenericDict trainer(c10::StringType::get(), c10::AnyType::get());
    trainer.insert("version", kCheckpointStateVersion);
    trainer.insert("slt_version", std::string(SLT_VERSION_STRING));
    trainer.insert("model_kind", bundle_.kind);
    trainer.insert("resume_epoch", epoch_finished ? state_.epoch + 1 : state_.epoch);
    trainer.insert("batches_done", epoch_finished ? int64_t{0} : state_.batches_done);
    trainer.insert("optimizer_steps", state_.optimizer_steps);
    trainer.insert("best_bleu", state_.best_bleu);
    trainer.insert("best_bleu_at_epoch_start", state_.best_bleu_at_epoch_start);
    trainer.insert("patience", state_.patience);
    trainer.insert("stopped_early", state_.stopped_early);
    trainer.insert("epoch_loss", c10::ivalue::Tuple::create({state_.epoch_loss.total, state_.epoch_loss.count}));
    trainer.insert("epoch_acc", c10::ivalue::Tuple::create({state_.epoch_acc.total, state_.epoch_acc.count}));
    trainer.insert("metrics_bytes", static_cast<int64_t>(state_.metrics_bytes));
    {
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      trainer.insert("rng_cpu", generator.get_state());
    }
    if (device_.is_cuda()) {
      auto generator = at::detail::getCUDAHooks().getDefaultCUDAGenerator(device_.index() < 0 ? 0 : device_.index());
      std::lock_guard<std::mutex> lock(generator.mutex());
      trainer.insert("rng_cuda", generator.get_state());
    }
    c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
    checkpoint.insert("model", model);
    checkpoint.insert("optimizer", optimizer_state_dict());
    checkpoint.insert("scaler", scaler);
    checkpoint.insert("cfg", config_to_ivalue(job_));
    checkpoint.insert("epoch", state_.epoch);
    // The reference reads "epoch" as finished; a mid-epoch checkpoint says otherwise.
    if (!epoch_finished) checkpoint.insert("epoch_offset", state_.batches_done);
    checkpoint.insert("slt", trainer);
    return checkpoint;
  }

  // Writes checkpoint-<epoch>.pth (and best_model.pth), keeping the newest common.max_checkpoints.
  void save_checkpoint(bool is_best, bool epoch_finished) {
    state_.metrics_bytes = metrics_->jsonl_bytes();
    auto bytes = serialize_pt(checkpoint_value(epoch_finished));
    fs::path path = output_dir_ / checkpoint_name(state_.epoch);
    crash_point(path, bytes);
    write_file_atomically(path.string(), bytes.data(), bytes.size());
    if (is_best) write_file_atomically((output_dir_ / "best_model.pth").string(), bytes.data(), bytes.size());
    int64_t keep = std::max<int64_t>(1, job_.require<int64_t>("common.max_checkpoints"));
    auto existing = list_checkpoints(output_dir_);
    for (size_t i = 0; i + keep < existing.size(); ++i) fs::remove(existing[i]);
    if (epoch_finished)
      spdlog::info("saved {}{} (end of epoch {})", path.string(), is_best ? " and best_model.pth" : "", state_.epoch);
    else
      spdlog::info("saved {}{} (epoch {}, {} batches in)", path.string(), is_best ? " and best_model.pth" : "",
                   state_.epoch, state_.batches_done);
  }

  // Fault injection for the crash test: SLT_TEST_KILL_IN_CHECKPOINT=N kills
  // the process halfway through writing the N-th checkpoint of this process.
  void crash_point(const fs::path& path, const std::vector<char>& bytes) {
    static const char* setting = std::getenv("SLT_TEST_KILL_IN_CHECKPOINT");
    if (!setting || ++checkpoints_written_ != std::atoll(setting)) return;
    std::ofstream partial(path.string() + ".tmp." + std::to_string(::getpid()), std::ios::binary);
    partial.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    partial.flush();
    std::raise(SIGKILL);
  }

  void resume_from(const fs::path& path) {
    spdlog::info("resuming from {}", path.string());
    c10::IValue checkpoint = load_pt(path.string());
    const c10::IValue* model = dict_get(checkpoint, "model");
    if (!model) throw TensorFileError("'" + path.string() + "' has no \"model\" entry; is it a training checkpoint?");
    load_state_dict(module(), flatten_tensors(*model, path.string()), path.string());
    if (const c10::IValue* optimizer = dict_get(checkpoint, "optimizer")) load_optimizer_state(*optimizer, path.string());
    if (const c10::IValue* scaler = dict_get(checkpoint, "scaler")) {
      if (const c10::IValue* scale = dict_get(*scaler, "scale")) scaler_->scale_value = ivalue_double(*scale);
      if (const c10::IValue* tracker = dict_get(*scaler, "_growth_tracker"))
        scaler_->growth_tracker = static_cast<int64_t>(ivalue_double(*tracker));
    }
    const c10::IValue* trainer = dict_get(checkpoint, "slt");
    if (!trainer) {  // a reference checkpoint: it only knows the finished epoch
      const c10::IValue* epoch = dict_get(checkpoint, "epoch");
      std::smatch match;
      std::string name = path.filename().string();
      if (epoch) state_.epoch = static_cast<int64_t>(ivalue_double(*epoch)) + 1;
      else if (std::regex_match(name, match, std::regex(R"(.*-(\d+)\.pth)"))) state_.epoch = std::stoll(match[1]) + 1;
      else spdlog::warn("'{}' says nothing of its epoch: starting at epoch {}", path.string(), state_.epoch);
      spdlog::warn("'{}' was not written by slt: best BLEU and patience start afresh, as the reference does",
                   path.string());
      return;
    }
    int64_t version = static_cast<int64_t>(ivalue_double(*dict_get(*trainer, "version")));
    if (version > kCheckpointStateVersion)
      throw TensorFileError("'" + path.string() + "' has training state version " + std::to_string(version) +
                            "; this slt reads up to version " + std::to_string(kCheckpointStateVersion) +
                            ": resume it with a newer slt");
    auto get = [&](const char* key) {
      const c10::IValue* v = dict_get(*trainer, key);
      if (!v) throw TensorFileError("'" + path.string() + "': training state lacks '" + key + "'");
      return *v;
    };
    state_.epoch = get("resume_epoch").toInt();
    state_.batches_done = get("batches_done").toInt();
    state_.optimizer_steps = get("optimizer_steps").toInt();
    state_.best_bleu = get("best_bleu").toDouble();
    state_.best_bleu_at_epoch_start = get("best_bleu_at_epoch_start").toDouble();
    state_.patience = get("patience").toInt();
    state_.stopped_early = get("stopped_early").toBool();
    auto loss = get("epoch_loss").toTuple();
    state_.epoch_loss = {loss->elements()[0].toDouble(), loss->elements()[1].toInt()};
    auto acc = get("epoch_acc").toTuple();
    state_.epoch_acc = {acc->elements()[0].toDouble(), acc->elements()[1].toInt()};
    state_.metrics_bytes = static_cast<uint64_t>(get("metrics_bytes").toInt());
    {
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(get("rng_cpu").toTensor());
    }
    if (device_.is_cuda())
      if (const c10::IValue* cuda_state = dict_get(*trainer, "rng_cuda")) {
        auto generator = at::detail::getCUDAHooks().getDefaultCUDAGenerator(device_.index() < 0 ? 0 : device_.index());
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_state(cuda_state->toTensor());
      }
  }

  // ---- training --------------------------------------------------------------

  void set_learning_rate(double lr) {
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }

  json evaluate_validation(FeatureLoader& loader, int64_t step) {
    json stats = evaluate(loader, "val").stats;
    metrics_->scalars("val", stats, step);
    module().train();
    return stats;
  }

  RunOutcome::Status train(const std::optional<fs::path>& resume) {
    auto train_loader = make_loader("train");
    auto val_loader = make_loader("val");
    if (job_.require<bool>("wandb.enabled"))
      spdlog::info("wandb.enabled=true: slt has no wandb; metrics go to {} (TensorBoard) and {}",
                   (output_dir_ / "tb").string(), (output_dir_ / "metrics.jsonl").string());
    int64_t parameters = 0;
    for (const auto& p : module().parameters())
      if (p.requires_grad()) parameters += p.numel();
    const int64_t accumulation = std::max<int64_t>(1, job_.require<int64_t>("optim.gradient_accumulation_steps"));
    const int64_t batch_size = job_.require<int64_t>("optim.train_batch_size");
    spdlog::info("model {}: {:.2f} M trainable parameters on {} ({})", bundle_.kind, parameters / 1.0e6, device_.str(),
                 precision_.describe());
    spdlog::info("learning rate {:.2e}, accumulate grad iterations {}, effective batch size {}",
                 job_.require<double>("optim.lr"), accumulation, batch_size * accumulation);
    spdlog::info("train: {} items, {} batches an epoch; val: {} items", train_loader->size(),
                 train_loader->num_batches(), val_loader->size());
    const int64_t batches_per_epoch = static_cast<int64_t>(train_loader->num_batches());
    if (batches_per_epoch == 0)
      throw UserError("the train split has " + std::to_string(train_loader->size()) +
                      " items, fewer than one batch of optim.train_batch_size=" + std::to_string(batch_size));

    optimizer_ = make_adamw(module(), job_.require<double>("optim.lr"), job_.require<double>("optim.weight_decay"));
    scaler_ = std::make_unique<LossScaler>(precision_.scale_loss);
    state_.epoch = job_.require<int64_t>("optim.start_epoch");
    state_.patience = job_.require<int64_t>("optim.patience");
    if (resume) resume_from(*resume);
    metrics_ = std::make_unique<MetricsSink>(output_dir_, resume ? state_.metrics_bytes : 0,
                                             state_.epoch * batches_per_epoch + state_.batches_done);
    if (state_.stopped_early && job_.require<bool>("optim.early_stopping")) {
      spdlog::info("this run stopped early after epoch {} (no improvement for optim.patience epochs); "
                   "set optim.early_stopping=false to train on",
                   state_.epoch - 1);
      return RunOutcome::Status::EarlyStopped;
    }
    if (state_.epoch >= job_.require<int64_t>("optim.epochs"))
      spdlog::info("training already finished in this folder ({} epochs); raise optim.epochs to train on",
                   state_.epoch);

    const LrSchedule schedule{job_.require<double>("optim.lr"), job_.require<double>("optim.min_lr"),
                              static_cast<double>(job_.require<int64_t>("optim.warmup_epochs")),
                              static_cast<double>(job_.require<int64_t>("optim.epochs"))};
    const double clip = job_.require<double>("optim.clip_grad");
    const auto eval_steps = job_.get<int64_t>("common.eval_steps");
    const int64_t print_freq = std::max<int64_t>(1, job_.require<int64_t>("common.print_freq"));
    const int64_t epochs = job_.require<int64_t>("optim.epochs");
    const int64_t patience_limit = job_.require<int64_t>("optim.patience");
    ProgressBar progress;
    auto started = std::chrono::steady_clock::now();
    spdlog::info("start training for {} epochs (at epoch {}, batch {})", epochs, state_.epoch, state_.batches_done);
    if (StopSignals::pending()) {
      spdlog::warn("{} received before training started: nothing to save", strsignal(StopSignals::pending()));
      return RunOutcome::Status::Interrupted;
    }

    for (; state_.epoch < epochs; ++state_.epoch) {
      const int64_t epoch = state_.epoch;
      if (state_.batches_done == 0) {
        state_.best_bleu_at_epoch_start = state_.best_bleu;
        state_.epoch_loss = {};
        state_.epoch_acc = {};
      }
      module().train();
      train_loader->start_epoch(epoch, static_cast<size_t>(state_.batches_done));
      optimizer_->zero_grad();
      progress.start(epoch, batches_per_epoch, state_.batches_done);
      double lr = 0, grad_norm = 0;
      auto window_start = std::chrono::steady_clock::now();
      int64_t window_items = 0;
      FeatureBatch batch;
      auto loop_start = std::chrono::steady_clock::now();
      double excluded = 0;  // evaluation and checkpoints inside the loop
      auto account = [&] {
        training_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - loop_start).count() - excluded;
      };
      for (int64_t step = state_.batches_done; train_loader->next(batch); ++step) {
        if (step % accumulation == 0) {
          lr = schedule.at(static_cast<double>(step) / static_cast<double>(batches_per_epoch) + static_cast<double>(epoch));
          set_learning_rate(lr);
        }
        slt::Batch b = to_device(batch);
        ModelOutput out;
        {
          AutocastScope autocast(precision_, device_);
          out = bundle_.model->forward(b);
        }
        double loss_value = out.loss.item<double>();
        if (!std::isfinite(loss_value)) {
          progress.clear();
          throw Error(fmt::format("loss is {} at epoch {}, batch {} (optimizer step {}): stopping; the last good "
                                  "checkpoint in {} is kept (lower optim.lr, or check the features of this batch: {})",
                                  std::isnan(loss_value) ? "nan" : loss_value > 0 ? "inf" : "-inf", epoch, step,
                                  state_.optimizer_steps, output_dir_.string(), join(batch.feature_ids, ", ")));
        }
        scaler_->scale(out.loss / static_cast<double>(accumulation)).backward();
        const bool update = (step + 1) % accumulation == 0;
        if (update) {
          bool finite = scaler_->unscale(module());
          grad_norm = clip_grad_norm(module(), clip);
          if (finite) optimizer_->step();
          else spdlog::warn("fp16 gradient overflow at step {}: skipped, loss scale now {}", step, scaler_->scale_value / 2);
          scaler_->update(!finite);
          optimizer_->zero_grad();
          ++state_.optimizer_steps;
        }
        const int64_t items = static_cast<int64_t>(batch.labels_text.size());
        trained_items_ += items;
        double acc = token_accuracy(out.logits.detach(), b.labels, pad_);
        state_.epoch_loss.update(loss_value);
        state_.epoch_acc.update(acc, items);
        state_.batches_done = step + 1;
        window_items += items;
        const int64_t global_step = epoch * batches_per_epoch + step + 1;
        progress.update(step + 1, loss_value);

        if ((step + 1) % print_freq == 0 || step + 1 == batches_per_epoch) {
          double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
          progress.clear();
          spdlog::info("epoch {} [{}/{}] loss {:.4f} (avg {:.4f}) acc {:.2f} lr {:.6f} grad_norm {:.3f} {:.1f} items/s mem {:.2f} GiB",
                       epoch, step + 1, batches_per_epoch, loss_value, state_.epoch_loss.average(), acc, lr, grad_norm,
                       window_items / std::max(seconds, 1e-9), resident_memory_gib());
          json scalars = {{"loss", loss_value}, {"acc", acc}, {"lr", lr}, {"grad_norm", grad_norm}};
          metrics_->scalars("train", scalars, global_step);
          json line = {{"split", "train"}, {"epoch", epoch}, {"step", global_step}};
          line.update(scalars);
          metrics_->record(line);
          window_start = std::chrono::steady_clock::now();
          window_items = 0;
        }
        if (eval_steps && *eval_steps > 0 && (step + 1) % (accumulation * *eval_steps) == 0) {
          auto eval_start = std::chrono::steady_clock::now();
          progress.clear();
          spdlog::info("evaluation at step {}", global_step);
          json stats = evaluate_validation(*val_loader, global_step);
          double bleu4 = stats["bleu4"].get<double>();
          bool improved = bleu4 > state_.best_bleu;
          if (improved) state_.best_bleu = bleu4;
          json line = {{"split", "val"}, {"epoch", epoch}, {"step", global_step}};
          line.update(stats);
          line["best_bleu4"] = state_.best_bleu;
          metrics_->record(line);
          if (improved) save_checkpoint(true, false);
          excluded += std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
        }
        if (update && StopSignals::pending()) {
          progress.clear();
          spdlog::warn("{} received: saving a checkpoint at epoch {}, batch {}", strsignal(StopSignals::pending()), epoch,
                       step + 1);
          account();
          save_checkpoint(false, false);
          return RunOutcome::Status::Interrupted;
        }
      }
      account();
      progress.clear();

      // End of epoch: validation, patience and the epoch checkpoint, by the reference's rules.
      const int64_t global_step = (epoch + 1) * batches_per_epoch;
      json val = evaluate_validation(*val_loader, global_step);
      const double bleu4 = val["bleu4"].get<double>();
      const double best_inner = state_.best_bleu;  // includes this epoch's step evaluations
      bool is_best = false;
      if (bleu4 <= state_.best_bleu_at_epoch_start && best_inner <= state_.best_bleu_at_epoch_start) {
        --state_.patience;
      } else {
        state_.patience = patience_limit;
        is_best = bleu4 > best_inner;
      }
      state_.best_bleu = std::max({state_.best_bleu_at_epoch_start, best_inner, bleu4});
      spdlog::info("epoch {} done: train loss {:.4f} acc {:.2f}, val bleu4 {:.2f}, best bleu4 {:.2f}, patience {}/{}",
                   epoch, state_.epoch_loss.average(), state_.epoch_acc.average(), bleu4, state_.best_bleu,
                   state_.patience, patience_limit);
      json line = {{"split", "epoch"}, {"epoch", epoch}, {"step", global_step},
                   {"train_loss", state_.epoch_loss.average()}, {"train_acc", state_.epoch_acc.average()}};
      for (const auto& [key, value] : val.items()) line["val_" + key] = value;
      line["val_best_bleu4"] = state_.best_bleu;
      metrics_->record(line);

      const bool stop_early = job_.require<bool>("optim.early_stopping") && state_.patience <= 0;
      state_.stopped_early = stop_early;
      save_checkpoint(is_best, true);
      state_.batches_done = 0;
      if (stop_early) {
        spdlog::info("early stopping after {} epochs with no improvement", patience_limit);
        return RunOutcome::Status::EarlyStopped;
      }
      if (StopSignals::pending()) {
        spdlog::warn("{} received: stopping after epoch {}", strsignal(StopSignals::pending()), epoch);
        return RunOutcome::Status::Interrupted;
      }
    }
    spdlog::info("training time {:.0f} s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return RunOutcome::Status::Finished;
  }

  ConfigNode job_;
  at::Device device_ = at::kCPU;
  Precision precision_;
  bool eval_only_ = false;
  bool lower_case_ = false;
  int64_t pad_ = 0;
  fs::path output_dir_;
  std::unique_ptr<LogFile> log_file_;
  ModelBundle bundle_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<LossScaler> scaler_;
  std::unique_ptr<MetricsSink> metrics_;
  std::unique_ptr<metrics::Truecaser> truecaser_;
  std::vector<std::shared_ptr<FeatureDataset>> train_datasets_;
  TrainState state_;
  int64_t checkpoints_written_ = 0;
  int64_t trained_items_ = 0;
  double training_seconds_ = 0;
};

}  // namespace

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

RunOutcome run_translation(const ConfigNode& job) {
  Engine engine(job);
  return engine.run();
}

}  // namespace slt
