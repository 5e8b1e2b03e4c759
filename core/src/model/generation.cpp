#include "slt/model/generation.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "slt/errors.h"
#include "slt/io/files.h"
#include "slt/model/decoding_kernels.h"

namespace slt {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// HF's logits processors, in the order generate() builds them, applied in place
// to `scores` [N, V] given the tokens so far `sequences` [N, cur_len].
void process_logits(at::Tensor& scores, const at::Tensor& sequences, const GenerationConfig& config,
                    const SpecialTokens& special) {
  int64_t cur_len = sequences.size(1);
  if (config.no_repeat_ngram_size > 0 && cur_len + 1 >= config.no_repeat_ngram_size) {
    int64_t n = config.no_repeat_ngram_size;
    auto seq = sequences.to(at::kLong).contiguous();
    auto acc = seq.accessor<int64_t, 2>();
    for (int64_t row = 0; row < seq.size(0); ++row) {
      // Tokens that would complete an n-gram already present in the row.
      for (int64_t start = 0; start + n <= cur_len; ++start) {
        bool same = true;
        for (int64_t k = 0; k < n - 1 && same; ++k) same = acc[row][start + k] == acc[row][cur_len - n + 1 + k];
        if (same) scores[row][acc[row][start + n - 1]] = kNegInf;
      }
    }
  }
  if (config.min_length > 0 && cur_len < config.min_length && special.eos >= 0)
    scores.select(1, special.eos).fill_(kNegInf);
  if (special.forced_bos >= 0 && cur_len == 1) {
    scores.fill_(kNegInf);
    scores.select(1, special.forced_bos).fill_(0);
  }
  if (special.forced_eos >= 0 && cur_len == config.max_length - 1) {
    scores.fill_(kNegInf);
    scores.select(1, special.forced_eos).fill_(0);
  }
}

GenerationOutput greedy(Seq2SeqModel& model, const at::Tensor& encoded, const at::Tensor& mask,
                        const GenerationConfig& config, const SpecialTokens& special) {
  int64_t batch = encoded.size(0);
  auto sequences = at::full({batch, 1}, special.decoder_start, at::TensorOptions().dtype(at::kLong).device(encoded.device()));
  auto unfinished = at::ones({batch}, sequences.options());
  std::unique_ptr<DecoderCache> cache;
  GenerationOutput out;
  while (sequences.size(1) < config.max_length) {
    auto logits = model.decode_step(sequences.select(1, -1), encoded, mask, cache).to(at::kFloat);
    process_logits(logits, sequences, config, special);
    if (config.output_scores) out.scores.push_back(logits.clone());
    auto next = logits.argmax(-1);
    next = next * unfinished + special.pad * (1 - unfinished);
    sequences = at::cat({sequences, next.unsqueeze(1)}, 1);
    unfinished = unfinished * (next != special.eos).to(at::kLong);
    if (unfinished.max().item<int64_t>() == 0) break;
  }
  out.sequences = sequences;
  return out;
}

// The inputs of a search that go on after a step: `live` holds the inputs
// still searched in row order, `rows_per_input` consecutive rows each.
struct Survivors {
  std::vector<int64_t> positions, rows;  // in the current batch
  std::vector<int64_t> live;             // the inputs' ids
};
Survivors survivors(const std::vector<int64_t>& live, const std::vector<bool>& ended, int64_t rows_per_input) {
  Survivors next;
  for (size_t p = 0; p < live.size(); ++p) {
    if (ended[static_cast<size_t>(live[p])]) continue;
    next.positions.push_back(static_cast<int64_t>(p));
    for (int64_t k = 0; k < rows_per_input; ++k) next.rows.push_back(static_cast<int64_t>(p) * rows_per_input + k);
    next.live.push_back(live[p]);
  }
  return next;
}

// The encoder rows of the inputs that go on: one per input when the model
// shares them between beams, else one per row.
void keep_encoder_rows(at::Tensor& encoded, at::Tensor& mask, bool shared, const at::Tensor& positions,
                       const at::Tensor& rows) {
  at::Tensor kept = (shared ? positions : rows).to(encoded.device());
  encoded = encoded.index_select(0, kept);
  mask = mask.index_select(0, kept);
}

struct Hypothesis {
  double score;
  std::vector<int64_t> tokens;
};

// BeamHypotheses: the n best finished hypotheses of one input.
struct Finished {
  int64_t num_beams;
  double length_penalty;
  bool early_stopping;
  std::vector<Hypothesis> beams;
  double worst_score = 1e9;

  void add(std::vector<int64_t> tokens, double sum_logprobs, int64_t generated_len) {
    double score = sum_logprobs / std::pow(static_cast<double>(generated_len), length_penalty);
    if (static_cast<int64_t>(beams.size()) < num_beams || score > worst_score) {
      beams.push_back({score, std::move(tokens)});
      if (static_cast<int64_t>(beams.size()) > num_beams) {
        size_t worst = 0;
        for (size_t i = 1; i < beams.size(); ++i)
          if (beams[i].score < beams[worst].score) worst = i;
        beams.erase(beams.begin() + static_cast<long>(worst));
        worst_score = beams[0].score;
        for (const auto& b : beams) worst_score = std::min(worst_score, b.score);
      } else {
        worst_score = std::min(score, worst_score);
      }
    }
  }

  bool is_done(double best_sum_logprobs, int64_t generated_len) const {
    if (static_cast<int64_t>(beams.size()) < num_beams) return false;
    if (early_stopping) return true;
    double highest_attainable = best_sum_logprobs / std::pow(static_cast<double>(generated_len), length_penalty);
    return worst_score >= highest_attainable;
  }
};

GenerationOutput beam_search(Seq2SeqModel& model, const at::Tensor& encoded_in, const at::Tensor& mask_in,
                             const GenerationConfig& config, const SpecialTokens& special) {
  const int64_t batch = encoded_in.size(0), beams = config.num_beams;
  // One encoder row per input when the model lets its beams share it.
  const bool shared = model.shares_encoder_rows();
  auto encoded = shared ? encoded_in : encoded_in.repeat_interleave(beams, 0);
  auto mask = shared ? mask_in : mask_in.repeat_interleave(beams, 0);
  auto long_options = at::TensorOptions().dtype(at::kLong).device(encoded.device());
  auto sequences = at::full({batch * beams, 1}, special.decoder_start, long_options);
  // Only the first beam of each input is live at the start.
  auto beam_scores = at::zeros({batch, beams}, at::TensorOptions().dtype(at::kFloat).device(encoded.device()));
  beam_scores.narrow(1, 1, beams - 1).fill_(-1e9);
  beam_scores = beam_scores.view({-1});
  std::vector<Finished> finished(batch, Finished{beams, config.length_penalty, config.early_stopping, {}});
  std::vector<bool> done(batch, false);
  std::unique_ptr<DecoderCache> cache;
  const int64_t decoder_prompt_len = 1;
  double bookkeeping = 0;
  // The inputs still searched, in row order: an input whose search has ended
  // leaves the batch (HF keeps decoding it, without effect on any result).
  std::vector<int64_t> live(static_cast<size_t>(batch));
  std::iota(live.begin(), live.end(), 0);

  while (true) {
    const int64_t cur_len = sequences.size(1), searched = static_cast<int64_t>(live.size());
    auto logits = model.decode_step(sequences.select(1, -1), encoded, mask, cache).to(at::kFloat);
    auto log_probs = log_softmax_rows(logits.contiguous());
    process_logits(log_probs, sequences, config, special);
    const int64_t vocab = log_probs.size(1);
    // HF takes the best 2·beams of (log-probability + beam score) over all the
    // beams × vocab entries of an input. Those are among the best 2·beams of
    // each row, as a row's beam score shifts all its entries alike: rank
    // within rows first, then only beams × 2·beams candidates per input.
    const int64_t per_row = std::min(2 * beams, vocab);
    auto [row_best, row_tokens] = top_k_per_row(log_probs, per_row);
    auto candidates = (row_best + beam_scores.unsqueeze(1)).view({searched, beams * per_row});
    auto top = at::topk(candidates, 2 * beams, 1, true, true);
    auto top_scores = std::get<0>(top).cpu(), top_ids = std::get<1>(top).cpu();
    auto row_tokens_cpu = row_tokens.cpu().contiguous();
    const int64_t* candidate_tokens = row_tokens_cpu.data_ptr<int64_t>();
    auto seq_cpu = sequences.cpu().contiguous();
    auto bookkeeping_start = std::chrono::steady_clock::now();
    // Per-candidate bookkeeping on raw accessors: tensor indexing per element
    // would cost more than the decoder step itself at batch 16.
    auto next_scores = at::zeros({searched, beams}, at::kFloat);
    auto next_tokens = at::full({searched, beams}, special.pad, at::kLong);
    auto next_indices = at::zeros({searched, beams}, at::kLong);
    auto ns = next_scores.accessor<float, 2>();
    auto nt = next_tokens.accessor<int64_t, 2>();
    auto ni = next_indices.accessor<int64_t, 2>();
    auto s_acc = top_scores.accessor<float, 2>();
    auto i_acc = top_ids.accessor<int64_t, 2>();
    const int64_t* rows = seq_cpu.data_ptr<int64_t>();
    for (int64_t p = 0; p < searched; ++p) {
      const int64_t b = live[static_cast<size_t>(p)];
      int64_t beam_idx = 0;
      for (int64_t rank = 0; rank < 2 * beams; ++rank) {
        int64_t source = p * beams + i_acc[p][rank] / per_row;
        int64_t token = candidate_tokens[source * per_row + i_acc[p][rank] % per_row];
        double score = s_acc[p][rank];
        if (token == special.eos) {
          if (rank >= beams) continue;  // not among the top num_beams: not a finished hypothesis
          std::vector<int64_t> tokens(rows + source * cur_len, rows + (source + 1) * cur_len);
          // HF counts the EOS about to be appended: cur_len + 1 - prompt.
          finished[b].add(std::move(tokens), score, cur_len + 1 - decoder_prompt_len);
        } else {
          ns[p][beam_idx] = static_cast<float>(score);
          nt[p][beam_idx] = token;
          ni[p][beam_idx] = source;
          if (++beam_idx == beams) break;
        }
      }
      double best = s_acc[p][0];
      for (int64_t rank = 1; rank < 2 * beams; ++rank) best = std::max(best, static_cast<double>(s_acc[p][rank]));
      done[b] = done[b] || finished[b].is_done(best, cur_len + 1 - decoder_prompt_len);
    }
    bookkeeping += std::chrono::duration<double>(std::chrono::steady_clock::now() - bookkeeping_start).count();
    auto indices = next_indices.view({-1}).to(encoded.device());
    sequences = at::cat({sequences.index_select(0, indices), next_tokens.view({-1, 1}).to(encoded.device())}, 1);
    beam_scores = next_scores.view({-1}).to(encoded.device());
    Survivors next = survivors(live, done, beams);
    if (next.live.empty() || sequences.size(1) >= config.max_length) break;
    if (static_cast<int64_t>(next.live.size()) < searched) {
      auto rows_left = at::tensor(next.rows, long_options);
      sequences = sequences.index_select(0, rows_left);
      beam_scores = beam_scores.index_select(0, rows_left);
      indices = indices.index_select(0, rows_left);
      keep_encoder_rows(encoded, mask, shared, at::tensor(next.positions, long_options), rows_left);
      live = std::move(next.live);
    }
    cache->reorder(indices);
  }

  // Finalize: the open beams compete with the finished ones.
  auto finalize_start = std::chrono::steady_clock::now();
  auto seq_cpu = sequences.cpu();
  auto final_scores = beam_scores.cpu();
  std::vector<Hypothesis> best(batch);
  int64_t longest = 0;
  for (size_t p = 0; p < live.size(); ++p) {
    const int64_t b = live[p];
    if (done[b]) continue;
    for (int64_t k = 0; k < beams; ++k) {
      const int64_t r = static_cast<int64_t>(p) * beams + k;
      auto row = seq_cpu[r];
      std::vector<int64_t> tokens(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
      finished[b].add(std::move(tokens), final_scores[r].item<double>(),
                      static_cast<int64_t>(row.numel()) - decoder_prompt_len);
    }
  }
  for (int64_t b = 0; b < batch; ++b) {
    auto& hyps = finished[b].beams;
    best[b] = *std::max_element(hyps.begin(), hyps.end(),
                                [](const Hypothesis& x, const Hypothesis& y) { return x.score < y.score; });
    longest = std::max(longest, static_cast<int64_t>(best[b].tokens.size()));
  }
  int64_t width = std::min(longest + 1, config.max_length);
  GenerationOutput out;
  out.sequences = at::full({batch, width}, special.pad, at::kLong);
  out.sequences_scores = at::empty({batch}, at::kFloat);
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t j = 0; j < best[b].tokens.size() && static_cast<int64_t>(j) < width; ++j)
      out.sequences[b][static_cast<int64_t>(j)] = best[b].tokens[j];
    if (static_cast<int64_t>(best[b].tokens.size()) < width) out.sequences[b][static_cast<int64_t>(best[b].tokens.size())] = special.eos;
    out.sequences_scores[b] = best[b].score;
  }
  out.sequences = out.sequences.to(encoded.device());
  out.bookkeeping_seconds =
      bookkeeping + std::chrono::duration<double>(std::chrono::steady_clock::now() - finalize_start).count();
  return out;
}

}  // namespace

GenerationConfig read_generation_config(const std::filesystem::path& folder) {
  GenerationConfig config;
  for (const char* name : {"generation_config.json", "config.json"}) {
    if (!std::filesystem::exists(folder / name)) continue;
    std::ifstream in = open_regular_file(folder / name, "generation config");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw UserError("'" + (folder / name).string() + "' is not valid JSON: " + e.what());
    }
    auto get_int = [&](const char* key, int64_t& field) {
      if (j.contains(key) && j[key].is_number_integer()) field = j[key].get<int64_t>();
    };
    get_int("num_beams", config.num_beams);
    get_int("max_length", config.max_length);
    get_int("min_length", config.min_length);
    get_int("no_repeat_ngram_size", config.no_repeat_ngram_size);
    if (j.contains("length_penalty") && j["length_penalty"].is_number()) config.length_penalty = j["length_penalty"].get<double>();
    if (j.contains("early_stopping") && j["early_stopping"].is_boolean()) config.early_stopping = j["early_stopping"].get<bool>();
    if (j.contains("forced_bos_token_id")) config.forced_bos_token_id = j["forced_bos_token_id"].is_null() ? -1 : j["forced_bos_token_id"].get<int64_t>();
    if (j.contains("forced_eos_token_id")) config.forced_eos_token_id = j["forced_eos_token_id"].is_null() ? -1 : j["forced_eos_token_id"].get<int64_t>();
    break;
  }
  return config;
}

GenerationOutput generate(Seq2SeqModel& model, const at::Tensor& features, const at::Tensor& attention_mask,
                          const GenerationConfig& config) {
  if (config.num_beams < 1) throw UserError("num_beams must be at least 1");
  if (config.max_length < 2) throw UserError("max_length must be at least 2 (the start token and one more)");
  c10::InferenceMode inference;  // no autograd bookkeeping on any tensor operation
  SpecialTokens special = model.special_tokens();
  if (config.forced_bos_token_id) special.forced_bos = *config.forced_bos_token_id;
  if (config.forced_eos_token_id) special.forced_eos = *config.forced_eos_token_id;
  auto encoded = model.encode(features, attention_mask);
  if (config.num_beams == 1) return greedy(model, encoded, attention_mask, config, special);
  return beam_search(model, encoded, attention_mask, config, special);
}

std::vector<std::vector<FairseqHypothesis>> generate_fairseq(Seq2SeqModel& model, const at::Tensor& features,
                                                             const at::Tensor& attention_mask,
                                                             const FairseqGenerationConfig& config) {
  c10::InferenceMode inference;  // no autograd bookkeeping on any tensor operation
  const SpecialTokens special = model.special_tokens();
  const int64_t batch = features.size(0), beam = config.beam, eos = special.eos, pad = special.pad;
  const int64_t src_len = features.size(1);
  const int64_t max_len = std::min<int64_t>(static_cast<int64_t>(config.max_len_a * src_len + config.max_len_b),
                                            config.max_decoder_positions - 1);
  const bool shared = model.shares_encoder_rows();
  auto encoded = model.encode(features, attention_mask);
  if (!shared) encoded = encoded.repeat_interleave(beam, 0);
  auto mask = shared ? attention_mask : attention_mask.repeat_interleave(beam, 0);
  auto device = encoded.device();
  // Rows are (sentence, beam) for the sentences still searched (`live`, in
  // row order); a finished sentence leaves the batch, as in fairseq.
  std::vector<int64_t> live(static_cast<size_t>(batch));
  std::iota(live.begin(), live.end(), 0);
  auto tokens = at::full({batch * beam, max_len + 2}, pad, at::TensorOptions().dtype(at::kLong));
  tokens.select(1, 0).fill_(eos);
  auto scores = at::zeros({batch * beam, max_len + 1}, at::kFloat);
  auto ignore = at::zeros({batch, beam}, at::kBool);
  std::vector<std::vector<FairseqHypothesis>> finalized(batch);
  std::vector<bool> finished(batch, false);
  std::unique_ptr<DecoderCache> cache;
  const float neg_inf = -std::numeric_limits<float>::infinity();

  for (int64_t step = 0; step <= max_len; ++step) {
    const int64_t searched = static_cast<int64_t>(live.size());
    auto last = tokens.select(1, step).to(device);
    auto lprobs = at::log_softmax(model.decode_step(last, encoded, mask, cache).to(at::kFloat), -1).cpu();
    int64_t vocab = lprobs.size(1);
    lprobs.masked_fill_(lprobs.ne(lprobs), neg_inf);
    lprobs.select(1, pad).fill_(neg_inf);
    if (config.unk_penalty != 0) lprobs.select(1, config.unk).sub_(config.unk_penalty);
    if (step >= max_len) {
      auto eos_column = lprobs.select(1, eos).clone();
      lprobs.fill_(neg_inf);
      lprobs.select(1, eos).copy_(eos_column);
    } else if (step < config.min_len) {
      lprobs.select(1, eos).fill_(neg_inf);
    }
    // BeamSearch.step: only the first beam at step 0, then add the running scores.
    auto view = lprobs.view({searched, beam, vocab});
    at::Tensor candidates_in = step == 0 ? view.narrow(1, 0, 1).contiguous()
                                         : view + scores.view({searched, beam, -1}).select(2, step - 1).unsqueeze(-1);
    auto flat = candidates_in.view({searched, -1});
    int64_t k = std::min<int64_t>(2 * beam, flat.size(1) - 1);
    auto top = at::topk(flat, k, 1);
    auto cand_scores = std::get<0>(top), cand_flat = std::get<1>(top);
    auto cand_beams = cand_flat.div(vocab, "floor"), cand_indices = cand_flat.fmod(vocab);
    auto cand_bbsz = cand_beams + (at::arange(searched, at::kLong) * beam).unsqueeze(1);

    auto eos_mask = cand_indices.eq(eos) & cand_scores.ne(neg_inf);
    eos_mask.narrow(1, 0, beam).masked_fill_(ignore, false);
    // Finalize hypotheses ending in EOS among the top `beam` candidates.
    for (int64_t p = 0; p < searched; ++p) {
      const int64_t b = live[static_cast<size_t>(p)];
      for (int64_t j = 0; j < beam; ++j) {
        if (!eos_mask[p][j].item<bool>()) continue;
        int64_t row = cand_bbsz[p][j].item<int64_t>();
        if (static_cast<int64_t>(finalized[b].size()) < beam) {
          FairseqHypothesis h;
          for (int64_t t = 1; t <= step; ++t) h.tokens.push_back(tokens[row][t].item<int64_t>());
          h.tokens.push_back(eos);
          double eos_score = cand_scores[p][j].item<double>();
          double previous = 0;
          for (int64_t t = 0; t <= step; ++t) {
            double cumulative = t == step ? eos_score : scores[row][t].item<double>();
            h.positional_scores.push_back(cumulative - previous);
            previous = cumulative;
          }
          h.score = eos_score / std::pow(static_cast<double>(step + 1), config.lenpen);
          finalized[b].push_back(std::move(h));
        }
      }
      // fairseq's is_finished: `beam` hypotheses collected, or the length limit reached.
      if (static_cast<int64_t>(finalized[b].size()) == beam || step == max_len) finished[b] = true;
    }
    if (std::all_of(finished.begin(), finished.end(), [](bool f) { return f; })) break;
    if (step >= max_len) break;

    // Keep the best `beam` candidates that neither just ended nor continue an
    // ignored beam: those sort after every live candidate.
    const int64_t cand_size = 2 * beam;
    eos_mask.narrow(1, 0, beam).logical_or_(ignore);
    auto active_mask = eos_mask.to(at::kLong) * cand_size + at::arange(eos_mask.size(1), at::kLong).unsqueeze(0);
    auto selected = at::topk(active_mask, beam, 1, /*largest=*/false);
    auto active_hypos = std::get<1>(selected);
    ignore = std::get<0>(selected).ge(cand_size);
    auto active_bbsz = cand_bbsz.gather(1, active_hypos).view({-1});
    auto active_scores = cand_scores.gather(1, active_hypos).view({-1});
    tokens.narrow(1, 0, step + 1).copy_(tokens.narrow(1, 0, step + 1).index_select(0, active_bbsz));
    tokens.select(1, step + 1).copy_(cand_indices.gather(1, active_hypos).view({-1}));
    if (step > 0) scores.narrow(1, 0, step).copy_(scores.narrow(1, 0, step).index_select(0, active_bbsz));
    scores.select(1, step).copy_(active_scores);
    Survivors next = survivors(live, finished, beam);
    if (static_cast<int64_t>(next.live.size()) < searched) {
      auto rows_left = at::tensor(next.rows, at::kLong), positions_left = at::tensor(next.positions, at::kLong);
      tokens = tokens.index_select(0, rows_left);
      scores = scores.index_select(0, rows_left);
      ignore = ignore.index_select(0, positions_left);
      active_bbsz = active_bbsz.index_select(0, rows_left);
      keep_encoder_rows(encoded, mask, shared, positions_left, rows_left);
      live = std::move(next.live);
    }
    cache->reorder(active_bbsz.to(device));
  }
  for (auto& hyps : finalized)
    std::stable_sort(hyps.begin(), hyps.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  return finalized;
}

std::vector<Translation> translate_by_length(const SearchStrategy& search, Seq2SeqModel& model,
                                             const std::vector<at::Tensor>& inputs, int64_t batch_size,
                                             at::Device device) {
  if (batch_size < 1) throw std::invalid_argument("translate_by_length: batch_size < 1");
  std::vector<size_t> order(inputs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return inputs[a].size(0) > inputs[b].size(0); });
  std::vector<Translation> out(inputs.size());
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
    const at::Tensor& longest = inputs[order[start]];
    const int64_t rows = static_cast<int64_t>(end - start);
    auto features = at::zeros({rows, longest.size(0), longest.size(1)}, longest.options());
    auto mask = at::zeros({rows, longest.size(0)}, longest.options().dtype(at::kFloat));
    for (int64_t r = 0; r < rows; ++r) {
      const at::Tensor& item = inputs[order[start + static_cast<size_t>(r)]];
      features[r].narrow(0, 0, item.size(0)).copy_(item);
      mask[r].narrow(0, 0, item.size(0)).fill_(1);
    }
    auto best = search.translate(model, features.to(device), mask.to(device));
    for (int64_t r = 0; r < rows; ++r) out[order[start + static_cast<size_t>(r)]] = std::move(best[static_cast<size_t>(r)]);
  }
  return out;
}

HfSearch::HfSearch(GenerationConfig config, const SearchOptions& options) : config_(std::move(config)) {
  if (options.num_beams) config_.num_beams = *options.num_beams;
  if (options.max_length) config_.max_length = *options.max_length;
}

std::vector<Translation> HfSearch::translate(Seq2SeqModel& model, const at::Tensor& features,
                                             const at::Tensor& attention_mask) const {
  GenerationOutput out = generate(model, features, attention_mask, config_);
  at::Tensor sequences = out.sequences.cpu().contiguous();
  std::vector<Translation> rows;
  for (int64_t i = 0; i < sequences.size(0); ++i) {
    const int64_t* row = sequences[i].data_ptr<int64_t>();
    Translation t;
    t.tokens.assign(row, row + sequences.size(1));
    if (out.sequences_scores.defined()) t.score = out.sequences_scores[i].item<double>();
    rows.push_back(std::move(t));
  }
  return rows;
}

std::string HfSearch::describe() const {
  return (config_.num_beams == 1 ? std::string("greedy search") : "beam search, " + std::to_string(config_.num_beams) + " beams") +
         " (Hugging Face generate), max_length " + std::to_string(config_.max_length);
}

FairseqSearch::FairseqSearch(FairseqGenerationConfig config, const SearchOptions& options) : config_(std::move(config)) {
  if (options.num_beams) config_.beam = *options.num_beams;
  if (options.length_cap) {
    config_.max_len_a = 0;
    config_.max_len_b = *options.length_cap;
  }
}

std::vector<Translation> FairseqSearch::translate(Seq2SeqModel& model, const at::Tensor& features,
                                                  const at::Tensor& attention_mask) const {
  std::vector<Translation> rows;
  for (auto& nbest : generate_fairseq(model, features, attention_mask, config_)) {
    Translation t;
    if (!nbest.empty()) {
      t.tokens = std::move(nbest.front().tokens);
      t.score = nbest.front().score;
    }
    rows.push_back(std::move(t));
  }
  return rows;
}

std::string FairseqSearch::describe() const {
  return "beam search, " + std::to_string(config_.beam) + " beams (fairseq SequenceGenerator)";
}

std::unique_ptr<SearchStrategy> Seq2SeqModel::make_search(const SearchOptions& options) const {
  return std::make_unique<HfSearch>(GenerationConfig{}, options);
}

}  // namespace slt
