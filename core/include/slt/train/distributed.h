#pragma once
// Data-parallel training over LibTorch's c10d process groups (Gloo for CPU
// tensors, NCCL for CUDA ones where LibTorch has it): where this process
// stands in the job, the collectives the engine needs, and gradient averaging
// in buckets. A lost or hung rank is an error that names it, never a hang.
#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slt/errors.h"

namespace torch::nn {
class Module;
}
namespace torch::autograd {
struct Node;
}

namespace slt {

class ConfigNode;

/// Where this process stands in a data-parallel job, as torchrun or SLURM
/// say it (RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT, or
/// SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID with the first host of
/// SLURM_JOB_NODELIST), with `dist.dist_url` and `dist.dist_backend`
/// overriding the rendezvous and the backend.
struct DistributedSetup {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string backend = "gloo";  // gloo or nccl
  std::string init_method;       // tcp://host:port or file:///path
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};  // dist.timeout
  std::string source;            // "torchrun environment", "SLURM environment" or "" (one process)
  bool enabled() const { return world_size > 1; }
};

/// The setup of this process from its environment and `job`'s dist.* keys.
/// One process (world_size 1) when the environment names no job.
DistributedSetup distributed_setup(const ConfigNode& job);

/// The first host of a SLURM node list: "gpu[07-09,12],cpu3" -> "gpu07".
std::string first_slurm_host(const std::string& nodelist);

/// A collective failed because a rank is gone, hung or reported an error.
class DistributedError : public Error {
 public:
  using Error::Error;
};

/// The ranks of this job. connect() returns the group already connected while
/// one is held (a sweep's runs share it; slt-run holds it for the whole
/// command, since a new rendezvous on the same port could meet the old one).
/// Every call is collective: all ranks make the same calls in the same
/// order. A failure throws DistributedError naming the rank at fault.
///
///   auto group = ProcessGroup::connect(distributed_setup(job));
///   group->broadcast(tensors);  // rank 0's values everywhere
class ProcessGroup {
 public:
  static std::shared_ptr<ProcessGroup> connect(const DistributedSetup& setup);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  const DistributedSetup& setup() const;

  /// Rank 0's values into every rank's tensors, in place.
  void broadcast(std::vector<at::Tensor>& tensors);
  /// Element-wise sums over the ranks, in place; the tensors are started
  /// together (one c10d work each) and waited for in order.
  void all_reduce_sum(std::vector<at::Tensor>& tensors);
  /// Element-wise maxima over the ranks, in place.
  void all_reduce_max(std::vector<at::Tensor>& tensors);
  /// Starts summing `tensor` over the ranks in place and returns at once;
  /// wait_started() waits for every sum started so far.
  void start_all_reduce_sum(const at::Tensor& tensor);
  void wait_started();
  /// Every rank's `bytes`, in rank order.
  std::vector<std::string> all_gather(const std::string& bytes);
  void barrier();
  /// Tells the other ranks why this one is about to stop, so that their
  /// errors can say it (kept in the rendezvous store).
  void report_failure(const std::string& what) noexcept;

 private:
  struct State;
  explicit ProcessGroup(std::unique_ptr<State> state);
  [[noreturn]] void fail(const std::string& operation, const std::exception& cause);
  void all_reduce(std::vector<at::Tensor>& tensors, bool maximum);
  std::unique_ptr<State> state_;
};

/// Averages gradients over the ranks for an optimizer step: the module's
/// gradients are packed into buckets of about `bucket_bytes` (in reverse
/// parameter order, the order backward produces them), summed over the ranks
/// with one all-reduce each, divided by the world size and unpacked.
/// Announced with expect_final_backward(), the last backward pass of a step
/// sends each bucket as soon as its gradients are in (hooks on the
/// parameters' gradient accumulators), overlapping communication with the
/// rest of the backward pass; buckets go out in the same order on every rank.
/// Parameters without a gradient count as zeros, so every rank sends the same buckets.
///
///   averager.expect_final_backward();  // only on the step's last micro-batch
///   loss.backward();
///   averager.average();                // then clip and step
class GradientAverager {
 public:
  GradientAverager(std::shared_ptr<ProcessGroup> group, torch::nn::Module& module,
                   int64_t bucket_bytes = int64_t{25} << 20);
  ~GradientAverager();
  void expect_final_backward();
  /// Sends the buckets not sent yet, waits for all and leaves the averages in the gradients.
  void average();
  /// Seconds spent in average() so far (packing, communication, unpacking).
  double seconds() const { return seconds_; }
  size_t buckets() const { return buckets_.size(); }
  /// Buckets sent so far, and how many of them while backward was still running.
  int64_t buckets_sent() const { return sent_; }
  int64_t buckets_overlapped() const { return overlapped_; }

 private:
  void gradient_ready(size_t parameter);
  void send_ready_buckets();
  void send(size_t bucket);

  std::shared_ptr<ProcessGroup> group_;
  std::vector<at::Tensor> parameters_;
  std::vector<std::vector<size_t>> buckets_;  // indices into parameters_
  std::vector<size_t> bucket_of_;             // parameter -> bucket
  std::vector<at::Tensor> buffers_;           // one flat buffer per bucket
  std::vector<size_t> missing_;               // gradients each bucket still waits for
  size_t next_to_send_ = 0;
  bool armed_ = false;
  std::shared_ptr<GradientAverager*> self_;   // what the hooks call; reset when this goes
  // The parameters' AccumulateGrad nodes, kept alive: autograd holds them
  // weakly and would make new ones, without the hooks, for the next pass.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  double seconds_ = 0;
  int64_t sent_ = 0, overlapped_ = 0;
};

}  // namespace slt
