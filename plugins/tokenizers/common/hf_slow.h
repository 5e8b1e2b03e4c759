#pragma once
// Pieces of Hugging Face's slow (Python) tokenizers shared by the
// sentencepiece (T5Tokenizer) and byte_bpe (BartTokenizer) plugins: added
// tokens and how text is split around them, clean_up_tokenization, and the
// tokenizer_config.json facts.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <string>
#include <vector>

namespace slt::hf {

struct AddedToken {
  std::string content;
  int64_t id = -1;
  bool lstrip = false;  // swallow whitespace on the left when splitting
  bool rstrip = false;  // ... and on the right
  bool special = true;
};

// The added tokens of a tokenizer, by content and by id; adding a token with
// an id already present replaces it (tokenizer_config.json refines defaults).
class AddedTokens {
 public:
  void add(const AddedToken& token);
  const std::vector<AddedToken>& list() const { return tokens_; }
  // -1 when `content` is not an added token.
  int64_t id_of(const std::string& content) const;
  // nullptr when `id` is not an added token.
  const std::string* content_of(int64_t id) const;
  bool is_special(int64_t id) const { return special_ids_.count(id) > 0; }
  bool is_special_content(const std::string& content) const;
  int64_t max_id() const;

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, int64_t> by_content_;
  std::unordered_map<int64_t, std::string> by_id_;
  std::set<int64_t> special_ids_;
};

// A chunk of input text: either an added token (id >= 0) or plain text.
struct Chunk {
  std::string text;
  int64_t added_id = -1;
};

// PreTrainedTokenizer.tokenize's split: longest added token first at the
// earliest position, whitespace stripped next to lstrip/rstrip tokens, empty
// chunks dropped.
std::vector<Chunk> split_on_added_tokens(const std::string& text, const std::vector<AddedToken>& added);

// PreTrainedTokenizerBase.clean_up_tokenization.
std::string clean_up_tokenization(std::string text);

// Python's str.strip().
std::string strip(const std::string& text);

// Python's str.lower() (Unicode case mapping, as the reference applies to labels).
std::string python_lower(const std::string& text);

// tokenizer_config.json (missing file: empty config).
constexpr int64_t kMaxExtraIds = 100000;
// Token ids read from tokenizer files are at most this (the largest real
// vocabularies have ~10^6 entries); a larger id would size the model's embeddings.
constexpr int64_t kMaxTokenId = 10000000;
// UserError naming `file` unless 0 <= id <= kMaxTokenId.
void require_token_id(int64_t id, const std::string& token, const std::string& file);

struct TokenizerConfig {
  std::vector<AddedToken> added_tokens;  // from added_tokens_decoder, in id order
  std::map<std::string, std::string> special;  // "eos_token" -> "</s>", ...
  std::vector<std::string> additional_special_tokens;
  bool clean_up_tokenization_spaces = true;
  bool add_prefix_space = false;
  std::optional<int64_t> extra_ids;  // at most kMaxExtraIds
  bool found = false;
};
TokenizerConfig read_tokenizer_config(const std::filesystem::path& folder);

}  // namespace slt::hf
