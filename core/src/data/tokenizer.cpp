#include "slt/data/tokenizer.h"

#include "slt/errors.h"

namespace fs = std::filesystem;

namespace slt {

ConfigSchema tokenizer_schema() {
  ConfigSchema s;
  s.add_required("path", ValueType::String, "Folder (or model file) holding the tokenizer files");
  s.add("lower_case", ValueType::Bool, false, "Lower-case text before encoding (Tarrés/fairseq labels)");
  return s;
}

bool folder_has(const fs::path& folder, std::initializer_list<const char*> files) {
  if (folder.empty()) return false;
  for (const char* file : files)
    if (!fs::exists(folder / file)) return false;
  return true;
}

ConfigNode tokenizer_config(const fs::path& path, bool lower_case) {
  ConfigNode config = ConfigNode::map();
  config.set("path", path.string());
  config.set("lower_case", lower_case);
  return config;
}

}  // namespace slt
