#include "slt/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "slt/errors.h"
#include "slt/io/event_log.h"

namespace fs = std::filesystem;

namespace slt {

double resident_memory_gib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0 * 1024.0);
}

ProgressBar::ProgressBar() : enabled_(::isatty(STDERR_FILENO) == 1) {}

void ProgressBar::start(int64_t epoch, int64_t total, int64_t done) {
  epoch_ = epoch;
  total_ = total;
  first_ = done;
  started_ = std::chrono::steady_clock::now();
}

void ProgressBar::update(int64_t done, double loss) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - started_).count();
  double rate = done > first_ ? (done - first_) / std::max(elapsed, 1e-9) : 0;
  int64_t eta = rate > 0 ? static_cast<int64_t>((total_ - done) / rate) : 0;
  constexpr int kWidth = 30;
  int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::fprintf(stderr, "\r\033[Kepoch %lld [%s] %lld/%lld ETA %02lld:%02lld:%02lld loss %.4f",
               static_cast<long long>(epoch_), bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), static_cast<long long>(eta / 3600),
               static_cast<long long>(eta / 60 % 60), static_cast<long long>(eta % 60), loss);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

MetricsSink::MetricsSink(const fs::path& dir, uint64_t keep_bytes, int64_t resume_step)
    : jsonl_path_(dir / "metrics.jsonl") {
  std::error_code ec;
  if (fs::exists(jsonl_path_, ec)) fs::resize_file(jsonl_path_, std::min<uint64_t>(keep_bytes, fs::file_size(jsonl_path_)));
  jsonl_ = std::fopen(jsonl_path_.c_str(), "ab");
  if (!jsonl_) throw Error("cannot write '" + jsonl_path_.string() + "'");
  events_ = std::make_unique<EventLog>(dir / "tb");
  if (resume_step > 0) events_->session_start(resume_step);
}

MetricsSink::~MetricsSink() {
  if (jsonl_) std::fclose(jsonl_);
}

void MetricsSink::scalars(const std::string& prefix, const nlohmann::ordered_json& values, int64_t step) {
  for (const auto& [key, value] : values.items())
    if (value.is_number()) events_->add_scalar(prefix + "/" + key, value.get<double>(), step);
  events_->flush();
}

void MetricsSink::record(const nlohmann::ordered_json& line) {
  std::string text = line.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), jsonl_);
  std::fflush(jsonl_);
}

uint64_t MetricsSink::jsonl_bytes() const {
  std::error_code ec;
  auto size = fs::file_size(jsonl_path_, ec);
  return ec ? 0 : size;
}

}  // namespace slt
