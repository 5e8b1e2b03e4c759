#pragma once
// Random-weight models of the reference shapes, built from scratch in a
// temporary folder (no downloads): T5 v1.1-small and the Tarrés transformer.
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "slt/runtime/components.h"
#include "slt/model/model.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/runtime/doctor.h"

namespace slt_bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The value of --only: one of `choices`, else a message and exit 2 (an
// unknown name would otherwise measure nothing and exit 0).
inline std::string only_flag(const std::string& value, std::initializer_list<const char*> choices) {
  for (const char* choice : choices)
    if (value == choice) return value;
  std::string names;
  for (const char* choice : choices) names += std::string(names.empty() ? "" : " or ") + choice;
  std::fprintf(stderr, "--only %s: expected %s\n", value.c_str(), names.c_str());
  std::exit(2);
}

// One JSON line per measurement, with what a comparison needs next to the
// time: threads, this process's large-matmul rate (measured once, here, so
// ratios between runs can be corrected for a machine's mood) and peak RSS.
inline void print_measurement(nlohmann::ordered_json line) {
  static const double gemm = slt::measure_gemm_gflops(1024);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  line["threads"] = at::get_num_threads();
  line["gemm_gflops"] = gemm;
  line["peak_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
  std::printf("%s\n", line.dump().c_str());
}

// google/t5-v1_1-small's config.json values, feature_dim 768.
inline std::shared_ptr<slt::Seq2SeqModel> t5_small(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"model_type": "t5", "d_model": 512, "d_kv": 64, "d_ff": 1024,
    "num_layers": 8, "num_decoder_layers": 8, "num_heads": 6, "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false,
    "vocab_size": 32128, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0, "layer_norm_epsilon": 1e-6})";
  slt::load_plugins(slt::plugin_search_path({}));
  slt::ConfigNode config = slt::ConfigNode::map();
  config.set("model.name_or_path", dir.string());
  config.set("model.feature_dim", 768);
  config.set("model.dropout", 0.1);
  config.set("model.from_scratch", true);
  return slt::open_model(config);
}

// configs/slt_tarres_fairseq.yaml's architecture with a 7,000-piece dictionary.
inline std::shared_ptr<slt::Seq2SeqModel> tarres(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  {
    std::ofstream dictionary(dir / "dictionary.txt");
    for (int i = 0; i < 6996; ++i) dictionary << "piece" << i << " 1\n";
  }
  slt::load_plugins(slt::plugin_search_path({}));
  slt::ConfigNode config = slt::ConfigNode::map();
  config.set("model.name_or_path", dir.string());
  config.set("model.feature_dim", 768);
  config.set("model.max_source_positions", 1024);
  config.set("model.max_target_positions", 1024);
  config.set("fairseq", true);
  return slt::open_model(config);
}

}  // namespace slt_bench
