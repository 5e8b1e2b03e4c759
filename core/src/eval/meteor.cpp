#include "slt/eval/meteor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "slt/errors.h"
#include "slt/text/text.h"
#include "slt/text/unicode.h"

namespace fs = std::filesystem;

namespace slt::metrics {

// ---------------------------------------------------------------------------
// NLTK's NLTKWordTokenizer (nltk/tokenize/destructive.py), rule by rule.

namespace {

struct Rule {
  std::regex pattern;
  std::string replacement;
};

Rule rule(const char* pattern, const char* replacement, bool icase = false) {
  auto flags = std::regex::ECMAScript;
  if (icase) flags |= std::regex::icase;
  return {std::regex(pattern, flags), replacement};
}

std::string apply(const std::vector<Rule>& rules, std::string text) {
  for (const auto& r : rules) text = std::regex_replace(text, r.pattern, r.replacement);
  return text;
}

std::vector<std::string> treebank_tokenize(std::string text) {
  // ECMAScript has no Unicode classes: multi-byte quotes are spelled out.
  static const std::vector<Rule> starting_quotes = {
      rule("(\xc2\xab|\xe2\x80\x9c|\xe2\x80\x98|\xe2\x80\x9e|`+)", " $1 "),
      rule("^\"", "``"),
      rule("(``)", " $1 "),
      rule("([ ([{<])(\"|'')", "$1 `` "),
      rule("(')(?!re|ve|ll|m|t|s|d|n)(\\w)\\b", "$1 $2", true),
  };
  static const std::vector<Rule> punctuation = {
      // NLTK's class [\]\)}>"\'»”’ ] also holds the closing quotes and a space.
      rule("([^.])(\\.)((?:[\\])}>\"' ]|\xc2\xbb|\xe2\x80\x9d|\xe2\x80\x99)*)\\s*$", "$1 $2 $3 "),
      rule("([:,])([^\\d])", " $1 $2"),
      rule("([:,])$", " $1 "),
      rule("\\.{2,}", " $& "),
      rule("[;@#$%&]", " $& "),
      rule("([^.])(\\.)([\\])}>\"']*)\\s*$", "$1 $2$3 "),
      rule("[?!]", " $& "),
      rule("([^'])' ", "$1 ' "),
      rule("[*]", " $& "),
  };
  static const std::vector<Rule> brackets_and_dashes = {rule("[\\][(){}<>]", " $& "), rule("--", " -- ")};
  static const std::vector<Rule> ending_quotes = {
      rule("(\xc2\xbb|\xe2\x80\x9d|\xe2\x80\x99)", " $1 "),
      rule("''", " '' "),
      rule("\"", " '' "),
      rule("([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 "),
      rule("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 "),
  };
  static const std::vector<Rule> contractions = {
      rule("\\b(can)(not)\\b", " $1 $2 ", true),  rule("\\b(d)('ye)\\b", " $1 $2 ", true),
      rule("\\b(gim)(me)\\b", " $1 $2 ", true),   rule("\\b(gon)(na)\\b", " $1 $2 ", true),
      rule("\\b(got)(ta)\\b", " $1 $2 ", true),   rule("\\b(lem)(me)\\b", " $1 $2 ", true),
      rule("\\b(more)('n)\\b", " $1 $2 ", true),  rule("\\b(wan)(na)(?=\\s)", " $1 $2 ", true),
      rule(" ('t)(is)\\b", " $1 $2 ", true),      rule(" ('t)(was)\\b", " $1 $2 ", true),
  };
  text = apply(starting_quotes, text);
  text = apply(punctuation, text);
  text = apply(brackets_and_dashes, text);
  text = " " + text + " ";
  text = apply(ending_quotes, text);
  text = apply(contractions, text);
  // str.split(): Python whitespace, U+00A0 included.
  std::vector<std::string> tokens;
  std::u32string current;
  for (char32_t c : unicode::decode_utf8(text)) {
    if (unicode::is_python_space(c)) {
      if (!current.empty()) tokens.push_back(unicode::encode_utf8(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) tokens.push_back(unicode::encode_utf8(current));
  return tokens;
}

// Stand-in for Punkt's decisions with its English model: a token ending in
// . ! ? (plus closing quotes/brackets) followed by whitespace ends a sentence,
// except after a common abbreviation, a single-letter initial, an ellipsis, or
// a number followed by a lower-case word. What the model learned beyond that
// (collocations, orthographic statistics) is not available here.
std::vector<std::string> split_sentences(const std::string& text) {
  static const std::set<std::string> abbreviations = {
      "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "u.s",
      "inc", "ltd", "co", "corp", "no", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
      "oct", "nov", "dec", "mt", "ft", "approx", "dept", "est", "fig", "gen", "gov", "lt", "col", "rev"};
  std::u32string s = unicode::decode_utf8(text);
  std::vector<std::string> sentences;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != U'.' && s[i] != U'!' && s[i] != U'?') continue;
    size_t end = i + 1;
    // Punkt looks past ASCII closers only: "stop.” and" holds no sentence break.
    while (end < s.size() && (s[end] == U'"' || s[end] == U'\'' || s[end] == U')' || s[end] == U']')) ++end;
    size_t next = end;
    while (next < s.size() && unicode::is_python_space(s[next])) ++next;
    if (next == end || next >= s.size()) continue;
    if (s[i] == U'.') {
      size_t word_start = i;
      while (word_start > start && !unicode::is_python_space(s[word_start - 1])) --word_start;
      std::u32string word = s.substr(word_start, i - word_start);
      if (!word.empty() && word.back() == U'.') continue;  // an ellipsis
      std::string lower;
      for (char32_t c : word) lower += (c < 0x80) ? static_cast<char>(std::tolower(static_cast<int>(c))) : '?';
      while (!lower.empty() && (lower.front() == '(' || lower.front() == '"')) lower.erase(0, 1);
      std::string last_part = lower.substr(lower.rfind('-') == std::string::npos ? 0 : lower.rfind('-') + 1);
      if (abbreviations.count(lower) || abbreviations.count(last_part)) continue;
      if (lower.size() == 1 && std::isalpha(static_cast<unsigned char>(lower[0]))) continue;  // an initial
      bool number = !lower.empty() && std::all_of(lower.begin(), lower.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == ',' || c == '.';
      });
      bool next_lower = s[next] >= U'a' && s[next] <= U'z';
      if (number && next_lower) continue;
    }
    sentences.push_back(unicode::encode_utf8(s.substr(start, end - start)));
    start = next;
  }
  if (start < s.size()) sentences.push_back(unicode::encode_utf8(s.substr(start)));
  return sentences;
}

}  // namespace

std::vector<std::string> nltk_word_tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  for (const auto& sentence : split_sentences(text)) {
    auto part = treebank_tokenize(sentence);
    tokens.insert(tokens.end(), part.begin(), part.end());
  }
  return tokens;
}

// ---------------------------------------------------------------------------
// Porter stemmer, NLTK_EXTENSIONS mode (nltk/stem/porter.py).

namespace {

class Porter {
 public:
  std::u32string stem(const std::u32string& word) const {
    static const std::map<std::u32string, std::u32string> pool = {
        {U"skies", U"sky"},     {U"sky", U"sky"},         {U"dying", U"die"},     {U"lying", U"lie"},
        {U"tying", U"tie"},     {U"news", U"news"},       {U"innings", U"inning"}, {U"inning", U"inning"},
        {U"outings", U"outing"}, {U"outing", U"outing"},   {U"cannings", U"canning"}, {U"canning", U"canning"},
        {U"howe", U"howe"},     {U"proceed", U"proceed"}, {U"exceed", U"exceed"}, {U"succeed", U"succeed"}};
    if (auto it = pool.find(word); it != pool.end()) return it->second;
    if (word.size() <= 2) return word;
    std::u32string w = step1a(word);
    w = step1b(w);
    w = step1c(w);
    w = step2(w);
    w = step3(w);
    w = step4(w);
    w = step5a(w);
    return step5b(w);
  }

 private:
  using S = std::u32string;
  struct R {
    S suffix, replacement;
    std::function<bool(const S&)> condition;  // on the stem without the suffix; empty: always
  };

  static bool ends(const S& w, const S& suffix) {
    return w.size() >= suffix.size() && w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  static S cut(const S& w, size_t n) { return w.substr(0, w.size() - n); }

  static bool consonant(const S& w, size_t i) {
    char32_t c = w[i];
    if (c == U'a' || c == U'e' || c == U'i' || c == U'o' || c == U'u') return false;
    if (c == U'y') return i == 0 ? true : !consonant(w, i - 1);
    return true;
  }
  static int measure(const S& stem) {
    std::u32string cv;
    for (size_t i = 0; i < stem.size(); ++i) cv += consonant(stem, i) ? U'c' : U'v';
    int m = 0;
    for (size_t i = 0; i + 1 < cv.size(); ++i)
      if (cv[i] == U'v' && cv[i + 1] == U'c') ++m;
    return m;
  }
  static bool positive_measure(const S& stem) { return measure(stem) > 0; }
  static bool contains_vowel(const S& stem) {
    for (size_t i = 0; i < stem.size(); ++i)
      if (!consonant(stem, i)) return true;
    return false;
  }
  static bool ends_double_consonant(const S& w) {
    return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && consonant(w, w.size() - 1);
  }
  static bool ends_cvc(const S& w) {
    size_t n = w.size();
    return (n >= 3 && consonant(w, n - 3) && !consonant(w, n - 2) && consonant(w, n - 1) && w[n - 1] != U'w' &&
            w[n - 1] != U'x' && w[n - 1] != U'y') ||
           (n == 2 && !consonant(w, 0) && consonant(w, 1));
  }

  // The first rule whose suffix matches decides, even when its condition fails.
  static S apply_rules(const S& word, const std::vector<R>& rules) {
    for (const auto& r : rules) {
      if (r.suffix == U"*d") {
        if (ends_double_consonant(word)) {
          S stem = cut(word, 2);
          if (!r.condition || r.condition(stem)) return stem + r.replacement;
          return word;
        }
        continue;
      }
      if (ends(word, r.suffix)) {
        S stem = cut(word, r.suffix.size());
        if (!r.condition || r.condition(stem)) return stem + r.replacement;
        return word;
      }
    }
    return word;
  }

  static S step1a(const S& w) {
    if (ends(w, U"ies") && w.size() == 4) return cut(w, 3) + U"ie";
    return apply_rules(w, {{U"sses", U"ss", {}}, {U"ies", U"i", {}}, {U"ss", U"ss", {}}, {U"s", U"", {}}});
  }

  static S step1b(const S& w) {
    if (ends(w, U"ied")) return w.size() == 4 ? cut(w, 3) + U"ie" : cut(w, 3) + U"i";
    if (ends(w, U"eed")) {
      S stem = cut(w, 3);
      return measure(stem) > 0 ? stem + U"ee" : w;
    }
    S intermediate;
    bool matched = false;
    for (const S& suffix : {S(U"ed"), S(U"ing")}) {
      if (ends(w, suffix)) {
        intermediate = cut(w, suffix.size());
        if (contains_vowel(intermediate)) {
          matched = true;
          break;
        }
      }
    }
    if (!matched) return w;
    char32_t last = intermediate.empty() ? 0 : intermediate.back();
    return apply_rules(intermediate,
                       {{U"at", U"ate", {}},
                        {U"bl", U"ble", {}},
                        {U"iz", U"ize", {}},
                        {U"*d", S(1, last), [last](const S&) { return last != U'l' && last != U's' && last != U'z'; }},
                        {U"", U"e", [](const S& stem) { return measure(stem) == 1 && ends_cvc(stem); }}});
  }

  static S step1c(const S& w) {
    return apply_rules(w, {{U"y", U"i", [](const S& stem) { return stem.size() > 1 && consonant(stem, stem.size() - 1); }}});
  }

  static S step2(const S& w) {
    if (ends(w, U"alli") && positive_measure(cut(w, 4))) return step2(cut(w, 4) + U"al");
    auto m0 = positive_measure;
    std::vector<R> rules = {{U"ational", U"ate", m0}, {U"tional", U"tion", m0}, {U"enci", U"ence", m0},
                            {U"anci", U"ance", m0},   {U"izer", U"ize", m0},    {U"bli", U"ble", m0},
                            {U"alli", U"al", m0},     {U"entli", U"ent", m0},   {U"eli", U"e", m0},
                            {U"ousli", U"ous", m0},   {U"ization", U"ize", m0}, {U"ation", U"ate", m0},
                            {U"ator", U"ate", m0},    {U"alism", U"al", m0},    {U"iveness", U"ive", m0},
                            {U"fulness", U"ful", m0}, {U"ousness", U"ous", m0}, {U"aliti", U"al", m0},
                            {U"iviti", U"ive", m0},   {U"biliti", U"ble", m0},  {U"fulli", U"ful", m0},
                            {U"logi", U"log", [w](const S&) { return positive_measure(cut(w, 3)); }}};
    return apply_rules(w, rules);
  }

  static S step3(const S& w) {
    auto m0 = positive_measure;
    return apply_rules(w, {{U"icate", U"ic", m0}, {U"ative", U"", m0}, {U"alize", U"al", m0}, {U"iciti", U"ic", m0},
                           {U"ical", U"ic", m0},  {U"ful", U"", m0},   {U"ness", U"", m0}});
  }

  static S step4(const S& w) {
    auto m1 = [](const S& stem) { return measure(stem) > 1; };
    return apply_rules(w, {{U"al", U"", m1},   {U"ance", U"", m1}, {U"ence", U"", m1},  {U"er", U"", m1},
                           {U"ic", U"", m1},   {U"able", U"", m1}, {U"ible", U"", m1},  {U"ant", U"", m1},
                           {U"ement", U"", m1}, {U"ment", U"", m1}, {U"ent", U"", m1},
                           {U"ion", U"", [](const S& stem) { return measure(stem) > 1 && !stem.empty() && (stem.back() == U's' || stem.back() == U't'); }},
                           {U"ou", U"", m1},   {U"ism", U"", m1},  {U"ate", U"", m1},   {U"iti", U"", m1},
                           {U"ous", U"", m1},  {U"ive", U"", m1},  {U"ize", U"", m1}});
  }

  static S step5a(const S& w) {
    if (ends(w, U"e")) {
      S stem = cut(w, 1);
      if (measure(stem) > 1) return stem;
      if (measure(stem) == 1 && !ends_cvc(stem)) return stem;
    }
    return w;
  }

  static S step5b(const S& w) {
    return apply_rules(w, {{U"ll", U"l", [w](const S&) { return measure(cut(w, 1)) > 1; }}});
  }
};

}  // namespace

std::string porter_stem(const std::string& word) {
  static const Porter porter;
  return unicode::encode_utf8(porter.stem(unicode::decode_utf8(word)));
}

// ---------------------------------------------------------------------------
// WordNet 3.0 (the dict files) with NLTK's morphy.

namespace {

class WordNet {
 public:
  static const WordNet& instance() {
    static std::once_flag once;
    static WordNet* wordnet = nullptr;
    std::call_once(once, [] { wordnet = new WordNet(); });  // lives as long as the process
    return *wordnet;
  }

  std::vector<std::string> synonyms(const std::string& word_in) const {
    std::string word = word_in;
    for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::vector<std::string> names;
    for (char pos : {'n', 'v', 'a', 'r'}) {
      for (const auto& form : morphy(word, pos)) {
        auto it = index_.find(form);
        if (it == index_.end()) continue;
        auto offsets = it->second.find(pos);
        if (offsets == it->second.end()) continue;
        for (uint64_t offset : offsets->second)
          for (auto& name : lemma_names(pos, offset)) names.push_back(std::move(name));
      }
    }
    return names;
  }

 private:
  WordNet() {
    const char* env = std::getenv("SLT_WORDNET_DIR");
    dir_ = env ? env : "/usr/share/wordnet";
    if (!fs::exists(dir_ / "index.noun"))
      throw UserError("WordNet not found in " + dir_.string() +
                      " (METEOR needs it): apt-get install wordnet-base, or set SLT_WORDNET_DIR");
    const std::map<char, std::string> files = {{'n', "noun"}, {'v', "verb"}, {'a', "adj"}, {'r', "adv"}};
    for (const auto& [pos, name] : files) {
      std::ifstream in(dir_ / ("index." + name));
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty() || line[0] == ' ') continue;
        std::istringstream fields(line);
        std::string lemma, p;
        size_t synsets = 0, pointers = 0;
        fields >> lemma >> p >> synsets >> pointers;
        std::string skip;
        for (size_t i = 0; i < pointers; ++i) fields >> skip;
        fields >> skip >> skip;  // sense_cnt tagsense_cnt
        auto& offsets = index_[lemma][pos];
        for (size_t i = 0; i < synsets; ++i) {
          uint64_t offset;
          fields >> offset;
          offsets.push_back(offset);
        }
      }
      std::ifstream exc(dir_ / (name + ".exc"));
      while (std::getline(exc, line)) {
        std::istringstream fields(line);
        std::string inflected, base;
        fields >> inflected;
        auto& bases = exceptions_[pos][inflected];
        while (fields >> base) bases.push_back(base);
      }
      data_[pos] = dir_ / ("data." + name);
    }
  }

  std::vector<std::string> morphy(const std::string& form, char pos) const {
    static const std::map<char, std::vector<std::pair<std::string, std::string>>> substitutions = {
        {'n', {{"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"},
               {"men", "man"}, {"ies", "y"}}},
        {'v', {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}}},
        {'a', {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}}},
        {'r', {}}};
    auto apply_rules = [&](const std::vector<std::string>& forms) {
      std::vector<std::string> out;
      for (const auto& f : forms)
        for (const auto& [old_suffix, new_suffix] : substitutions.at(pos))
          if (f.size() >= old_suffix.size() && f.compare(f.size() - old_suffix.size(), old_suffix.size(), old_suffix) == 0)
            out.push_back(f.substr(0, f.size() - old_suffix.size()) + new_suffix);
      return out;
    };
    auto filter = [&](const std::vector<std::string>& forms) {
      std::vector<std::string> out;
      std::set<std::string> seen;
      for (const auto& f : forms) {
        auto it = index_.find(f);
        if (it != index_.end() && it->second.count(pos) && seen.insert(f).second) out.push_back(f);
      }
      return out;
    };
    auto& exceptions = exceptions_.at(pos);
    if (auto it = exceptions.find(form); it != exceptions.end()) {
      std::vector<std::string> forms = {form};
      forms.insert(forms.end(), it->second.begin(), it->second.end());
      return filter(forms);
    }
    std::vector<std::string> forms = apply_rules({form});
    std::vector<std::string> with_original = {form};
    with_original.insert(with_original.end(), forms.begin(), forms.end());
    auto results = filter(with_original);
    if (!results.empty()) return results;
    while (!forms.empty()) {
      forms = apply_rules(forms);
      results = filter(forms);
      if (!results.empty()) return results;
    }
    return {};
  }

  std::vector<std::string> lemma_names(char pos, uint64_t offset) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto key = std::make_pair(pos, offset);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    std::ifstream in(data_.at(pos));
    in.seekg(static_cast<std::streamoff>(offset));
    std::string line;
    std::getline(in, line);
    std::istringstream fields(line);
    std::string synset_offset, lex_filenum, ss_type, count_hex;
    fields >> synset_offset >> lex_filenum >> ss_type >> count_hex;
    size_t count = std::stoul(count_hex, nullptr, 16);
    std::vector<std::string> names;
    for (size_t i = 0; i < count; ++i) {
      std::string name, lex_id;
      fields >> name >> lex_id;
      if (size_t paren = name.find('('); paren != std::string::npos && name.back() == ')') name.erase(paren);  // (a) (p) (ip)
      names.push_back(name);
    }
    cache_[key] = names;
    return names;
  }

  fs::path dir_;
  std::unordered_map<std::string, std::map<char, std::vector<uint64_t>>> index_;
  std::map<char, std::unordered_map<std::string, std::vector<std::string>>> exceptions_;
  std::map<char, fs::path> data_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<char, uint64_t>, std::vector<std::string>> cache_;
};

using Enum = std::vector<std::pair<size_t, std::string>>;
using Matches = std::vector<std::pair<size_t, size_t>>;

// Remaining reference positions by word, ascending. NLTK scans the remaining
// references from the end for each hypothesis word: the largest position with
// an equal word. A map gives the same choice in linear time (long lines).
class RemainingWords {
 public:
  explicit RemainingWords(const Enum& words) {
    for (const auto& [position, word] : words) positions_[word].push_back(position);
  }
  // The largest remaining position among `candidates`' words, removed; npos if none.
  template <typename Words>
  size_t take_last(const Words& candidates) {
    std::vector<size_t>* best = nullptr;
    for (const auto& word : candidates) {
      auto it = positions_.find(word);
      if (it != positions_.end() && !it->second.empty() && (!best || it->second.back() > best->back())) best = &it->second;
    }
    if (!best) return std::string::npos;
    size_t position = best->back();
    best->pop_back();
    return position;
  }

 private:
  std::unordered_map<std::string, std::vector<size_t>> positions_;
};

// Drops the matched entries from `words` (order kept).
void remove_matched(Enum& words, const std::unordered_set<size_t>& matched) {
  words.erase(std::remove_if(words.begin(), words.end(), [&](const auto& w) { return matched.count(w.first) > 0; }),
              words.end());
}

// One matching stage: hypothesis words from the last, each paired with the
// last remaining reference word that `candidates(word)` accepts.
template <typename Candidates>
Matches match_stage(Enum& hyp, Enum& ref, Candidates candidates) {
  Matches matches;
  RemainingWords remaining(ref);
  std::unordered_set<size_t> hyp_matched, ref_matched;
  for (size_t i = hyp.size(); i-- > 0;) {
    size_t j = remaining.take_last(candidates(hyp[i].second));
    if (j == std::string::npos) continue;
    matches.emplace_back(hyp[i].first, j);
    hyp_matched.insert(hyp[i].first);
    ref_matched.insert(j);
  }
  remove_matched(hyp, hyp_matched);
  remove_matched(ref, ref_matched);
  return matches;
}

Matches match_enums(Enum& hyp, Enum& ref) {
  return match_stage(hyp, ref, [](const std::string& word) { return std::array<std::string, 1>{word}; });
}

}  // namespace

std::vector<std::string> wordnet_synonyms(const std::string& word) { return WordNet::instance().synonyms(word); }

double meteor(const std::string& hypothesis, const std::string& reference, double alpha, double beta, double gamma) {
  Enum hyp, ref;
  auto hyp_tokens = nltk_word_tokenize(hypothesis), ref_tokens = nltk_word_tokenize(reference);
  for (size_t i = 0; i < hyp_tokens.size(); ++i) hyp.emplace_back(i, ascii_lower(hyp_tokens[i]));
  for (size_t i = 0; i < ref_tokens.size(); ++i) ref.emplace_back(i, ascii_lower(ref_tokens[i]));
  const size_t translation_length = hyp.size(), reference_length = ref.size();

  Matches matches = match_enums(hyp, ref);
  // Stems replace the remaining words: the synonym stage then looks up stems, as NLTK does.
  for (auto& [i, w] : hyp) w = porter_stem(w);
  for (auto& [i, w] : ref) w = porter_stem(w);
  Matches stem_matches = match_enums(hyp, ref);
  matches.insert(matches.end(), stem_matches.begin(), stem_matches.end());
  Matches synonym_matches = match_stage(hyp, ref, [](const std::string& word) {
    std::unordered_set<std::string> synonyms;
    for (auto& name : wordnet_synonyms(word))
      if (name.find('_') == std::string::npos) synonyms.insert(name);
    synonyms.insert(word);
    return synonyms;
  });
  matches.insert(matches.end(), synonym_matches.begin(), synonym_matches.end());
  std::stable_sort(matches.begin(), matches.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (matches.empty() || translation_length == 0 || reference_length == 0) return 0.0;
  double precision = static_cast<double>(matches.size()) / static_cast<double>(translation_length);
  double recall = static_cast<double>(matches.size()) / static_cast<double>(reference_length);
  double fmean = precision * recall / (alpha * precision + (1 - alpha) * recall);
  size_t chunks = 1;
  for (size_t i = 0; i + 1 < matches.size(); ++i)
    if (!(matches[i + 1].first == matches[i].first + 1 && matches[i + 1].second == matches[i].second + 1)) ++chunks;
  double fragmentation = static_cast<double>(chunks) / static_cast<double>(matches.size());
  double penalty = gamma * std::pow(fragmentation, beta);
  return (1 - penalty) * fmean;
}

}  // namespace slt::metrics
