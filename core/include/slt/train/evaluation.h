#pragma once
// Validation and test as the reference's evaluate(): loss and token accuracy
// under teacher forcing, translations by the model's own search strategy,
// truecasing when the model trains on lower-cased labels, corpus metrics.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slt/train/precision.h"

namespace slt {

struct ModelBundle;
class FeatureLoader;
class ProcessGroup;
namespace metrics {
class Truecaser;
}

// compute_accuracy of the reference: 100 * correct / non-pad targets, in float32.
double token_accuracy(const at::Tensor& logits, const at::Tensor& labels, int64_t pad);

struct Evaluation {
  nlohmann::ordered_json stats;  // loss, acc, bleu1..4, rouge1, rouge2, rougeL, rougeLsum, meteor, chrf
  std::vector<std::string> predictions, references;
};

struct EvaluationOptions {
  at::Device device = at::kCPU;
  Precision precision;
  bool print_samples = false;                      // common.eval_print_samples: P-i / R-i lines
  const metrics::Truecaser* truecaser = nullptr;   // model.lower_case
  // Data-parallel evaluation: each rank's loader reads its share; the
  // translations are gathered back in dataset order on every rank, so the
  // metrics are those of one process (loss and accuracy average the ranks' batches).
  ProcessGroup* group = nullptr;
};

// Evaluates every batch of `loader` (the model is left in eval mode).
Evaluation evaluate(const ModelBundle& bundle, FeatureLoader& loader, const std::string& name,
                    const EvaluationOptions& options);

// <split>_outputs.tsv (Prediction, Reference) and <split>_results.json in `dir`, written atomically.
void write_evaluation(const std::filesystem::path& dir, const std::string& split, const Evaluation& result);

}  // namespace slt
