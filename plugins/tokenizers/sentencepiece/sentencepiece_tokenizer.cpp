// `sentencepiece`: Hugging Face's slow T5Tokenizer (legacy mode, as the
// google/t5-v1_1-* checkpoints get) over a spiece.model / sentencepiece.model.
#include <filesystem>
#include <set>
#include <unordered_map>

#include "hf_slow.h"
#include "slt/plugin/plugin.h"
#include "slt/data/tokenizer.h"
#include "spm_client.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kUnderline = "\xe2\x96\x81";  // U+2581, SentencePiece's word boundary

fs::path model_file(const fs::path& path) {
  if (fs::is_regular_file(path)) return path;
  for (const char* name : {"spiece.model", "sentencepiece.model"})
    if (fs::exists(path / name)) return path / name;
  throw slt::UserError("no spiece.model or sentencepiece.model in '" + path.string() + "'");
}

class SentencePieceTokenizer : public slt::Tokenizer {
 public:
  SentencePieceTokenizer(const slt::ConfigNode& config, const slt::ComponentContext&)
      : folder_(config.require<std::string>("path")),
        lower_case_(config.require<bool>("lower_case")),
        model_(model_file(folder_).string()) {
    fs::path dir = fs::is_directory(folder_) ? folder_ : folder_.parent_path();
    slt::hf::TokenizerConfig hf = slt::hf::read_tokenizer_config(dir);
    clean_up_ = hf.clean_up_tokenization_spaces;
    add_prefix_space_ = hf.add_prefix_space;
    sp_size_ = model_.piece_size();
    auto special = [&](const char* key, const char* fallback) {
      auto it = hf.special.find(key);
      return it == hf.special.end() ? std::string(fallback) : it->second;
    };
    eos_ = model_.piece_to_id(special("eos_token", "</s>"));
    unk_ = model_.piece_to_id(special("unk_token", "<unk>"));
    pad_ = model_.piece_to_id(special("pad_token", "<pad>"));
    for (int64_t id : {pad_, eos_, unk_})
      added_.add(slt::hf::AddedToken{model_.id_to_piece(static_cast<int32_t>(id)), id, false, false, true});
    // T5Tokenizer appends <extra_id_N> at sp_size + extra_ids - 1 - N.
    int64_t extra_ids = hf.extra_ids.value_or(100);
    for (int64_t n = 0; n < extra_ids; ++n)
      added_.add(slt::hf::AddedToken{"<extra_id_" + std::to_string(n) + ">", sp_size_ + extra_ids - 1 - n, true, true, true});
    // tokenizer_config.json knows best (flags and extra added tokens).
    for (const auto& t : hf.added_tokens) added_.add(t);
    vocab_size_ = std::max<int64_t>(sp_size_, added_.max_id() + 1);
  }

  std::vector<std::string> tokenize(const std::string& raw) const override {
    std::string text = lower_case_ ? slt::hf::python_lower(raw) : raw;
    std::vector<std::string> tokens;
    for (const auto& chunk : slt::hf::split_on_added_tokens(text, added_.list())) {
      if (chunk.added_id >= 0) {
        tokens.push_back(chunk.text);
        continue;
      }
      for (auto& piece : model_.encode(chunk.text)) tokens.push_back(std::move(piece.text));
    }
    return tokens;
  }

  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens, int64_t max_length) const override {
    std::vector<int64_t> ids;
    for (const auto& token : tokenize(text)) {
      int64_t added = added_.id_of(token);
      ids.push_back(added >= 0 ? added : model_.piece_to_id(token));
    }
    int64_t room = max_length > 0 ? max_length - (add_special_tokens ? 1 : 0) : -1;
    if (room >= 0 && static_cast<int64_t>(ids.size()) > room) ids.resize(static_cast<size_t>(room));
    if (add_special_tokens && (ids.empty() || ids.back() != eos_)) ids.push_back(eos_);
    return ids;
  }

  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const override {
    std::vector<std::string> sub_texts, current;
    auto flush = [&] {
      if (current.empty()) return;
      std::string s = tokens_to_string(current);
      if (!s.empty()) sub_texts.push_back(s);
      current.clear();
    };
    for (int64_t id : ids) {
      if (skip_special_tokens && added_.is_special(id)) continue;
      const std::string* added = added_.content_of(id);
      std::string token = added ? *added : id < sp_size_ ? model_.id_to_piece(static_cast<int32_t>(id)) : "";
      // Extra ids lie beyond the SentencePiece vocabulary: HF decodes them on their own.
      if (id >= sp_size_ && added) {
        flush();
        sub_texts.push_back(token);
      } else {
        current.push_back(token);
      }
    }
    if (!current.empty()) sub_texts.push_back(tokens_to_string(current));
    std::string text;
    for (size_t i = 0; i < sub_texts.size(); ++i) text += (i ? " " : "") + sub_texts[i];
    return clean_up_ ? slt::hf::clean_up_tokenization(text) : text;
  }

  int64_t vocab_size() const override { return vocab_size_; }
  int64_t pad_id() const override { return pad_; }
  int64_t eos_id() const override { return eos_; }
  int64_t bos_id() const override { return -1; }
  int64_t unk_id() const override { return unk_; }

 private:
  // T5Tokenizer.convert_tokens_to_string: special tokens verbatim, the rest through SentencePiece.
  std::string tokens_to_string(std::vector<std::string> tokens) const {
    if (add_prefix_space_ && !tokens.empty() && tokens[0].rfind(kUnderline, 0) == 0)
      tokens[0] = tokens[0].substr(std::string(kUnderline).size());
    std::string out;
    std::vector<std::string> current;
    bool previous_special = false;
    for (const auto& token : tokens) {
      if (added_.is_special_content(token)) {
        if (!previous_special) out += " ";
        out += model_.decode_pieces(current) + token;
        previous_special = true;
        current.clear();
      } else {
        current.push_back(token);
        previous_special = false;
      }
    }
    out += model_.decode_pieces(current);
    return slt::hf::strip(out);
  }

  fs::path folder_;
  bool lower_case_;
  slt::spm::Model model_;
  bool clean_up_ = true;
  bool add_prefix_space_ = false;
  int64_t sp_size_ = 0, vocab_size_ = 0, eos_ = -1, unk_ = -1, pad_ = -1;
  slt::hf::AddedTokens added_;
};

void register_components(slt::Registrar& registrar) {
  registrar.add<SentencePieceTokenizer>(slt::kinds::kTokenizer, "sentencepiece",
                                        "SentencePiece model with Hugging Face T5Tokenizer semantics",
                                        slt::tokenizer_schema(), [](const slt::ClaimQuery& q) {
                                          bool bare_model = q.path.extension() == ".model";  // a bare SentencePiece model file
                                          return bare_model || slt::folder_has(q.path, {"spiece.model"}) ||
                                                         slt::folder_has(q.path, {"sentencepiece.model"})
                                                     ? 10
                                                     : 0;
                                        });
}

}  // namespace

SLT_PLUGIN("sentencepiece", "1.0.0", register_components)
