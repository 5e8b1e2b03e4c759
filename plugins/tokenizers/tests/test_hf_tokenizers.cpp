// Tokenizer plugins against the Hugging Face slow tokenizers' outputs
// (../shared/fixtures/models/tokenizer_cases_*.json), loaded as plugins in a
// process that has LibTorch loaded, as every slt app does.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "slt/plugin/plugin_loader.h"
#include "slt/plugin/registry.h"
#include "slt/runtime/components.h"
#include "slt/data/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::shared_ptr<slt::Tokenizer> make(const std::string& kind, const fs::path& folder) {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  return slt::open_tokenizer(folder, kind);
}

json cases(const std::string& name) {
  std::ifstream in(std::string(SLT_FIXTURES_DIR) + "/models/tokenizer_cases_" + name + ".json");
  REQUIRE(in);
  return json::parse(in);
}

std::vector<int64_t> ids(const json& j) { return j.get<std::vector<int64_t>>(); }

void check_cases(const slt::Tokenizer& tokenizer, const json& fixture) {
  CHECK(tokenizer.vocab_size() == fixture["len_tokenizer"].get<int64_t>());
  CHECK(tokenizer.pad_id() == fixture["pad_token_id"].get<int64_t>());
  CHECK(tokenizer.eos_id() == fixture["eos_token_id"].get<int64_t>());
  CHECK(tokenizer.unk_id() == fixture["unk_token_id"].get<int64_t>());
  CHECK(tokenizer.bos_id() == (fixture["bos_token_id"].is_null() ? -1 : fixture["bos_token_id"].get<int64_t>()));
  int64_t max_length = fixture["call_kwargs"]["max_length"], short_length = fixture["call_kwargs"]["short_max_length"];
  for (const auto& c : fixture["cases"]) {
    std::string text = c["text"];
    INFO("text: " << text);
    CHECK(tokenizer.tokenize(text) == c["tokens"].get<std::vector<std::string>>());
    CHECK(tokenizer.encode(text, false) == ids(c["ids_no_special"]));
    CHECK(tokenizer.encode(text, true, max_length) == ids(c["ids_target"]));
    CHECK(tokenizer.encode(text, true, short_length) == ids(c["ids_target_max8"]));
    CHECK(tokenizer.decode(ids(c["ids_target"]), true) == c["decode_skip_special"].get<std::string>());
    CHECK(tokenizer.decode(ids(c["ids_target"]), false) == c["decode_keep_special"].get<std::string>());
  }
  const auto& batch = fixture["batch_captions"];
  size_t longest = 0;
  std::vector<std::vector<int64_t>> rows;
  for (const auto& text : batch["texts"]) {
    rows.push_back(tokenizer.encode(text.get<std::string>(), true, max_length));
    longest = std::max(longest, rows.back().size());
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].resize(longest, tokenizer.pad_id());
    CHECK(rows[i] == ids(batch["input_ids"][i]));
  }
}

}  // namespace

TEST_CASE("sentencepiece reproduces T5Tokenizer on every fixture case", "[tokenizers][sentencepiece]") {
  auto tokenizer = make("sentencepiece", fs::path(SLT_FIXTURES_DIR) / "models" / "tiny_t5");
  check_cases(*tokenizer, cases("t5"));
  // Extra ids decode on their own and are dropped with skip_special_tokens.
  CHECK(tokenizer->decode({599, 1}, true).empty());
}

TEST_CASE("a missing SentencePiece model is a clear error", "[tokenizers][sentencepiece]") {
  CHECK_THROWS_WITH(make("sentencepiece", "/nonexistent/folder"), Catch::Contains("/nonexistent/folder"));
}

TEST_CASE("byte_bpe reproduces BartTokenizer on every fixture case", "[tokenizers][byte_bpe]") {
  auto tokenizer = make("byte_bpe", fs::path(SLT_FIXTURES_DIR) / "models" / "tiny_bart");
  check_cases(*tokenizer, cases("bart"));
}

TEST_CASE("byte_bpe reads the same vocabulary from a tokenizer.json", "[tokenizers][byte_bpe]") {
  fs::path source = fs::path(SLT_FIXTURES_DIR) / "models" / "tiny_bart";
  auto dir = fs::temp_directory_path() / "slt-test-tokenizer-json";
  fs::create_directories(dir);
  std::ifstream vocab_in(source / "vocab.json"), merges_in(source / "merges.txt");
  json vocab = json::parse(vocab_in);
  std::vector<std::string> merges;
  std::string line;
  std::getline(merges_in, line);  // #version
  while (std::getline(merges_in, line))
    if (!line.empty()) merges.push_back(line);
  json tokenizer_json = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  std::ofstream(dir / "tokenizer.json") << tokenizer_json.dump();
  fs::copy_file(source / "tokenizer_config.json", dir / "tokenizer_config.json", fs::copy_options::overwrite_existing);
  auto from_json = make("byte_bpe", dir);
  auto from_files = make("byte_bpe", source);
  for (const auto& c : cases("bart")["cases"]) {
    std::string text = c["text"];
    CHECK(from_json->encode(text, true, 128) == from_files->encode(text, true, 128));
  }
  fs::remove_all(dir);
}

TEST_CASE("fairseq_spm reproduces the reference FairseqTokenizer (Tarres fixtures)", "[tokenizers][fairseq_spm]") {
  fs::path folder = fs::path(SLT_FIXTURES_DIR) / "hiera" / "tarres";
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  auto tokenizer = slt::open_tokenizer(folder, "fairseq_spm", /*lower_case=*/true);
  std::ifstream in(folder / "tarres.json");
  json fixture = json::parse(in);
  CHECK(tokenizer->vocab_size() == fixture["dictionary_size"].get<int64_t>());
  CHECK(tokenizer->bos_id() == fixture["special_ids"]["bos"].get<int64_t>());
  CHECK(tokenizer->pad_id() == fixture["special_ids"]["pad"].get<int64_t>());
  CHECK(tokenizer->eos_id() == fixture["special_ids"]["eos"].get<int64_t>());
  CHECK(tokenizer->unk_id() == fixture["special_ids"]["unk"].get<int64_t>());
  for (size_t i = 0; i < fixture["labels_text"].size(); ++i) {
    std::string label = fixture["labels_text"][i];
    INFO(label);
    std::string pieces;
    for (const auto& p : tokenizer->tokenize(label)) pieces += (pieces.empty() ? "" : " ") + p;
    CHECK(pieces == fixture["labels_lowercased_spm_pieces"][i].get<std::string>());
    auto target = ids(fixture["target"][i]);
    auto encoded = tokenizer->encode(label);
    target.resize(encoded.size());  // the fixture rows are right-padded with <pad>
    CHECK(encoded == target);
  }
  for (size_t i = 0; i < fixture["generated_tokens"].size(); ++i)
    CHECK(tokenizer->decode(ids(fixture["generated_tokens"][i]), true) == fixture["decoded"][i].get<std::string>());
}
