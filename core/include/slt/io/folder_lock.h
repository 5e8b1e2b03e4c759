#pragma once
// One writer per output folder. A run (training, evaluation, extraction shard)
// holds an advisory lock on <folder>/.slt.lock while it writes there, so a second
// process on the same folder refuses instead of interleaving checkpoints and
// logs. The kernel drops the lock when its holder exits, even by SIGKILL, so a
// lock file left by a killed process never blocks the next run.
#include <filesystem>
#include <string>

namespace slt {

class FolderLock {
 public:
  /// Locks `folder` (created if missing) for `what` (e.g. "training"). Throws
  /// UserError naming the holder's pid and command when another process has it.
  ///
  ///   FolderLock lock(run_dir, "training");  // released when `lock` goes out of scope
  FolderLock(const std::filesystem::path& folder, const std::string& what);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

  static constexpr const char* kFileName = ".slt.lock";

 private:
  int fd_ = -1;
};

}  // namespace slt
