#pragma once
// --profile in the benchmarks: wall time per LibTorch operator called from
// model code (nested operators are counted in their caller), gathered through
// RecordFunction callbacks. Code that is not an operator (slt's own kernels)
// shows as time outside any operator.
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "bench_common.h"

namespace slt_bench {

struct OperatorTimes {
  std::mutex mutex;
  std::map<std::string, std::pair<double, int64_t>> by_name;
};
inline OperatorTimes g_times;
inline thread_local int t_depth = 0;
inline thread_local std::chrono::steady_clock::time_point t_start;

inline void install_operator_timer() {
  at::addGlobalCallback(at::RecordFunctionCallback(
                            [](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
                              if (t_depth++ == 0) t_start = std::chrono::steady_clock::now();
                              return nullptr;
                            },
                            [](const at::RecordFunction& fn, at::ObserverContext*) {
                              if (--t_depth != 0) return;
                              double s = seconds_since(t_start);
                              std::lock_guard<std::mutex> lock(g_times.mutex);
                              auto& entry = g_times.by_name[fn.name()];
                              entry.first += s;
                              entry.second += 1;
                            })
                            .scopes({at::RecordScope::FUNCTION}));
}

inline void print_operator_times(double total, size_t top = 12) {
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [name, entry] : g_times.by_name) rows.emplace_back(entry.first, name);
  std::sort(rows.rbegin(), rows.rend());
  double in_operators = 0;
  for (const auto& row : rows) in_operators += row.first;
  std::printf("top operators (share of %.1f s; %.1f%% outside any operator):\n", total,
              100 * (total - in_operators) / total);
  for (size_t i = 0; i < rows.size() && i < top; ++i)
    std::printf("  %-36s %6.1f%%  %8.2f s  %lld calls\n", rows[i].second.c_str(), 100 * rows[i].first / total,
                rows[i].first, static_cast<long long>(g_times.by_name[rows[i].second].second));
}

}  // namespace slt_bench
