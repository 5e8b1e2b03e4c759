// slt on a real SLURM cluster started by the test itself (slurm_cluster.h).
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

#include "slt/io/tensor_io.h"
#include "slurm_cluster.h"

namespace fs = std::filesystem;
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

}  // namespace

TEST_CASE("slt-extract launcher.cluster=slurm runs the shards as a job array and resubmits only what is missing",
          "[slurm]") {
  slurm_test::Cluster cluster;
  if (!cluster.unavailable().empty()) {
    WARN("SLURM test skipped: " << cluster.unavailable());
    return;
  }
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
