#pragma once
// The interface of `tokenizer` components: text <-> token ids exactly as the
// reference's Hugging Face / fairseq tokenizers do.
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/plugin/registry.h"
#include "slt/config/schema.h"

namespace slt {

class Tokenizer : public Component {
 public:
  // Sub-word pieces of `text`, without special tokens (HF `tokenize`).
  virtual std::vector<std::string> tokenize(const std::string& text) const = 0;
  // Ids as the training collator builds labels: special tokens added, then
  // truncated to `max_length` (special tokens included) when max_length > 0.
  virtual std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = true,
                                      int64_t max_length = -1) const = 0;
  // Text of `ids` (HF `decode`; `skip_special_tokens` as in batch_decode).
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const = 0;

  virtual int64_t vocab_size() const = 0;  // len(tokenizer): ids are < vocab_size()
  virtual int64_t pad_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t bos_id() const = 0;  // -1 when the tokenizer has none
  virtual int64_t unk_id() const = 0;
};

// The keys every tokenizer component reads from its `tokenizer` config section.
ConfigSchema tokenizer_schema();

// The section a tokenizer component receives: {path, lower_case}.
ConfigNode tokenizer_config(const std::filesystem::path& path, bool lower_case = false);

// True when `folder` holds every one of `files` (for tokenizers' claims).
bool folder_has(const std::filesystem::path& folder, std::initializer_list<const char*> files);

}  // namespace slt
