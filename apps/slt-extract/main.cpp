// slt-extract: sign-language videos -> SignHiera features, as the reference's
// feature extraction does it, Hydra-style:
//   slt-extract data_dir=D output_dir=F model_name=hiera_base_128x224 pretrained_model_path=W \
//       split=test launcher.cluster=local [launcher.workers=2] [shard=K] [model.embed_dim=...]
//   slt-extract --init-weights W.pth [--seed S] model_name=... [model.*=...]   (a random encoder)
#include <spdlog/spdlog.h>
#include <spawn.h>
#include <sys/wait.h>

#include <ATen/Parallel.h>

#include <ATen/Context.h>
#include <boost/program_options.hpp>
#include <chrono>
#include <fstream>
#include <optional>
#include <iostream>
#include <thread>

#include "command_line.h"
#include "slt/config/compose.h"
#include "slt/config/schema.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/runtime/app.h"
#include "slt/runtime/threads.h"
#include "slt/runtime/log.h"
#include "slt/text/text.h"
#include "slt/runtime/slurm.h"
#include "slt/video/extractor.h"

extern char** environ;

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

// launcher.workers left unset: one shard process per usable CPU, each with one
// thread (on 2 cores, 2 workers extracted the fixture dataset with
// hiera_base_16x224 1.18x faster than 1 worker with 2 threads: docs/PERFORMANCE.md),
// but no more than there are shards, nor than 2 GB of available memory each
// (hiera_base_128x224 peaks at 1.6 GB), and one with CUDA: the processes
// would share one GPU.
int64_t default_workers(int64_t shards) {
  if (at::hasCUDA()) return 1;
  int64_t workers = std::min<int64_t>(slt::usable_cpus(), shards);
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kilobytes = 0;
  while (meminfo >> key >> kilobytes)
    if (key == "MemAvailable:") workers = std::min<int64_t>(workers, kilobytes / (int64_t{2} << 20));
  return std::max<int64_t>(1, workers);
}

// launcher.workers > 1: this program again per shard (shard=K), that many at a time.
int run_shards_in_processes(int argc, char** argv, const slt::ConfigNode& job,
                            const std::vector<slt::video::ManifestItem>& items, int64_t shards, int64_t workers) {
  const slt::video::OutputTally before = slt::video::tally_outputs(job, items);
  const auto started = std::chrono::steady_clock::now();
  std::vector<pid_t> running;
  int failed = 0;
  auto wait_one = [&] {
    int status = 0;
    pid_t done = ::wait(&status);
    running.erase(std::remove(running.begin(), running.end(), done), running.end());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  };
  // The usable CPUs shared between the shard processes, none oversubscribed.
  const std::string threads = std::to_string(std::max<int64_t>(1, slt::usable_cpus() / workers));
  for (int64_t shard = 0; shard < shards; ++shard) {
    while (static_cast<int64_t>(running.size()) >= workers) wait_one();
    std::vector<std::string> args(argv, argv + argc);
    args.push_back("shard=" + std::to_string(shard));
    args.push_back("launcher.workers=1");
    std::vector<char*> c_args;
    for (auto& a : args) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("OMP_NUM_THREADS=", 0) != 0) env_strings.emplace_back(*e);
    env_strings.push_back("OMP_NUM_THREADS=" + threads);
    std::vector<char*> c_env;
    for (auto& e : env_strings) c_env.push_back(e.data());
    c_env.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, c_args.data(), c_env.data()) != 0)
      throw slt::Error("cannot start a shard process");
    running.push_back(pid);
  }
  while (!running.empty()) wait_one();
  // The shard processes' combined summary, from what the output folder holds now.
  const slt::video::OutputTally after = slt::video::tally_outputs(job, items);
  const bool overwrite = job.require<bool>("overwrite");
  const int64_t failed_videos = after.failed_lines - before.failed_lines;
  spdlog::info("all {} shards: {} videos extracted, {} skipped (already there), {} failed in {:.1f} s by {} processes; "
               "{} of {} feature files present",
               shards, overwrite ? after.expected - failed_videos : after.present - before.present,
               overwrite ? 0 : before.present, failed_videos,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), workers, after.present,
               after.expected);
  if (failed) spdlog::error("{} of {} shard processes reported failures (see above)", failed, shards);
  return failed ? 1 : 0;
}

// launcher.cluster=slurm: one job array over the shards still unfinished,
// each task running this program with shard=$SLURM_ARRAY_TASK_ID; the batch
// script stays next to the logs. With launcher.wait, reports the shards.
int run_shards_on_slurm(int argc, char** argv, const slt::ConfigNode& job,
                        const std::vector<slt::video::ManifestItem>& items, int64_t shards) {
  const std::vector<int64_t> todo = slt::video::unfinished_shards(job, items);
  if (todo.empty()) {
    spdlog::info("every one of the {} shards has its feature files already: nothing to submit (overwrite=true "
                 "recomputes them)",
                 shards);
    return 0;
  }
  const fs::path output_dir = fs::absolute(job.require<std::string>("output_dir"));
  const auto log_dir_key = job.get<std::string>("launcher.log_dir");
  const fs::path log_dir = log_dir_key ? fs::absolute(*log_dir_key) : output_dir / "slurm";
  const std::string split = job.require<std::string>("split");
  slt::slurm::JobSpec spec;
  // The reference module's job name.
  spec.name = "feature_extractor_" + split + "_" + job.require<std::string>("model_name") + "_" +
              fs::path(job.require<std::string>("pretrained_model_path")).stem().string();
  spec.partition = job.require<std::string>("launcher.partition");
  spec.gpus_per_node = static_cast<int>(job.require<int64_t>("launcher.gpus_per_node"));
  spec.cpus_per_task = static_cast<int>(job.require<int64_t>("launcher.cpus_per_task"));
  spec.mem_gb = static_cast<int>(job.require<int64_t>("launcher.mem_gb"));
  spec.timeout_min = static_cast<int>(job.require<int64_t>("launcher.timeout_min"));
  spec.array_tasks = todo;
  spec.array_parallelism = static_cast<int>(job.require<int64_t>("launcher.max_jobarray_jobs"));
  for (const auto& line : job.at("launcher.setup")->elements()) spec.setup.push_back(line.scalar_text());
  spec.log_dir = log_dir;
  spec.working_dir = fs::current_path();
  std::string command = slt::shell_quote(fs::read_symlink("/proc/self/exe").string());
  for (int i = 1; i < argc; ++i) command += " " + slt::shell_quote(argv[i]);
  spec.command = command + " launcher.workers=1 shard=$SLURM_ARRAY_TASK_ID";
  const fs::path script = log_dir / ("extract_" + split + ".sbatch");
  const std::string job_id = slt::slurm::submit(spec, script);
  spdlog::info("submitted SLURM job array {} for {} of {} shards (script {}, logs {}/{}_<shard>.out)", job_id,
               todo.size(), shards, script.string(), log_dir.string(), job_id);
  if (!job.require<bool>("launcher.wait")) {
    spdlog::info("launcher.wait=false: not waiting; `squeue -j {}` shows it, and running this command again submits "
                 "only the shards still unfinished",
                 job_id);
    return 0;
  }
  const auto states =
      slt::slurm::wait_for_job(job_id, std::chrono::seconds(job.require<int64_t>("launcher.poll_seconds")));
  std::vector<std::string> failed;
  for (int64_t shard : todo) {
    auto it = states.find(shard);
    if (it == states.end() || !slt::slurm::succeeded(it->second))
      failed.push_back(std::to_string(shard) + " (" + (it == states.end() ? "state unknown" : it->second.state) +
                       (it != states.end() && !it->second.exit_code.empty() ? ", exit " + it->second.exit_code : "") +
                       ", log " + (log_dir / (job_id + "_" + std::to_string(shard) + ".out")).string() + ")");
  }
  const slt::video::OutputTally after = slt::video::tally_outputs(job, items);
  spdlog::info("{} of {} feature files present; {} video failures recorded in {}", after.present, after.expected,
               after.failed_lines, (output_dir / ("failed_" + split + ".tsv")).string());
  if (!failed.empty()) {
    spdlog::error("{} of {} shards did not finish: {}; run the same command again to submit only what is missing",
                  failed.size(), todo.size(), slt::join(failed, "; "));
    return 1;
  }
  return after.present == after.expected ? 0 : 1;
}

int run(int argc, char** argv) {
  po::options_description options("Options");
  std::vector<std::string> config_dirs, plugin_paths, overrides;
  options.add_options()("help,h", "show this help and the composed config")(
      "config,c", po::value<std::string>(), "config file (default: the shipped extract.yaml)")(
      "config-name", po::value<std::string>()->default_value("extract"), "config looked up by name")(
      "config-dir", po::value(&config_dirs)->composing(), "extra folder searched for configs (repeatable)")(
      "cfg", po::value<std::string>(), "print the composed config and exit: job, hydra or all")(
      "plugin-path", po::value(&plugin_paths)->composing(), "folder searched first for plugins (repeatable)")(
      "log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn or error")(
      "init-weights", po::value<std::string>(),
      "write a randomly initialised encoder (model_name, model.*; model.init chooses how) to this checkpoint and "
      "exit, for demos and benchmarks without pretrained weights")(
      "seed", po::value<uint64_t>()->default_value(0), "seed of --init-weights");
  po::options_description hidden;
  hidden.add_options()("overrides", po::value(&overrides)->composing());
  po::positional_options_description positional;
  positional.add("overrides", -1);
  auto vm = slt::parse_command_line("slt-extract", argc, argv, options, hidden, positional);
  slt::setup_logging(vm["log-level"].as<std::string>());

  slt::video::register_extract_config();
  slt::load_plugins(slt::plugin_search_path(plugin_paths));
  slt::ComposeRequest request;
  request.search_path = slt::config_search_path(config_dirs, argv[0]);
  if (vm.count("config")) request.config_file = vm["config"].as<std::string>();
  else request.config_name = vm["config-name"].as<std::string>();
  request.overrides = overrides;
  // The encoder's hyper-parameters are checked against its schema after composing.
  request.declared_key = [](const std::string& key) { return key.rfind("model.", 0) == 0; };
  std::string command_line = "slt-extract";
  for (int i = 1; i < argc; ++i) command_line += " " + slt::shell_quote(argv[i]);
  request.command_line = command_line;
  auto runs = slt::compose_runs(request);
  slt::ComposedRun& composed = runs.front();
  slt::ConfigNode job = composed.job_config();
  slt::load_plugins(slt::plugin_search_path(plugin_paths, &job));
  slt::video::validate_extract_job(job);

  if (vm.count("help")) {
    std::cout << "Usage: slt-extract [options] key=value ...\n\n" << options << "\nComposed config:\n" << job.to_yaml();
    return 0;
  }
  if (vm.count("cfg")) {
    std::string what = vm["cfg"].as<std::string>();
    if (what == "job") std::cout << job.to_yaml();
    else if (what == "hydra") std::cout << composed.config.at("hydra")->to_yaml();
    else if (what == "all") std::cout << composed.config.to_yaml();
    else throw slt::UserError("--cfg takes job, hydra or all, not '" + what + "'");
    return 0;
  }
  if (vm.count("init-weights")) {
    const std::string path = vm["init-weights"].as<std::string>();
    slt::video::write_initial_weights(job, path, vm["seed"].as<uint64_t>());
    spdlog::info("wrote a randomly initialised {} (seed {}) to {}", job.require<std::string>("model_name"),
                 vm["seed"].as<uint64_t>(), path);
    return 0;
  }
  slt::require_no_missing_keys(job);
  const std::string cluster = job.require<std::string>("launcher.cluster");
  if (cluster != "local" && cluster != "slurm")
    throw slt::ConfigError("launcher.cluster=" + cluster + ": expected local (this machine) or slurm (a job array)");
  if (!job.get<int64_t>("shard")) {
    const auto items =
        slt::video::read_extraction_manifest(job.require<std::string>("data_dir"), job.require<std::string>("split"));
    const int64_t shards = slt::video::count_shards(job, items.size());
    if (cluster == "slurm") return run_shards_on_slurm(argc, argv, job, items, shards);
    const std::optional<int64_t> chosen = job.get<int64_t>("launcher.workers");
    const int64_t workers = chosen ? *chosen : default_workers(shards);
    spdlog::info("{} shards of up to {} videos, {} worker process{}{}", shards, job.require<int64_t>("num_items_per_shard"),
                 workers, workers == 1 ? "" : "es", chosen ? "" : " (launcher.workers: the default here)");
    if (workers > 1) return run_shards_in_processes(argc, argv, job, items, shards, workers);
  }

  const slt::ThreadChoice threads = slt::configure_threads(std::nullopt);
  spdlog::info("threads: {} ({})", threads.threads, threads.source);
  auto summary = slt::video::run_extraction(job);
  spdlog::info("done: {} videos extracted ({} clips, {} feature rows) in {:.1f} s, {} skipped (already there), {} failed{}",
               summary.done, summary.clips, summary.feature_frames, summary.seconds, summary.skipped, summary.failed,
               summary.failed ? " (see " + (fs::path(job.require<std::string>("output_dir")) /
                                             ("failed_" + job.require<std::string>("split") + ".tsv")).string() + ")"
                              : std::string());
  spdlog::info("next: slt-data feature-lengths --manifest <data_dir>/manifests/{}.tsv --data-dir {}/0 --output-dir ... "
               "writes the {}_features.tsv that training reads",
               job.require<std::string>("split"), job.require<std::string>("output_dir"), job.require<std::string>("split"));
  return summary.failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) { return slt::run_app("slt-extract", run, argc, argv); }
