// Metrics against the values sacrebleu, rouge_score and friends computed on
// the same pairs (../shared/fixtures/metrics, see its README).
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "slt/eval/meteor.h"
#include "slt/eval/metrics.h"

using nlohmann::json;
namespace m = slt::metrics;

namespace {

struct Pairs {
  std::vector<std::string> hypotheses, references;
};

Pairs read_pairs(const std::string& name) {
  std::ifstream in(std::string(SLT_FIXTURES_DIR) + "/metrics/" + name + ".tsv");
  REQUIRE(in);
  Pairs pairs;
  std::string line;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    pairs.hypotheses.push_back(line.substr(0, tab));
    pairs.references.push_back(line.substr(tab + 1));
  }
  return pairs;
}

json read_json(const std::string& name) {
  std::ifstream in(std::string(SLT_FIXTURES_DIR) + "/metrics/" + name);
  REQUIRE(in);
  return json::parse(in);
}

const char* kSets[] = {"dev015_edge", "dev040_mixed"};

}  // namespace

TEST_CASE("13a tokenisation matches sacrebleu on every fixture sentence", "[metrics]") {
  for (const char* set : kSets) {
    Pairs pairs = read_pairs(set);
    json sentences = read_json(std::string(set) + ".sentence.json")["sentences"];
    REQUIRE(sentences.size() == pairs.hypotheses.size());
    for (size_t i = 0; i < sentences.size(); ++i) {
      INFO(set << " pair " << i);
      CHECK(m::tokenize_13a(pairs.hypotheses[i]) == sentences[i]["hyp_tok13a"].get<std::string>());
      CHECK(m::tokenize_13a(pairs.references[i]) == sentences[i]["ref_tok13a"].get<std::string>());
    }
  }
}

TEST_CASE("sentence BLEU, chrF and ROUGE match per pair", "[metrics]") {
  for (const char* set : kSets) {
    Pairs pairs = read_pairs(set);
    json sentences = read_json(std::string(set) + ".sentence.json")["sentences"];
    for (size_t i = 0; i < sentences.size(); ++i) {
      INFO(set << " pair " << i << ": " << pairs.hypotheses[i]);
      const json& s = sentences[i];
      m::BleuStats stats = m::bleu_statistics(pairs.hypotheses[i], pairs.references[i]);
      for (size_t n = 0; n < 4; ++n) {
        CHECK(stats.counts[n] == s["sentence_bleu_counts"][n].get<int64_t>());
        CHECK(stats.totals[n] == s["sentence_bleu_totals"][n].get<int64_t>());
      }
      CHECK(stats.sys_len == s["sentence_bleu_sys_len"].get<int64_t>());
      CHECK(stats.ref_len == s["sentence_bleu_ref_len"].get<int64_t>());
      CHECK(m::sentence_bleu(pairs.hypotheses[i], pairs.references[i]) ==
            Approx(s["sentence_bleu"].get<double>()).margin(1e-9));
      CHECK(m::sentence_chrf(pairs.hypotheses[i], pairs.references[i]) ==
            Approx(s["sentence_chrf"].get<double>()).margin(1e-9));
      m::RougeScores r = m::rouge(pairs.hypotheses[i], pairs.references[i]);
      CHECK(r.rouge1 == Approx(s["rouge1"].get<double>()).margin(1e-12));
      CHECK(r.rouge2 == Approx(s["rouge2"].get<double>()).margin(1e-12));
      CHECK(r.rougeL == Approx(s["rougeL"].get<double>()).margin(1e-12));
      CHECK(r.rougeLsum == Approx(s["rougeLsum"].get<double>()).margin(1e-12));
    }
  }
}

TEST_CASE("corpus BLEU-1..4, chrF and ROUGE match the reference evaluation", "[metrics]") {
  for (const char* set : kSets) {
    INFO(set);
    Pairs pairs = read_pairs(set);
    json expected = read_json(std::string(set) + ".expected.json");
    m::CorpusScores scores = m::score_corpus(pairs.hypotheses, pairs.references);
    for (size_t n = 0; n < 4; ++n) {
      CHECK(scores.bleu_stats.counts[n] == expected["bleu_counts"][n].get<int64_t>());
      CHECK(scores.bleu_stats.totals[n] == expected["bleu_totals"][n].get<int64_t>());
      std::string key = "bleu" + std::to_string(n + 1);
      CHECK(scores.bleu_raw[n] == Approx(expected[key + "_raw"].get<double>()).margin(1e-6));
      CHECK(scores.bleu[n] == expected[key].get<double>());  // rounded values exactly
    }
    CHECK(scores.bleu_stats.sys_len == expected["bleu_sys_len"].get<int64_t>());
    CHECK(scores.bleu_stats.ref_len == expected["bleu_ref_len"].get<int64_t>());
    for (size_t k = 0; k < 18; ++k) CHECK(scores.chrf_stats[k] == expected["chrf_stats"][k].get<int64_t>());
    CHECK(scores.chrf == Approx(expected["chrf"].get<double>()).margin(1e-6));
    CHECK(scores.rouge.rouge1 == Approx(expected["rouge1"].get<double>()).margin(1e-6));
    CHECK(scores.rouge.rouge2 == Approx(expected["rouge2"].get<double>()).margin(1e-6));
    CHECK(scores.rouge.rougeL == Approx(expected["rougeL"].get<double>()).margin(1e-6));
    CHECK(scores.rouge.rougeLsum == Approx(expected["rougeLsum"].get<double>()).margin(1e-6));
    CHECK(scores.meteor == Approx(expected["meteor"].get<double>()).margin(1e-4));
    CHECK(m::bleu_signature() == expected["bleu_signature"].get<std::string>());
    CHECK(m::chrf_signature() == expected["chrf_signature"].get<std::string>());
  }
}

TEST_CASE("summing per-batch BLEU statistics equals corpus statistics", "[metrics]") {
  Pairs pairs = read_pairs("dev040_mixed");
  m::BleuStats summed;
  for (size_t start = 0; start < pairs.hypotheses.size(); start += 7) {
    for (size_t i = start; i < std::min(start + 7, pairs.hypotheses.size()); ++i)
      summed += m::bleu_statistics(pairs.hypotheses[i], pairs.references[i]);
  }
  m::CorpusScores whole = m::score_corpus(pairs.hypotheses, pairs.references);
  CHECK(summed.counts == whole.bleu_stats.counts);
  CHECK(summed.totals == whole.bleu_stats.totals);
}

TEST_CASE("mismatched corpus sizes are an error", "[metrics]") {
  CHECK_THROWS_AS(m::score_corpus({"a"}, {}), std::invalid_argument);
}

TEST_CASE("Python rounding: half to even on the exact binary value", "[metrics]") {
  CHECK(m::python_round(2.675, 2) == 2.67);  // 2.675 is 2.67499999... in binary
  CHECK(m::python_round(0.125, 2) == 0.12);  // exact tie goes to even
  CHECK(m::python_round(47.35208707962196, 2) == 47.35);
}

TEST_CASE("the truecaser restores casing learned from training labels", "[metrics][truecase]") {
  m::Truecaser truecaser;
  truecaser.fit({"Sarah and I went to Paris.", "Then we visited the Louvre with Sarah.", "I think NASA likes it.",
                 "The weather is nice. Paris is big!"});
  CHECK(truecaser.apply("sarah and i went to paris.") == "Sarah and I went to Paris.");
  CHECK(truecaser.apply("then we visited the louvre. nasa called sarah!") ==
        "Then we visited the Louvre. NASA called Sarah!");
  // Unknown words keep their case; sentence starts get a capital.
  CHECK(truecaser.apply("zebras run fast.") == "Zebras run fast.");
  CHECK(truecaser.apply("") == "");
  // "The" is only seen sentence-initially besides "the": the inside form wins.
  CHECK(truecaser.apply("we saw the louvre") == "We saw the Louvre");
}

TEST_CASE("truecasing the lower-cased metric references recovers most of their casing", "[metrics][truecase]") {
  std::ifstream in(std::string(SLT_FIXTURES_DIR) + "/metrics/dev040_mixed.tsv");
  std::vector<std::string> references, lowered, restored;
  std::string line;
  while (std::getline(in, line)) {
    std::string ref = line.substr(line.find('\t') + 1);
    references.push_back(ref);
    std::string low = ref;
    for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lowered.push_back(low);
  }
  m::Truecaser truecaser;
  truecaser.fit(references);
  for (const auto& l : lowered) restored.push_back(truecaser.apply(l));
  // Case-sensitive BLEU against the originals: lower-cased text loses points, truecased text gets them back.
  double before = m::score_corpus(lowered, references).bleu[3];
  double after = m::score_corpus(restored, references).bleu[3];
  CHECK(after > before);
  CHECK(after > 95.0);
}

TEST_CASE("METEOR matches NLTK per sentence and on average", "[metrics][meteor]") {
  for (const char* set : kSets) {
    Pairs pairs = read_pairs(set);
    json sentences = read_json(std::string(set) + ".sentence.json")["sentences"];
    double sum = 0;
    size_t exact = 0;
    for (size_t i = 0; i < sentences.size(); ++i) {
      double ours = m::meteor(pairs.hypotheses[i], pairs.references[i]);
      double expected = sentences[i]["meteor"].get<double>();
      sum += ours;
      INFO(set << " pair " << i << ": " << pairs.hypotheses[i] << " | " << pairs.references[i]);
      CHECK(ours == Approx(expected).margin(1e-4));
      exact += std::abs(ours - expected) <= 1e-4;
    }
    double expected_mean = read_json(std::string(set) + ".expected.json")["meteor"].get<double>();
    CHECK(sum / static_cast<double>(sentences.size()) == Approx(expected_mean).margin(1e-4));
  }
}

// Corner cases scored by sacrebleu, rouge_score and NLTK themselves
// (tests/golden/metric_corner_cases.json, made by
// tests/python/make_metric_corner_cases.py): no shared unigram, empty sides,
// single tokens, typographic quotes, clitics, non-ASCII punctuation, a long
// line, multi-line rougeLsum.
TEST_CASE("metric corner cases match sacrebleu, rouge_score and NLTK", "[metrics]") {
  std::ifstream in(std::string(SLT_TESTS_DIR) + "/golden/metric_corner_cases.json");
  REQUIRE(in);
  json fixture = json::parse(in);
  REQUIRE(fixture["cases"].size() >= 14);
  for (const auto& c : fixture["cases"]) {
    INFO(c["name"].get<std::string>());
    auto hyps = c["hypotheses"].get<std::vector<std::string>>();
    auto refs = c["references"].get<std::vector<std::string>>();
    const json& expected = c["expected"];
    if (expected.contains("meteor_tokens")) {
      std::vector<std::string> texts = hyps;
      texts.insert(texts.end(), refs.begin(), refs.end());
      for (size_t i = 0; i < texts.size(); ++i) {
        INFO(texts[i]);
        CHECK(m::nltk_word_tokenize(texts[i]) == expected["meteor_tokens"][i].get<std::vector<std::string>>());
      }
    }
    m::CorpusScores scores = m::score_corpus(hyps, refs);
    for (int n = 0; n < 4; ++n) CHECK(scores.bleu[n] == Approx(expected["bleu" + std::to_string(n + 1)].get<double>()).margin(1e-9));
    CHECK(scores.chrf == Approx(expected["chrf"].get<double>()).margin(1e-9));
    CHECK(scores.rouge.rouge1 == Approx(expected["rouge1"].get<double>()).margin(1e-12));
    CHECK(scores.rouge.rouge2 == Approx(expected["rouge2"].get<double>()).margin(1e-12));
    CHECK(scores.rouge.rougeL == Approx(expected["rougeL"].get<double>()).margin(1e-12));
    CHECK(scores.rouge.rougeLsum == Approx(expected["rougeLsum"].get<double>()).margin(1e-12));
    CHECK(scores.meteor == Approx(expected["meteor"].get<double>()).margin(1e-9));
  }
}
