#pragma once
// `slt-run ... dist.world_size=N` (or --nproc N) on one machine: starts the N
// ranks of a data-parallel job itself, as torchrun does.
#include <chrono>
#include <string>
#include <vector>

namespace slt {

struct LocalRanksOptions {
  int processes = 2;
  /// How long the other ranks may take to stop by themselves once one has
  /// failed (they notice within dist.timeout) before they are terminated.
  std::chrono::seconds grace{60};
};

/// Runs this program again (with `arguments`, argv without argv[0]) as
/// `processes` ranks, each with RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT (a free port) and,
/// unless set, OMP_NUM_THREADS = usable CPUs / processes. SIGINT and SIGTERM
/// are passed on to the ranks (they save a checkpoint and stop). Returns 0
/// when every rank succeeded, else the exit status of the first rank that
/// failed (128 + N for signal N), after saying which one it was.
int run_local_ranks(const std::vector<std::string>& arguments, const LocalRanksOptions& options);

/// In a rank started by run_local_ranks: asks the kernel for SIGTERM when
/// the launcher dies (killed with SIGKILL, it can pass nothing on), so the
/// ranks save a checkpoint and stop instead of training on unattended.
void stop_with_launcher();

}  // namespace slt
