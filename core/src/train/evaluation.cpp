#include "slt/train/evaluation.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "slt/data/loader.h"
#include "slt/data/tokenizer.h"
#include "slt/eval/metrics.h"
#include "slt/io/tensor_io.h"
#include "slt/model/generation.h"
#include "slt/runtime/components.h"
#include "slt/text/text.h"
#include "slt/train/distributed.h"
#include "slt/train/train_state.h"

namespace slt {

namespace {

// Every rank's share, merged in dataset order (and the loss and accuracy meters summed).
void gather_ranks(ProcessGroup& group, std::vector<int64_t>& indices, Evaluation& result, Meter& loss, Meter& acc) {
  nlohmann::json share = {{"indices", indices},        {"predictions", result.predictions},
                          {"references", result.references}, {"loss", {loss.total, loss.count}},
                          {"acc", {acc.total, acc.count}}};
  std::vector<int64_t> all_indices;
  std::vector<std::string> predictions, references;
  loss = acc = Meter{};
  for (const auto& text : group.all_gather(share.dump())) {
    auto part = nlohmann::json::parse(text);
    for (const auto& i : part["indices"]) all_indices.push_back(i.get<int64_t>());
    for (const auto& p : part["predictions"]) predictions.push_back(p.get<std::string>());
    for (const auto& r : part["references"]) references.push_back(r.get<std::string>());
    loss.total += part["loss"][0].get<double>();
    loss.count += part["loss"][1].get<int64_t>();
    acc.total += part["acc"][0].get<double>();
    acc.count += part["acc"][1].get<int64_t>();
  }
  std::vector<size_t> order(all_indices.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return all_indices[a] < all_indices[b]; });
  result.predictions.clear();
  result.references.clear();
  for (size_t k : order) {
    result.predictions.push_back(std::move(predictions[k]));
    result.references.push_back(std::move(references[k]));
  }
}

// Loader batches whose items are sorted by length together before translation.
constexpr int64_t kBatchesSortedTogether = 4;

}  // namespace

double token_accuracy(const at::Tensor& logits, const at::Tensor& labels, int64_t pad) {
  auto flat_logits = logits.reshape({-1, logits.size(-1)});
  auto flat_labels = labels.reshape({-1});
  auto mask = flat_labels.ne(pad);
  auto correct = flat_logits.argmax(1).masked_select(mask).eq(flat_labels.masked_select(mask)).sum();
  auto total = mask.sum();
  return (correct * 100).div(total).item<float>();
}

Evaluation evaluate(const ModelBundle& bundle, FeatureLoader& loader, const std::string& name,
                    const EvaluationOptions& options) {
  bundle.model->module().eval();
  torch::NoGradGuard no_grad;
  Evaluation result;
  Meter loss, acc;
  const int64_t pad = bundle.tokenizer->pad_id();
  auto started = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  FeatureBatch batch;
  size_t samples_seen = 0, batches = 0;
  std::vector<int64_t> indices;  // dataset positions of the predictions
  // Translations wait for a few batches, then go through the search sorted by
  // length (less padding); the loss and accuracy stay per loader batch, as
  // the reference averages them.
  std::vector<at::Tensor> waiting;  // each item's features, unpadded
  std::vector<FeatureBatch> pending;
  auto translate_pending = [&] {
    if (waiting.empty()) return;
    std::vector<Translation> generated;
    {
      AutocastScope autocast(options.precision, options.device);
      generated = translate_by_length(*bundle.search, *bundle.model, waiting, loader.batch_size(), options.device);
    }
    size_t next = 0;
    for (const FeatureBatch& done : pending) {
      samples_seen += done.labels_text.size();
      for (size_t i = 0; i < done.labels_text.size(); ++i) {
        std::string prediction(trim(bundle.tokenizer->decode(generated[next++].tokens, true)));
        if (options.truecaser) prediction = options.truecaser->apply(prediction);
        std::string reference(trim(done.labels_text[i]));
        // The reference numbers samples after counting the batch: P-<seen + i>.
        if (options.print_samples)
          spdlog::info("P-{}: {}\nR-{}: {}", samples_seen + i, prediction, samples_seen + i, reference);
        indices.push_back(static_cast<int64_t>(done.indices[i]));
        result.predictions.push_back(std::move(prediction));
        result.references.push_back(std::move(reference));
      }
    }
    waiting.clear();
    pending.clear();
  };
  while (loader.next(batch)) {
    Batch b = to_device(batch, options.device);
    {
      AutocastScope autocast(options.precision, options.device);
      ModelOutput out = bundle.model->forward(b);
      loss.update(out.loss.item<double>());
      acc.update(token_accuracy(out.logits, b.labels, pad), static_cast<int64_t>(batch.labels_text.size()));
    }
    auto lengths = batch.attention_mask.sum(1).to(at::kLong);
    for (int64_t i = 0; i < batch.features.size(0); ++i)
      waiting.push_back(batch.features[i].narrow(0, 0, lengths[i].item<int64_t>()));
    batch.features = batch.attention_mask = batch.labels = at::Tensor();  // the items above hold what is needed
    pending.push_back(std::move(batch));
    if (static_cast<int64_t>(pending.size()) == kBatchesSortedTogether) translate_pending();
    if (++batches % 10 == 0) spdlog::info("eval {}: {}/{} batches", name, batches, loader.num_batches());
  }
  translate_pending();
  if (options.group && options.group->size() > 1) gather_ranks(*options.group, indices, result, loss, acc);
  auto scores = metrics::score_corpus(result.predictions, result.references);
  result.stats["loss"] = loss.average();
  result.stats["acc"] = acc.average();
  for (int n = 0; n < 4; ++n) result.stats["bleu" + std::to_string(n + 1)] = scores.bleu[n];
  result.stats["rouge1"] = scores.rouge.rouge1;
  result.stats["rouge2"] = scores.rouge.rouge2;
  result.stats["rougeL"] = scores.rouge.rougeL;
  result.stats["rougeLsum"] = scores.rouge.rougeLsum;
  result.stats["meteor"] = scores.meteor;
  result.stats["chrf"] = scores.chrf;
  spdlog::info("* {} bleu1 {:.2f} bleu2 {:.2f} bleu3 {:.2f} bleu4 {:.2f} rouge-l {:.3f} chrf {:.3f} acc {:.3f} loss {:.3f} "
               "({} items, {:.1f} s)",
               name, scores.bleu[0], scores.bleu[1], scores.bleu[2], scores.bleu[3], scores.rouge.rougeL, scores.chrf,
               acc.average(), loss.average(), result.predictions.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return result;
}

void write_evaluation(const std::filesystem::path& dir, const std::string& split, const Evaluation& result) {
  std::string tsv = "Prediction\tReference\n";
  for (size_t i = 0; i < result.predictions.size(); ++i) tsv += result.predictions[i] + "\t" + result.references[i] + "\n";
  write_file_atomically((dir / (split + "_outputs.tsv")).string(), tsv.data(), tsv.size());
  std::string results = result.stats.dump(4);
  write_file_atomically((dir / (split + "_results.json")).string(), results.data(), results.size());
}

}  // namespace slt
