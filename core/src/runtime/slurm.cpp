#include "slt/runtime/slurm.h"

#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "slt/errors.h"
#include "slt/io/tensor_io.h"
#include "slt/text/text.h"

namespace fs = std::filesystem;

namespace slt::slurm {

namespace {

struct Output {
  int status = -1;
  std::string text;
};

// Runs a SLURM client with its output (stdout and stderr) captured.
Output run_tool(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) line += shell_quote(a) + " ";
  FILE* pipe = ::popen((line + "2>&1").c_str(), "r");
  if (!pipe) throw Error("cannot run " + argv.front());
  Output out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.text.append(buffer, n);
  int status = ::pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// "1-3,7" for the task ids 1 2 3 7.
std::string compress_ranges(std::vector<int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> parts;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    parts.push_back(j == i ? std::to_string(ids[i]) : std::to_string(ids[i]) + "-" + std::to_string(ids[j]));
    i = j + 1;
  }
  return join(parts, ",");
}

}  // namespace

std::string batch_script(const JobSpec& spec) {
  std::ostringstream s;
  const bool array = !spec.array_tasks.empty();
  const std::string log = (spec.log_dir / (array ? "%A_%a.out" : "%j.out")).string();
  s << "#!/bin/bash\n"
    << "# Written by slt; submit it again by hand with: sbatch " << "<this file>\n"
    << "#SBATCH --job-name=" << spec.name << "\n";
  if (!spec.partition.empty()) s << "#SBATCH --partition=" << spec.partition << "\n";
  s << "#SBATCH --nodes=" << spec.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << spec.tasks_per_node << "\n"
    << "#SBATCH --cpus-per-task=" << spec.cpus_per_task << "\n";
  if (spec.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << spec.gpus_per_node << "\n";
  if (spec.mem_gb > 0) s << "#SBATCH --mem=" << spec.mem_gb << "G\n";
  if (spec.timeout_min > 0) s << "#SBATCH --time=" << spec.timeout_min << "\n";
  if (array) {
    s << "#SBATCH --array=" << compress_ranges(spec.array_tasks);
    if (spec.array_parallelism > 0) s << "%" << spec.array_parallelism;
    s << "\n";
  }
  if (!spec.signal.empty()) s << "#SBATCH --signal=" << spec.signal << "\n";
  if (spec.requeue) s << "#SBATCH --requeue\n";
  if (!spec.comment.empty()) s << "#SBATCH --comment=" << shell_quote(spec.comment) << "\n";
  for (const auto& option : spec.extra_options) s << "#SBATCH " << option << "\n";
  s << "#SBATCH --output=" << log << "\n"
    << "#SBATCH --error=" << log << "\n"
    << "#SBATCH --open-mode=append\n";
  if (!spec.working_dir.empty()) s << "#SBATCH --chdir=" << spec.working_dir.string() << "\n";
  s << "\n";
  for (const auto& line : spec.setup) s << line << "\n";
  const bool many_tasks = spec.nodes * spec.tasks_per_node > 1;
  // srun starts one task per GPU (tasks_per_node) on every node; a single
  // task runs in the batch shell itself, which receives --signal's B: signal.
  if (many_tasks || spec.always_srun) s << "srun --unbuffered --kill-on-bad-exit=1 " << spec.command << "\n";
  else s << spec.command << "\n";
  return s.str();
}

std::string submit(const JobSpec& spec, const fs::path& script) {
  fs::create_directories(spec.log_dir);
  fs::create_directories(script.parent_path());
  const std::string text = batch_script(spec);
  write_file_atomically(script.string(), text.data(), text.size());
  fs::permissions(script, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  Output out = run_tool({"sbatch", "--parsable", script.string()});
  std::smatch id;
  const std::string first = out.text.substr(0, out.text.find('\n'));
  if (out.status == 127)
    throw UserError("sbatch is not available here: SLURM's client tools must be on the PATH to submit (" +
                    trim(out.text) + ")");
  if (out.status != 0 || !std::regex_match(first, id, std::regex(R"((\d+)(;.*)?)")))
    throw UserError("sbatch refused " + script.string() + ": " + trim(out.text));
  return id[1];
}

std::map<int64_t, TaskState> job_states(const std::string& job_id) {
  std::map<int64_t, TaskState> states;
  Output queued = run_tool({"squeue", "--noheader", "--array", "--jobs", job_id, "--format", "%i|%T"});
  if (queued.status == 0) {
    static const std::regex line(R"((\d+)(?:_(\d+))?\|(\w+))");
    std::istringstream in(queued.text);
    for (std::string text; std::getline(in, text);) {
      std::smatch m;
      if (std::regex_match(text, m, line)) states[m[2].matched ? std::stoll(m[2]) : -1] = {m[3], ""};
    }
    if (!states.empty()) return states;
  }
  // Out of the queue: scontrol still knows it for MinJobAge (300 s by default).
  Output shown = run_tool({"scontrol", "--oneliner", "show", "job", job_id});
  if (shown.status != 0) return states;
  std::istringstream in(shown.text);
  for (std::string text; std::getline(in, text);) {
    std::smatch task, state, exit;
    const bool has_task = std::regex_search(text, task, std::regex(R"(ArrayTaskId=(\d+))"));
    if (!std::regex_search(text, state, std::regex(R"(JobState=(\w+))"))) continue;
    std::regex_search(text, exit, std::regex(R"(ExitCode=(\d+:\d+))"));
    states[has_task ? std::stoll(task[1]) : -1] = {state[1], exit.empty() ? "" : std::string(exit[1])};
  }
  return states;
}

bool requeue(const std::string& job_id) {
  Output out = run_tool({"scontrol", "requeue", job_id});
  if (out.status != 0) spdlog::error("scontrol requeue {} failed: {}", job_id, trim(out.text));
  return out.status == 0;
}

std::map<int64_t, TaskState> wait_for_job(const std::string& job_id, std::chrono::seconds poll) {
  std::string last;
  for (;;) {
    auto states = job_states(job_id);
    std::map<std::string, int> counts;
    bool active = false;
    for (const auto& [task, s] : states) {
      ++counts[s.state];
      active |= s.state == "PENDING" || s.state == "RUNNING" || s.state == "CONFIGURING" || s.state == "COMPLETING" ||
                s.state == "REQUEUED" || s.state == "SUSPENDED" || s.state == "RESIZING";
    }
    std::vector<std::string> parts;
    for (const auto& [state, n] : counts) parts.push_back(std::to_string(n) + " " + state);
    const std::string summary = parts.empty() ? "not known to SLURM" : join(parts, ", ");
    if (summary != last) spdlog::info("SLURM job {}: {}", job_id, summary);
    last = summary;
    if (!active) return states;
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace slt::slurm
