// slt on a real SLURM cluster started by the test itself (slurm_cluster.h).
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

#include "../engine/engine_support.h"
#include "slt/io/tensor_io.h"
#include "slurm_cluster.h"

namespace fs = std::filesystem;
using engine_test::check_same_weights;
using engine_test::spawn;
using engine_test::ToyData;
using slt_test::run_command;
using slt_test::TempDir;

namespace {

const fs::path kHiera = fs::path(SLT_FIXTURES_DIR) / "hiera";

std::vector<fs::path> feature_files(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::exists(dir))
    for (const auto& entry : fs::recursive_directory_iterator(dir))
      if (entry.path().extension() == ".pt") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// The reference's run=1gpu preset, shrunk to the test node: no GPU, no memory request.
std::string on_test_cluster(const slurm_test::Cluster& cluster, const fs::path& sweep_dir) {
  return "run=1gpu hydra.launcher.gpus_per_node=0 hydra.launcher.mem_gb=0 hydra.launcher.cpus_per_task=1"
         " hydra.launcher.partition=" + cluster.partition() + " hydra.sweep.dir=" + sweep_dir.string() +
         " ++hydra.launcher.poll_seconds=1 'common.output_dir=${hydra:sweep.dir}/seed${common.seed}' ";
}

// False, with the reason as a warning, when the test cluster could not be started.
bool started(const slurm_test::Cluster& cluster) {
  if (!cluster.unavailable().empty()) WARN("SLURM test skipped: " << cluster.unavailable());
  return cluster.unavailable().empty();
}

// Waits until `path` exists (or `seconds` pass).
bool appears(const fs::path& path, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

TEST_CASE("slt-extract launcher.cluster=slurm runs the shards as a job array and resubmits only what is missing",
          "[slurm]") {
  slurm_test::Cluster cluster;
  if (!started(cluster)) return;
  TempDir tmp;
  const fs::path out = tmp.path() / "features";
  // 10 videos in shards of 4: 3 array tasks, at most 2 at once.
  const std::string command = std::string(SLT_EXTRACT_EXE) + " data_dir=" + (kHiera / "DATASET").string() +
                              " output_dir=" + out.string() + " model_name=hiera_base_16x224 pretrained_model_path=" +
                              (kHiera / "pipeline" / "tiny16x224.pth").string() +
                              " num_frames=16 sampling_rate=2 target_fps=25 max_batch_size=2 num_items_per_shard=4"
                              " model.embed_dim=8 model.num_classes=5 'model.stages=[1,1,1,1]' launcher.cluster=slurm"
                              " launcher.partition=" + cluster.partition() +
                              " launcher.gpus_per_node=0 launcher.mem_gb=0 launcher.max_jobarray_jobs=2"
                              " launcher.poll_seconds=1";
  auto first = run_command(command);
  if (first.exit_code != 0) FAIL(first.output << cluster.logs());
  CHECK_THAT(first.output, Catch::Contains("for 3 of 3 shards"));
  CHECK_THAT(first.output, Catch::Contains("3 COMPLETED"));
  const auto files = feature_files(out / "0");
  REQUIRE(files.size() == 10);
  // The reference's features for the fixture dataset (it has none for the video smaller than the crop).
  int compared = 0;
  for (const auto& expected : feature_files(kHiera / "pipeline" / "features" / "0")) {
    const fs::path ours = out / "0" / fs::relative(expected, kHiera / "pipeline" / "features" / "0");
    INFO(ours);
    at::Tensor mine = slt::load_pt_tensor(ours.string()), theirs = slt::load_pt_tensor(expected.string());
    REQUIRE(mine.sizes() == theirs.sizes());
    CHECK((mine - theirs).abs().max().item<double>() < 1e-4);
    ++compared;
  }
  CHECK(compared >= 8);
  // The batch script stays next to the logs, one log per array task.
  const std::string script = slt_test::read_text(out / "slurm" / "extract_test.sbatch");
  CHECK_THAT(script, Catch::Contains("#SBATCH --array=0-2%2"));
  CHECK_THAT(script, Catch::Contains("shard=$SLURM_ARRAY_TASK_ID"));
  std::smatch job;
  REQUIRE(std::regex_search(first.output, job, std::regex(R"(submitted SLURM job array (\d+))")));
  for (int task = 0; task < 3; ++task)
    CHECK(fs::exists(out / "slurm" / (std::string(job[1]) + "_" + std::to_string(task) + ".out")));

  // One feature file lost: only its shard goes out again.
  fs::remove(files[5]);
  auto second = run_command(command);
  INFO(second.output);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.output, Catch::Contains("for 1 of 3 shards"));
  CHECK(feature_files(out / "0").size() == 10);
  auto third = run_command(command);
  REQUIRE(third.exit_code == 0);
  CHECK_THAT(third.output, Catch::Contains("nothing to submit"));
}

TEST_CASE("slt-run --multirun run=1gpu submits the sweep as a job array and finds every run's results", "[slurm]") {
  slurm_test::Cluster cluster;
  if (!started(cluster)) return;
  ToyData toy;
  const fs::path sweep = toy.dir.path() / "sweep";
  auto r = run_command(toy.tarres("") + "optim.epochs=2 " + on_test_cluster(cluster, sweep) + "--multirun common.seed=1,2");
  if (r.exit_code != 0) FAIL(r.output << cluster.logs());
  CHECK_THAT(r.output, Catch::Contains("submitted SLURM job array") && Catch::Contains("2 COMPLETED"));
  for (const char* seed : {"seed1", "seed2"}) {
    INFO(seed);
    CHECK(fs::exists(sweep / seed / "test_results.json"));
    CHECK(fs::exists(sweep / seed / "logs" / "train.log"));
  }
  CHECK_THAT(r.output, Catch::Contains("run 1/2 (common.seed=1): COMPLETED, test BLEU-4"));
  const std::string script = slt_test::read_text(sweep / "submitit" / "sweep.sbatch");
  CHECK_THAT(script, Catch::Contains("#SBATCH --array=0-1%128"));
  CHECK_THAT(script, Catch::Contains("#SBATCH --signal=USR1@120"));
  CHECK_THAT(script, Catch::Contains("export MASTER_ADDR=$(hostname -s)"));  // the preset's setup lines
  CHECK_THAT(script, Catch::Contains("srun "));
}

TEST_CASE("a sweep run requeued by SLURM, then warned of its time limit, finishes as an uninterrupted run", "[slurm]") {
  slurm_test::Cluster cluster;
  if (!started(cluster)) return;
  ToyData toy;
  const std::string training = toy.tarres("") + "optim.epochs=40 common.eval_steps=null ";
  const fs::path reference = toy.dir.path() / "reference";
  REQUIRE(run_command(training + "common.seed=1 common.output_dir=" + reference.string()).exit_code == 0);

  const fs::path sweep = toy.dir.path() / "sweep", log = toy.dir.path() / "sweep.log";
  pid_t submitter = spawn(training + on_test_cluster(cluster, sweep) + "--multirun common.seed=1", log);
  const fs::path run = sweep / "seed1";
  REQUIRE(appears(run / "checkpoint-00003.pth", 120));
  std::smatch job;
  const std::string submitted = slt_test::read_text(log);
  REQUIRE(std::regex_search(submitted, job, std::regex(R"(submitted SLURM job array (\d+))")));
  const std::string task = std::string(job[1]) + "_0";
  // 1. Requeued from outside (as preemption does): SIGTERM, a checkpoint, back in the queue.
  REQUIRE(run_command("scontrol requeue " + task).exit_code == 0);
  const fs::path task_log = sweep / "submitit" / (task + ".out");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (slt_test::read_text(task_log).find("resuming from") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // 2. SLURM's warning before the time limit (--signal=USR1@120): a checkpoint, and the run requeues itself.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  REQUIRE(run_command("scancel --signal=USR1 " + task).exit_code == 0);
  const int status = engine_test::wait_for(submitter);
  const std::string task_output = slt_test::read_text(task_log);
  INFO(slt_test::read_text(log) << task_output);
  REQUIRE(status == 0);
  // Mid-epoch ("saving a checkpoint at ...") or during the epoch's validation ("stopping after epoch N").
  CHECK_THAT(task_output, Catch::Contains("Terminated received: s"));
  CHECK_THAT(task_output, Catch::Contains("User defined signal 1 received: s"));
  CHECK_THAT(task_output, Catch::Contains("requeueing SLURM job"));
  check_same_weights(reference / "checkpoint-00039.pth", run / "checkpoint-00039.pth");
  CHECK(slt_test::read_text(reference / "test_outputs.tsv") == slt_test::read_text(run / "test_outputs.tsv"));
}
