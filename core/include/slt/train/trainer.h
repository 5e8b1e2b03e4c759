#pragma once
// The translation engine behind `slt-run`: what the reference's
// main_translation.py and engine_translation.py do (training with periodic
// evaluation, checkpoints, early stopping, full evaluation), made resumable and
// observable. See docs/TRAINING.md.
#include <filesystem>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/train/stop_signals.h"  // catch_stop_signals() for main()

namespace slt {

// How a run ended, where its files are, and how fast it trained.
struct RunOutcome {
  enum class Status { Finished, EarlyStopped, Interrupted } status = Status::Finished;
  std::filesystem::path output_dir;
  int stop_signal = 0;  // Interrupted: the signal (SIGINT, SIGTERM) that stopped it
  // Items trained on by this process and the wall time of its training loops
  // (loading, steps, logging; not evaluation or checkpoint writes).
  int64_t train_items = 0;
  double train_seconds = 0;
};

// Runs one job config: training (resuming from the newest checkpoint in
// common.output_dir) followed by the full evaluation, or evaluation only when
// common.eval=true. Plugins must be loaded. The output folder is locked for
// the run; a training run records config.yaml and `task_overrides` (as
// overrides.yaml) there once it knows the folder's checkpoint fits the config.
// Throws slt::Error on failure; a SIGINT/SIGTERM saves a checkpoint and
// returns Interrupted.
RunOutcome run_translation(const ConfigNode& job, const std::vector<std::string>& task_overrides = {});

}  // namespace slt
