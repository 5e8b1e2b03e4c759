#pragma once
// SynthSign's language: a lexicon of glosses and a small grammar that produces
// a gloss sequence (what is signed) and its English caption (what is said).
// Gloss order is sign-language-like (time, topic, comment: `YESTERDAY IX-I DOG
// BIG TWO SEE`), English order differs ("I saw two big dogs yesterday."), so
// the task is translation, not transcription.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace slt::synthsign {

/// Every gloss of the lexicon, in a fixed order (its index is the gloss id the
/// renderer turns into a sign).
const std::vector<std::string>& lexicon();

struct Sentence {
  std::vector<int> glosses;  // indices into lexicon()
  std::string caption;       // English, capitalised, ending with a period
};

/// One sentence drawn from the grammar.
Sentence sample_sentence(std::mt19937_64& rng);

/// The gloss sequence as text, e.g. "YESTERDAY IX-I DOG BIG TWO SEE".
std::string gloss_text(const Sentence& sentence);

}  // namespace slt::synthsign
