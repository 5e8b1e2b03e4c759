#include "hf_slow.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unicode/uchar.h>

#include "slt/io/files.h"
#include "slt/errors.h"
#include "slt/text/unicode.h"

namespace slt::hf {

namespace {

std::string lstrip_text(const std::string& s) {
  std::u32string u = unicode::decode_utf8(s);
  size_t a = 0;
  while (a < u.size() && unicode::is_python_space(u[a])) ++a;
  return unicode::encode_utf8(u.substr(a));
}

std::string rstrip_text(const std::string& s) {
  std::u32string u = unicode::decode_utf8(s);
  size_t b = u.size();
  while (b > 0 && unicode::is_python_space(u[b - 1])) --b;
  return unicode::encode_utf8(u.substr(0, b));
}

}  // namespace

std::string strip(const std::string& text) { return lstrip_text(rstrip_text(text)); }

std::string python_lower(const std::string& text) {
  std::string out;
  for (char32_t c : unicode::decode_utf8(text)) {
    if (c == 0x130) {  // İ lowers to i + combining dot above (full case mapping)
      out += "i\xcc\x87";
      continue;
    }
    unicode::append_utf8(out, static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
  }
  return out;
}

void AddedTokens::add(const AddedToken& token) {
  for (auto& existing : tokens_) {
    if (existing.id == token.id) {
      by_content_.erase(existing.content);
      existing = token;
      by_content_[token.content] = token.id;
      by_id_[token.id] = token.content;
      if (token.special) special_ids_.insert(token.id);
      return;
    }
  }
  tokens_.push_back(token);
  by_content_[token.content] = token.id;
  by_id_[token.id] = token.content;
  if (token.special) special_ids_.insert(token.id);
}

int64_t AddedTokens::id_of(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? -1 : it->second;
}

const std::string* AddedTokens::content_of(int64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

bool AddedTokens::is_special_content(const std::string& content) const {
  int64_t id = id_of(content);
  return id >= 0 && is_special(id);
}

void require_token_id(int64_t id, const std::string& token, const std::string& file) {
  if (id < 0 || id > kMaxTokenId)
    throw UserError("'" + file + "': token '" + token + "' has id " + std::to_string(id) + ", expected 0 to " +
                    std::to_string(kMaxTokenId));
}

int64_t AddedTokens::max_id() const {
  int64_t m = -1;
  for (const auto& t : tokens_) m = std::max(m, t.id);
  return m;
}

std::vector<Chunk> split_on_added_tokens(const std::string& text, const std::vector<AddedToken>& added) {
  std::vector<Chunk> chunks;
  std::vector<const AddedToken*> matched;  // per chunk, nullptr for text
  size_t pos = 0, start = 0;
  while (pos < text.size()) {
    const AddedToken* best = nullptr;
    for (const auto& token : added) {
      if (token.content.empty() || text.compare(pos, token.content.size(), token.content) != 0) continue;
      if (!best || token.content.size() > best->content.size()) best = &token;
    }
    if (!best) {
      ++pos;
      continue;
    }
    chunks.push_back({text.substr(start, pos - start), -1});
    matched.push_back(nullptr);
    chunks.push_back({best->content, best->id});
    matched.push_back(best);
    pos += best->content.size();
    start = pos;
  }
  chunks.push_back({text.substr(start), -1});
  matched.push_back(nullptr);
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!matched[i]) continue;
    if (matched[i]->rstrip && i + 1 < chunks.size()) chunks[i + 1].text = lstrip_text(chunks[i + 1].text);
    if (matched[i]->lstrip && i > 0) chunks[i - 1].text = rstrip_text(chunks[i - 1].text);
  }
  std::vector<Chunk> out;
  for (auto& c : chunks)
    if (!c.text.empty()) out.push_back(std::move(c));
  return out;
}

std::string clean_up_tokenization(std::string text) {
  auto replace_all = [&](const std::string& from, const std::string& to) {
    size_t pos = 0;
    while ((pos = text.find(from, pos)) != std::string::npos) {
      text.replace(pos, from.size(), to);
      pos += to.size();
    }
  };
  replace_all(" .", ".");
  replace_all(" ?", "?");
  replace_all(" !", "!");
  replace_all(" ,", ",");
  replace_all(" ' ", "'");
  replace_all(" n't", "n't");
  replace_all(" 'm", "'m");
  replace_all(" 's", "'s");
  replace_all(" 've", "'ve");
  replace_all(" 're", "'re");
  return text;
}

TokenizerConfig read_tokenizer_config(const std::filesystem::path& folder) {
  TokenizerConfig config;
  auto path = folder / "tokenizer_config.json";
  if (!std::filesystem::exists(path)) return config;
  std::ifstream in = open_regular_file(path, "tokenizer config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw UserError("'" + path.string() + "' is not valid JSON: " + e.what());
  }
  // Any value of an unexpected type (a number for a token, a non-numeric id) is named with the file.
  try {
    config.found = true;
    if (j.contains("added_tokens_decoder")) {
      for (const auto& [id, token] : j["added_tokens_decoder"].items()) {
        AddedToken t;
        t.id = std::stoll(id);
        t.content = token.value("content", "");
        require_token_id(t.id, t.content, path.string());
        t.lstrip = token.value("lstrip", false);
        t.rstrip = token.value("rstrip", false);
        t.special = token.value("special", true);
        config.added_tokens.push_back(t);
      }
      std::sort(config.added_tokens.begin(), config.added_tokens.end(),
                [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
    }
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      config.special[key] = j[key].is_string() ? j[key].get<std::string>() : j[key].value("content", "");
    }
    if (j.contains("additional_special_tokens") && j["additional_special_tokens"].is_array())
      for (const auto& t : j["additional_special_tokens"])
        config.additional_special_tokens.push_back(t.is_string() ? t.get<std::string>() : t.value("content", ""));
    config.clean_up_tokenization_spaces = j.value("clean_up_tokenization_spaces", true);
    config.add_prefix_space = j.value("add_prefix_space", false);
    if (j.contains("extra_ids") && j["extra_ids"].is_number_integer()) {
      config.extra_ids = j["extra_ids"].get<int64_t>();
      // T5 has 100; each one is a vocabulary entry, so an absurd count would take the memory and time of as many.
      if (*config.extra_ids < 0 || *config.extra_ids > kMaxExtraIds)
        throw UserError("'" + path.string() + "': extra_ids is " + std::to_string(*config.extra_ids) +
                        ", expected 0 to " + std::to_string(kMaxExtraIds));
    }
  } catch (const nlohmann::json::exception& e) {
    throw UserError("'" + path.string() + "': unexpected content: " + e.what());
  } catch (const std::logic_error&) {  // std::stoll of a non-numeric or huge id
    throw UserError("'" + path.string() + "': added_tokens_decoder has a key that is not a token id");
  }
  return config;
}

}  // namespace slt::hf
