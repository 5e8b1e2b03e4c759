#include "slurm_sweep.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "slt/errors.h"
#include "slt/runtime/slurm.h"
#include "slt/text/text.h"

namespace fs = std::filesystem;

namespace slt {

namespace {

// Set in the batch script: the task runs its sweep point instead of submitting it again.
constexpr const char* kTaskVariable = "SLT_SLURM_TASK";
constexpr const char* kMaxRequeuesVariable = "SLT_SLURM_MAX_REQUEUES";

const ConfigNode& launcher_config(const std::vector<ComposedRun>& runs) {
  const ConfigNode* launcher = runs.front().config.at("hydra.launcher");
  if (!launcher || !launcher->is_map()) throw ConfigError("hydra.launcher is not a map");
  return *launcher;
}

int64_t launcher_int(const ConfigNode& launcher, const char* key, int64_t fallback) {
  const ConfigNode* value = launcher.find(key);
  return value && !value->is_null() ? value->as_int(std::string("hydra.launcher.") + key) : fallback;
}

std::string launcher_string(const ConfigNode& launcher, const char* key) {
  const ConfigNode* value = launcher.find(key);
  return value && !value->is_null() ? value->scalar_text() : "";
}

}  // namespace

bool wants_slurm_submission(const std::vector<ComposedRun>& runs) {
  if (runs.empty() || std::getenv(kTaskVariable)) return false;
  // As Hydra: the launcher serves --multirun; a plain run runs here.
  const ConfigNode* mode = runs.front().config.at("hydra.mode");
  if (!mode || !mode->is_string() || mode->as_string() != "MULTIRUN") return false;
  const ConfigNode* target = runs.front().config.at("hydra.launcher._target_");
  return target && target->is_string() && target->as_string().find("SlurmLauncher") != std::string::npos;
}

int submit_sweep_to_slurm(const std::vector<ComposedRun>& runs, const std::vector<std::string>& base_arguments) {
  const ConfigNode& launcher = launcher_config(runs);
  slurm::JobSpec spec;
  // One name for the array (the launcher's name is per run: config name / overrides).
  const ConfigNode* config_name = runs.front().config.at("hydra.job.config_name");
  spec.name = config_name && config_name->is_string() ? config_name->as_string() : "slt-run";
  spec.partition = launcher_string(launcher, "partition");
  spec.nodes = static_cast<int>(launcher_int(launcher, "nodes", 1));
  spec.tasks_per_node = static_cast<int>(launcher_int(launcher, "tasks_per_node", 1));
  spec.gpus_per_node = static_cast<int>(launcher_int(launcher, "gpus_per_node", 0));
  spec.cpus_per_task = static_cast<int>(launcher_int(launcher, "cpus_per_task", 1));
  spec.mem_gb = static_cast<int>(launcher_int(launcher, "mem_gb", 0));
  spec.timeout_min = static_cast<int>(launcher_int(launcher, "timeout_min", 0));
  spec.array_parallelism = static_cast<int>(launcher_int(launcher, "array_parallelism", 0));
  spec.comment = launcher_string(launcher, "comment");
  // submitit's defaults: USR1 120 s before the limit, and the job may requeue itself.
  spec.signal = "USR1@" + std::to_string(launcher_int(launcher, "signal_delay_s", 120));
  spec.requeue = true;
  spec.always_srun = true;
  const int64_t max_requeues = launcher_int(launcher, "max_num_timeout", 0);
  if (const ConfigNode* setup = launcher.find("setup"); setup && setup->is_list())
    for (const auto& line : setup->elements()) spec.setup.push_back(line.scalar_text());
  spec.setup.push_back(std::string("export ") + kTaskVariable + "=1");
  spec.setup.push_back(std::string("export ") + kMaxRequeuesVariable + "=" + std::to_string(max_requeues));

  // One array task per sweep point; each runs its point with the output folder pinned.
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::string cases = "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  std::vector<fs::path> output_dirs;
  for (size_t i = 0; i < runs.size(); ++i) {
    ConfigNode job = runs[i].job_config();
    std::vector<std::string> args{self};
    args.insert(args.end(), base_arguments.begin(), base_arguments.end());
    for (const auto& o : runs[i].task_overrides)
      if (o.rfind("common.output_dir=", 0) != 0) args.push_back(o);  // pinned below, resolved
    fs::path output_dir;
    if (!job.get_or<bool>("common.eval", false))
      if (auto dir = job.get<std::string>("common.output_dir")) {
        output_dir = fs::absolute(*dir);
        args.push_back("common.output_dir=" + output_dir.string());
      }
    output_dirs.push_back(output_dir);
    std::string line;
    for (const auto& a : args) line += shell_quote(a) + " ";
    cases += "  " + std::to_string(i) + ") POINT=(" + line + ") ;;\n";
    spec.array_tasks.push_back(static_cast<int64_t>(i));
  }
  cases += "esac";
  spec.setup.push_back(cases);
  spec.command = "\"${POINT[@]}\"";

  // Hydra's submitit_folder (".../submitit/%j"): the script and the tasks' logs.
  std::string folder = launcher_string(launcher, "submitit_folder");
  if (auto cut = folder.find("%j"); cut != std::string::npos) folder = folder.substr(0, cut);
  if (folder.empty()) folder = "submitit";
  spec.log_dir = fs::absolute(folder).lexically_normal();
  if (spec.log_dir.filename().empty()) spec.log_dir = spec.log_dir.parent_path();
  spec.working_dir = fs::current_path();
  const fs::path script = spec.log_dir / "sweep.sbatch";
  const std::string job_id = slurm::submit(spec, script);
  spdlog::info("submitted SLURM job array {}: {} run{} ({} node{} x {} task{} each; script {}, logs {}/{}_<run>.out)",
               job_id, runs.size(), runs.size() == 1 ? "" : "s", spec.nodes, spec.nodes == 1 ? "" : "s",
               spec.tasks_per_node, spec.tasks_per_node == 1 ? "" : "s", script.string(), spec.log_dir.string(), job_id);
  const ConfigNode* wait = launcher.find("wait");
  if (wait && !wait->is_null() && !wait->as_bool("hydra.launcher.wait")) {
    spdlog::info("hydra.launcher.wait=false: not waiting (`squeue -j {}` shows the runs)", job_id);
    return 0;
  }
  const auto states = slurm::wait_for_job(job_id, std::chrono::seconds(launcher_int(launcher, "poll_seconds", 15)));
  // Each run named by the overrides that differ between runs.
  auto differing = [&](size_t i) {
    std::vector<std::string> own;
    for (const auto& o : runs[i].task_overrides) {
      bool everywhere = true;
      for (const auto& other : runs)
        everywhere &= std::find(other.task_overrides.begin(), other.task_overrides.end(), o) != other.task_overrides.end();
      if (!everywhere || runs.size() == 1) own.push_back(o);
    }
    return join(own, " ");
  };
  int failed = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    auto it = states.find(static_cast<int64_t>(i));
    const std::string state = it == states.end() ? "unknown" : it->second.state;
    const fs::path results = output_dirs[i] / "test_results.json";
    std::string outcome = state;
    std::error_code ec;
    const bool have_results = !output_dirs[i].empty() && fs::is_regular_file(results, ec);
    if (have_results) {
      try {
        std::ifstream in(results);
        auto stats = nlohmann::json::parse(in);
        outcome += fmt::format(", test BLEU-4 {:.2f} ({})", stats.at("bleu4").get<double>(), output_dirs[i].string());
      } catch (const std::exception&) {
        outcome += ", unreadable " + results.string();
      }
    } else if (!output_dirs[i].empty()) {
      outcome += ", no " + results.string();
    }
    const bool ok = it != states.end() && slurm::succeeded(it->second) && (output_dirs[i].empty() || have_results);
    if (!ok) ++failed;
    spdlog::log(ok ? spdlog::level::info : spdlog::level::err, "run {}/{} ({}): {} (log {}/{}_{}.out)", i + 1,
                runs.size(), differing(i), outcome, spec.log_dir.string(), job_id, i);
  }
  if (failed) spdlog::error("{} of {} runs did not finish; the same command submits the sweep again and each run "
                            "resumes from its last checkpoint", failed, runs.size());
  return failed ? 1 : 0;
}

bool requeue_after_timeout_signal() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job || !std::getenv(kTaskVariable)) return false;
  if (const char* rank = std::getenv("SLURM_PROCID"); rank && std::string(rank) != "0") return false;
  const long restarts = std::getenv("SLURM_RESTART_COUNT") ? std::atol(std::getenv("SLURM_RESTART_COUNT")) : 0;
  const long limit = std::getenv(kMaxRequeuesVariable) ? std::atol(std::getenv(kMaxRequeuesVariable)) : 0;
  if (restarts >= limit) {
    spdlog::warn("SLURM job {} reached its time limit {} times (hydra.launcher.max_num_timeout={}): not requeued; "
                 "submit the same command again to resume", job, restarts, limit);
    return false;
  }
  spdlog::info("requeueing SLURM job {} (restart {} of at most {}): it resumes from the checkpoint just saved", job,
               restarts + 1, limit);
  if (slurm::requeue(job)) return true;
  spdlog::error("submit the same command again to resume");
  return false;
}

}  // namespace slt
