#pragma once
// What the end-to-end tests share: the apps' paths, file readers, a small
// learnable dataset with its tokenizer (ToyData) and process control.
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../test_helpers.h"
#include "slt/model/model.h"

extern char** environ;

namespace engine_test {

namespace fs = std::filesystem;
using slt_test::run_command;
using slt_test::TempDir;

inline const std::string kRun = std::string(SLT_RUN_EXE) + " ";
inline const std::string kData = std::string(SLT_DATA_EXE) + " ";

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline nlohmann::ordered_json read_json(const fs::path& path) { return nlohmann::ordered_json::parse(read_file(path)); }

inline std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// 12 sentences of the fixture corpus, 4 noisy training copies each, one val
// and one test copy; 32-d features of 12 frames; a fairseq tokenizer for Tarrés.
struct ToyData {
  TempDir dir;
  fs::path data, spm;
  explicit ToyData(int dim = 32) : data(dir.path() / "data"), spm(dir.path() / "spm") {
    std::ifstream corpus(fs::path(SLT_FIXTURES_DIR) / "models" / "tokenizer_data" / "corpus.txt");
    std::ofstream sentences(dir.path() / "sentences.txt");
    std::string line;
    for (int i = 0; i < 12 && std::getline(corpus, line); ++i) sentences << line << "\n";
    sentences.close();
    auto made = run_command(kData + "synthetic --sentences " + (dir.path() / "sentences.txt").string() +
                            " --output-dir " + data.string() + " --dim " + std::to_string(dim) + " --frames 12 --train-copies 4");
    REQUIRE(made.exit_code == 0);
    auto trained = run_command(kData + "train-tokenizer --tsv-file " + (data / "manifests" / "train_features.tsv").string() +
                               " --output-dir " + spm.string() + " --vocab-size 100 --lowercase --num-threads 1");
    REQUIRE(trained.exit_code == 0);
  }
  std::string common(const fs::path& output_dir) const {
    // An empty output_dir keeps the default, ${hydra:sweep.dir}/${hydra:sweep.subdir}.
    return "data.train_data_dirs=" + data.string() + " data.val_data_dir=" + data.string() +
           (output_dir.empty() ? std::string() : " common.output_dir=" + output_dir.string()) +
           " common.device=cpu common.fp16=false common.num_workers=1 wandb.enabled=false common.eval_print_samples=false"
           " optim.warmup_epochs=2 optim.lr=0.003 optim.min_lr=0.0003 optim.train_batch_size=4 optim.val_batch_size=16 ";
  }
  // The Tarrés transformer, shrunk: 1 encoder and 1 decoder layer of width 64.
  std::string tarres(const fs::path& output_dir) const {
    return kRun + "--config-name slt_tarres_fairseq " + common(output_dir) + "model.name_or_path=" + spm.string() +
           " model.feature_dim=32 model.encoder_embed_dim=64 model.decoder_embed_dim=64 model.decoder_output_dim=64"
           " model.encoder_ffn_embed_dim=128 model.decoder_ffn_embed_dim=128 model.encoder_layers=1"
           " model.decoder_layers=1 model.num_hidden_layers=1 model.dropout=0.1 model.attention_dropout=0"
           " model.activation_dropout=0 model.classifier_dropout=0 ";
  }
  // The tiny T5 of the model fixtures (d_model 64, 2 layers, 600 pieces).
  std::string t5(const fs::path& output_dir) const {
    return kRun + "--config-name slt_t5 " + common(output_dir) + "model.name_or_path=" + SLT_FIXTURES_DIR +
           "/models/tiny_t5 model.feature_dim=32 model.dropout=0.1 model.num_beams=2 data.min_source_positions=1"
           " data.max_target_positions=40 ";
  }
};

// Starts `command` (through sh, with `environment` assignments, output
// appended to `log`) and returns its pid.
inline pid_t spawn(const std::string& command, const fs::path& log, const std::string& environment = "") {
  std::string line = environment + " exec " + command + " >>" + log.string() + " 2>&1";
  const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
  return pid;
}

// Exit code, or -signal when killed.
inline int wait_for(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// true when the process ended by itself within `seconds`.
inline bool ended_within(pid_t pid, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Two checkpoint files hold the same weights, bit for bit.
inline void check_same_weights(const fs::path& a, const fs::path& b) {
  auto wa = slt::load_checkpoint_weights(a.string());
  auto wb = slt::load_checkpoint_weights(b.string());
  REQUIRE(wa.size() == wb.size());
  for (size_t i = 0; i < wa.size(); ++i) {
    INFO(wa[i].first);
    CHECK(wa[i].first == wb[i].first);
    CHECK(at::equal(wa[i].second, wb[i].second));  // bit for bit
  }
}

}  // namespace engine_test
