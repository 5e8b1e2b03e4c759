#pragma once
// SIGINT/SIGTERM (and SIGUSR1, SLURM's warning before a time limit) as a
// request to stop cleanly: the training loop finishes its optimizer step,
// saves a checkpoint and returns. A second SIGINT kills the process the usual way.
#include <memory>

namespace slt {

// Makes SIGINT/SIGTERM request a clean stop instead of killing the process.
// Call it first thing in main() so that a signal arriving during start-up
// (SLURM may preempt a job that is still loading) is not fatal.
void catch_stop_signals();

// Catches the signals for its lifetime and restores the previous handlers after.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal received so far (0: none).
  static int pending();

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

}  // namespace slt
