// What the training engine costs on top of the bare training step, and whether
// its memory grows with the dataset.
//
//   bench_engine [--steps N] [--what throughput|memory|all]
//
// throughput: for the Tarrés and T5 v1.1-small shapes (random weights, batch 8,
//   256-frame 768-d features), the same N batches are trained (a) by the bare
//   step of bench_train_step on batches already in memory, and (b) by the
//   engine (run_translation: loader, LR schedule, accumulation, logging,
//   metrics; periodic evaluation off). Reported: items/s of each and the ratio,
//   as bare, engine, bare (the mean of the two bare runs is the baseline).
// memory: peak resident memory (ru_maxrss) of `slt-run` training one epoch of
//   a small Tarrés model on 1,000 and on 10,000 generated items.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <cstdio>
#include <fstream>

#include "bench_common.h"
#include "slt/config/compose.h"
#include "slt/data/loader.h"
#include "slt/runtime/log.h"
#include "slt/train/optim.h"
#include "slt/runtime/components.h"
#include "slt/config/run_config.h"
#include "slt/data/tokenizer.h"
#include "slt/train/trainer.h"

extern char** environ;
namespace fs = std::filesystem;

namespace {

fs::path bin_dir() { return fs::canonical("/proc/self/exe").parent_path(); }

// Runs a command line through sh; returns exit code and peak RSS in MiB.
std::pair<int, double> run_measured(const std::string& command) {
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0) return {-1, 0};
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, usage.ru_maxrss / 1024.0};
}

void check(int code, const std::string& what) {
  if (code != 0) {
    std::fprintf(stderr, "%s failed (exit %d)\n", what.c_str(), code);
    std::exit(1);
  }
}

// `copies` training items of each of 12 fixture sentences, `frames` x `dim` features.
void make_dataset(const fs::path& dir, int copies, int frames, int dim) {
  fs::create_directories(dir);
  std::ifstream corpus(fs::path(SLT_FIXTURES_DIR) / "models" / "tokenizer_data" / "corpus.txt");
  std::ofstream sentences(dir / "sentences.txt");
  std::string line;
  for (int i = 0; i < 12 && std::getline(corpus, line); ++i) sentences << line << "\n";
  sentences.close();
  check(run_measured((bin_dir() / "slt-data").string() + " synthetic --sentences " + (dir / "sentences.txt").string() +
                     " --output-dir " + (dir / "data").string() + " --train-copies " + std::to_string(copies) +
                     " --eval-copies 1 --frames " + std::to_string(frames) + " --dim " + std::to_string(dim) +
                     " >/dev/null 2>&1")
            .first,
        "slt-data synthetic");
}

// A fairseq tokenizer for the Tarrés shape: SentencePiece on the sentences,
// its dictionary padded to the reference's 7,000 pieces.
fs::path tarres_tokenizer(const fs::path& dir) {
  fs::path spm = dir / "spm";
  check(run_measured((bin_dir() / "slt-data").string() + " train-tokenizer --tsv-file " +
                     (dir / "data" / "manifests" / "train_features.tsv").string() + " --output-dir " + spm.string() +
                     " --vocab-size 80 --lowercase --num-threads 1 >/dev/null 2>&1")
            .first,
        "slt-data train-tokenizer");
  int pieces = 0;
  {
    std::ifstream in(spm / "dictionary.txt");
    for (std::string line; std::getline(in, line);) ++pieces;
  }
  std::ofstream dictionary(spm / "dictionary.txt", std::ios::app);
  for (int i = pieces; i < 6996; ++i) dictionary << "padding_piece" << i << " 1\n";
  return spm;
}

// T5 v1.1-small's config.json with the tiny fixture's SentencePiece model.
fs::path t5_small_folder(const fs::path& dir) {
  fs::path folder = dir / "t5-small";
  slt_bench::t5_small(folder);  // writes config.json
  fs::path tiny = fs::path(SLT_FIXTURES_DIR) / "models" / "tiny_t5";
  for (const char* file : {"spiece.model", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(tiny / file, folder / file, fs::copy_options::overwrite_existing);
  return folder;
}

slt::ConfigNode compose(const std::string& config_name, const std::vector<std::string>& overrides) {
  slt::register_base_config();
  slt::ComposeRequest request;
  request.search_path = {SLT_SOURCE_CONFIG_DIR};
  request.config_name = config_name;
  request.overrides = overrides;
  request.command_line = "bench_engine";
  auto runs = slt::compose_runs(request);
  slt::ConfigNode job = runs.front().job_config();
  slt::validate_job(job);
  return job;
}

// The bare step of bench_train_step over batches already in memory; items/s.
double bare_items_per_second(const slt::ConfigNode& job, int steps) {
  at::manual_seed(static_cast<uint64_t>(job.at("common.seed")->as_int()));
  auto bundle = slt::create_model_and_tokenizer(job);
  slt::LoaderOptions options;
  options.batch_size = job.at("optim.train_batch_size")->as_int();
  options.shuffle = options.drop_last = true;
  options.num_workers = 0;
  options.seed = static_cast<uint64_t>(job.at("common.seed")->as_int());
  options.max_target_length = job.at("data.max_target_positions")->as_int();
  slt::FeatureLoader loader(slt::open_split_datasets(job, "train"), bundle.tokenizer, options);
  loader.start_epoch(0);
  std::vector<slt::Batch> batches;
  slt::FeatureBatch fb;
  while (static_cast<int>(batches.size()) < steps && loader.next(fb)) batches.push_back({fb.features, fb.attention_mask, fb.labels});
  auto& module = bundle.model->module();
  module.train();
  auto optimizer = slt::make_adamw(module, 1e-4, 0.1);
  int64_t items = 0;
  auto start = std::chrono::steady_clock::now();
  for (const auto& b : batches) {
    auto loss = bundle.model->forward(b).loss;
    optimizer->zero_grad();
    loss.backward();
    slt::clip_grad_norm(module, 1.0);
    optimizer->step();
    items += b.features.size(0);
  }
  return items / slt_bench::seconds_since(start);
}

double engine_items_per_second(const slt::ConfigNode& job) {
  auto outcome = slt::run_translation(job);
  return outcome.train_items / outcome.train_seconds;
}

void throughput(int steps) {
  std::printf("throughput: %d steps of batch 8, 256 frames x 768, 1 epoch, %d intra-op threads\n", steps,
              at::get_num_threads());
  for (const std::string name : {"tarres", "t5-small"}) {
    fs::path dir = fs::temp_directory_path() / ("slt-bench-engine-" + name);
    fs::remove_all(dir);
    make_dataset(dir, (steps * 8 + 11) / 12, 256, 768);
    std::vector<std::string> overrides = {
        "data.train_data_dirs=" + (dir / "data").string(), "data.val_data_dir=" + (dir / "data").string(),
        "common.output_dir=" + (dir / "run").string(), "common.device=cpu", "common.fp16=false",
        "common.num_workers=2", "wandb.enabled=false", "optim.epochs=1", "optim.warmup_epochs=0",
        "optim.train_batch_size=8", "optim.val_batch_size=1", "optim.gradient_accumulation_steps=1",
        "common.eval_steps=null", "common.eval_best_model_after_training=false", "common.print_freq=1",
        "data.max_target_positions=32", "model.feature_dim=768"};
    std::string config = name == "tarres" ? "slt_tarres_fairseq" : "slt_t5";
    if (name == "tarres") overrides.push_back("model.name_or_path=" + tarres_tokenizer(dir).string());
    else overrides.insert(overrides.end(), {"model.name_or_path=" + t5_small_folder(dir).string(),
                                            "model.from_scratch=true", "model.dropout=0.1", "model.num_beams=1"});
    slt::ConfigNode job = compose(config, overrides);
    double bare1 = bare_items_per_second(job, steps);
    double engine = engine_items_per_second(job);
    fs::remove_all(dir / "run");
    double bare2 = bare_items_per_second(job, steps);
    double bare = (bare1 + bare2) / 2;
    std::printf("%-9s bare %.2f / %.2f items/s, engine %.2f items/s: engine/bare %.3f\n", name.c_str(), bare1, bare2,
                engine, engine / bare);
    fs::remove_all(dir);
  }
}

void memory() {
  std::printf("memory: peak RSS of slt-run training 1 epoch (small Tarres model, batch 32, 16 frames x 768)\n");
  double peaks[2];
  int sizes[2] = {1000, 10000};
  for (int i = 0; i < 2; ++i) {
    fs::path dir = fs::temp_directory_path() / ("slt-bench-memory-" + std::to_string(sizes[i]));
    fs::remove_all(dir);
    make_dataset(dir, (sizes[i] + 11) / 12, 16, 768);
    fs::path spm = tarres_tokenizer(dir);
    std::string command = (bin_dir() / "slt-run").string() + " --config-name slt_tarres_fairseq" +
                          " data.train_data_dirs=" + (dir / "data").string() + " data.val_data_dir=" + (dir / "data").string() +
                          " common.output_dir=" + (dir / "run").string() + " model.name_or_path=" + spm.string() +
                          " model.feature_dim=768 model.encoder_layers=1 model.decoder_layers=1 model.num_hidden_layers=1"
                          " common.device=cpu common.fp16=false common.num_workers=2 wandb.enabled=false optim.epochs=1"
                          " optim.train_batch_size=32 common.eval_best_model_after_training=false >/dev/null 2>&1";
    auto [code, peak] = run_measured(command);
    check(code, "slt-run on " + std::to_string(sizes[i]) + " items");
    peaks[i] = peak;
    std::printf("%6d items: peak RSS %.0f MiB\n", sizes[i], peak);
    fs::remove_all(dir);
  }
  std::printf("10,000 / 1,000 items: %.3f\n", peaks[1] / peaks[0]);
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 12;
  std::string what = "all";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--steps") steps = std::stoi(argv[i + 1]);
    else if (flag == "--what") what = argv[i + 1];
  }
  slt::setup_logging("warn");
  slt::load_plugins(slt::plugin_search_path({}));
  if (what == "throughput" || what == "all") throughput(steps);
  if (what == "memory" || what == "all") memory();
  return 0;
}
