#pragma once
// Submitting work to SLURM with its own tools (sbatch, squeue, scontrol):
// a batch script written next to the logs, so that a user can read and
// resubmit it by hand, and a wait that reports each job's state.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slt::slurm {

/// One sbatch submission: a job, or a job array over `array_tasks`.
struct JobSpec {
  std::string name;
  std::string partition;                 // empty: the cluster's default
  int nodes = 1;
  int tasks_per_node = 1;
  int cpus_per_task = 1;
  int gpus_per_node = 0;
  int mem_gb = 0;                        // 0: the cluster's default
  int timeout_min = 0;                   // 0: the partition's limit
  std::vector<int64_t> array_tasks;      // empty: not an array
  int array_parallelism = 0;             // at most this many array tasks at once (0: no limit)
  std::string signal;                    // --signal, e.g. "B:USR1@120"
  bool requeue = false;                  // --requeue: the job may put itself back in the queue
  std::string comment;
  std::vector<std::string> extra_options;  // more "#SBATCH" options, e.g. "--constraint=volta"
  std::vector<std::string> setup;        // shell lines run before the command
  std::filesystem::path log_dir;         // %A_%a.out (arrays) or %j.out
  std::filesystem::path working_dir;     // --chdir
  std::string command;                   // the shell command, run by each task (through srun when tasks > 1)
  bool always_srun = false;              // srun even for one task: job steps receive --signal's signal
};

/// The batch script for `spec`.
std::string batch_script(const JobSpec& spec);

/// Writes the batch script to `script` and submits it with `sbatch --parsable`;
/// returns the job id. A missing sbatch or a refusal is a UserError with sbatch's message.
std::string submit(const JobSpec& spec, const std::filesystem::path& script);

/// A job's (or array task's) state as SLURM reports it.
struct TaskState {
  std::string state;       // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
  std::string exit_code;   // "0:0" (status:signal), when known
};

/// States of `job_id`'s tasks, keyed by array task id (-1 for a plain job):
/// squeue while queued or running, scontrol afterwards.
std::map<int64_t, TaskState> job_states(const std::string& job_id);

/// Waits until no task of `job_id` is pending or running, logging each change
/// of the state counts; returns the final states.
std::map<int64_t, TaskState> wait_for_job(const std::string& job_id, std::chrono::seconds poll);

/// Puts a running job back in the queue (`scontrol requeue`); false, with
/// scontrol's message logged, when SLURM refuses.
bool requeue(const std::string& job_id);

/// True for the states of a task that ended well.
inline bool succeeded(const TaskState& state) { return state.state == "COMPLETED"; }

}  // namespace slt::slurm
