#pragma once
// Translation metrics, computed exactly as the reference's Python libraries do:
//  - BLEU-1..4: sacrebleu 2.x (13a tokenizer, exp smoothing), combined as
//    ssvp_slt does (corpus n-gram statistics, then BLEU-N for N = 1..4);
//  - chrF: sacrebleu CHRF defaults (char order 6, word order 0, beta 2), corpus level;
//  - ROUGE-1/2/L/Lsum: Google's rouge_score F-measures (its tokenizer, no
//    stemmer), averaged over sentences (deterministic, unlike evaluate's
//    bootstrap median);
//  - METEOR: NLTK's, averaged over sentences (meteor.h).
#include <array>
#include <string>
#include <unordered_map>
#include <vector>

namespace slt::metrics {

// The sacrebleu release whose numbers these functions reproduce (for signatures).
inline constexpr const char* kSacrebleuVersion = "2.6.0";

// sacrebleu's "13a" tokenizer (mteval-v13a): tokens joined by single spaces.
std::string tokenize_13a(const std::string& text);

struct BleuStats {
  std::array<int64_t, 4> counts{};  // matching n-grams, n = 1..4 (clipped)
  std::array<int64_t, 4> totals{};  // hypothesis n-grams
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  BleuStats& operator+=(const BleuStats& other);
};

// Statistics of one hypothesis against one reference (13a-tokenised inside).
BleuStats bleu_statistics(const std::string& hypothesis, const std::string& reference);

// sacrebleu BLEU.compute_bleu with smooth_method="exp" over the first
// `max_order` n-gram orders.
double compute_bleu(const BleuStats& stats, int max_order = 4, bool effective_order = false);

// sacrebleu.sentence_bleu (effective order on).
double sentence_bleu(const std::string& hypothesis, const std::string& reference);

// chrF statistics: for n = 1..6, {hypothesis n-grams, reference n-grams, matches}.
using ChrfStats = std::array<int64_t, 18>;
ChrfStats chrf_statistics(const std::string& hypothesis, const std::string& reference);
double chrf_from_statistics(const ChrfStats& stats);
double sentence_chrf(const std::string& hypothesis, const std::string& reference);

struct RougeScores {
  double rouge1 = 0, rouge2 = 0, rougeL = 0, rougeLsum = 0;  // F-measures in [0, 1]
};
// rouge_score's default tokenizer: lowercase, [^a-z0-9]+ separates tokens.
std::vector<std::string> rouge_tokenize(const std::string& text);
RougeScores rouge(const std::string& hypothesis, const std::string& reference);

struct CorpusScores {
  std::array<double, 4> bleu_raw{};  // BLEU-1..4 before rounding
  std::array<double, 4> bleu{};      // rounded to 2 decimals as Python's round() does
  BleuStats bleu_stats;
  double chrf = 0;
  ChrfStats chrf_stats{};
  RougeScores rouge;  // means over sentences
  double meteor = 0;  // mean over sentences (NLTK, see meteor.h)
  size_t sentences = 0;
};

// Corpus-level scores of aligned hypotheses and references. Throws
// std::invalid_argument when the counts differ.
CorpusScores score_corpus(const std::vector<std::string>& hypotheses,
                          const std::vector<std::string>& references);

// Python's round(x, digits) for the values metrics produce (correctly rounded, half to even).
double python_round(double value, int digits);

// Truecasing for models trained on lower-cased labels (model.lower_case=true):
// each word takes its most frequent casing in the training labels (counted
// away from sentence starts, where capitals say nothing about the word), and
// every sentence starts with a capital. Spacing and punctuation are kept.
class Truecaser {
 public:
  void fit(const std::vector<std::string>& sentences);
  std::string apply(const std::string& text) const;
  size_t vocabulary_size() const { return best_.size(); }

 private:
  std::unordered_map<std::string, std::string> best_;  // lower-cased word -> casing
};

std::string bleu_signature();
std::string chrf_signature();

}  // namespace slt::metrics
