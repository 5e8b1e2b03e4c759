#include "slt/eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "slt/eval/meteor.h"
#include "slt/text/text.h"
#include "slt/text/unicode.h"

namespace slt::metrics {

namespace {

using unicode::decode_utf8;
using unicode::encode_utf8;

bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }

// The ASCII punctuation class of 13a's first rule: [\{-\~\[-\` -\&\(-\+\:-\@\/]
bool is_13a_symbol(char32_t c) {
  return (c >= U'{' && c <= U'~') || (c >= U'[' && c <= U'`') || (c >= U' ' && c <= U'&') ||
         (c >= U'(' && c <= U'+') || (c >= U':' && c <= U'@') || c == U'/';
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

std::vector<std::string> split_spaces(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// n-gram counts of a token sequence, keyed by the tokens joined with '\x01'.
std::unordered_map<std::string, int64_t> ngram_counts(const std::vector<std::string>& tokens, size_t n) {
  std::unordered_map<std::string, int64_t> counts;
  if (tokens.size() < n) return counts;
  for (size_t i = 0; i + n <= tokens.size(); ++i) {
    std::string key = tokens[i];
    for (size_t k = 1; k < n; ++k) key += '\x01' + tokens[i + k];
    ++counts[key];
  }
  return counts;
}

double fmeasure(double precision, double recall) {
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

}  // namespace

std::string tokenize_13a(const std::string& text) {
  std::string line = text;
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  std::u32string s = decode_utf8(" " + line + " ");
  std::u32string a;  // rule 1: pad ASCII punctuation with spaces
  for (char32_t c : s) {
    if (is_13a_symbol(c)) {
      a += U' ';
      a += c;
      a += U' ';
    } else {
      a += c;
    }
  }
  std::u32string b;  // rule 2: ([^0-9])([.,]) -> "\1 \2 "
  for (size_t i = 0; i < a.size();) {
    if (i + 1 < a.size() && !is_digit(a[i]) && (a[i + 1] == U'.' || a[i + 1] == U',')) {
      b += a[i];
      b += U' ';
      b += a[i + 1];
      b += U' ';
      i += 2;
    } else {
      b += a[i++];
    }
  }
  std::u32string c;  // rule 3: ([.,])([^0-9]) -> " \1 \2"
  for (size_t i = 0; i < b.size();) {
    if (i + 1 < b.size() && (b[i] == U'.' || b[i] == U',') && !is_digit(b[i + 1])) {
      c += U' ';
      c += b[i];
      c += U' ';
      c += b[i + 1];
      i += 2;
    } else {
      c += b[i++];
    }
  }
  std::u32string d;  // rule 4: ([0-9])(-) -> "\1 \2 "
  for (size_t i = 0; i < c.size();) {
    if (i + 1 < c.size() && is_digit(c[i]) && c[i + 1] == U'-') {
      d += c[i];
      d += U' ';
      d += U'-';
      d += U' ';
      i += 2;
    } else {
      d += c[i++];
    }
  }
  return encode_utf8(unicode::normalize_spaces(d));
}

BleuStats& BleuStats::operator+=(const BleuStats& other) {
  for (size_t n = 0; n < 4; ++n) {
    counts[n] += other.counts[n];
    totals[n] += other.totals[n];
  }
  sys_len += other.sys_len;
  ref_len += other.ref_len;
  return *this;
}

BleuStats bleu_statistics(const std::string& hypothesis, const std::string& reference) {
  auto hyp = split_spaces(tokenize_13a(hypothesis));
  auto ref = split_spaces(tokenize_13a(reference));
  BleuStats stats;
  stats.sys_len = static_cast<int64_t>(hyp.size());
  stats.ref_len = static_cast<int64_t>(ref.size());
  for (size_t n = 1; n <= 4; ++n) {
    auto hyp_counts = ngram_counts(hyp, n);
    auto ref_counts = ngram_counts(ref, n);
    int64_t matches = 0;
    for (const auto& [gram, count] : hyp_counts) {
      auto it = ref_counts.find(gram);
      if (it != ref_counts.end()) matches += std::min(count, it->second);
    }
    stats.counts[n - 1] = matches;
    stats.totals[n - 1] = std::max<int64_t>(0, static_cast<int64_t>(hyp.size()) - static_cast<int64_t>(n) + 1);
  }
  return stats;
}

double compute_bleu(const BleuStats& stats, int max_order, bool effective_order) {
  // sacrebleu stops before smoothing when no n-gram matches (its issue #141).
  if (std::all_of(stats.counts.begin(), stats.counts.begin() + max_order, [](auto c) { return c == 0; })) return 0.0;
  std::vector<double> precisions(max_order, 0.0);
  double smooth_mteval = 1.0;
  int order = max_order;
  for (int n = 1; n <= max_order; ++n) {
    if (stats.totals[n - 1] == 0) break;
    if (effective_order) order = n;
    if (stats.counts[n - 1] == 0) {
      smooth_mteval *= 2;
      precisions[n - 1] = 100.0 / (smooth_mteval * static_cast<double>(stats.totals[n - 1]));
    } else {
      precisions[n - 1] = 100.0 * static_cast<double>(stats.counts[n - 1]) / static_cast<double>(stats.totals[n - 1]);
    }
  }
  double bp = 1.0;
  if (stats.sys_len < stats.ref_len)
    bp = stats.sys_len > 0 ? std::exp(1.0 - static_cast<double>(stats.ref_len) / static_cast<double>(stats.sys_len)) : 0.0;
  double log_sum = 0;
  // sacrebleu's my_log: log(0) is a very negative number, not -inf.
  for (int n = 0; n < order; ++n) log_sum += precisions[n] == 0.0 ? -9999999999.0 : std::log(precisions[n]);
  return bp * std::exp(log_sum / order);
}

double sentence_bleu(const std::string& hypothesis, const std::string& reference) {
  return compute_bleu(bleu_statistics(hypothesis, reference), 4, true);
}

ChrfStats chrf_statistics(const std::string& hypothesis, const std::string& reference) {
  auto squeeze = [](const std::string& text) {
    std::u32string out;
    for (char32_t c : decode_utf8(text))
      if (!unicode::is_python_space(c)) out += c;
    return out;
  };
  std::u32string hyp = squeeze(hypothesis), ref = squeeze(reference);
  ChrfStats stats{};
  for (size_t n = 1; n <= 6; ++n) {
    std::unordered_map<std::u32string, int64_t> hyp_counts, ref_counts;
    for (size_t i = 0; i + n <= hyp.size(); ++i) ++hyp_counts[hyp.substr(i, n)];
    for (size_t i = 0; i + n <= ref.size(); ++i) ++ref_counts[ref.substr(i, n)];
    int64_t hyp_total = 0, ref_total = 0, matches = 0;
    for (const auto& [gram, count] : hyp_counts) {
      hyp_total += count;
      auto it = ref_counts.find(gram);
      if (it != ref_counts.end()) matches += std::min(count, it->second);
    }
    for (const auto& [gram, count] : ref_counts) ref_total += count;
    stats[3 * (n - 1)] = hyp_total;
    stats[3 * (n - 1) + 1] = ref_total;
    stats[3 * (n - 1) + 2] = matches;
  }
  return stats;
}

double chrf_from_statistics(const ChrfStats& stats) {
  const double eps = 1e-16;
  const double factor = 2.0 * 2.0;  // beta = 2
  double avg_precision = 0, avg_recall = 0;
  int effective_order = 0;
  for (size_t i = 0; i < 6; ++i) {
    double n_hyp = static_cast<double>(stats[3 * i]);
    double n_ref = static_cast<double>(stats[3 * i + 1]);
    double n_match = static_cast<double>(stats[3 * i + 2]);
    double precision = n_hyp > 0 ? n_match / n_hyp : eps;
    double recall = n_ref > 0 ? n_match / n_ref : eps;
    if (n_hyp > 0 && n_ref > 0) ++effective_order;
    avg_precision += precision;
    avg_recall += recall;
  }
  if (effective_order == 0) return 0.0;
  avg_precision /= effective_order;
  avg_recall /= effective_order;
  if (avg_precision + avg_recall == 0) return 0.0;
  return 100.0 * (1 + factor) * avg_precision * avg_recall / (factor * avg_precision + avg_recall);
}

double sentence_chrf(const std::string& hypothesis, const std::string& reference) {
  return chrf_from_statistics(chrf_statistics(hypothesis, reference));
}

std::vector<std::string> rouge_tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(current);
    current.clear();
  };
  for (char32_t c : decode_utf8(text)) {
    // Python's str.lower() maps these two non-ASCII letters to ASCII ones.
    if (c == 0x130) {  // İ -> "i̇": the 'i' survives, the combining dot separates
      current += 'i';
      flush();
      continue;
    }
    if (c == 0x212a) c = U'k';  // Kelvin sign
    if (c >= U'A' && c <= U'Z') c = c - U'A' + U'a';
    if ((c >= U'a' && c <= U'z') || is_digit(c)) {
      current += static_cast<char>(c);
    } else {
      flush();
    }
  }
  flush();
  return tokens;
}

namespace {

double rouge_n(const std::vector<std::string>& target, const std::vector<std::string>& prediction, size_t n) {
  auto target_counts = ngram_counts(target, n);
  auto prediction_counts = ngram_counts(prediction, n);
  int64_t overlap = 0, target_total = 0, prediction_total = 0;
  for (const auto& [gram, count] : target_counts) {
    target_total += count;
    auto it = prediction_counts.find(gram);
    if (it != prediction_counts.end()) overlap += std::min(count, it->second);
  }
  for (const auto& [gram, count] : prediction_counts) prediction_total += count;
  double precision = static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(prediction_total, 1));
  double recall = static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(target_total, 1));
  return fmeasure(precision, recall);
}

// Token ids shared by two sequences, for integer comparisons.
std::pair<std::vector<uint32_t>, std::vector<uint32_t>> token_ids(const std::vector<std::string>& a,
                                                                 const std::vector<std::string>& b) {
  std::unordered_map<std::string, uint32_t> ids;
  auto encode = [&](const std::vector<std::string>& tokens) {
    std::vector<uint32_t> out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back(ids.emplace(t, static_cast<uint32_t>(ids.size())).first->second);
    return out;
  };
  auto first = encode(a);
  return {first, encode(b)};
}

// LCS length, bit-parallel (Allison & Dix; Hyyro 2004): one row of the DP
// table is a bit vector over `b`, updated with word-wide additions. The same
// number as the quadratic table, 64 cells per operation: a 200,000-word line
// takes seconds, not hours.
size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() || b.empty()) return 0;
  auto [x, y] = token_ids(a, b);
  const size_t words = (y.size() + 63) / 64;
  std::unordered_map<uint32_t, std::vector<size_t>> positions;  // of each token in b
  for (size_t j = 0; j < y.size(); ++j) positions[y[j]].push_back(j);
  std::vector<uint64_t> v(words, ~uint64_t{0}), u(words, 0);
  for (uint32_t token : x) {
    auto it = positions.find(token);
    if (it == positions.end()) continue;  // U = 0 leaves V as it is
    for (size_t j : it->second) u[j / 64] |= uint64_t{1} << (j % 64);
    for (size_t w = 0; w < words; ++w) u[w] &= v[w];
    // V = (V + U) | (V - U), with carries and borrows across words.
    uint64_t carry = 0, borrow = 0;
    for (size_t w = 0; w < words; ++w) {
      const uint64_t sum_partial = v[w] + u[w];
      const uint64_t sum = sum_partial + carry;
      carry = (sum_partial < v[w]) || (sum < sum_partial);
      const uint64_t difference_partial = v[w] - u[w];
      const uint64_t difference = difference_partial - borrow;
      borrow = (v[w] < u[w]) || (difference_partial < borrow);
      v[w] = sum | difference;
    }
    for (size_t j : it->second) u[j / 64] = 0;
  }
  size_t ones = 0;
  for (size_t w = 0; w < words; ++w) {
    uint64_t bits = v[w];
    if (w + 1 == words && y.size() % 64) bits &= (uint64_t{1} << (y.size() % 64)) - 1;
    ones += static_cast<size_t>(__builtin_popcountll(bits));
  }
  return y.size() - ones;
}

double rouge_l(const std::vector<std::string>& target, const std::vector<std::string>& prediction) {
  if (target.empty() || prediction.empty()) return 0.0;
  double lcs = static_cast<double>(lcs_length(target, prediction));
  return fmeasure(lcs / static_cast<double>(prediction.size()), lcs / static_cast<double>(target.size()));
}

// Positions in `reference` of one longest common subsequence with
// `candidate`, chosen as rouge_score's _backtrack_norec chooses.
std::vector<size_t> lcs_positions(const std::vector<uint32_t>& reference, const std::vector<uint32_t>& candidate) {
  const size_t rows = reference.size(), cols = candidate.size();
  std::vector<uint32_t> table((rows + 1) * (cols + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return table[i * (cols + 1) + j]; };
  for (size_t i = 1; i <= rows; ++i)
    for (size_t j = 1; j <= cols; ++j)
      at(i, j) = reference[i - 1] == candidate[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
  std::vector<size_t> positions;
  for (size_t i = rows, j = cols; i > 0 && j > 0;) {
    if (reference[i - 1] == candidate[j - 1]) {
      positions.push_back(--i);
      --j;
    } else if (at(i, j - 1) > at(i - 1, j)) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(positions.begin(), positions.end());
  return positions;
}

// rouge_score's rougeLsum: summary-level LCS over newline-separated
// sentences (ROUGE-1.5.5's union LCS, each token counted at most as often as
// it occurs on both sides).
double rouge_lsum(const std::string& hypothesis, const std::string& reference) {
  auto sentences = [](const std::string& text) {
    std::vector<std::vector<std::string>> out;
    for (const auto& line : split(text, '\n'))
      if (!line.empty()) out.push_back(rouge_tokenize(line));
    return out;
  };
  auto reference_sentences = sentences(reference), candidate_sentences = sentences(hypothesis);
  std::unordered_map<std::string, uint32_t> ids;
  auto encode = [&](const std::vector<std::vector<std::string>>& list) {
    std::vector<std::vector<uint32_t>> out;
    for (const auto& tokens : list) {
      out.emplace_back();
      for (const auto& t : tokens) out.back().push_back(ids.emplace(t, static_cast<uint32_t>(ids.size())).first->second);
    }
    return out;
  };
  auto ref = encode(reference_sentences), can = encode(candidate_sentences);
  size_t m = 0, n = 0;
  std::unordered_map<uint32_t, int64_t> ref_counts, can_counts;
  for (const auto& s : ref)
    for (uint32_t t : s) ++m, ++ref_counts[t];
  for (const auto& s : can)
    for (uint32_t t : s) ++n, ++can_counts[t];
  if (m == 0 || n == 0) return 0.0;
  size_t hits = 0;
  for (const auto& r : ref) {
    std::set<size_t> union_positions;
    for (const auto& c : can)
      for (size_t p : lcs_positions(r, c)) union_positions.insert(p);
    for (size_t p : union_positions) {
      int64_t& in_candidate = can_counts[r[p]];
      int64_t& in_reference = ref_counts[r[p]];
      if (in_candidate > 0 && in_reference > 0) {
        ++hits;
        --in_candidate;
        --in_reference;
      }
    }
  }
  return fmeasure(static_cast<double>(hits) / static_cast<double>(n), static_cast<double>(hits) / static_cast<double>(m));
}

}  // namespace

RougeScores rouge(const std::string& hypothesis, const std::string& reference) {
  auto target = rouge_tokenize(reference);
  auto prediction = rouge_tokenize(hypothesis);
  RougeScores scores;
  scores.rouge1 = rouge_n(target, prediction, 1);
  scores.rouge2 = rouge_n(target, prediction, 2);
  scores.rougeL = rouge_l(target, prediction);
  // Summary-level LCS over newline-separated sentences; on one line it is rougeL.
  const bool multi_line = hypothesis.find('\n') != std::string::npos || reference.find('\n') != std::string::npos;
  scores.rougeLsum = multi_line ? rouge_lsum(hypothesis, reference) : scores.rougeL;
  return scores;
}

double python_round(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);  // exact binary value, half to even
  return std::strtod(buf, nullptr);
}

CorpusScores score_corpus(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  if (hypotheses.size() != references.size())
    throw std::invalid_argument(std::to_string(hypotheses.size()) + " hypotheses but " +
                                std::to_string(references.size()) + " references");
  CorpusScores scores;
  scores.sentences = hypotheses.size();
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    scores.bleu_stats += bleu_statistics(hypotheses[i], references[i]);
    ChrfStats chrf = chrf_statistics(hypotheses[i], references[i]);
    for (size_t k = 0; k < chrf.size(); ++k) scores.chrf_stats[k] += chrf[k];
    RougeScores r = rouge(hypotheses[i], references[i]);
    scores.rouge.rouge1 += r.rouge1;
    scores.rouge.rouge2 += r.rouge2;
    scores.rouge.rougeL += r.rougeL;
    scores.rouge.rougeLsum += r.rougeLsum;
    scores.meteor += meteor(hypotheses[i], references[i]);
  }
  for (int n = 1; n <= 4; ++n) {
    scores.bleu_raw[n - 1] = compute_bleu(scores.bleu_stats, n, false);
    scores.bleu[n - 1] = python_round(scores.bleu_raw[n - 1], 2);
  }
  scores.chrf = chrf_from_statistics(scores.chrf_stats);
  if (scores.sentences > 0) {
    double count = static_cast<double>(scores.sentences);
    scores.rouge.rouge1 /= count;
    scores.rouge.rouge2 /= count;
    scores.rouge.rougeL /= count;
    scores.rouge.rougeLsum /= count;
    scores.meteor /= count;
  }
  return scores;
}

namespace {

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '\'' || c >= 0x80; }

// Calls visit(start, length, sentence_initial) for every word of `text`.
template <typename Visit>
void for_each_word(const std::string& text, Visit visit) {
  bool sentence_start = true;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = text[i];
    if (is_word_byte(c) && c != '\'') {
      size_t j = i;
      while (j < text.size() && is_word_byte(static_cast<unsigned char>(text[j]))) ++j;
      visit(i, j - i, sentence_start);
      sentence_start = false;
      i = j;
    } else {
      if (c == '.' || c == '!' || c == '?') sentence_start = true;
      ++i;
    }
  }
}

}  // namespace

void Truecaser::fit(const std::vector<std::string>& sentences) {
  std::unordered_map<std::string, std::map<std::string, int64_t>> inside, initial;
  for (const auto& sentence : sentences) {
    for_each_word(sentence, [&](size_t start, size_t length, bool sentence_initial) {
      std::string word = sentence.substr(start, length);
      ++(sentence_initial ? initial : inside)[ascii_lower(word)][word];
    });
  }
  best_.clear();
  auto most_frequent = [](const std::map<std::string, int64_t>& counts) {
    // Ties go to the form with fewer capitals (the map is ordered, capitals sort first).
    const std::pair<const std::string, int64_t>* best = nullptr;
    for (const auto& entry : counts)
      if (!best || entry.second > best->second || (entry.second == best->second && entry.first > best->first))
        best = &entry;
    return best->first;
  };
  for (const auto& [key, counts] : inside) best_[key] = most_frequent(counts);
  for (const auto& [key, counts] : initial)
    if (!best_.count(key)) best_[key] = most_frequent(counts);
}

std::string Truecaser::apply(const std::string& text) const {
  std::string out = text;
  for_each_word(text, [&](size_t start, size_t length, bool sentence_initial) {
    auto it = best_.find(ascii_lower(text.substr(start, length)));
    if (it != best_.end() && it->second.size() == length) out.replace(start, length, it->second);
    if (sentence_initial && out[start] >= 'a' && out[start] <= 'z') out[start] = static_cast<char>(out[start] - 'a' + 'A');
  });
  return out;
}

std::string bleu_signature() {
  return std::string("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:") + kSacrebleuVersion;
}

std::string chrf_signature() {
  return std::string("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:") + kSacrebleuVersion;
}

}  // namespace slt::metrics
