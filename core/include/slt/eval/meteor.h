#pragma once
// METEOR as NLTK 3.8 computes it (what HF evaluate's `meteor` reports):
// single_meteor_score(word_tokenize(ref), word_tokenize(hyp), alpha=0.9,
// beta=3, gamma=0.5) with exact, Porter-stem (NLTK mode) and WordNet 3.0
// synonym matches. WordNet comes from Debian's wordnet-base
// (/usr/share/wordnet, or SLT_WORDNET_DIR).
//
// Known gap: NLTK splits sentences with its pretrained Punkt model, which no
// Debian package ships; slt reproduces Punkt's first-pass rules with a fixed
// abbreviation list (see split_sentences in meteor.cpp). On the metric fixtures
// every sentence matches NLTK to 1e-4; texts whose sentence breaks depend on
// Punkt's learned statistics (rare abbreviations, initials) may differ.
#include <string>
#include <vector>

namespace slt::metrics {

// NLTK's word_tokenize (sentence split, then the Treebank word tokenizer).
std::vector<std::string> nltk_word_tokenize(const std::string& text);

// NLTK's PorterStemmer (NLTK_EXTENSIONS mode) on one lower-cased word.
std::string porter_stem(const std::string& word);

// Lemma names of every WordNet synset of `word` (via morphy), as NLTK's
// wordnet.synsets(word) lemmas; throws UserError when WordNet is missing.
std::vector<std::string> wordnet_synonyms(const std::string& word);

double meteor(const std::string& hypothesis, const std::string& reference, double alpha = 0.9, double beta = 3.0,
              double gamma = 0.5);

}  // namespace slt::metrics
