#pragma once
// How many threads slt computes with. LibTorch's own default is the number of
// physical cores it guesses (1 on a 2-vCPU machine); slt uses every CPU the
// process may run on instead, unless told otherwise.
#include <cstdint>
#include <optional>
#include <string>

namespace slt {

/// CPUs this process may run on: its affinity mask, capped by a cgroup CPU
/// quota (a container's or a SLURM job's --cpus-per-task), at least 1.
int usable_cpus();

struct ThreadChoice {
  int threads = 1;
  std::string source;  // "common.num_threads", "OMP_NUM_THREADS" or "usable CPUs"
};

/// Sets LibTorch's intra-op threads: `requested` when given, else
/// OMP_NUM_THREADS when set, else usable_cpus(). Returns what was set and why.
///
///   auto choice = configure_threads(job.get<int64_t>("common.num_threads"));
ThreadChoice configure_threads(std::optional<int64_t> requested);

}  // namespace slt
