#include "slt/runtime/threads.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "slt/errors.h"

namespace slt {

namespace {

// The cgroup CPU quota in CPUs (v2 cpu.max "QUOTA PERIOD", v1 cfs files); 0 when unlimited or unknown.
double cgroup_cpu_limit() {
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (v2 >> quota >> period) return quota == "max" || period <= 0 ? 0 : std::stod(quota) / period;
  std::ifstream v1_quota("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), v1_period("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double q = 0, p = 0;
  if (v1_quota >> q && v1_period >> p && q > 0 && p > 0) return q / p;
  return 0;
}

}  // namespace

int usable_cpus() {
  int cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = 1;
  try {
    if (double limit = cgroup_cpu_limit(); limit > 0) cpus = std::min(cpus, std::max(1, static_cast<int>(std::ceil(limit))));
  } catch (const std::exception&) {
    // an unreadable quota: the affinity mask alone
  }
  return cpus;
}

ThreadChoice configure_threads(std::optional<int64_t> requested) {
  ThreadChoice choice;
  if (requested) {
    if (*requested < 1 || *requested > 4096)
      throw UserError("the thread count must be from 1 to 4096, got " + std::to_string(*requested));
    choice = {static_cast<int>(*requested), "common.num_threads"};
  } else if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && std::atoi(omp) > 0) {
    choice = {std::atoi(omp), "OMP_NUM_THREADS"};
  } else {
    choice = {usable_cpus(), "usable CPUs"};
  }
  at::set_num_threads(choice.threads);
  return choice;
}

}  // namespace slt
