#include "slt/train/trainer.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
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

#include "slt/data/loader.h"
#include "slt/data/tokenizer.h"
#include "slt/errors.h"
#include "slt/eval/metrics.h"
#include "slt/io/folder_lock.h"
#include "slt/io/tensor_io.h"
#include "slt/model/generation.h"
#include "slt/model/model.h"
#include "slt/runtime/components.h"
#include "slt/runtime/log.h"
#include "slt/runtime/threads.h"
#include "slt/text/text.h"
#include "slt/train/checkpoint.h"
#include "slt/train/distributed.h"
#include "slt/train/evaluation.h"
#include "slt/train/optim.h"
#include "slt/train/precision.h"
#include "slt/train/progress.h"
#include "slt/train/stop_signals.h"
#include "slt/train/train_state.h"
#include "slt/version.h"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace slt {

namespace {

class Engine {
 public:
  Engine(const ConfigNode& job, std::vector<std::string> task_overrides, std::shared_ptr<ProcessGroup> group)
      : job_(job), task_overrides_(std::move(task_overrides)), group_(std::move(group)) {
    rank_ = group_ ? group_->rank() : 0;
    eval_only_ = job.require<bool>("common.eval");
    if (eval_only_) {
      auto load = job.get<std::string>("common.load_model");
      if (!load)
        throw ConfigError("common.eval=true needs the model to evaluate: add common.load_model=PATH/best_model.pth");
      output_dir_ = fs::absolute(*load).parent_path();  // as the reference: results go next to the model
    } else {
      output_dir_ = job.require<std::string>("common.output_dir");
    }
    // Rank 0 alone writes the run folder (slt-run leaves the other ranks' logs at warnings).
    if (rank_ != 0) return;
    lock_ = std::make_unique<FolderLock>(output_dir_, eval_only_ ? "evaluating" : "training");
    log_file_ = std::make_unique<LogFile>(output_dir_ / "logs" / (eval_only_ ? "eval.log" : "train.log"));
    spdlog::default_logger()->flush_on(spdlog::level::info);
  }

  RunOutcome run() {
    StopSignals signals;  // from the start: SLURM may preempt a job that is still loading
    RunOutcome outcome;
    outcome.output_dir = output_dir_;
    spdlog::info("slt {}: {} in {}", SLT_VERSION_STRING, eval_only_ ? "evaluation" : "training", output_dir_.string());
    spdlog::info("config:\n{}", job_.to_yaml());
    if (group_)
      spdlog::info("data parallel over {} ranks ({}, {})", group_->size(), group_->setup().backend,
                   group_->setup().source.empty() ? "dist.* keys" : group_->setup().source);
    if (job_.require<bool>("common.compute_bleurt"))
      spdlog::warn("common.compute_bleurt=true: BLEURT is not available in slt; the other metrics are computed");
    const ThreadChoice threads = configure_threads(job_.get<int64_t>("common.num_threads"));
    spdlog::info("threads: {} ({})", threads.threads, threads.source);
    // As the reference: each rank draws its own dropout masks (the weights come from rank 0).
    at::manual_seed(static_cast<uint64_t>(job_.require<int64_t>("common.seed") + rank_));
    std::optional<Resume> resume;
    if (!eval_only_) {
      if (rank_ == 0) {
        remove_unfinished_writes(output_dir_);  // a crash while writing leaves only a temporary file
        if (auto path = checkpoint_to_resume(output_dir_, job_.get<std::string>("common.resume")))
          resume = Resume{*path, load_pt(path->string())};
        if (resume) check_resumable(*resume);
        else clear_earlier_results();
        record_run();  // before the model is built: a run that fails there still says what it was
      }
      if (group_) group_->barrier();  // the folder is ready: the other ranks read the same checkpoint
      if (rank_ != 0)
        if (auto path = checkpoint_to_resume(output_dir_, job_.get<std::string>("common.resume")))
          resume = Resume{*path, load_pt(path->string())};
    }
    // A model missing from the Hugging Face cache is the commonest first-run mistake: say so first.
    resolve_model_folder(job_.require<std::string>("model.name_or_path"));
    device_ = run_device(job_);
    if (group_ && device_.is_cuda() && !device_.has_index()) {  // one GPU per local rank, as the reference
      device_ = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(group_->setup().local_rank % std::max<size_t>(1, at::getNumGPUs())));
      spdlog::info("rank {} trains on {}", rank_, device_.str());
    }
    precision_ = run_precision(job_, device_);
    bundle_ = create_model_and_tokenizer(job_, {}, device_.str());
    module().to(device_);
    spdlog::info("model {}, decoding with {}", bundle_.kind, bundle_.search->describe());
    pad_ = bundle_.tokenizer->pad_id();
    lower_case_ = job_.require<bool>("model.lower_case");
    normalize_ = feature_normalization(job_);

    if (auto load = job_.get<std::string>("common.load_model"); load && (eval_only_ || !resume)) {
      spdlog::info("loading model weights from {}", *load);
      load_checkpoint_into(module(), *load, bundle_.kind);
    }
    if (group_) {  // every rank starts from rank 0's weights
      std::vector<at::Tensor> state;
      for (const auto& p : module().parameters()) state.push_back(p.detach());
      for (const auto& b : module().buffers()) state.push_back(b.detach());
      group_->broadcast(state);
    }
    if (eval_only_) {
      evaluate_full();
      return outcome;
    }
    outcome.status = train(resume);
    outcome.train_items = trained_items_;
    outcome.train_seconds = training_seconds_;
    // A signal during the last epoch's checkpoint: that checkpoint is the resume point.
    if (outcome.status == RunOutcome::Status::Interrupted || stop_signal()) {
      outcome.status = RunOutcome::Status::Interrupted;
      outcome.stop_signal = stop_signal_;
      return outcome;
    }
    if (job_.require<bool>("common.eval_best_model_after_training")) {
      fs::path best = output_dir_ / "best_model.pth";
      if (fs::exists(best)) {
        spdlog::info("loading the best model ({}) for the full evaluation", best.string());
        load_checkpoint_into(module(), best.string(), bundle_.kind);
      } else if (state_.best_bleu > 0) {
        throw Error(fmt::format("{} is missing although validation BLEU-4 reached {:.2f} (was it removed?); "
                                "evaluate a checkpoint with common.eval=true common.load_model=PATH",
                                best.string(), state_.best_bleu));
      } else {
        spdlog::warn("no validation BLEU-4 above 0 during training, so there is no best_model.pth; "
                     "evaluating the last weights");
      }
      evaluate_full();
    }
    return outcome;
  }

 private:
  struct Resume {
    fs::path path;
    c10::IValue checkpoint;
  };

  torch::nn::Module& module() { return bundle_.model->module(); }

  // SIGINT/SIGTERM received by this process or, in a data-parallel job, by
  // any rank (a collective: all ranks stop at the same step). 0: none.
  int stop_signal() {
    int signal = StopSignals::pending();
    if (group_) {
      std::vector<at::Tensor> flag{at::full({1}, static_cast<int64_t>(signal), at::kLong)};
      group_->all_reduce_max(flag);
      signal = static_cast<int>(flag[0].item<int64_t>());
    }
    if (signal) stop_signal_ = signal;
    return signal;
  }

  // Every rank's CPU random generator state (collective); empty with one process.
  std::vector<at::Tensor> rank_generator_states() {
    if (!group_) return {};
    at::Tensor state;
    {
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      state = generator.get_state();
    }
    std::vector<at::Tensor> states;
    for (const auto& bytes : group_->all_gather(std::string(static_cast<const char*>(state.data_ptr()), state.numel()))) {
      at::Tensor t = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
      std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
      states.push_back(t);
    }
    return states;
  }

  // This rank's generator from a data-parallel checkpoint (rank 0's is restored with the train state).
  void restore_rank_generator(const c10::IValue& checkpoint) {
    const c10::IValue* entry = dict_get(checkpoint, "slt");
    const c10::IValue* states = entry ? dict_get(*entry, "rng_cpu_per_rank") : nullptr;
    if (!states || !states->isList() || states->toListRef().size() != static_cast<size_t>(group_->size())) {
      if (rank_ == 0)
        spdlog::warn("the checkpoint holds no random generator state for each of the {} ranks (it was saved by "
                     "another number of processes): dropout on ranks 1.. draws afresh",
                     group_->size());
      if (rank_ != 0) at::manual_seed(static_cast<uint64_t>(job_.require<int64_t>("common.seed") + rank_));
      return;
    }
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(states->toListRef()[static_cast<size_t>(rank_)].toTensor());
  }

  // A checkpoint continues the experiment it was trained for: a config that
  // changed its seed, model, data or optimizer would silently make another
  // one (and a sweep with a fixed output_dir would resume its first run).
  void check_resumable(const Resume& resume) {
    const c10::IValue* cfg = dict_get(resume.checkpoint, "cfg");
    if (!cfg) return;
    auto changes = config_changes(*cfg, job_);
    if (changes.empty()) return;
    if (job_.get_or<bool>("common.resume_with_changed_config", false)) {
      spdlog::warn("common.resume_with_changed_config: resuming from {} with changed keys: {}", resume.path.string(),
                   join(changes, "; "));
      return;
    }
    throw UserError(resume.path.string() + " was trained with another config (" + join(changes, "; ") +
                    "); to train anew choose another common.output_dir, to resume anyway with the new values add "
                    "common.resume_with_changed_config=true");
  }

  // config.yaml, overrides.yaml and the features' extractor.yaml, as Hydra
  // records a job: written once the folder is known to be this run's.
  void record_run() {
    const std::string config = job_.to_yaml();
    write_file_atomically((output_dir_ / "config.yaml").string(), config.data(), config.size());
    ConfigNode overrides = ConfigNode::list();
    for (const auto& o : task_overrides_) overrides.elements().emplace_back(o);
    const std::string overrides_text = overrides.to_yaml();
    write_file_atomically((output_dir_ / "overrides.yaml").string(), overrides_text.data(), overrides_text.size());
    // slt-extract records its encoder next to the features; slt-translate --model RUN reads the copy.
    const auto train_dirs = split_data_dirs(job_, "train");
    if (train_dirs.empty()) return;
    const fs::path record = train_dirs.front() / "features" / "extractor.yaml";
    std::error_code ignored;
    if (fs::is_regular_file(record, ignored))
      fs::copy_file(record, output_dir_ / "extractor.yaml", fs::copy_options::overwrite_existing, ignored);
  }

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
    options.normalize = normalize_;
    options.feature_dim = job_.require<int64_t>("model.feature_dim");
    if (group_) {
      options.replicas = group_->size();
      options.replica = rank_;
      options.pad_replicas = train;
    }
    auto loader = std::make_unique<FeatureLoader>(train ? train_datasets() : open_split_datasets(job_, split),
                                                  bundle_.tokenizer, options);
    if (loader->size() == 0) throw UserError("the " + split + " split has no items (see the dataset messages above)");
    return loader;
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

  Evaluation evaluate_split(FeatureLoader& loader, const std::string& name) {
    EvaluationOptions options;
    options.device = device_;
    options.precision = precision_;
    options.print_samples = job_.require<bool>("common.eval_print_samples");
    options.truecaser = truecaser();
    options.group = group_.get();
    return evaluate(bundle_, loader, name, options);
  }

  void evaluate_full() {
    spdlog::info("full evaluation on val and test");
    for (const std::string split : {"val", "test"}) {
      auto loader = make_loader(split);
      Evaluation result = evaluate_split(*loader, split);
      if (rank_ == 0) write_evaluation(output_dir_, split, result);
      spdlog::info("{} results: {}", split, result.stats.dump());
    }
    spdlog::info("wrote outputs to {}", output_dir_.string());
  }

  // ---- checkpoints -----------------------------------------------------------

  // A fresh run must not mix with what an earlier run left: a stale
  // best_model.pth would be evaluated as this run's best. What an attempt
  // killed before its first checkpoint left (metrics, event files) goes quietly.
  void clear_earlier_results() {
    std::vector<fs::path> earlier;
    for (const char* name : {"best_model.pth", "val_results.json", "test_results.json", "val_outputs.tsv", "test_outputs.tsv"})
      if (fs::exists(output_dir_ / name)) earlier.push_back(output_dir_ / name);
    if (earlier.size() == 1 && earlier.front().filename() == "best_model.pth" && is_own_best(earlier.front())) {
      // This run was killed between best_model.pth and its first checkpoint: it starts again.
      spdlog::info("removing {}: written by an attempt of this run that stopped before its first checkpoint",
                   earlier.front().string());
      fs::remove(earlier.front());
      earlier.clear();
    }
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

  // A best_model.pth trained with this very config (by an attempt of this run).
  bool is_own_best(const fs::path& best) {
    try {
      c10::IValue saved = load_pt(best.string());
      const c10::IValue* cfg = dict_get(saved, "cfg");
      return cfg && cfg->isGenericDict() && config_changes(*cfg, job_).empty();
    } catch (const Error&) {
      return false;
    }
  }

  // The checkpoint of epoch `state_.epoch`: finished (training goes on at the
  // next epoch) or `state_.batches_done` batches in.
  c10::IValue checkpoint_value(bool epoch_finished, const std::vector<at::Tensor>& rank_generators) {
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
    c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
    checkpoint.insert("model", model);
    checkpoint.insert("optimizer", adamw_state_dict(*optimizer_));
    checkpoint.insert("scaler", scaler);
    checkpoint.insert("cfg", config_to_ivalue(job_));
    checkpoint.insert("epoch", state_.epoch);
    // The reference reads "epoch" as finished; a mid-epoch checkpoint says otherwise.
    if (!epoch_finished) checkpoint.insert("epoch_offset", state_.batches_done);
    auto entry = train_state_entry(state_, epoch_finished, bundle_.kind, device_).toGenericDict();
    if (!rank_generators.empty()) {
      c10::List<at::Tensor> states;
      for (const auto& t : rank_generators) states.push_back(t);
      entry.insert("rng_cpu_per_rank", states);
    }
    checkpoint.insert("slt", entry);
    return checkpoint;
  }

  // Writes checkpoint-<epoch>.pth (and best_model.pth), keeping the newest common.max_checkpoints.
  // Collective in a data-parallel job: rank 0 writes, the others wait for it.
  void save_checkpoint(bool is_best, bool epoch_finished) {
    auto rank_generators = rank_generator_states();
    if (rank_ == 0) write_checkpoint(is_best, epoch_finished, rank_generators);
    if (group_) group_->barrier();
  }

  void write_checkpoint(bool is_best, bool epoch_finished, const std::vector<at::Tensor>& rank_generators) {
    state_.metrics_bytes = metrics_->jsonl_bytes();
    auto bytes = serialize_pt(checkpoint_value(epoch_finished, rank_generators));
    fs::path path = output_dir_ / checkpoint_name(state_.epoch);
    crash_point("SLT_TEST_KILL_IN_CHECKPOINT", checkpoints_written_, path, bytes);
    // best_model.pth first: the checkpoint records the new best score, and a
    // crash between the writes must not leave a record of a best never written.
    if (is_best) {
      write_file_atomically((output_dir_ / "best_model.pth").string(), bytes.data(), bytes.size());
      crash_point("SLT_TEST_KILL_AFTER_BEST", best_models_written_, path, {});
    }
    write_file_atomically(path.string(), bytes.data(), bytes.size());
    int64_t keep = std::max<int64_t>(1, job_.require<int64_t>("common.max_checkpoints"));
    auto existing = list_checkpoints(output_dir_);
    for (size_t i = 0; i + keep < existing.size(); ++i) fs::remove(existing[i]);
    if (epoch_finished)
      spdlog::info("saved {}{} (end of epoch {})", path.string(), is_best ? " and best_model.pth" : "", state_.epoch);
    else
      spdlog::info("saved {}{} (epoch {}, {} batches in)", path.string(), is_best ? " and best_model.pth" : "",
                   state_.epoch, state_.batches_done);
  }

  // Fault injection for the crash tests: <variable>=N kills the process at
  // the N-th time this point is reached (`count` counts them), leaving half of
  // `bytes` as an unfinished write of `path`. SLT_TEST_KILL_IN_CHECKPOINT:
  // while writing a checkpoint; SLT_TEST_KILL_AFTER_BEST: between
  // best_model.pth and the checkpoint that records it.
  static void crash_point(const char* variable, int64_t& count, const fs::path& path, const std::vector<char>& bytes) {
    const char* setting = std::getenv(variable);
    if (!setting || ++count != std::atoll(setting)) return;
    if (!bytes.empty()) {
      std::ofstream partial(path.string() + ".tmp." + std::to_string(::getpid()), std::ios::binary);
      partial.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
      partial.flush();
    }
    std::raise(SIGKILL);
  }

  // SLT_TEST_WEIGHTS_EACH_STEP=DIR: every rank writes its weights after each
  // optimizer step to DIR/rank<R>-step<N>.pt (one flat tensor), so that the
  // data-parallel tests can compare the ranks step by step.
  void record_weights_for_tests() {
    const char* dir = std::getenv("SLT_TEST_WEIGHTS_EACH_STEP");
    if (!dir) return;
    std::vector<at::Tensor> flat;
    for (const auto& p : module().parameters()) flat.push_back(p.detach().reshape({-1}).cpu());
    save_pt((fs::path(dir) / fmt::format("rank{}-step{}.pt", rank_, state_.optimizer_steps)).string(), at::cat(flat));
  }

  void resume_from(const fs::path& path, const c10::IValue& checkpoint) {
    spdlog::info("resuming from {}", path.string());
    const c10::IValue* model = dict_get(checkpoint, "model");
    if (!model) throw TensorFileError("'" + path.string() + "' has no \"model\" entry; is it a training checkpoint?");
    load_state_dict(module(), flatten_tensors(*model, path.string()), path.string());
    if (const c10::IValue* optimizer = dict_get(checkpoint, "optimizer")) load_adamw_state(*optimizer_, *optimizer, path.string());
    if (const c10::IValue* scaler = dict_get(checkpoint, "scaler")) {
      if (const c10::IValue* scale = dict_get(*scaler, "scale")) scaler_->scale_value = ivalue_double(*scale);
      if (const c10::IValue* tracker = dict_get(*scaler, "_growth_tracker"))
        scaler_->growth_tracker = static_cast<int64_t>(ivalue_double(*tracker));
    }
    restore_train_state(checkpoint, path, state_, device_);
    if (group_) restore_rank_generator(checkpoint);
  }

  // ---- training --------------------------------------------------------------

  void set_learning_rate(double lr) {
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }

  json evaluate_validation(FeatureLoader& loader, int64_t step) {
    json stats = evaluate_split(loader, "val").stats;
    if (metrics_) metrics_->scalars("val", stats, step);
    module().train();
    return stats;
  }

  RunOutcome::Status train(const std::optional<Resume>& resume) {
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
    const int64_t ranks = group_ ? group_->size() : 1;
    spdlog::info("learning rate {:.2e}, accumulate grad iterations {}, effective batch size {}{}",
                 job_.require<double>("optim.lr"), accumulation, batch_size * accumulation * ranks,
                 ranks > 1 ? fmt::format(" ({} on each of {} ranks)", batch_size * accumulation, ranks) : "");
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
    if (resume) resume_from(resume->path, resume->checkpoint);
    if (rank_ == 0)
      metrics_ = std::make_unique<MetricsSink>(output_dir_, resume ? state_.metrics_bytes : 0,
                                               state_.epoch * batches_per_epoch + state_.batches_done);
    if (group_) {
      averager_ = std::make_unique<GradientAverager>(group_, module());
      spdlog::info("gradients averaged over {} ranks in {} buckets", group_->size(), averager_->buckets());
    }
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
    if (stop_signal()) {
      spdlog::warn("{} received before training started: nothing to save", strsignal(stop_signal_));
      return RunOutcome::Status::Interrupted;
    }

    for (; state_.epoch < epochs; ++state_.epoch) {
      const int64_t epoch = state_.epoch;
      state_.start_epoch();
      module().train();
      train_loader->start_epoch(epoch, static_cast<size_t>(state_.batches_done));
      release_gradients(*optimizer_);
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
        slt::Batch b = to_device(batch, device_);
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
        const bool update = (step + 1) % accumulation == 0;
        if (averager_ && update) averager_->expect_final_backward();
        scaler_->scale(out.loss / static_cast<double>(accumulation)).backward();
        if (update) {
          if (averager_) averager_->average();
          bool finite = scaler_->unscale(module());
          grad_norm = clip_grad_norm(module(), clip);
          if (finite) optimizer_->step();
          else spdlog::warn("fp16 gradient overflow at step {}: skipped, loss scale now {}", step, scaler_->scale_value / 2);
          scaler_->update(!finite);
          release_gradients(*optimizer_);
          ++state_.optimizer_steps;
          record_weights_for_tests();
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
          json line = {{"split", "train"}, {"epoch", epoch}, {"step", global_step}};
          line.update(scalars);
          if (metrics_) {
            metrics_->scalars("train", scalars, global_step);
            metrics_->record(line);
          }
          window_start = std::chrono::steady_clock::now();
          window_items = 0;
        }
        if (eval_steps && *eval_steps > 0 && (step + 1) % (accumulation * *eval_steps) == 0) {
          auto eval_start = std::chrono::steady_clock::now();
          progress.clear();
          spdlog::info("evaluation at step {}", global_step);
          json stats = evaluate_validation(*val_loader, global_step);
          bool improved = state_.record_step_evaluation(stats["bleu4"].get<double>());
          json line = {{"split", "val"}, {"epoch", epoch}, {"step", global_step}};
          line.update(stats);
          line["best_bleu4"] = state_.best_bleu;
          if (metrics_) metrics_->record(line);
          if (improved) save_checkpoint(true, false);
          excluded += std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
        }
        if (update && stop_signal()) {
          progress.clear();
          spdlog::warn("{} received: saving a checkpoint at epoch {}, batch {}", strsignal(stop_signal_), epoch,
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
      const auto verdict = state_.close_epoch(bleu4, patience_limit, job_.require<bool>("optim.early_stopping"));
      spdlog::info("epoch {} done: train loss {:.4f} acc {:.2f}, val bleu4 {:.2f}, best bleu4 {:.2f}, patience {}/{}",
                   epoch, state_.epoch_loss.average(), state_.epoch_acc.average(), bleu4, state_.best_bleu,
                   state_.patience, patience_limit);
      json line = {{"split", "epoch"}, {"epoch", epoch}, {"step", global_step},
                   {"train_loss", state_.epoch_loss.average()}, {"train_acc", state_.epoch_acc.average()}};
      for (const auto& [key, value] : val.items()) line["val_" + key] = value;
      line["val_best_bleu4"] = state_.best_bleu;
      if (metrics_) metrics_->record(line);

      save_checkpoint(verdict.is_best, true);
      state_.batches_done = 0;
      if (verdict.stop) {
        spdlog::info("early stopping after {} epochs with no improvement", patience_limit);
        return RunOutcome::Status::EarlyStopped;
      }
      if (stop_signal()) {
        spdlog::warn("{} received: stopping after epoch {}", strsignal(stop_signal_), epoch);
        return RunOutcome::Status::Interrupted;
      }
    }
    spdlog::info("training time {:.0f} s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (averager_ && training_seconds_ > 0)
      spdlog::info("gradient averaging over {} ranks: {:.1f} s, {:.1f}% of the training steps' time; {} of {} "
                   "buckets sent while backward was running",
                   group_->size(), averager_->seconds(), 100.0 * averager_->seconds() / training_seconds_,
                   averager_->buckets_overlapped(), averager_->buckets_sent());
    return RunOutcome::Status::Finished;
  }

  ConfigNode job_;
  std::vector<std::string> task_overrides_;
  std::shared_ptr<ProcessGroup> group_;  // null: one process
  int rank_ = 0;
  int stop_signal_ = 0;                  // the signal stop_signal() last agreed on
  std::unique_ptr<GradientAverager> averager_;
  std::unique_ptr<FolderLock> lock_;  // first acquired, last released
  at::Device device_ = at::kCPU;
  Precision precision_;
  bool eval_only_ = false;
  bool lower_case_ = false;
  std::shared_ptr<const FeatureStats> normalize_;  // data.feature_stats; null: features as read
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
  int64_t checkpoints_written_ = 0, best_models_written_ = 0;  // for crash_point
  int64_t trained_items_ = 0;
  double training_seconds_ = 0;
};

}  // namespace

RunOutcome run_translation(const ConfigNode& job, const std::vector<std::string>& task_overrides) {
  const DistributedSetup setup = distributed_setup(job);
  std::shared_ptr<ProcessGroup> group = setup.enabled() ? ProcessGroup::connect(setup) : nullptr;
  try {
    Engine engine(job, task_overrides, group);
    return engine.run();
  } catch (const std::exception& e) {
    if (group) group->report_failure(e.what());  // the other ranks' errors will say why this one stopped
    throw;
  }
}

}  // namespace slt
