// slt-run training and evaluation end to end, on a learnable synthetic
// dataset (slt-data synthetic): each sentence has its own random "sign"
// vector, items add noise, so a model can learn features -> sentence.
#include "engine_support.h"  // first: torch before Catch

#include <chrono>
#include <cmath>
#include <random>

#include "slt/io/tensor_io.h"
#include "slt/model/model.h"

using namespace engine_test;

namespace {

// slt-translate on the run folder says what the evaluation wrote for the first
// test item (`ignore_case`: the evaluation truecases a lower-casing model's output).
void check_translate_matches_evaluation(const ToyData& toy, const fs::path& run, bool ignore_case) {
  std::ifstream manifest(toy.data / "manifests" / "test_features.tsv");
  std::string first;
  std::getline(manifest, first);
  std::string name = first.substr(0, first.find(".mp4"));
  fs::path features = toy.data / "features" / "0" / name.substr(0, 5) / (name + ".pt");
  auto translated = run_command(std::string(SLT_TRANSLATE_EXE) + " --model " + run.string() + " " + features.string());
  INFO(translated.output);
  REQUIRE(translated.exit_code == 0);
  std::istringstream outputs(read_file(run / "test_outputs.tsv"));
  std::string header, row;
  std::getline(outputs, header);
  std::getline(outputs, row);
  auto fold = [ignore_case](std::string text) {
    if (ignore_case)
      for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  CHECK(fold(translated.output) == fold(row.substr(0, row.find('\t')) + "\n"));
}

void check_run_folder(const fs::path& run, int max_checkpoints) {
  for (const char* name : {"config.yaml", "overrides.yaml", "logs/train.log", "metrics.jsonl", "best_model.pth",
                           "val_outputs.tsv", "val_results.json", "test_outputs.tsv", "test_results.json"})
    CHECK(fs::exists(run / name));
  int checkpoints = 0, event_files = 0;
  for (const auto& entry : fs::directory_iterator(run))
    if (entry.path().filename().string().rfind("checkpoint-", 0) == 0) ++checkpoints;
  for (const auto& entry : fs::directory_iterator(run / "tb"))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) ++event_files;
  CHECK(checkpoints == max_checkpoints);
  REQUIRE(event_files == 1);
  // The scalars the issue names (framing and CRCs are tested in test_event_log.cpp).
  std::string events = read_file(fs::directory_iterator(run / "tb")->path());
  for (const char* tag : {"train/loss", "train/acc", "train/lr", "train/grad_norm", "val/bleu1", "val/bleu2", "val/bleu3",
                          "val/bleu4", "val/rougeL", "val/chrf", "val/loss"})
    CHECK_THAT(events, Catch::Contains(tag));
  // Outputs: a header, then one row per test item in manifest order.
  std::istringstream tsv(read_file(run / "test_outputs.tsv"));
  std::string line;
  std::getline(tsv, line);
  CHECK(line == "Prediction\tReference");
  int rows = 0;
  while (std::getline(tsv, line)) ++rows;
  CHECK(rows == 12);
  auto results = read_json(run / "test_results.json");
  std::vector<std::string> keys;
  for (auto it = results.begin(); it != results.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"loss", "acc", "bleu1", "bleu2", "bleu3", "bleu4", "rouge1", "rouge2",
                                         "rougeL", "rougeLsum", "meteor", "chrf"});
  auto log = read_file(run / "logs" / "train.log");
  CHECK_THAT(log, Catch::Contains("trainable parameters") && Catch::Contains("effective batch size") &&
                      Catch::Contains("items/s") && Catch::Contains("* val bleu1"));
}

double best_val_bleu4(const fs::path& run) {
  double best = 0;
  for (const auto& line : read_jsonl(run / "metrics.jsonl"))
    if (line["split"] == "val" || line["split"] == "epoch")
      best = std::max(best, line.value("val_bleu4", line.value("bleu4", 0.0)));
  return best;
}

// common.eval=true on a copy of best_model.pth writes the same test results next to it.
void check_eval_only_reproduces(const std::string& command_prefix, const fs::path& run, const fs::path& scratch) {
  fs::create_directories(scratch);
  fs::copy_file(run / "best_model.pth", scratch / "best_model.pth");
  auto r = run_command(command_prefix + "common.eval=true common.load_model=" + (scratch / "best_model.pth").string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(read_file(scratch / "test_results.json") == read_file(run / "test_results.json"));
  CHECK(read_file(scratch / "test_outputs.tsv") == read_file(run / "test_outputs.tsv"));
  CHECK(read_file(scratch / "val_results.json") == read_file(run / "val_results.json"));
  CHECK(fs::exists(scratch / "logs" / "eval.log"));
  CHECK_FALSE(fs::exists(scratch / "config.yaml"));  // an evaluation leaves the training run's files alone
}


}  // namespace

TEST_CASE("the Tarres model learns the toy dataset - every output is written - eval-only reproduces it", "[engine][tarres]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  auto r = run_command(toy.tarres(run) + "optim.epochs=20 common.max_checkpoints=2");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  check_run_folder(run, 2);
  CHECK(best_val_bleu4(run) >= 80);
  CHECK(read_json(run / "val_results.json")["bleu4"].get<double>() >= 80);
  // model.lower_case: the tokenizer lower-cases labels and predictions come back truecased.
  CHECK_THAT(read_file(run / "test_outputs.tsv"), Catch::Contains("\nThanks for watching"));
  check_eval_only_reproduces(toy.tarres(run), run, toy.dir.path() / "eval");
  // PyTorch reads the checkpoint as the reference does (Debian's python3-torch as the oracle).
  auto python = run_command("/usr/bin/python3 " + std::string(SLT_TESTS_DIR) + "/python/checkpoint_interop.py " +
                            (run / "best_model.pth").string());
  INFO(python.output);
  CHECK(python.exit_code == 0);
  CHECK_THAT(python.output, Catch::Contains("ok"));
}

TEST_CASE("the T5 model learns the toy dataset - eval-only reproduces its test results", "[engine][t5]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  auto r = run_command(toy.t5(run) + "optim.epochs=16 common.max_checkpoints=3 common.eval_steps=null "
                                     "optim.gradient_accumulation_steps=1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  check_run_folder(run, 3);
  CHECK(best_val_bleu4(run) >= 80);
  CHECK(read_json(run / "val_results.json")["bleu4"].get<double>() >= 80);
  check_eval_only_reproduces(toy.t5(run), run, toy.dir.path() / "eval");
  check_translate_matches_evaluation(toy, run, false);
  // Evaluation translates items sorted by length across batches: with batches of one item
  // (nothing to sort) the outputs are the same.
  fs::path single = toy.dir.path() / "eval_batch1";
  fs::create_directories(single);
  fs::copy_file(run / "best_model.pth", single / "best_model.pth");
  auto one = run_command(toy.t5(run) + "common.eval=true optim.val_batch_size=1 common.load_model=" +
                         (single / "best_model.pth").string());
  INFO(one.output);
  REQUIRE(one.exit_code == 0);
  CHECK(read_file(single / "test_outputs.tsv") == read_file(run / "test_outputs.tsv"));
}

TEST_CASE("the learning rate follows the reference schedule per iteration with gradient accumulation 2", "[engine][lr]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  const double lr = 0.003, min_lr = 0.0003, warmup = 2, epochs = 4;
  auto r = run_command(toy.t5(run) + "optim.epochs=4 optim.gradient_accumulation_steps=2 common.print_freq=1 "
                                     "common.eval_steps=null common.eval_best_model_after_training=false");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const int batches = 12;  // 48 items / batch 4
  // util/lr_sched.adjust_learning_rate, called on iterations where step % 2 == 0
  // with step / len(loader) + epoch; odd iterations keep the previous value.
  auto reference = [&](double epoch) {
    if (epoch < warmup) return lr * epoch / warmup;
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * (epoch - warmup) / (epochs - warmup)));
  };
  std::map<int64_t, double> logged;
  for (const auto& line : read_jsonl(run / "metrics.jsonl"))
    if (line["split"] == "train") logged[line["step"].get<int64_t>()] = line["lr"].get<double>();
  REQUIRE(logged.size() == static_cast<size_t>(epochs * batches));
  auto expected_at = [&](int epoch, int step) { return reference(static_cast<double>(step - step % 2) / batches + epoch); };
  auto logged_at = [&](int epoch, int step) { return logged.at(epoch * batches + step + 1); };
  CHECK(logged_at(0, 0) == 0.0);                                   // warmup start
  CHECK(logged_at(0, 1) == 0.0);                                   // odd step: unchanged
  CHECK(logged_at(1, 11) == Approx(expected_at(1, 11)).epsilon(1e-12));  // last of warmup
  CHECK(logged_at(2, 0) == Approx(lr).epsilon(1e-12));             // warmup end: the peak
  CHECK(logged_at(3, 0) == Approx((lr + min_lr) / 2).epsilon(1e-12));  // mid-cosine
  CHECK(logged_at(3, 11) == Approx(expected_at(3, 11)).epsilon(1e-12));  // last step
  for (int epoch = 0; epoch < epochs; ++epoch)
    for (int step = 0; step < batches; ++step) CHECK(logged_at(epoch, step) == Approx(expected_at(epoch, step)).epsilon(1e-12));
}

TEST_CASE("a run killed at random steps, in a checkpoint write and by SIGTERM finishes bit-identical", "[engine][resume]") {
  ToyData toy;
  // Accumulation 2, evaluation every 3 optimizer steps (best models saved mid-epoch), dropout on.
  auto command = [&](const fs::path& run) {
    return toy.t5(run) + "optim.epochs=6 optim.gradient_accumulation_steps=2 common.eval_steps=3 common.max_checkpoints=2 ";
  };
  fs::path reference = toy.dir.path() / "reference", resumed = toy.dir.path() / "resumed";
  const auto reference_started = std::chrono::steady_clock::now();
  auto r = run_command(command(reference));
  const double reference_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - reference_started).count();
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  fs::path log = toy.dir.path() / "resumed.log";
  unsigned seed = std::random_device{}();
  INFO("kill schedule seed " << seed << "; log " << read_file(log));
  std::mt19937 rng(seed);
  // 1. Killed halfway through writing its 3rd checkpoint: a truncated temporary file stays behind.
  pid_t pid = spawn(command(resumed), log, "SLT_TEST_KILL_IN_CHECKPOINT=3");
  REQUIRE(wait_for(pid) == -SIGKILL);
  bool partial = false;
  for (const auto& entry : fs::directory_iterator(resumed))
    partial |= entry.path().filename().string().find(".pth.tmp.") != std::string::npos;
  CHECK(partial);
  // 2. SIGTERM once training runs (most of it is still ahead): a checkpoint
  // mid-epoch, a clean exit (128 + 15).
  auto count = [&](const std::string& text) {
    std::string all = read_file(log);
    size_t n = 0;
    for (size_t at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++n;
    return n;
  };
  size_t starts = count("start training for");
  pid = spawn(command(resumed), log);
  bool ended = false;
  for (int waited = 0; !ended && count("start training for") == starts && waited < 3000; waited += 10)
    ended = ended_within(pid, 0.01);
  if (!ended && !ended_within(pid, 0.2)) {
    ::kill(pid, SIGTERM);
    CHECK(wait_for(pid) == 143);
    CHECK_THAT(read_file(log), Catch::Contains("Terminated received"));
  }
  // 3. SIGKILL at random moments of training: once an attempt has resumed, after
  // a random share of a tenth of the whole reference run, so that three attempts
  // leave training to finish whatever this machine's speed (fixed delays after
  // the start let a fast machine finish before the first kill). A late last
  // attempt may still run to the end.
  int kills = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const size_t resumes = count("resuming from");
    pid = spawn(command(resumed), log);
    bool finished = false;
    for (int waited = 0; !finished && count("resuming from") == resumes && waited < 6000; waited += 5)
      finished = ended_within(pid, 0.005);
    if (finished ||
        ended_within(pid, std::uniform_real_distribution<double>(0.0, 0.1 * reference_seconds)(rng)))
      break;
    ::kill(pid, SIGKILL);
    wait_for(pid);
    ++kills;
  }
  // 4. To the end.
  pid = spawn(command(resumed), log);
  REQUIRE(wait_for(pid) == 0);
  CHECK(kills >= 1);
  CHECK_THAT(read_file(log), Catch::Contains("resuming from") && Catch::Contains("an unfinished checkpoint write"));

  check_same_weights(reference / "best_model.pth", resumed / "best_model.pth");
  check_same_weights(reference / "checkpoint-00005.pth", resumed / "checkpoint-00005.pth");
  for (const char* file : {"test_results.json", "val_results.json", "test_outputs.tsv", "metrics.jsonl"}) {
    INFO(file);
    CHECK(read_file(reference / file) == read_file(resumed / file));
  }
}

TEST_CASE("a non-finite loss stops the run naming the step and keeps the last checkpoint", "[engine]") {
  ToyData toy;
  // Poison one training item with features too large for float arithmetic (NaN features are refused when read).
  std::ifstream manifest(toy.data / "manifests" / "train_features.tsv");
  std::string first;
  std::getline(manifest, first);
  std::string name = first.substr(0, first.find(".mp4"));
  fs::path file = toy.data / "features" / "0" / name.substr(0, 5) / (name + ".pt");
  slt::save_pt(file.string(), at::full({12, 32}, 3e38));
  fs::path run = toy.dir.path() / "run";
  auto r = run_command(toy.t5(run) + "optim.epochs=2");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("loss is nan at epoch 0, batch") && Catch::Contains(name));
  CHECK_FALSE(fs::exists(run / "best_model.pth"));
}

TEST_CASE("device and precision settings a machine cannot honour are clear errors", "[engine]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  if (!at::hasCUDA()) {
    auto r = run_command(toy.t5(run) + "common.device=cuda");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("CUDA is not available") && Catch::Contains("common.device=cpu"));
  }
  auto both = run_command(toy.t5(run) + "common.fp16=true common.bf16=true");
  CHECK(both.exit_code == 2);
  CHECK_THAT(both.output, Catch::Contains("choose one"));
  auto eval_without_model = run_command(toy.t5(run) + "common.eval=true");
  CHECK(eval_without_model.exit_code == 2);
  CHECK_THAT(eval_without_model.output, Catch::Contains("common.load_model="));
}

TEST_CASE("bf16 CPU autocast trains when the run is on the CPU by choice", "[engine]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  auto r = run_command(toy.t5(run) + "common.bf16=true optim.epochs=1 common.eval_best_model_after_training=false");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("bf16 CPU autocast") && Catch::Contains("BFloat16 autocast"));
}

TEST_CASE("slt-report summarises a seed sweep: per-run table, mean ± std, learning curves", "[engine][report]") {
  ToyData toy;
  fs::path sweep = toy.dir.path() / "sweep";
  auto r = run_command(toy.t5("") + "--multirun hydra.sweep.dir=" + sweep.string() + " common.seed=1,2"
                       " optim.epochs=3 common.eval_steps=null");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto report = run_command(std::string(SLT_REPORT_EXE) + " " + sweep.string());
  INFO(report.output);
  REQUIRE(report.exit_code == 0);
  std::string md = read_file(sweep / "report.md"), page = read_file(sweep / "report.html");
  // Independently: the mean and sample standard deviation of the two runs' test BLEU-4.
  std::vector<double> bleu4;
  for (const auto& entry : fs::recursive_directory_iterator(sweep))
    if (entry.path().filename() == "test_results.json") bleu4.push_back(read_json(entry.path())["bleu4"].get<double>());
  REQUIRE(bleu4.size() == 2);
  double mean = (bleu4[0] + bleu4[1]) / 2, sd = std::abs(bleu4[0] - bleu4[1]) / std::sqrt(2.0);
  char expected[64];
  std::snprintf(expected, sizeof expected, "%.2f ± %.2f", mean, sd);
  CHECK_THAT(md, Catch::Contains("mean ± std (2 runs)") && Catch::Contains("common.seed=1") &&
                     Catch::Contains("common.seed=2") && Catch::Contains(expected));
  CHECK_THAT(page, Catch::Contains("<table>") && Catch::Contains("<svg") && Catch::Contains("<polyline") &&
                       Catch::Contains("validation BLEU-4"));
}

TEST_CASE("a finished run trains on when optim.epochs grows - a reference checkpoint resumes at its next epoch", "[engine][resume]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  const std::string command = toy.t5(run) + "common.eval_steps=null common.eval_best_model_after_training=false ";
  auto first = run_command(command + "optim.epochs=2");
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  auto again = run_command(command + "optim.epochs=2");
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("training already finished in this folder (2 epochs)"));
  auto longer = run_command(command + "optim.epochs=3");
  INFO(longer.output);
  REQUIRE(longer.exit_code == 0);
  CHECK_THAT(longer.output, Catch::Contains("checkpoint-00001.pth") && Catch::Contains("(at epoch 2, batch 0)"));
  REQUIRE(fs::exists(run / "checkpoint-00002.pth"));

  // What the reference's save_checkpoint writes (torch.save from Python): no "slt" entry.
  fs::path reference_run = toy.dir.path() / "reference_run";
  fs::create_directories(reference_run);
  auto python = run_command("/usr/bin/python3 -c \"import torch; c = torch.load('" + (run / "checkpoint-00002.pth").string() +
                            "'); c = {k: c[k] for k in ('model', 'optimizer', 'scaler', 'cfg', 'epoch')}; torch.save(c, '" +
                            (reference_run / "checkpoint-00002.pth").string() + "')\"");
  INFO(python.output);
  REQUIRE(python.exit_code == 0);
  auto resumed = run_command(toy.t5(reference_run) + "common.eval_steps=null optim.epochs=4");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.output, Catch::Contains("was not written by slt") && Catch::Contains("(at epoch 3, batch 0)"));
  CHECK(fs::exists(reference_run / "checkpoint-00003.pth"));
  CHECK(fs::exists(reference_run / "test_results.json"));
}

TEST_CASE("on a terminal a progress bar shows epoch, step, ETA and loss", "[engine]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  // script(1) gives the run a pseudo-terminal.
  auto r = run_command("script -qec \"" + toy.t5(run) + "optim.epochs=1 common.eval_best_model_after_training=false\" /dev/null");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("epoch 0 [") && Catch::Contains("12/12 ETA 00:00:00 loss"));
}

TEST_CASE("a fresh run refuses a folder with an earlier run's results unless told to overwrite", "[engine]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  const std::string command = toy.t5(run) + "common.eval_steps=null optim.epochs=1 ";
  REQUIRE(run_command(command).exit_code == 0);
  for (const auto& entry : fs::directory_iterator(run))
    if (entry.path().filename().string().rfind("checkpoint-", 0) == 0) fs::remove(entry.path());
  auto refused = run_command(command);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("holds results of an earlier run") &&
                                 Catch::Contains("common.overwrite_output_dir=true"));
  auto overwritten = run_command(command + "common.overwrite_output_dir=true");
  INFO(overwritten.output);
  CHECK(overwritten.exit_code == 0);
  CHECK_THAT(overwritten.output, Catch::Contains("removing"));
  CHECK(fs::exists(run / "test_results.json"));
  // What an attempt killed before its first checkpoint leaves is no obstacle.
  for (const auto& entry : fs::directory_iterator(run))
    if (entry.path().extension() != ".jsonl" && entry.path().filename() != "tb" && entry.path().filename() != "logs")
      fs::remove_all(entry.path());
  auto restarted = run_command(command);
  INFO(restarted.output);
  CHECK(restarted.exit_code == 0);
  CHECK(std::distance(fs::directory_iterator(run / "tb"), fs::directory_iterator()) == 1);
}

TEST_CASE("slt-translate turns a video into text through a feature extractor and a translation model", "[engine][extract]") {
  ToyData toy(64);  // the pipeline fixture's tiny SignHiera gives 64-d features
  const fs::path hiera = fs::path(SLT_FIXTURES_DIR) / "hiera";
  // As slt-extract leaves it next to the features it wrote: the run keeps a copy.
  std::ofstream(toy.data / "features" / "extractor.yaml")
      << "model_name: hiera_base_16x224\npretrained_model_path: " << (hiera / "pipeline" / "tiny16x224.pth").string()
      << "\nnum_frames: 16\nmodel:\n  embed_dim: 8\n  num_classes: 5\n  stages: [1, 1, 1, 1]\n";
  fs::path run = toy.dir.path() / "run";
  auto trained = run_command(toy.tarres(run) + "model.feature_dim=64 optim.epochs=1");
  INFO(trained.output);
  REQUIRE(trained.exit_code == 0);
  CHECK(fs::exists(run / "extractor.yaml"));
  const std::string video = (hiera / "DATASET" / "videos" / "00000" / "0000002-mandel-25fps-4s00.mp4").string();
  const std::string model = std::string(SLT_TRANSLATE_EXE) + " --json --model " + (run / "checkpoint-00000.pth").string();
  auto translated = run_command(model + " --extractor " + (hiera / "pipeline" / "tiny16x224.pth").string() +
                                " model_name=hiera_base_16x224 num_frames=16 model.embed_dim=8 model.num_classes=5"
                                " 'model.stages=[1,1,1,1]' " + video);
  INFO(translated.output);
  REQUIRE(translated.exit_code == 0);
  auto line = nlohmann::json::parse(translated.output.substr(translated.output.find('{')));
  CHECK(line["input"].get<std::string>() == video);
  CHECK(line["ids"].size() >= 2);  // a hypothesis, at least one token and EOS
  // The run folder's extractor.yaml stands in for --extractor and its keys.
  auto recorded = run_command(model + " " + video);
  INFO(recorded.output);
  REQUIRE(recorded.exit_code == 0);
  CHECK(nlohmann::json::parse(recorded.output.substr(recorded.output.find('{')))["text"] == line["text"]);
  fs::remove(run / "extractor.yaml");
  auto without = run_command(model + " " + video);
  CHECK(without.exit_code == 2);
  CHECK_THAT(without.output, Catch::Contains("--extractor"));
}

TEST_CASE("data.feature_stats normalises features for training, evaluation and slt-translate", "[engine]") {
  ToyData toy;
  const fs::path stats = toy.dir.path() / "stats.pt";
  auto made = run_command(kData + "feature-stats --manifest " + (toy.data / "manifests" / "train_features.tsv").string() +
                          " --data-dir " + (toy.data / "features" / "0").string() + " --output " + stats.string());
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  // PyTorch computes the same statistics over every training frame.
  auto python = run_command("/usr/bin/python3 " + std::string(SLT_TESTS_DIR) + "/python/feature_stats_oracle.py " +
                            stats.string() + " " + (toy.data / "manifests" / "train_features.tsv").string() + " " +
                            (toy.data / "features" / "0").string());
  INFO(python.output);
  CHECK_THAT(python.output, Catch::Contains("ok"));

  fs::path run = toy.dir.path() / "run";
  auto r = run_command(toy.tarres(run) + "optim.epochs=20 data.feature_stats=" + stats.string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(best_val_bleu4(run) >= 50);
  CHECK_THAT(read_file(run / "config.yaml"), Catch::Contains("feature_stats: " + stats.string()));
  // slt-translate normalises as the run did. (The evaluation truecases the
  // lower-cased model's output; slt-translate does not.)
  check_translate_matches_evaluation(toy, run, true);

  // Statistics of another width, or no file: clear errors naming them.
  auto absent = run_command(toy.tarres(toy.dir.path() / "wrong") + "optim.epochs=1 data.feature_stats=" +
                            (toy.dir.path() / "absent.pt").string());
  CHECK(absent.exit_code == 2);
  CHECK_THAT(absent.output, Catch::Contains("absent.pt"));
  const fs::path odd = toy.dir.path() / "odd";
  fs::create_directories(odd / "aaaaa");
  slt::save_pt((odd / "aaaaa" / "aaaaa1.pt").string(), at::ones({3, 5}));
  std::ofstream(odd / "one.tsv") << "aaaaa1.mp4\t3\tx\n";
  auto stats_of = [&](const fs::path& manifest, const fs::path& output) {
    return run_command(kData + "feature-stats --manifest " + manifest.string() + " --data-dir " + odd.string() +
                       " --output " + output.string());
  };
  REQUIRE(stats_of(odd / "one.tsv", odd / "five.pt").exit_code == 0);
  auto narrow = run_command(toy.tarres(toy.dir.path() / "wrong") + "optim.epochs=1 data.feature_stats=" +
                            (odd / "five.pt").string());
  CHECK(narrow.exit_code == 2);
  CHECK_THAT(narrow.output, Catch::Contains("5-dimensional"));

  // Bad input to feature-stats: a folder for a manifest, a NaN in a feature file. Nothing is written.
  auto folder = stats_of(odd, odd / "none.pt");
  CHECK(folder.exit_code == 2);
  CHECK_THAT(folder.output, Catch::Contains("is a folder, not a regular file"));
  at::Tensor nan = at::ones({3, 5});
  nan[1][2] = std::nan("");
  slt::save_pt((odd / "aaaaa" / "aaaaa1.pt").string(), nan);
  auto not_finite = stats_of(odd / "one.tsv", odd / "none.pt");
  CHECK(not_finite.exit_code == 2);
  CHECK_THAT(not_finite.output, Catch::Contains("aaaaa1.pt': frame 1, dimension 2 is not finite"));
  CHECK_FALSE(fs::exists(odd / "none.pt"));
}

TEST_CASE("a run computes on every CPU the process may use unless told otherwise", "[engine][threads]") {
  ToyData toy;
  auto cpus = run_command("env -u OMP_NUM_THREADS nproc");  // nproc counts the affinity mask, as slt does
  REQUIRE(cpus.exit_code == 0);
  const std::string expected = "threads: " + std::to_string(std::stoi(cpus.output)) + " (usable CPUs)";
  auto command = [&](const std::string& run) { return toy.tarres(toy.dir.path() / run) + "optim.epochs=0 "; };
  auto by_default = run_command("env -u OMP_NUM_THREADS " + command("default"));
  INFO(by_default.output);
  CHECK(by_default.exit_code == 0);
  CHECK_THAT(by_default.output, Catch::Contains(expected));
  auto told = run_command("env -u OMP_NUM_THREADS " + command("told") + "common.num_threads=1");
  CHECK_THAT(told.output, Catch::Contains("threads: 1 (common.num_threads)"));
  auto environment = run_command("OMP_NUM_THREADS=3 " + command("environment"));
  CHECK_THAT(environment.output, Catch::Contains("threads: 3 (OMP_NUM_THREADS)"));
}
