#pragma once
// What a training run shows and records as it goes: a progress bar on a
// terminal, and metrics as TensorBoard events plus metrics.jsonl.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace slt {

class EventLog;

// Resident memory of this process in GiB (/proc/self/statm).
double resident_memory_gib();

// A one-line bar on a terminal (stderr); nothing otherwise, where the periodic
// log lines are the progress.
class ProgressBar {
 public:
  ProgressBar();
  void start(int64_t epoch, int64_t total, int64_t done);
  void update(int64_t done, double loss);
  // Clears the bar before a log line.
  void clear();

 private:
  bool enabled_, drawn_ = false;
  int64_t epoch_ = 0, total_ = 0, first_ = 0;
  std::chrono::steady_clock::time_point started_, last_draw_;
};

// TensorBoard events under <dir>/tb and metrics.jsonl (one JSON object a line).
class MetricsSink {
 public:
  // Opens <dir>/metrics.jsonl truncated to `keep_bytes` (what the checkpoint
  // being resumed had seen) and a new TensorBoard file under <dir>/tb.
  MetricsSink(const std::filesystem::path& dir, uint64_t keep_bytes, int64_t resume_step);
  ~MetricsSink();
  MetricsSink(const MetricsSink&) = delete;
  MetricsSink& operator=(const MetricsSink&) = delete;
  // Every number in `values` as the scalar `prefix/key` at `step`.
  void scalars(const std::string& prefix, const nlohmann::ordered_json& values, int64_t step);
  void record(const nlohmann::ordered_json& line);
  uint64_t jsonl_bytes() const;

 private:
  std::filesystem::path jsonl_path_;
  std::FILE* jsonl_ = nullptr;
  std::unique_ptr<EventLog> events_;
};

}  // namespace slt
