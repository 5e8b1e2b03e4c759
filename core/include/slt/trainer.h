#pragma once
// The translation engine behind `slt-run`: what the reference's
// main_translation.py and engine_translation.py do (training with periodic
// evaluation, checkpoints, early stopping, full evaluation), made resumable and
// observable. See docs/TRAINING.md.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "slt/config.h"
#include "slt/generation.h"

namespace slt {

class Tokenizer;

// The model and tokenizer of a run, as create_model_and_tokenizer builds them.
struct ModelBundle {
  std::shared_ptr<Seq2SeqModel> model;
  std::shared_ptr<Tokenizer> tokenizer;
  std::string kind;               // model component: t5, bart, tarres, ...
  std::filesystem::path hf_folder;  // Hugging Face folder; empty for fairseq models
  GenerationConfig generation;      // HF models: the folder's defaults, num_beams and max_length from the run
  FairseqGenerationConfig fairseq_generation;
};

// Creates the model component named by the config (infer_model_kind) and its
// tokenizer: model.tokenizer when set, else inferred from the model's folder,
// lower-casing labels when model.lower_case; `tokenizer_folder`, when given,
// replaces the model's folder as the tokenizer's. Plugins must be loaded.
ModelBundle create_model_and_tokenizer(const ConfigNode& job, const std::filesystem::path& tokenizer_folder = {});

// Token ids of the best hypothesis for each row of a batch, decoded as the
// reference's evaluate() does: HF generate() with model.num_beams and
// max_length=data.max_target_positions for HF models, fairseq's
// SequenceGenerator for fairseq models.
std::vector<std::vector<int64_t>> generate_batch(const ModelBundle& bundle, const at::Tensor& features,
                                                 const at::Tensor& attention_mask);

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
// common.eval=true. Plugins must be loaded. Throws slt::Error on failure; a
// SIGINT/SIGTERM saves a checkpoint and returns Interrupted.
RunOutcome run_translation(const ConfigNode& job);

// Makes SIGINT/SIGTERM request a clean stop, which run_translation honours,
// instead of killing the process. Call it first thing in main() so that a
// signal arriving during start-up is not fatal; run_translation also installs
// it for its own duration.
void catch_stop_signals();
}  // namespace slt
