#pragma once
// Everything that moves during training beyond model and optimizer, the
// reference's rules for the best model and early stopping applied to it, and
// its form inside a checkpoint (the "slt" entry) for a bit-identical resume.
#include <ATen/core/ivalue.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace slt {

// Version of the "slt" entry of checkpoints.
inline constexpr int64_t kTrainStateVersion = 1;

struct Meter {  // SmoothedValue's global average
  double total = 0;
  int64_t count = 0;
  void update(double value, int64_t n = 1) {
    total += value * static_cast<double>(n);
    count += n;
  }
  double average() const { return count ? total / static_cast<double>(count) : 0.0; }
};

struct TrainState {
  int64_t epoch = 0;          // the epoch in progress
  int64_t batches_done = 0;   // batches of `epoch` already trained on
  int64_t optimizer_steps = 0;
  double best_bleu = 0;             // best validation BLEU-4 so far
  double best_bleu_at_epoch_start = 0;
  int64_t patience = 0;
  bool stopped_early = false;       // optim.patience ran out
  Meter epoch_loss, epoch_acc;      // train averages of the epoch in progress
  uint64_t metrics_bytes = 0;       // size of metrics.jsonl when the checkpoint was taken

  // At the start of an epoch (not when resuming inside one): remember the
  // best so far and reset the epoch's averages.
  void start_epoch();
  // A validation BLEU-4 inside an epoch (common.eval_steps): true when it
  // beats every earlier one, which makes it the best model.
  bool record_step_evaluation(double bleu4);

  // The end-of-epoch validation, by the reference's rules: patience resets
  // when this epoch (its step evaluations included) beat the best at its
  // start and counts down otherwise; the epoch's model is the best only when
  // its BLEU-4 also beats this epoch's step evaluations; the run stops once
  // patience reaches 0 with early stopping on.
  struct EpochVerdict {
    bool is_best = false;
    bool stop = false;
  };
  EpochVerdict close_epoch(double bleu4, int64_t patience_limit, bool early_stopping);
};

// The "slt" entry of a checkpoint of `state`: finished (the run goes on at
// the next epoch) or `state.batches_done` batches in; with the CPU (and
// `device`'s CUDA) random generator states.
c10::IValue train_state_entry(const TrainState& state, bool epoch_finished, const std::string& model_kind,
                              const c10::Device& device);

// Restores `state` and the random generators from a loaded checkpoint. A
// reference checkpoint (no "slt" entry) only says which epoch finished: the
// next one starts, best BLEU and patience start afresh (returns false).
bool restore_train_state(const c10::IValue& checkpoint, const std::filesystem::path& path, TrainState& state,
                         const c10::Device& device);

}  // namespace slt
