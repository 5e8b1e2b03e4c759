#include "slt/synthsign/grammar.h"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace slt::synthsign {

namespace {

struct Pronoun {
  const char* gloss;
  const char* english;
  bool third_singular;
};
struct Noun {
  const char* gloss;
  const char* singular;
  const char* plural;
};
struct Verb {
  const char* gloss;
  const char* base;
  const char* third_singular;
  const char* past;
};
struct Word {
  const char* gloss;
  const char* english;
};

constexpr std::array<Pronoun, 5> kPronouns{{
    {"IX-I", "I", false}, {"YOU", "you", false}, {"SHE", "she", true}, {"WE", "we", false}, {"THEY", "they", false}}};
constexpr std::array<Noun, 12> kNouns{{{"DOG", "dog", "dogs"},
                                       {"CAT", "cat", "cats"},
                                       {"BIRD", "bird", "birds"},
                                       {"HORSE", "horse", "horses"},
                                       {"CAR", "car", "cars"},
                                       {"BOOK", "book", "books"},
                                       {"HOUSE", "house", "houses"},
                                       {"TREE", "tree", "trees"},
                                       {"BALL", "ball", "balls"},
                                       {"APPLE", "apple", "apples"},
                                       {"CHAIR", "chair", "chairs"},
                                       {"FLOWER", "flower", "flowers"}}};
constexpr std::array<Word, 8> kAdjectives{{{"BIG", "big"},
                                           {"SMALL", "small"},
                                           {"RED", "red"},
                                           {"BLUE", "blue"},
                                           {"OLD", "old"},
                                           {"NEW", "new"},
                                           {"GREEN", "green"},
                                           {"BEAUTIFUL", "beautiful"}}};
constexpr std::array<Word, 5> kNumbers{{{"TWO", "two"}, {"THREE", "three"}, {"FOUR", "four"}, {"FIVE", "five"}, {"MANY", "many"}}};
constexpr std::array<Verb, 8> kVerbs{{{"SEE", "see", "sees", "saw"},
                                      {"WANT", "want", "wants", "wanted"},
                                      {"LIKE", "like", "likes", "liked"},
                                      {"HAVE", "have", "has", "had"},
                                      {"BUY", "buy", "buys", "bought"},
                                      {"FIND", "find", "finds", "found"},
                                      {"DRAW", "draw", "draws", "drew"},
                                      {"SELL", "sell", "sells", "sold"}}};
enum class Tense { Present, Past, Future };
struct Time {
  const char* gloss;
  const char* english;
  Tense tense;
};
// Multi-word expressions: EVERY-DAY, and the greetings below.
constexpr std::array<Time, 4> kTimes{{{"YESTERDAY", "yesterday", Tense::Past},
                                      {"TOMORROW", "tomorrow", Tense::Future},
                                      {"NOW", "now", Tense::Present},
                                      {"EVERY-DAY", "every day", Tense::Present}}};
constexpr std::array<Word, 2> kGreetings{{{"GOOD-MORNING", "Good morning"}, {"THANK-YOU", "Thank you"}}};
constexpr const char* kNegation = "NOT";

std::vector<std::string> build_lexicon() {
  std::vector<std::string> words;
  for (const auto& w : kPronouns) words.push_back(w.gloss);
  for (const auto& w : kNouns) words.push_back(w.gloss);
  for (const auto& w : kAdjectives) words.push_back(w.gloss);
  for (const auto& w : kNumbers) words.push_back(w.gloss);
  for (const auto& w : kVerbs) words.push_back(w.gloss);
  for (const auto& w : kTimes) words.push_back(w.gloss);
  for (const auto& w : kGreetings) words.push_back(w.gloss);
  words.push_back(kNegation);
  return words;
}

int gloss_id(const std::string& gloss) {
  const auto& words = lexicon();
  auto it = std::find(words.begin(), words.end(), gloss);
  if (it == words.end()) throw std::logic_error("SynthSign: no gloss " + gloss);
  return static_cast<int>(it - words.begin());
}

bool starts_with_vowel(const std::string& word) {
  return !word.empty() && std::string("aeiou").find(word[0]) != std::string::npos;
}

}  // namespace

const std::vector<std::string>& lexicon() {
  static const std::vector<std::string> words = build_lexicon();
  return words;
}

Sentence sample_sentence(std::mt19937_64& rng) {
  auto pick = [&rng](size_t n) { return static_cast<size_t>(std::uniform_int_distribution<size_t>(0, n - 1)(rng)); };
  auto chance = [&rng](double p) { return std::bernoulli_distribution(p)(rng); };

  const bool greeting = chance(0.2);
  const size_t greeting_index = pick(kGreetings.size());
  const bool has_time = chance(0.6);
  const Time& time = kTimes[pick(kTimes.size())];
  const Pronoun& subject = kPronouns[pick(kPronouns.size())];
  const Noun& noun = kNouns[pick(kNouns.size())];
  const bool has_adjective = chance(0.6);
  const Word& adjective = kAdjectives[pick(kAdjectives.size())];
  const bool has_number = chance(0.5);
  const Word& number = kNumbers[pick(kNumbers.size())];
  const Verb& verb = kVerbs[pick(kVerbs.size())];
  const bool negated = chance(0.25);
  const Tense tense = has_time ? time.tense : Tense::Present;

  Sentence s;
  // Signed: [GREETING] [TIME] SUBJECT NOUN [ADJECTIVE] [NUMBER] VERB [NOT]
  if (greeting) s.glosses.push_back(gloss_id(kGreetings[greeting_index].gloss));
  if (has_time) s.glosses.push_back(gloss_id(time.gloss));
  s.glosses.push_back(gloss_id(subject.gloss));
  s.glosses.push_back(gloss_id(noun.gloss));
  if (has_adjective) s.glosses.push_back(gloss_id(adjective.gloss));
  if (has_number) s.glosses.push_back(gloss_id(number.gloss));
  s.glosses.push_back(gloss_id(verb.gloss));
  if (negated) s.glosses.push_back(gloss_id(kNegation));

  // Said: [Greeting,] subject verb-phrase [number] [adjective] noun [time].
  std::vector<std::string> words;
  words.push_back(subject.english);
  if (negated) {
    if (tense == Tense::Past) words.push_back("did not");
    else if (tense == Tense::Future) words.push_back("will not");
    else words.push_back(subject.third_singular ? "does not" : "do not");
    words.push_back(verb.base);
  } else if (tense == Tense::Past) {
    words.push_back(verb.past);
  } else if (tense == Tense::Future) {
    words.push_back("will");
    words.push_back(verb.base);
  } else {
    words.push_back(subject.third_singular ? verb.third_singular : verb.base);
  }
  const std::string noun_word = has_number ? noun.plural : noun.singular;
  const std::string first_of_phrase = has_number ? number.english : has_adjective ? adjective.english : noun_word;
  if (!has_number) words.push_back(starts_with_vowel(first_of_phrase) ? "an" : "a");
  if (has_number) words.push_back(number.english);
  if (has_adjective) words.push_back(adjective.english);
  words.push_back(noun_word);
  if (has_time) words.push_back(time.english);

  std::string caption;
  for (const auto& w : words) caption += (caption.empty() ? "" : " ") + w;
  if (greeting) {
    caption = std::string(kGreetings[greeting_index].english) + ", " + caption;
  } else if (caption.rfind("I ", 0) != 0) {
    caption[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(caption[0])));
  }
  s.caption = caption + ".";
  return s;
}

std::string gloss_text(const Sentence& sentence) {
  std::string text;
  for (int g : sentence.glosses) text += (text.empty() ? "" : " ") + lexicon()[static_cast<size_t>(g)];
  return text;
}

}  // namespace slt::synthsign
