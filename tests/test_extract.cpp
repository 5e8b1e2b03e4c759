// slt-extract as a user runs it, on the reference's fixture dataset
// (../shared/fixtures/hiera/DATASET and pipeline/): features equal the
// reference's, a killed run resumes without rewriting, bad videos are recorded.
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include <ATen/ATen.h>

#include "slt/io/tensor_io.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "test_helpers.h"

extern char** environ;

namespace fs = std::filesystem;
using slt_test::run_command;
using slt_test::TempDir;

namespace {

const fs::path kHiera = fs::path(SLT_FIXTURES_DIR) / "hiera";

// The pipeline/ run's tiny SignHiera on 16-frame clips, shards of 2 videos.
std::vector<std::string> extract_args(const fs::path& data, const fs::path& out) {
  return {SLT_EXTRACT_EXE, "data_dir=" + data.string(), "output_dir=" + out.string(), "model_name=hiera_base_16x224",
          "pretrained_model_path=" + (kHiera / "pipeline" / "tiny16x224.pth").string(), "num_frames=16",
          "sampling_rate=2", "target_fps=25", "max_batch_size=2", "num_items_per_shard=2", "launcher.cluster=local",
          "model.embed_dim=8", "model.num_classes=5", "model.stages=[1,1,1,1]"};
}

std::string joined(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + ("'" + a + "'");
  return out;
}

// Feature files under `dir` with their modification times (nanoseconds).
std::map<std::string, int64_t> outputs(const fs::path& dir) {
  std::map<std::string, int64_t> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".pt")
      files[fs::relative(entry.path(), dir).string()] = entry.last_write_time().time_since_epoch().count();
  return files;
}

}  // namespace

TEST_CASE("slt-extract reproduces the reference features, resumes after SIGKILL and skips finished videos",
          "[extract]") {
  TempDir tmp;
  const fs::path out = tmp.path() / "features";
  // A first run, killed once it has written two videos.
  std::vector<std::string> args = extract_args(kHiera / "DATASET", out);
  args.push_back("launcher.workers=1");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&quiet, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, SLT_EXTRACT_EXE, &quiet, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&quiet);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (outputs(out / "0").size() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  auto before = outputs(out / "0");
  REQUIRE(before.size() >= 2);
  REQUIRE(before.size() < 10);

  // The rerun: two local workers over shards of two videos.
  auto rerun = extract_args(kHiera / "DATASET", out);
  rerun.push_back("launcher.workers=2");
  auto r = run_command(joined(rerun));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto after = outputs(out / "0");
  CHECK(after.size() == 10);
  for (const auto& [name, time] : before) CHECK(after.at(name) == time);  // finished videos were not rewritten
  for (const auto& entry : fs::recursive_directory_iterator(out))
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);

  // Every feature file of the reference's run, within its tolerance.
  int compared = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kHiera / "pipeline" / "features" / "0")) {
    if (entry.path().extension() != ".pt") continue;
    fs::path relative = fs::relative(entry.path(), kHiera / "pipeline" / "features" / "0");
    INFO(relative.string());
    at::Tensor expected = slt::load_pt_tensor(entry.path().string());
    at::Tensor ours = slt::load_pt_tensor((out / "0" / relative).string());
    REQUIRE(ours.sizes() == expected.sizes());
    CHECK((ours - expected).abs().max().item<double>() < 1e-4);
    ++compared;
  }
  CHECK(compared == 9);  // the reference fails on the 160x160 video, slt resizes it (docs/PORTING.md)
  CHECK(slt::load_pt_tensor((out / "0" / "30000" / "3000001-small-25fps-2s00-w160h160.pt").string()).size(1) == 64);

  // Python's torch.load reads them all.
  auto python = run_command("/usr/bin/python3 -c \"import torch,glob; fs=glob.glob('" + (out / "0").string() +
                            "/*/*.pt'); print(len(fs), sum(torch.load(f).shape[0] for f in fs))\"");
  CHECK(python.exit_code == 0);
  CHECK_THAT(python.output, Catch::Contains("10 719"));

  // A third run has nothing to do and touches nothing.
  auto again = run_command(joined(extract_args(kHiera / "DATASET", out)));
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("10 skipped"));
  CHECK(outputs(out / "0") == after);
}

TEST_CASE("slt-extract records a video it cannot read and goes on - bad keys are named", "[extract]") {
  TempDir tmp;
  const fs::path data = tmp.path() / "data";
  fs::create_directories(data / "videos" / "00000");
  fs::create_directories(data / "manifests");
  fs::copy_file(kHiera / "DATASET" / "videos" / "00000" / "0000001-tsrc2-25fps-0s50.mp4",
                data / "videos" / "00000" / "0000001-tsrc2-25fps-0s50.mp4");
  tmp.write("data/videos/00000/0000009-broken.mp4", "this is no video");
  tmp.write("data/manifests/test.tsv",
            "0000009-broken.mp4\t1.0\ta broken file\nnot a manifest line\n0000001-tsrc2-25fps-0s50.mp4\t0.5\tfine\n");
  const fs::path out = tmp.path() / "features";
  auto r = run_command(joined(extract_args(data, out)));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("test.tsv:2: skipped") && Catch::Contains("1 failed"));
  CHECK(fs::exists(out / "0" / "00000" / "0000001-tsrc2-25fps-0s50.pt"));
  std::ifstream failed(out / "failed_test.tsv");
  std::string line;
  REQUIRE(std::getline(failed, line));
  CHECK_THAT(line, Catch::StartsWith("0000009-broken.mp4\t") && Catch::Contains("cannot decode"));

  // video_backend=cuda without a usable NVDEC: one warning, the CPU decoder, the same features.
  auto cuda = run_command(joined(extract_args(data, tmp.path() / "cuda")) + " video_backend=cuda");
  CHECK(cuda.exit_code == 1);  // the broken video again
  const fs::path decoded_on_cuda_request = tmp.path() / "cuda" / "0" / "00000" / "0000001-tsrc2-25fps-0s50.pt";
  REQUIRE(fs::exists(decoded_on_cuda_request));
  CHECK(slt::load_pt_tensor(decoded_on_cuda_request.string())
            .equal(slt::load_pt_tensor((out / "0" / "00000" / "0000001-tsrc2-25fps-0s50.pt").string())));
  CHECK_THAT(cuda.output, Catch::Contains("video_backend=cuda") &&
                              (Catch::Contains("decoding on the CPU") || Catch::Contains("decoding on the GPU")));

  // from_clip=true: the same encoder saved inside a CLIP checkpoint by Python
  // (SignHieraForClip's layout: visual.transformer.*, beside a text tower).
  const fs::path clip = tmp.path() / "clip.pth";
  auto made = run_command("/usr/bin/python3 -c \"import torch; m = torch.load('" +
                          (kHiera / "pipeline" / "tiny16x224.pth").string() +
                          "'); sd = m.get('model', m); c = {'visual.transformer.' + k: v for k, v in sd.items()}; "
                          "c['visual.proj.weight'] = torch.zeros(4, 8); c['text.transformer.wte.weight'] = torch.zeros(3, 4); "
                          "torch.save({'clip': c, 'cfg': {'model': {'vision_model_name': 'hiera_base_16x224', "
                          "'embed_dim': 4}}}, '" + clip.string() + "')\"");
  REQUIRE(made.exit_code == 0);
  auto clip_args = extract_args(data, tmp.path() / "clip");
  clip_args[4] = "pretrained_model_path=" + clip.string();
  auto from_clip = run_command(joined(clip_args) + " from_clip=true");
  CHECK(from_clip.exit_code == 1);  // the broken video again
  const fs::path clip_features = tmp.path() / "clip" / "0" / "00000" / "0000001-tsrc2-25fps-0s50.pt";
  REQUIRE(fs::exists(clip_features));
  CHECK(slt::load_pt_tensor(clip_features.string())
            .equal(slt::load_pt_tensor((out / "0" / "00000" / "0000001-tsrc2-25fps-0s50.pt").string())));
  auto clip_without_flag = run_command(joined(clip_args));
  CHECK(clip_without_flag.exit_code == 2);
  CHECK_THAT(clip_without_flag.output, Catch::Contains("clip.pth") && Catch::Contains("pass from_clip=true"));
  // A CLIP checkpoint without a SignHiera vision tower: refused, not run with random weights.
  const fs::path towerless = tmp.path() / "towerless.pth";
  REQUIRE(run_command("/usr/bin/python3 -c \"import torch; torch.save({'clip': {'text.transformer.wte.weight': "
                      "torch.zeros(3, 4)}}, '" + towerless.string() + "')\"").exit_code == 0);
  clip_args[4] = "pretrained_model_path=" + towerless.string();
  auto no_tower = run_command(joined(clip_args) + " from_clip=true");
  CHECK(no_tower.exit_code == 2);
  CHECK_THAT(no_tower.output, Catch::Contains("towerless.pth") && Catch::Contains("none of its tensors"));
  auto flag_without_clip = run_command(joined(extract_args(data, tmp.path() / "clip")) + " from_clip=true");
  CHECK(flag_without_clip.exit_code == 2);
  CHECK_THAT(flag_without_clip.output, Catch::Contains("tiny16x224.pth") && Catch::Contains("no \"clip\" entry"));

  // On a terminal (script(1) gives it one) a status line counts the videos.
  auto on_terminal = run_command("script -qec \"" + joined(extract_args(data, tmp.path() / "tty")) + "\" /dev/null");
  CHECK_THAT(on_terminal.output, Catch::Contains("extracting: 2/2 videos") && Catch::Contains("ETA"));

  auto typo = run_command(joined(extract_args(data, out)) + " model.embed_dimm=4");
  CHECK(typo.exit_code == 2);
  CHECK_THAT(typo.output, Catch::Contains("did you mean 'model.embed_dim'"));
  auto unknown = run_command(joined(extract_args(data, out)) + " sampling_rat=2");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output, Catch::Contains("sampling_rate"));
  auto cfg = run_command(std::string(SLT_EXTRACT_EXE) + " --cfg job");
  CHECK(cfg.exit_code == 0);
  CHECK_THAT(cfg.output, Catch::Contains("num_items_per_shard: 50") && Catch::Contains("cluster: slurm") &&
                             Catch::Contains("data_dir: ???"));
}

TEST_CASE("slt-extract do_aug=true augments each epoch differently and reproducibly, whatever the sharding",
          "[extract]") {
  TempDir tmp;
  const fs::path data = tmp.path() / "data";
  fs::create_directories(data / "manifests");
  const std::vector<std::string> videos = {"0000001-tsrc2-25fps-0s50.mp4", "2000001-crop-25fps-3s00-w330h250.mp4",
                                           "3000001-small-25fps-2s00-w160h160.mp4"};
  std::string manifest;
  for (const auto& video : videos) {
    fs::create_directories(data / "videos" / video.substr(0, 5));
    fs::copy_file(kHiera / "DATASET" / "videos" / video.substr(0, 5) / video, data / "videos" / video.substr(0, 5) / video);
    manifest += video + "\t1.0\ta sentence\n";
  }
  tmp.write("data/manifests/test.tsv", manifest);
  auto feature = [](const fs::path& out, int epoch, const std::string& video) {
    const std::string stem = video.substr(0, video.size() - 4);
    return slt::load_pt_tensor((out / std::to_string(epoch) / video.substr(0, 5) / (stem + ".pt")).string());
  };

  const fs::path plain = tmp.path() / "plain", augmented = tmp.path() / "augmented", again = tmp.path() / "again";
  REQUIRE(run_command(joined(extract_args(data, plain))).exit_code == 0);
  auto r = run_command(joined(extract_args(data, augmented)) + " do_aug=true epochs=2 seed=5 launcher.workers=1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // The same seed with other shards and workers: the same augmentation per (epoch, video).
  auto other = extract_args(data, again);
  std::replace(other.begin(), other.end(), std::string("num_items_per_shard=2"), std::string("num_items_per_shard=1"));
  REQUIRE(run_command(joined(other) + " do_aug=true epochs=2 seed=5 launcher.workers=2").exit_code == 0);
  for (const auto& video : videos) {
    INFO(video);
    const at::Tensor plain_features = feature(plain, 0, video);
    const at::Tensor first = feature(augmented, 0, video), second = feature(augmented, 1, video);
    CHECK(first.sizes() == plain_features.sizes());  // augmentation changes pixels, not windows
    CHECK(!first.equal(plain_features));
    CHECK(!first.equal(second));
    CHECK(first.equal(feature(again, 0, video)));
    CHECK(second.equal(feature(again, 1, video)));
  }
  // Another seed, other augmentations.
  const fs::path reseeded = tmp.path() / "reseeded";
  REQUIRE(run_command(joined(extract_args(data, reseeded)) + " do_aug=true seed=6").exit_code == 0);
  CHECK(!feature(reseeded, 0, videos[1]).equal(feature(augmented, 0, videos[1])));
}
