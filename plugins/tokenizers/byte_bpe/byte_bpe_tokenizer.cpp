// `byte_bpe`: GPT-2 / BART byte-level BPE with Hugging Face's slow
// BartTokenizer semantics, from vocab.json + merges.txt or a tokenizer.json.
#include <unicode/uchar.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "hf_slow.h"
#include "slt/io/files.h"
#include "slt/plugin/plugin.h"
#include "slt/data/tokenizer.h"
#include "slt/text/unicode.h"

namespace fs = std::filesystem;

namespace {

bool is_letter(char32_t c) {
  int8_t t = u_charType(static_cast<UChar32>(c));
  return t == U_UPPERCASE_LETTER || t == U_LOWERCASE_LETTER || t == U_TITLECASE_LETTER ||
         t == U_MODIFIER_LETTER || t == U_OTHER_LETTER;
}
bool is_number(char32_t c) {
  int8_t t = u_charType(static_cast<UChar32>(c));
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}
// The `regex` module's \s: Unicode White_Space.
bool is_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }

// GPT-2's pre-tokenisation regex, by hand:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::u32string> pretokenize(const std::u32string& s) {
  std::vector<std::u32string> out;
  size_t i = 0, n = s.size();
  auto run = [&](size_t from, auto pred) {
    size_t j = from;
    while (j < n && pred(s[j])) ++j;
    return j;
  };
  auto other = [](char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); };
  while (i < n) {
    if (s[i] == U'\'') {
      bool matched = false;
      for (const char32_t* suffix : {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"}) {
        std::u32string sfx(suffix);
        if (s.compare(i + 1, sfx.size(), sfx) == 0) {
          out.push_back(s.substr(i, 1 + sfx.size()));
          i += 1 + sfx.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    size_t start = i;
    size_t body = (s[i] == U' ' && i + 1 < n) ? i + 1 : i;
    if (is_letter(s[body])) {
      size_t end = run(body, is_letter);
      out.push_back(s.substr(start, end - start));
      i = end;
      continue;
    }
    if (is_number(s[body])) {
      size_t end = run(body, is_number);
      out.push_back(s.substr(start, end - start));
      i = end;
      continue;
    }
    if (other(s[body])) {
      size_t end = run(body, other);
      out.push_back(s.substr(start, end - start));
      i = end;
      continue;
    }
    // Whitespace: \s+(?!\S) leaves the last space for the next word, then \s+.
    size_t end = run(i, is_space);
    if (end < n && end - i > 1) end -= 1;
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

// GPT-2's reversible byte <-> printable code point mapping.
struct ByteMap {
  std::array<char32_t, 256> encode{};
  std::unordered_map<char32_t, uint8_t> decode;
  ByteMap() {
    std::vector<int> bs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    std::set<int> direct(bs.begin(), bs.end());
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      char32_t cp = direct.count(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      encode[b] = cp;
      decode[cp] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

// Python's bytes.decode("utf-8", errors="replace"): one U+FFFD per maximal invalid subpart.
std::string decode_utf8_replace(const std::string& bytes) {
  std::string out;
  size_t i = 0, n = bytes.size();
  auto byte = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  while (i < n) {
    unsigned char c = byte(i);
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0) {
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      unsigned char cc = byte(i + k);
      unsigned char lo = 0x80, hi = 0xBF;
      if (k == 1) {
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
      }
      if (cc < lo || cc > hi) break;
    }
    if (k == len) {
      out.append(bytes, i, len);
    } else {
      out += "\xef\xbf\xbd";
    }
    i += k;
  }
  return out;
}

class ByteBpeTokenizer : public slt::Tokenizer {
 public:
  ByteBpeTokenizer(const slt::ConfigNode& config, const slt::ComponentContext&)
      : folder_(config.require<std::string>("path")),
        lower_case_(config.require<bool>("lower_case")) {
    if (fs::exists(folder_ / "vocab.json") && fs::exists(folder_ / "merges.txt")) {
      load_vocab_and_merges();
    } else if (fs::exists(folder_ / "tokenizer.json")) {
      load_tokenizer_json();
    } else {
      throw slt::UserError("no vocab.json + merges.txt or tokenizer.json in '" + folder_.string() + "'");
    }
    slt::hf::TokenizerConfig hf = slt::hf::read_tokenizer_config(folder_);
    clean_up_ = hf.clean_up_tokenization_spaces;
    add_prefix_space_ = hf.add_prefix_space;
    auto special = [&](const char* key, const char* fallback) {
      auto it = hf.special.find(key);
      return it == hf.special.end() ? std::string(fallback) : it->second;
    };
    bos_ = id_of(special("bos_token", "<s>"));
    eos_ = id_of(special("eos_token", "</s>"));
    unk_ = id_of(special("unk_token", "<unk>"));
    pad_ = id_of(special("pad_token", "<pad>"));
    for (int64_t id : {bos_, pad_, eos_, unk_})
      if (id >= 0) added_.add({decoder_.at(id), id, false, false, true});
    std::string mask = special("mask_token", "<mask>");
    if (encoder_.count(mask)) added_.add({mask, encoder_.at(mask), true, false, true});
    for (const auto& t : hf.added_tokens) added_.add(t);
    for (const auto& t : json_added_) added_.add(t);
    vocab_size_ = std::max<int64_t>(static_cast<int64_t>(encoder_.size()), added_.max_id() + 1);
  }

  std::vector<std::string> tokenize(const std::string& raw) const override {
    std::string text = lower_case_ ? slt::hf::python_lower(raw) : raw;
    if (add_prefix_space_ && !text.empty() && !slt::unicode::is_python_space(slt::unicode::decode_utf8(text)[0]))
      text = " " + text;
    std::vector<std::string> tokens;
    for (const auto& chunk : slt::hf::split_on_added_tokens(text, added_.list())) {
      if (chunk.added_id >= 0) {
        tokens.push_back(chunk.text);
        continue;
      }
      for (const auto& word : pretokenize(slt::unicode::decode_utf8(chunk.text))) {
        std::u32string mapped;
        for (unsigned char b : slt::unicode::encode_utf8(word)) mapped += byte_map().encode[b];
        for (auto& piece : bpe(mapped)) tokens.push_back(std::move(piece));
      }
    }
    return tokens;
  }

  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens, int64_t max_length) const override {
    std::vector<int64_t> ids;
    for (const auto& token : tokenize(text)) {
      if (int64_t added = added_.id_of(token); added >= 0) {
        ids.push_back(added);
        continue;
      }
      auto it = encoder_.find(token);
      ids.push_back(it != encoder_.end() ? it->second : unk_);
    }
    int64_t room = max_length > 0 ? max_length - (add_special_tokens ? 2 : 0) : -1;
    if (room >= 0 && static_cast<int64_t>(ids.size()) > room) ids.resize(static_cast<size_t>(room));
    if (add_special_tokens) {
      ids.insert(ids.begin(), bos_);
      ids.push_back(eos_);
    }
    return ids;
  }

  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const override {
    std::string joined;
    for (int64_t id : ids) {
      if (skip_special_tokens && added_.is_special(id)) continue;
      if (const std::string* added = added_.content_of(id)) {
        joined += *added;
      } else if (auto it = decoder_.find(id); it != decoder_.end()) {
        joined += it->second;
      }
    }
    std::string bytes;
    for (char32_t c : slt::unicode::decode_utf8(joined)) {
      auto b = byte_map().decode.find(c);
      if (b != byte_map().decode.end()) bytes += static_cast<char>(b->second);
      else slt::unicode::append_utf8(bytes, c);  // not in the byte alphabet: kept as text
    }
    std::string text = decode_utf8_replace(bytes);
    return clean_up_ ? slt::hf::clean_up_tokenization(text) : text;
  }

  int64_t vocab_size() const override { return vocab_size_; }
  int64_t pad_id() const override { return pad_; }
  int64_t eos_id() const override { return eos_; }
  int64_t bos_id() const override { return bos_; }
  int64_t unk_id() const override { return unk_; }

 private:
  void load_vocab_and_merges() {
    std::ifstream vocab_in = slt::open_regular_file(folder_ / "vocab.json", "tokenizer vocabulary");
    nlohmann::json vocab;
    try {
      vocab = nlohmann::json::parse(vocab_in);
    } catch (const std::exception& e) {
      throw slt::UserError("'" + (folder_ / "vocab.json").string() + "' is not valid JSON: " + e.what());
    }
    try {
      for (const auto& [token, id] : vocab.items()) set_vocab(token, id.get<int64_t>(), (folder_ / "vocab.json").string());
    } catch (const nlohmann::json::exception& e) {
      throw slt::UserError("'" + (folder_ / "vocab.json").string() + "' must map tokens to integer ids: " + e.what());
    }
    std::ifstream merges_in = slt::open_regular_file(folder_ / "merges.txt", "tokenizer merges");
    std::string all((std::istreambuf_iterator<char>(merges_in)), {});
    // The slow tokenizer drops the first ("#version") and the last line: split("\n")[1:-1].
    std::vector<std::string> lines;
    size_t start = 0;
    while (true) {
      size_t end = all.find('\n', start);
      lines.push_back(all.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    for (size_t i = 1; i + 1 < lines.size(); ++i) add_merge(lines[i], i);
  }

  void load_tokenizer_json() {
    std::ifstream in = slt::open_regular_file(folder_ / "tokenizer.json", "tokenizer file");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw slt::UserError("'" + (folder_ / "tokenizer.json").string() + "' is not valid JSON: " + e.what());
    }
    const std::string file = (folder_ / "tokenizer.json").string();
    try {  // a value of another type or a missing key: named with the file, not an internal error
      const auto& model = j.at("model");
      if (model.value("type", "BPE") != "BPE") throw slt::UserError("'" + file + "' is not a BPE tokenizer");
      for (const auto& [token, id] : model.at("vocab").items()) set_vocab(token, id.get<int64_t>(), file);
      size_t rank = 0;
      for (const auto& merge : model.at("merges")) {
        std::string line = merge.is_string() ? merge.get<std::string>()
                                             : merge.at(0).get<std::string>() + " " + merge.at(1).get<std::string>();
        add_merge(line, rank++);
      }
      if (j.contains("added_tokens"))
        for (const auto& t : j["added_tokens"]) {
          json_added_.push_back({t.value("content", ""), t.value("id", int64_t{-1}), t.value("lstrip", false),
                                 t.value("rstrip", false), t.value("special", true)});
          slt::hf::require_token_id(json_added_.back().id, json_added_.back().content, file);
        }
    } catch (const nlohmann::json::exception& e) {
      throw slt::UserError("'" + file + "': unexpected content: " + e.what());
    }
  }

  void set_vocab(const std::string& token, int64_t id, const std::string& file) {
    slt::hf::require_token_id(id, token, file);
    encoder_[token] = id;
    decoder_[id] = token;
  }

  void add_merge(const std::string& line, size_t rank) {
    size_t space = line.find(' ');
    if (space == std::string::npos) return;
    ranks_.emplace(line, rank);
  }

  int64_t id_of(const std::string& token) const {
    auto it = encoder_.find(token);
    return it == encoder_.end() ? -1 : it->second;
  }

  // GPT-2's bpe(): merge the lowest-ranked adjacent pair until none is known.
  std::vector<std::string> bpe(const std::u32string& word) const {
    std::string key = slt::unicode::encode_utf8(word);
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto cached = cache_.find(key);
      if (cached != cache_.end()) return cached->second;
    }
    std::vector<std::string> parts;
    for (char32_t c : word) parts.push_back(slt::unicode::encode_utf8(std::u32string(1, c)));
    while (parts.size() > 1) {
      size_t best_rank = SIZE_MAX;
      std::string best_left, best_right;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = ranks_.find(parts[i] + " " + parts[i + 1]);
        if (it != ranks_.end() && it->second < best_rank) {
          best_rank = it->second;
          best_left = parts[i];
          best_right = parts[i + 1];
        }
      }
      if (best_rank == SIZE_MAX) break;
      std::vector<std::string> merged;
      for (size_t i = 0; i < parts.size();) {
        if (i + 1 < parts.size() && parts[i] == best_left && parts[i + 1] == best_right) {
          merged.push_back(best_left + best_right);
          i += 2;
        } else {
          merged.push_back(parts[i++]);
        }
      }
      parts = std::move(merged);
    }
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_.emplace(key, parts);
    return parts;
  }

  fs::path folder_;
  bool lower_case_;
  bool clean_up_ = true, add_prefix_space_ = false;
  std::unordered_map<std::string, int64_t> encoder_;
  std::unordered_map<int64_t, std::string> decoder_;
  std::unordered_map<std::string, size_t> ranks_;
  std::vector<slt::hf::AddedToken> json_added_;
  slt::hf::AddedTokens added_;
  int64_t vocab_size_ = 0, bos_ = -1, eos_ = -1, unk_ = -1, pad_ = -1;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
};

void register_components(slt::Registrar& registrar) {
  registrar.add<ByteBpeTokenizer>(slt::kinds::kTokenizer, "byte_bpe",
                                  "GPT-2/BART byte-level BPE with Hugging Face BartTokenizer semantics",
                                  slt::tokenizer_schema(), [](const slt::ClaimQuery& q) {
                                    // BartTokenizer's files, or a fast tokenizer's single file.
                                    return slt::folder_has(q.path, {"vocab.json", "merges.txt"}) ||
                                                   slt::folder_has(q.path, {"tokenizer.json"})
                                               ? 10
                                               : 0;
                                  });
}

}  // namespace

SLT_PLUGIN("byte_bpe", "1.0.0", register_components)
