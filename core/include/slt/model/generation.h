#pragma once
// Search strategies over a Seq2SeqModel. A model supplies the strategy its
// reference decodes with (Seq2SeqModel::make_search); the host only calls it.
// HfSearch: greedy and beam search with Hugging Face's generate() semantics (transformers 4.38: GreedySearch, BeamSearchScorer with
// length_penalty, early_stopping, min_length, no_repeat_ngram_size,
// forced BOS/EOS). Batched; each row's result does not depend on the others.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slt/model/model.h"

namespace slt {

struct GenerationConfig {
  int64_t num_beams = 1;
  int64_t max_length = 20;  // including the decoder start token, as in HF
  int64_t min_length = 0;
  double length_penalty = 1.0;
  bool early_stopping = false;
  int64_t no_repeat_ngram_size = 0;
  bool output_scores = false;  // greedy: keep each step's processed logits
  // Override the model's forced first / last tokens (-1: none); unset: the model's.
  std::optional<int64_t> forced_bos_token_id, forced_eos_token_id;
};

struct GenerationOutput {
  at::Tensor sequences;        // [B, L] int64, starting with the decoder start token
  at::Tensor sequences_scores;  // [B] beam search: length-normalised score of each returned beam
  std::vector<at::Tensor> scores;  // greedy with output_scores: [B, vocab] per step
  // Wall time spent in the search's own C++ code (candidate bookkeeping,
  // finished hypotheses), i.e. outside LibTorch tensor operations.
  double bookkeeping_seconds = 0;
};

// The generation defaults of a Hugging Face folder (generation_config.json,
// else config.json): no_repeat_ngram_size, early_stopping, length_penalty,
// min_length, forced BOS/EOS, num_beams, max_length. Missing files give defaults.
GenerationConfig read_generation_config(const std::filesystem::path& folder);

GenerationOutput generate(Seq2SeqModel& model, const at::Tensor& features, const at::Tensor& attention_mask,
                          const GenerationConfig& config);

// fairseq's SequenceGenerator with BeamSearch (what the reference's
// FairseqTranslationModel.generate runs): decoding starts from EOS, pad is
// never chosen, EOS is banned before min_len, 2*beam candidates per step, a
// sentence is done once `beam` hypotheses ended, scores are normalised by
// length (EOS included) ** lenpen.
struct FairseqGenerationConfig {
  int64_t beam = 5;
  double max_len_a = 0;
  int64_t max_len_b = 200;
  int64_t min_len = 1;
  double lenpen = 1.0;
  double unk_penalty = 0;
  int64_t max_decoder_positions = 1024;
  int64_t unk = 3;
};

struct FairseqHypothesis {
  std::vector<int64_t> tokens;  // without the leading EOS, with the trailing EOS
  double score = 0;
  std::vector<double> positional_scores;
};

// n-best lists per input, best first.
std::vector<std::vector<FairseqHypothesis>> generate_fairseq(Seq2SeqModel& model, const at::Tensor& features,
                                                             const at::Tensor& attention_mask,
                                                             const FairseqGenerationConfig& config);

// Options the host passes when it asks a model for its search strategy
// (Seq2SeqModel::make_search); unset ones keep the strategy's defaults.
struct SearchOptions {
  std::optional<int64_t> num_beams;   // model.num_beams, --beams
  std::optional<int64_t> max_length;  // data.max_target_positions, --max-length
  // slt-translate --max-length: a cap on output tokens that every search
  // honours, also those whose reference ignores max_length (fairseq's max_len_b).
  std::optional<int64_t> length_cap;
};

// One translation: token ids (the search's own layout, decoded with the
// tokenizer's skip_special_tokens) and the search's score of it.
struct Translation {
  std::vector<int64_t> tokens;
  double score = 0;
};

/// How to turn encoder inputs into token ids. Each row's result depends on
/// that row alone.
///
///   auto search = model->make_search({/*num_beams=*/5, /*max_length=*/128});
///   std::vector<slt::Translation> best = search->translate(*model, features, mask);
class SearchStrategy {
 public:
  virtual ~SearchStrategy() = default;
  // The best translation of each row of `features` [B, T, D].
  virtual std::vector<Translation> translate(Seq2SeqModel& model, const at::Tensor& features,
                                             const at::Tensor& attention_mask) const = 0;
  virtual std::string describe() const = 0;  // one line for logs
};

/// The best translation of each of `inputs` ([frames, dim] features each), in
/// their order, translated in batches of `batch_size` inputs of similar
/// length (longest first), so that a batch pads little. Each row's result
/// depends on that row alone, so the grouping changes no translation.
std::vector<Translation> translate_by_length(const SearchStrategy& search, Seq2SeqModel& model,
                                             const std::vector<at::Tensor>& inputs, int64_t batch_size,
                                             at::Device device);

// Hugging Face generate(): `config` with num_beams / max_length from `options` when set.
class HfSearch : public SearchStrategy {
 public:
  HfSearch(GenerationConfig config, const SearchOptions& options);
  std::vector<Translation> translate(Seq2SeqModel& model, const at::Tensor& features,
                                     const at::Tensor& attention_mask) const override;
  std::string describe() const override;
  const GenerationConfig& config() const { return config_; }

 private:
  GenerationConfig config_;
};

// fairseq's SequenceGenerator: beam from options.num_beams when set; its
// length limits are max_len_a/max_len_b, as the reference leaves them.
class FairseqSearch : public SearchStrategy {
 public:
  FairseqSearch(FairseqGenerationConfig config, const SearchOptions& options);
  std::vector<Translation> translate(Seq2SeqModel& model, const at::Tensor& features,
                                     const at::Tensor& attention_mask) const override;
  std::string describe() const override;

 private:
  FairseqGenerationConfig config_;
};

}  // namespace slt
