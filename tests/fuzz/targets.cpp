// The fuzz targets (fuzz_targets.h). Inputs go to a file where the parser
// takes a path, in a folder laid out as slt expects (a tokenizer folder, a
// dataset), with the other files taken from the fixtures.
#include <ATen/ATen.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>

extern "C" {
#include <libavutil/log.h>
}

#include "fuzz_targets.h"
#include "slt/config/config.h"
#include "slt/config/overrides.h"
#include "slt/data/dataset.h"
#include "slt/data/loader.h"
#include "slt/data/tokenizer.h"
#include "slt/errors.h"
#include "slt/eval/metrics.h"
#include "slt/io/tensor_io.h"
#include "slt/model/generation.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/runtime/components.h"
#include "slt/text/unicode.h"
#include "slt/video/clips.h"
#include "slt/video/reader.h"

namespace fs = std::filesystem;

namespace slt_fuzz {

namespace {

// A private scratch folder, in memory where the system has one.
const fs::path& scratch() {
  static const fs::path dir = [] {
    fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = base / ("slt-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(fs::path(fs::exists("/dev/shm") ? "/dev/shm" : fs::temp_directory_path()) /
                         ("slt-fuzz-" + std::to_string(::getpid())),
                     ignored);
    });
    return d;
  }();
  return dir;
}

fs::path write(const fs::path& path, const uint8_t* data, size_t size) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

std::string text(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

const fs::path& fixtures() {
  static const fs::path dir = std::getenv("SLT_FIXTURES_DIR") ? fs::path(std::getenv("SLT_FIXTURES_DIR"))
                                                              : fs::path(SLT_FIXTURES_DIR);
  return dir;
}

void load_plugins_once() {
  static std::once_flag once;
  std::call_once(once, [] { slt::load_plugins({SLT_BUILD_PLUGIN_DIR}); });
}

// The tiny BART tokenizer folder with `file` replaced by the input.
fs::path bart_tokenizer_with(const std::string& file, const uint8_t* data, size_t size) {
  fs::path folder = scratch() / "bart";
  if (!fs::exists(folder / "vocab.json")) {
    fs::create_directories(folder);
    for (const char* name : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "config.json",
                             "special_tokens_map.json"})
      if (fs::exists(fixtures() / "models" / "tiny_bart" / name))
        fs::copy_file(fixtures() / "models" / "tiny_bart" / name, folder / name, fs::copy_options::overwrite_existing);
  }
  fs::path copy = scratch() / "bart_case";
  fs::remove_all(copy);
  fs::copy(folder, copy);
  write(copy / file, data, size);
  return copy;
}

void tokenize_round_trip(const fs::path& folder, const std::string& kind) {
  load_plugins_once();
  auto tokenizer = slt::open_tokenizer(folder, kind);
  auto ids = tokenizer->encode("Hello world, this is a test.", true, 64);
  tokenizer->decode(ids, true);
}

void pt(const uint8_t* data, size_t size) {
  fs::path file = write(scratch() / "input.pt", data, size);
  slt::flatten_tensors(slt::load_pt(file.string()), file.string());
}

void pt_rows(const uint8_t* data, size_t size) {
  fs::path file = write(scratch() / "rows.pt", data, size);
  slt::PtTensorFile tensor(file.string());
  if (tensor.sizes().size() != 2) return;
  const int64_t rows = std::min<int64_t>(tensor.sizes()[0], 64), dim = tensor.sizes()[1];
  if (dim > (1 << 16)) return;  // what a features file holds; the file's real size bounds the read
  std::vector<float> out(static_cast<size_t>(rows * dim));
  tensor.read_rows_as_float(out.data(), rows);
}

void safetensors(const uint8_t* data, size_t size) {
  fs::path file = write(scratch() / "input.safetensors", data, size);
  slt::load_safetensors(file.string());
}

void yaml(const uint8_t* data, size_t size) {
  slt::ConfigNode node = slt::parse_yaml(text(data, size), "fuzz.yaml");
  slt::parse_yaml(node.to_yaml(), "fuzz.yaml (printed)");
}

void overrides(const uint8_t* data, size_t size) {
  std::vector<slt::Override> parsed;
  const std::string all = text(data, size);
  for (size_t start = 0; start <= all.size();) {
    size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    if (end > start) parsed.push_back(slt::parse_override(all.substr(start, end - start)));
    start = end + 1;
  }
  slt::expand_sweeps(parsed);
}

void manifest(const uint8_t* data, size_t size) {
  load_plugins_once();
  fs::path root = scratch() / "dataset";
  write(root / "manifests" / "train_features.tsv", data, size);
  fs::create_directories(root / "features" / "0");
  slt::ConfigNode job = slt::ConfigNode::map();
  job.set("data.dataset", "sign_features");
  job.set("data.num_epochs_extracted", int64_t{1});
  job.set("data.min_source_positions", int64_t{0});
  job.set("data.max_source_positions", int64_t{1024});
  job.set("data.max_target_positions", int64_t{1024});
  auto dataset = slt::open_dataset(job, root, "train");
  for (size_t i = 0; i < dataset->size(); ++i) {
    dataset->label(i);
    dataset->length(i);
  }
}

void vocab_json(const uint8_t* data, size_t size) { tokenize_round_trip(bart_tokenizer_with("vocab.json", data, size), "byte_bpe"); }
void merges(const uint8_t* data, size_t size) { tokenize_round_trip(bart_tokenizer_with("merges.txt", data, size), "byte_bpe"); }
void tokenizer_json(const uint8_t* data, size_t size) {
  fs::path folder = bart_tokenizer_with("tokenizer.json", data, size);
  fs::remove(folder / "vocab.json");  // the fast tokenizer's file alone
  fs::remove(folder / "merges.txt");
  tokenize_round_trip(folder, "byte_bpe");
}
void tokenizer_config(const uint8_t* data, size_t size) {
  tokenize_round_trip(bart_tokenizer_with("tokenizer_config.json", data, size), "byte_bpe");
}

// fairseq's dictionary.txt next to the fixture's SentencePiece model. The
// SentencePiece plugins load their library with dlmopen, which ASan's runtime
// does not follow: an ASan build reports the target as unavailable.
#if defined(__SANITIZE_ADDRESS__)
constexpr const char* kDictionaryUnavailable = "the SentencePiece plugins load their library with dlmopen, which ASan does not follow";
#else
constexpr const char* kDictionaryUnavailable = "";
#endif

void dictionary(const uint8_t* data, size_t size) {
  fs::path folder = scratch() / "fairseq";
  if (!fs::exists(folder / "sentencepiece.model")) {
    fs::create_directories(folder);
    fs::copy_file(fixtures() / "hiera" / "tarres" / "sentencepiece.model", folder / "sentencepiece.model");
  }
  write(folder / "dictionary.txt", data, size);
  tokenize_round_trip(folder, "fairseq_spm");
}

void generation_config(const uint8_t* data, size_t size) {
  fs::path folder = scratch() / "hf";
  write(folder / "config.json", data, size);
  slt::read_generation_config(folder);
}

void metrics(const uint8_t* data, size_t size) {
  // Hypothesis and reference split at the first tab; invalid UTF-8 is refused before scoring, as slt-score does.
  std::string all = text(data, size);
  size_t tab = all.find('\t');
  std::string hypothesis = all.substr(0, tab), reference = tab == std::string::npos ? "" : all.substr(tab + 1);
  if (!slt::unicode::is_valid_utf8(hypothesis) || !slt::unicode::is_valid_utf8(reference)) return;
  slt::metrics::score_corpus({hypothesis}, {reference});
}

void video(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    av_log_set_level(AV_LOG_QUIET);  // FFmpeg's own complaint about each broken input
    return true;
  }();
  (void)quiet;
  fs::path file = write(scratch() / "input.mp4", data, size);
  {
    slt::video::VideoReader reader(file, 1);
    slt::video::RgbFrame frame;
    for (int i = 0; i < 64 && reader.next(frame); ++i) {
    }
  }
  // The clip stream too: its decoding thread, and errors handed across it.
  slt::video::VideoReader reader(file, 1);
  slt::video::SamplingOptions small;
  small.num_frames = 8;
  slt::video::ClipStream stream(reader, small, 32);
  slt::video::Clip clip;
  for (int i = 0; i < 4 && stream.next(clip); ++i) {
  }
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"pt", "a torch.save file (.pt, .pth, .bin): load_pt", pt},
      {"pt_rows", "a features .pt file read row by row (PtTensorFile)", pt_rows},
      {"safetensors", "a .safetensors file", safetensors},
      {"yaml", "a YAML config file", yaml},
      {"overrides", "command-line overrides, one per line", overrides},
      {"manifest", "a dataset manifest (<split>_features.tsv)", manifest},
      {"vocab_json", "a byte-level BPE vocab.json", vocab_json},
      {"merges", "a byte-level BPE merges.txt", merges},
      {"tokenizer_json", "a fast tokenizer's tokenizer.json", tokenizer_json},
      {"tokenizer_config", "a Hugging Face tokenizer_config.json", tokenizer_config},
      {"dictionary", "a fairseq dictionary.txt", dictionary, kDictionaryUnavailable},
      {"generation_config", "a Hugging Face config.json / generation_config.json", generation_config},
      {"metrics", "a hypothesis<TAB>reference pair scored by every metric", metrics},
      {"video", "a video file for the demuxer and decoder", video},
  };
  return all;
}

const Target* find_target(const std::string& name) {
  for (const auto& t : targets())
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace slt_fuzz
