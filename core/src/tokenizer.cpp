#include "slt/tokenizer.h"

#include "slt/errors.h"

namespace fs = std::filesystem;

namespace slt {

ConfigSchema tokenizer_schema() {
  ConfigSchema s;
  s.add_required("path", ValueType::String, "Folder (or model file) holding the tokenizer files");
  s.add("lower_case", ValueType::Bool, false, "Lower-case text before encoding (Tarrés/fairseq labels)");
  return s;
}

std::string infer_tokenizer_kind(const fs::path& folder) {
  auto has = [&](const char* name) { return fs::exists(folder / name); };
  if (has("dictionary.txt") && has("sentencepiece.model")) return "fairseq_spm";
  if (has("spiece.model") || has("sentencepiece.model") || folder.extension() == ".model") return "sentencepiece";
  if ((has("vocab.json") && has("merges.txt")) || has("tokenizer.json")) return "byte_bpe";
  throw UserError("cannot tell the tokenizer of '" + folder.string() +
                  "': expected spiece.model or sentencepiece.model (sentencepiece), vocab.json + merges.txt "
                  "or tokenizer.json (byte_bpe), or dictionary.txt + sentencepiece.model (fairseq_spm)");
}

ConfigNode tokenizer_config(const fs::path& path, bool lower_case) {
  ConfigNode config = ConfigNode::map();
  config.set("tokenizer.path", path.string());
  config.set("tokenizer.lower_case", lower_case);
  return config;
}

}  // namespace slt
