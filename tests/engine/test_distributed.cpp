// Data-parallel training over c10d Gloo, end to end: ranks stay identical,
// the result equals one process on the combined batch, evaluation splits and
// gathers, and a lost rank stops the job with a message naming it.
#include "engine_support.h"

#include <optional>
#include <set>
#include <regex>

#include "slt/io/tensor_io.h"

using namespace engine_test;

namespace {

// Twelve orderings of the same four words: every label has the same number
// of tokens, so each rank's mean loss weighs its tokens as one process's mean
// over the combined batch does (data parallelism averages the ranks' means).
struct SameLengthData {
  TempDir dir;
  fs::path data, spm;
  SameLengthData() : data(dir.path() / "data"), spm(dir.path() / "spm") {
    std::vector<std::string> words{"red", "pink", "gold", "cyan"};
    std::ofstream sentences(dir.path() / "sentences.txt");
    for (int i = 0; i < 12; ++i) {
      sentences << words[0] << " " << words[1] << " " << words[2] << " " << words[3] << "\n";
      std::next_permutation(words.begin(), words.end());
      std::next_permutation(words.begin(), words.end());
    }
    sentences.close();
    REQUIRE(run_command(kData + "synthetic --sentences " + (dir.path() / "sentences.txt").string() + " --output-dir " +
                        data.string() + " --dim 32 --frames 12 --train-copies 4")
                .exit_code == 0);
    auto trained = run_command(kData + "train-tokenizer --tsv-file " + (data / "manifests" / "train_features.tsv").string() +
                               " --output-dir " + spm.string() + " --vocab-size 20 --lowercase --num-threads 1");
    REQUIRE(trained.exit_code == 0);
  }
  // The toy Tarrés model without dropout (the ranks draw different masks).
  std::string tarres(const fs::path& output_dir) const {
    return kRun + "--config-name slt_tarres_fairseq data.train_data_dirs=" + data.string() +
           " data.val_data_dir=" + data.string() + " common.output_dir=" + output_dir.string() +
           " common.device=cpu common.fp16=false common.num_workers=1 wandb.enabled=false"
           " common.eval_print_samples=false optim.warmup_epochs=2 optim.lr=0.003 optim.min_lr=0.0003"
           " optim.val_batch_size=16 model.name_or_path=" + spm.string() +
           " model.feature_dim=32 model.encoder_embed_dim=64 model.decoder_embed_dim=64 model.decoder_output_dim=64"
           " model.encoder_ffn_embed_dim=128 model.decoder_ffn_embed_dim=128 model.encoder_layers=1"
           " model.decoder_layers=1 model.num_hidden_layers=1 model.dropout=0 model.attention_dropout=0"
           " model.activation_dropout=0 model.classifier_dropout=0 ";
  }
};

at::Tensor weights_after(const fs::path& dir, int rank, int step) {
  return slt::load_pt_tensor((dir / ("rank" + std::to_string(rank) + "-step" + std::to_string(step) + ".pt")).string());
}

// Waits until `log` contains `text` (or `seconds` pass).
bool log_shows(const fs::path& log, const std::string& text, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_file(log).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The exit status (negative: killed by that signal) if `pid` ends within `seconds`.
std::optional<int> exit_within(pid_t pid, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("2 Gloo ranks stay identical every step and match one process on the combined batch", "[engine][distributed]") {
  SameLengthData toy;
  const fs::path two = toy.dir.path() / "two", one = toy.dir.path() / "one";
  const fs::path two_weights = toy.dir.path() / "w2", one_weights = toy.dir.path() / "w1";
  fs::create_directories(two_weights);
  fs::create_directories(one_weights);
  // 48 items: 6 steps an epoch, of 4 items on each of 2 ranks or 8 items in one process.
  // GELU, not ReLU: the two runs differ by rounding (1e-7), and where a ReLU input sits that
  // close to 0 its gate differs between them; Adam turns that one changed gradient into a
  // change of 1e-4 in a weight, which a smooth activation does not.
  auto ranks = run_command("SLT_TEST_WEIGHTS_EACH_STEP=" + two_weights.string() + " " + toy.tarres(two) +
                           "optim.epochs=2 optim.train_batch_size=4 model.activation_fn=gelu --nproc 2");
  INFO(ranks.output);
  REQUIRE(ranks.exit_code == 0);
  CHECK_THAT(ranks.output, Catch::Contains("data parallel over 2 ranks"));
  CHECK_THAT(ranks.output, Catch::Contains("effective batch size 8 (4 on each of 2 ranks)"));
  auto single = run_command("SLT_TEST_WEIGHTS_EACH_STEP=" + one_weights.string() + " " + toy.tarres(one) +
                            "optim.epochs=2 optim.train_batch_size=8 model.activation_fn=gelu");
  REQUIRE(single.exit_code == 0);

  for (int step = 1; step <= 12; ++step) {
    INFO("optimizer step " << step);
    at::Tensor rank0 = weights_after(two_weights, 0, step), rank1 = weights_after(two_weights, 1, step);
    CHECK(at::equal(rank0, rank1));  // bit for bit
    at::Tensor alone = weights_after(one_weights, 0, step);
    CHECK((rank0 - alone).abs().max().item<double>() < 1e-5);
    if (step == 12) CHECK((rank0 - weights_after(two_weights, 0, 1)).abs().max().item<double>() > 1e-3);  // it trains
  }
  // Only rank 0 writes the run folder.
  CHECK(fs::exists(two / "checkpoint-00001.pth"));
  CHECK(read_jsonl(two / "metrics.jsonl").size() == read_jsonl(one / "metrics.jsonl").size());

}

TEST_CASE("evaluation split over 2 ranks writes what one process writes, in manifest order", "[engine][distributed]") {
  ToyData toy;
  const fs::path trained = toy.dir.path() / "trained";
  REQUIRE(run_command(toy.tarres(trained) + "optim.epochs=2 common.eval_best_model_after_training=false").exit_code == 0);
  for (const fs::path& dir : {toy.dir.path() / "eval1", toy.dir.path() / "eval2"}) {
    fs::create_directories(dir);
    fs::copy_file(trained / "checkpoint-00001.pth", dir / "model.pth");
  }
  const std::string eval = "common.eval=true common.load_model=";
  REQUIRE(run_command(toy.tarres("") + eval + (toy.dir.path() / "eval1" / "model.pth").string()).exit_code == 0);
  auto split = run_command(toy.tarres("") + eval + (toy.dir.path() / "eval2" / "model.pth").string() + " --nproc 2");
  INFO(split.output);
  REQUIRE(split.exit_code == 0);
  for (const std::string file : {"val_outputs.tsv", "test_outputs.tsv"}) {
    INFO(file);
    const std::string alone = read_file(toy.dir.path() / "eval1" / file);
    CHECK(alone == read_file(toy.dir.path() / "eval2" / file));
    // The order is checked only if the lines differ: 12 references, and predictions not all alike.
    std::istringstream lines(alone);
    std::set<std::string> predictions;
    int count = 0;
    for (std::string line; std::getline(lines, line); ++count) predictions.insert(line.substr(0, line.find('\t')));
    CHECK(count == 13);
    CHECK(predictions.size() > 3);
  }
  auto results1 = read_json(toy.dir.path() / "eval1" / "test_results.json");
  auto results2 = read_json(toy.dir.path() / "eval2" / "test_results.json");
  for (const char* metric : {"bleu1", "rougeL", "chrf", "meteor"}) CHECK(results1[metric] == results2[metric]);
}

TEST_CASE("a killed rank stops the other within dist.timeout, naming the lost rank", "[engine][distributed]") {
  ToyData toy;
  const std::string training = toy.tarres(toy.dir.path() / "run") + "optim.epochs=500 common.eval_steps=null dist.timeout=20 ";

  SECTION("rank 1 killed: rank 0 and the --nproc launcher say so") {
    const fs::path log = toy.dir.path() / "launcher.log";
    pid_t launcher = spawn(training + "--nproc 2", log);
    REQUIRE(log_shows(log, "epoch 0 done", 120));
    // The launcher's children, told apart by their RANK.
    pid_t rank1 = -1;
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      std::smatch parent;
      if (!std::regex_search(text, parent, std::regex(R"(\) \S (\d+))")) || std::stoi(parent[1]) != launcher) continue;
      std::string environment = read_file(entry.path() / "environ");
      if (environment.find(std::string("RANK=1") + '\0') != std::string::npos) rank1 = std::stoi(name);
    }
    REQUIRE(rank1 > 0);
    ::kill(rank1, SIGKILL);
    auto status = exit_within(launcher, 30);  // dist.timeout is 20 s; a reset connection is noticed at once
    std::string output = read_file(log);
    INFO(output);
    REQUIRE(status);
    CHECK(*status == 128 + SIGKILL);  // the first failure's status
    CHECK_THAT(output, Catch::Contains("rank 0: rank 1 is gone"));
    CHECK_THAT(output, Catch::Contains("rank 1 failed first (killed by signal 9 (Killed))"));
  }

  SECTION("rank 0 killed, ranks started by hand with a file store: rank 1 says so and exits non-zero") {
    const std::string environment = "WORLD_SIZE=2 OMP_NUM_THREADS=1 ";
    const std::string store = "dist.dist_url=file://" + (toy.dir.path() / "store").string() + " ";
    const fs::path log0 = toy.dir.path() / "rank0.log", log1 = toy.dir.path() / "rank1.log";
    pid_t rank0 = spawn(training + store, log0, environment + "RANK=0");
    pid_t rank1 = spawn(training + store, log1, environment + "RANK=1");
    REQUIRE(log_shows(log0, "epoch 0 done", 120));
    ::kill(rank0, SIGKILL);
    wait_for(rank0);
    auto killed = std::chrono::steady_clock::now();
    auto status = exit_within(rank1, 30);
    std::string output = read_file(log1);
    INFO(output);
    REQUIRE(status);
    CHECK(*status != 0);
    CHECK(std::chrono::steady_clock::now() - killed < std::chrono::seconds(25));
    CHECK_THAT(output, Catch::Contains("failed on rank 1: rank 0 is gone"));
  }
}

TEST_CASE("2 ranks stopped by SIGTERM resume bit-identical, dropout streams included", "[engine][distributed][resume]") {
  ToyData toy;  // dropout 0.1: each rank's generator state must come back
  auto command = [&](const fs::path& run) {
    return toy.tarres(run) + "optim.epochs=12 common.eval_steps=null --nproc 2 ";
  };
  const fs::path reference = toy.dir.path() / "reference", resumed = toy.dir.path() / "resumed";
  auto r = run_command(command(reference));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  const fs::path log = toy.dir.path() / "resumed.log";
  pid_t launcher = spawn(command(resumed), log);
  REQUIRE(log_shows(log, "epoch 2 done", 120));
  ::kill(launcher, SIGTERM);  // passed on to both ranks, which agree on the step to stop at
  auto status = exit_within(launcher, 60);
  INFO(read_file(log));
  REQUIRE(status);
  CHECK(*status == 128 + SIGTERM);
  // Mid-epoch ("saving a checkpoint at ...") or during the epoch's validation ("stopping after epoch N").
  CHECK_THAT(read_file(log), Catch::Contains("Terminated received: s"));
  auto finished = run_command(command(resumed));
  INFO(finished.output);
  REQUIRE(finished.exit_code == 0);
  CHECK_THAT(finished.output, Catch::Contains("resuming from"));
  check_same_weights(reference / "checkpoint-00011.pth", resumed / "checkpoint-00011.pth");
  for (const char* file : {"test_outputs.tsv", "val_results.json"}) {
    INFO(file);
    CHECK(read_file(reference / file) == read_file(resumed / file));
  }
}

TEST_CASE("a sweep of 2-rank runs shares one process group across its runs", "[engine][distributed]") {
  SameLengthData toy;
  const fs::path sweep = toy.dir.path() / "sweep";
  // Quoted: the shell must leave ${common.seed} to slt-run.
  auto r = run_command(toy.tarres("'" + (sweep / "seed${common.seed}").string() + "'") + "optim.epochs=1 optim.train_batch_size=4 --nproc 2 "
                       "--multirun common.seed=1,2,3");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* seed : {"seed1", "seed2", "seed3"}) CHECK(fs::exists(sweep / seed / "test_results.json"));
}

TEST_CASE("a file store in a folder that does not exist is refused at once, naming it", "[engine][distributed][bad-input]") {
  ToyData toy;
  const fs::path missing = toy.dir.path() / "no-such-folder" / "store";
  auto started = std::chrono::steady_clock::now();
  auto r = run_command("RANK=0 WORLD_SIZE=2 " + toy.tarres(toy.dir.path() / "run") + "optim.epochs=1 dist.dist_url=file://" +
                       missing.string());
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("dist.dist_url=file://" + missing.string()) && Catch::Contains("does not exist"));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(60));  // c10d alone retries for 5 minutes
}
