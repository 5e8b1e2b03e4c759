#pragma once
// slt-run with Hydra's submitit_slurm launcher (the reference's run=*gpu
// presets): the sweep goes to SLURM as one job array, a task per sweep point.
#include <string>
#include <vector>

#include "slt/config/compose.h"

namespace slt {

/// True when the composed runs ask for SLURM (hydra.launcher is submitit's
/// SlurmLauncher) and this process is not already one of the submitted tasks.
bool wants_slurm_submission(const std::vector<ComposedRun>& runs);

/// Submits `runs` as one job array (`hydra.launcher.*`: partition, nodes,
/// tasks_per_node, gpus_per_node, cpus_per_task, mem_gb, timeout_min,
/// array_parallelism, setup, name, comment, submitit_folder,
/// max_num_timeout), each task running `slt-run` on its sweep point through
/// srun. `base_arguments` are this command's options without the overrides
/// and without --multirun. Waits and reports every run unless
/// hydra.launcher.wait=false. Returns the exit status.
int submit_sweep_to_slurm(const std::vector<ComposedRun>& runs, const std::vector<std::string>& base_arguments);

/// In a submitted task that stopped on SLURM's pre-timeout signal (SIGUSR1)
/// and saved its checkpoint: puts the job back in the queue (rank 0 only, at
/// most SLT_SLURM_MAX_REQUEUES times), so that it resumes. True when requeued.
bool requeue_after_timeout_signal();

}  // namespace slt
