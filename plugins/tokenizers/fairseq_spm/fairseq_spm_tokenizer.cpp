// `fairseq_spm`: fairseq's Dictionary over SentencePiece pieces, as the
// reference's FairseqTokenizer (Tarrés model): dictionary.txt + sentencepiece.model.
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "hf_slow.h"
#include "slt/io/files.h"
#include "slt/plugin/plugin.h"
#include "slt/data/tokenizer.h"
#include "spm_client.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kUnderline = "\xe2\x96\x81";

class FairseqSpmTokenizer : public slt::Tokenizer {
 public:
  FairseqSpmTokenizer(const slt::ConfigNode& config, const slt::ComponentContext&)
      : folder_(config.require<std::string>("path")),
        lower_case_(config.require<bool>("lower_case")),
        spm_((folder_ / "sentencepiece.model").string()) {
    // fairseq's Dictionary: four specials first, then the file's symbols in order.
    for (const char* special : {"<s>", "<pad>", "</s>", "<unk>"}) add_symbol(special);
    fs::path dictionary = folder_ / "dictionary.txt";
    std::ifstream in = slt::open_regular_file(dictionary, "fairseq dictionary");
    std::string line;
    size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) line.pop_back();
      size_t space = line.rfind(' ');
      std::string word = space == std::string::npos ? "" : line.substr(0, space);
      std::string field = space == std::string::npos ? "" : line.substr(space + 1);
      bool overwrite = false;
      if (field == "#fairseq:overwrite") {
        overwrite = true;
        space = word.rfind(' ');
        field = space == std::string::npos ? "" : word.substr(space + 1);
        word = space == std::string::npos ? "" : word.substr(0, space);
      }
      bool numeric = !field.empty() && field.find_first_not_of("0123456789") == std::string::npos;
      if (word.empty() || !numeric)
        throw slt::UserError(dictionary.string() + ":" + std::to_string(number) +
                             ": expected '<token> <count> [#fairseq:overwrite]', got \"" + line + "\"");
      if (index_.count(word) && !overwrite)
        throw slt::UserError(dictionary.string() + ":" + std::to_string(number) + ": duplicate word '" + word +
                             "' (mark it #fairseq:overwrite if intended)");
      if (!index_.count(word)) add_symbol(word);
    }
  }

  std::vector<std::string> tokenize(const std::string& raw) const override {
    std::string text = lower_case_ ? slt::hf::python_lower(raw) : raw;
    std::vector<std::string> pieces;
    for (auto& piece : spm_.encode(text)) pieces.push_back(std::move(piece.text));
    return pieces;
  }

  // Dictionary.encode_line(" ".join(pieces), append_eos=True): unknown pieces map to <unk>.
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens, int64_t max_length) const override {
    std::vector<int64_t> ids;
    for (const auto& piece : tokenize(text)) {
      auto it = index_.find(piece);
      ids.push_back(it == index_.end() ? kUnk : it->second);
    }
    int64_t room = max_length > 0 ? max_length - (add_special_tokens ? 1 : 0) : -1;
    if (room >= 0 && static_cast<int64_t>(ids.size()) > room) ids.resize(static_cast<size_t>(room));
    if (add_special_tokens) ids.push_back(kEos);
    return ids;
  }

  // Dictionary.string (bos and eos always dropped, pad too when skipping), then
  // SentencePiece post-processing: remove spaces, turn ▁ into spaces, strip.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const override {
    std::string joined;
    bool first = true;
    for (int64_t id : ids) {
      if (id == kBos || id == kEos || (skip_special_tokens && id == kPad)) continue;
      if (!first) joined += ' ';
      first = false;
      joined += id >= 0 && id < static_cast<int64_t>(symbols_.size()) ? symbols_[id] : "<unk>";
    }
    std::string text;
    for (size_t i = 0; i < joined.size();) {
      if (joined.compare(i, 3, kUnderline) == 0) {
        text += ' ';
        i += 3;
      } else {
        if (joined[i] != ' ') text += joined[i];
        ++i;
      }
    }
    return slt::hf::strip(text);
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(symbols_.size()); }
  int64_t pad_id() const override { return kPad; }
  int64_t eos_id() const override { return kEos; }
  int64_t bos_id() const override { return kBos; }
  int64_t unk_id() const override { return kUnk; }

 private:
  static constexpr int64_t kBos = 0, kPad = 1, kEos = 2, kUnk = 3;

  void add_symbol(const std::string& word) {
    index_[word] = static_cast<int64_t>(symbols_.size());
    symbols_.push_back(word);
  }

  fs::path folder_;
  bool lower_case_;
  slt::spm::Model spm_;
  std::vector<std::string> symbols_;
  std::unordered_map<std::string, int64_t> index_;
};

void register_components(slt::Registrar& registrar) {
  registrar.add<FairseqSpmTokenizer>(slt::kinds::kTokenizer, "fairseq_spm",
                                     "fairseq Dictionary over SentencePiece pieces (Tarres et al. models)",
                                     slt::tokenizer_schema(), [](const slt::ClaimQuery& q) {
                                       // A fairseq dictionary beside the pieces: more specific than sentencepiece's claim.
                                       return slt::folder_has(q.path, {"dictionary.txt", "sentencepiece.model"}) ? 20 : 0;
                                     });
}

}  // namespace

SLT_PLUGIN("fairseq_spm", "1.0.0", register_components)
