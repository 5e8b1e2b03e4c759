#include "slt/train/distributed.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>

#include <atomic>
#include <filesystem>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

#include "slt/config/config.h"
#include "slt/text/text.h"

namespace slt {

namespace {

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

int environment_int(const char* name, int minimum, int maximum) {
  auto text = environment(name);
  if (!text) throw UserError(std::string("the environment variable ") + name + " is not set");
  try {
    size_t used = 0;
    long value = std::stol(*text, &used);
    if (used == text->size() && value >= minimum && value <= maximum) return static_cast<int>(value);
  } catch (const std::exception&) {
  }
  throw UserError(std::string("the environment variable ") + name + "='" + *text + "' is not a whole number in " +
                  std::to_string(minimum) + ".." + std::to_string(maximum));
}

std::string tcp_url(const std::string& host, const std::string& port) { return "tcp://" + host + ":" + port; }

// c10d's messages carry a C++ backtrace after the first line.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // "prefix[a-b,c]suffix,other": the first entry, with its first range's start.
  size_t end = 0;
  int depth = 0;
  while (end < nodelist.size() && !(nodelist[end] == ',' && depth == 0)) {
    if (nodelist[end] == '[') ++depth;
    if (nodelist[end] == ']') --depth;
    ++end;
  }
  std::string first = nodelist.substr(0, end);
  size_t open = first.find('[');
  if (open == std::string::npos) return first;
  size_t close = first.find(']', open);
  if (close == std::string::npos) throw UserError("SLURM_JOB_NODELIST='" + nodelist + "' has an unclosed '['");
  std::string range = first.substr(open + 1, close - open - 1);
  std::string start = range.substr(0, range.find_first_of(",-"));
  return first.substr(0, open) + start + first.substr(close + 1);
}

DistributedSetup distributed_setup(const ConfigNode& job) {
  DistributedSetup setup;
  std::string host, port;
  if (environment("RANK") && environment("WORLD_SIZE")) {
    setup.world_size = environment_int("WORLD_SIZE", 1, 1 << 20);
    setup.rank = environment_int("RANK", 0, setup.world_size - 1);
    setup.local_rank = environment("LOCAL_RANK") ? environment_int("LOCAL_RANK", 0, 1 << 20) : 0;
    setup.source = "torchrun environment";
    host = environment("MASTER_ADDR").value_or("");
    port = environment("MASTER_PORT").value_or("");
  } else if (environment("SLURM_PROCID") && environment("SLURM_NTASKS")) {
    setup.world_size = environment_int("SLURM_NTASKS", 1, 1 << 20);
    setup.rank = environment_int("SLURM_PROCID", 0, setup.world_size - 1);
    setup.local_rank = environment("SLURM_LOCALID") ? environment_int("SLURM_LOCALID", 0, 1 << 20) : 0;
    setup.source = "SLURM environment";
    auto nodes = environment("SLURM_JOB_NODELIST");
    if (!nodes) nodes = environment("SLURM_NODELIST");
    host = environment("MASTER_ADDR").value_or(nodes ? first_slurm_host(*nodes) : "");
    // One port per job, so that two jobs sharing a node do not meet.
    auto job_id = environment("SLURM_JOB_ID");
    port = environment("MASTER_PORT")
               .value_or(std::to_string(20000 + (job_id ? std::strtoul(job_id->c_str(), nullptr, 10) % 20000 : 0)));
  }
  if (auto url = job.get<std::string>("dist.dist_url"); url && *url != "env://") setup.init_method = *url;
  else if (!host.empty() && !port.empty()) setup.init_method = tcp_url(host, port);
  if (auto backend = job.get<std::string>("dist.dist_backend")) setup.backend = *backend;
  setup.timeout = std::chrono::seconds(job.get_or<int64_t>("dist.timeout", 1800));
  if (!setup.enabled()) return setup;
  if (setup.backend != "gloo" && setup.backend != "nccl")
    throw ConfigError("dist.dist_backend=" + setup.backend + ": slt trains over gloo (CPU tensors) or nccl (CUDA)");
  if (setup.init_method.empty())
    throw UserError("the " + setup.source + " names " + std::to_string(setup.world_size) +
                    " processes but not where they meet: set MASTER_ADDR and MASTER_PORT, or "
                    "dist.dist_url=tcp://HOST:PORT (or file:///shared/path)");
  if (setup.init_method.rfind("tcp://", 0) != 0 && setup.init_method.rfind("file://", 0) != 0)
    throw ConfigError("dist.dist_url=" + setup.init_method + ": expected tcp://HOST:PORT, file:///PATH or env://");
  return setup;
}

// ---- the process group -------------------------------------------------------

namespace {

constexpr auto kBeat = std::chrono::milliseconds(500);

std::string alive_key(int rank) { return "slt/alive/" + std::to_string(rank); }
std::string failure_key(int rank) { return "slt/failed/" + std::to_string(rank); }

std::vector<uint8_t> to_bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string from_bytes(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

struct StoreAddress {
  std::string host;
  uint16_t port = 0;
  std::string file;
};

StoreAddress parse_init_method(const std::string& url) {
  StoreAddress address;
  if (url.rfind("file://", 0) == 0) {
    address.file = url.substr(7);
    return address;
  }
  std::smatch match;
  static const std::regex tcp(R"(tcp://\[?([^\]]*)\]?:(\d+))");
  if (!std::regex_match(url, match, tcp) || std::stoul(match[2]) > 65535)
    throw ConfigError("dist.dist_url=" + url + ": expected tcp://HOST:PORT with a port up to 65535");
  address.host = match[1];
  address.port = static_cast<uint16_t>(std::stoul(match[2]));
  return address;
}

c10::intrusive_ptr<c10d::Store> open_store(const StoreAddress& address, const DistributedSetup& setup, bool server,
                                           std::chrono::milliseconds timeout) {
  if (!address.file.empty()) {
    // c10d's FileStore retries opening for 5 minutes, whatever dist.timeout says.
    const std::filesystem::path folder = std::filesystem::path(address.file).parent_path();
    std::error_code ec;
    if (!std::filesystem::is_directory(folder.empty() ? "." : folder, ec))
      throw UserError("dist.dist_url=file://" + address.file + ": the folder " + folder.string() +
                      " does not exist (the store must be on a file system every rank sees)");
    auto store = c10::make_intrusive<c10d::FileStore>(address.file, setup.world_size);
    store->setTimeout(timeout);
    return store;
  }
  c10d::TCPStoreOptions options;
  options.port = address.port;
  options.isServer = server;
  options.numWorkers = setup.world_size;
  options.waitWorkers = false;
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(address.host, options);
}

}  // namespace

struct ProcessGroup::State {
  DistributedSetup setup;
  StoreAddress address;
  c10::intrusive_ptr<c10d::Store> store;        // the rendezvous, shared with the process group
  c10::intrusive_ptr<c10d::Store> watch_store;  // the heartbeat's own connection
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::atomic<int64_t> collectives{0};
  std::vector<c10::intrusive_ptr<c10d::Work>> started;  // start_all_reduce_sum's
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread heartbeat;

  // Every kBeat: "<beat> <collectives started>", read by a rank whose collective failed.
  void beat() {
    for (int64_t n = 1;; ++n) {
      try {
        watch_store->set(alive_key(setup.rank), to_bytes(std::to_string(n) + " " + std::to_string(collectives.load())));
      } catch (const std::exception&) {
        return;  // the store is gone: the collectives will say so
      }
      std::unique_lock<std::mutex> lock(mutex);
      if (wake.wait_for(lock, kBeat, [&] { return stopping; })) return;
    }
  }

  struct Sign {
    int64_t beat = -1, collectives = -1;
  };
  // Every rank's last heartbeat; nullopt when the store cannot be reached.
  std::optional<std::vector<Sign>> signs() {
    try {
      std::vector<Sign> result(static_cast<size_t>(setup.world_size));
      for (int r = 0; r < setup.world_size; ++r) {
        if (!watch_store->check({alive_key(r)})) continue;
        std::istringstream in(from_bytes(watch_store->get(alive_key(r))));
        in >> result[r].beat >> result[r].collectives;
      }
      return result;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  std::string reported_failures() {
    std::string text;
    try {
      for (int r = 0; r < setup.world_size; ++r)
        if (r != setup.rank && watch_store->check({failure_key(r)}))
          text += "; rank " + std::to_string(r) + " reported: " + from_bytes(watch_store->get(failure_key(r)));
    } catch (const std::exception&) {
    }
    return text;
  }

  // Who is at fault: ranks whose heartbeat stopped (killed, crashed,
  // stopped), else ranks that have not reached this collective.
  std::string diagnose() {
    auto before = signs();
    std::this_thread::sleep_for(kBeat * 5);
    auto after = signs();
    std::string failures = reported_failures();
    if (!before || !after) {
      if (setup.rank != 0 && address.file.empty())
        return "rank 0 is gone (the rendezvous store it held at " + address.host + ":" + std::to_string(address.port) +
               " no longer answers)" + failures;
      return "the rendezvous store no longer answers" + failures;
    }
    std::vector<std::string> lost, behind;
    const int64_t mine = collectives.load();
    for (int r = 0; r < setup.world_size; ++r) {
      if (r == setup.rank) continue;
      if ((*after)[r].beat == (*before)[r].beat) lost.push_back(std::to_string(r));
      else if ((*after)[r].collectives < mine) behind.push_back(std::to_string(r));
    }
    if (!lost.empty())
      return (lost.size() == 1 ? "rank " : "ranks ") + join(lost, ", ") +
             (lost.size() == 1 ? " is" : " are") +
             fmt::format(" gone (no sign of life for {:.1f} s: killed, crashed or stopped)",
                         std::chrono::duration<double>(kBeat * 5).count()) +
             failures;
    if (!behind.empty())
      return (behind.size() == 1 ? "rank " : "ranks ") + join(behind, ", ") +
             " did not reach this collective within dist.timeout (busy or hung in its own work)" + failures;
    return "no rank is known to be at fault" + failures;
  }
};

ProcessGroup::ProcessGroup(std::unique_ptr<State> state) : state_(std::move(state)) {}

ProcessGroup::~ProcessGroup() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  if (state_->heartbeat.joinable()) state_->heartbeat.join();
}

std::shared_ptr<ProcessGroup> ProcessGroup::connect(const DistributedSetup& setup) {
  static std::mutex mutex;
  static std::weak_ptr<ProcessGroup> current;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto existing = current.lock()) {
    const DistributedSetup& s = existing->setup();
    if (s.rank != setup.rank || s.world_size != setup.world_size || s.init_method != setup.init_method ||
        s.backend != setup.backend)
      throw UserError("the runs of this sweep ask for different distributed setups (dist.*); one process "
                      "takes part in one process group");
    return existing;
  }
  auto state = std::make_unique<State>();
  state->setup = setup;
  state->address = parse_init_method(setup.init_method);
  spdlog::info("distributed: rank {} of {} ({}), {} over {}", setup.rank, setup.world_size,
               setup.source.empty() ? "dist.* keys" : setup.source, setup.backend, setup.init_method);
  try {
    state->store = open_store(state->address, setup, setup.rank == 0, setup.timeout);
    state->watch_store = state->address.file.empty()
                             ? open_store(state->address, setup, false, std::chrono::seconds(10))
                             : state->store;
    state->watch_store->set(alive_key(setup.rank), to_bytes("0 0"));
    if (setup.backend == "nccl") {
#ifdef USE_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = setup.timeout;
      state->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(state->store, setup.rank, setup.world_size, options);
#else
      throw UserError("dist.dist_backend=nccl: this LibTorch was built without NCCL (no CUDA); use "
                      "dist.dist_backend=gloo");
#endif
    } else {
      auto options = c10d::ProcessGroupGloo::Options::create(setup.timeout);
      if (auto interface = environment("GLOO_SOCKET_IFNAME")) {
        for (const auto& name : split(*interface, ','))
          options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      state->group = c10::make_intrusive<c10d::ProcessGroupGloo>(state->store, setup.rank, setup.world_size, options);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(setup.rank) + " could not join the process group at " +
                           setup.init_method + " within dist.timeout (" +
                           std::to_string(setup.timeout.count() / 1000) + " s): " + first_line(e.what()) +
                           " (are all " + std::to_string(setup.world_size) + " ranks started, and is the address "
                           "reachable from every node?)");
  }
  State* raw = state.get();
  state->heartbeat = std::thread([raw] { raw->beat(); });
  std::shared_ptr<ProcessGroup> group(new ProcessGroup(std::move(state)));
  current = group;
  return group;
}

int ProcessGroup::rank() const { return state_->setup.rank; }
int ProcessGroup::size() const { return state_->setup.world_size; }
const DistributedSetup& ProcessGroup::setup() const { return state_->setup; }

void ProcessGroup::fail(const std::string& operation, const std::exception& cause) {
  std::string verdict = state_->diagnose();
  throw DistributedError("distributed " + operation + " failed on rank " + std::to_string(rank()) + ": " + verdict +
                         " (c10d: " + first_line(cause.what()) + ")");
}

void ProcessGroup::broadcast(std::vector<at::Tensor>& tensors) {
  try {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& tensor : tensors) {
      ++state_->collectives;
      std::vector<at::Tensor> one{tensor};
      works.push_back(state_->group->broadcast(one));
    }
    for (auto& work : works) work->wait();
  } catch (const std::exception& e) {
    fail("broadcast", e);
  }
}

void ProcessGroup::all_reduce_sum(std::vector<at::Tensor>& tensors) { all_reduce(tensors, false); }
void ProcessGroup::all_reduce_max(std::vector<at::Tensor>& tensors) { all_reduce(tensors, true); }

void ProcessGroup::all_reduce(std::vector<at::Tensor>& tensors, bool maximum) {
  try {
    c10d::AllreduceOptions options;
    options.reduceOp = maximum ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& tensor : tensors) {
      ++state_->collectives;
      std::vector<at::Tensor> one{tensor};
      works.push_back(state_->group->allreduce(one, options));
    }
    for (auto& work : works) work->wait();
  } catch (const std::exception& e) {
    fail("all-reduce", e);
  }
}

void ProcessGroup::start_all_reduce_sum(const at::Tensor& tensor) {
  try {
    ++state_->collectives;
    std::vector<at::Tensor> one{tensor};
    state_->started.push_back(state_->group->allreduce(one));
  } catch (const std::exception& e) {
    fail("all-reduce", e);
  }
}

void ProcessGroup::wait_started() {
  auto works = std::move(state_->started);
  state_->started.clear();
  try {
    for (auto& work : works) work->wait();
  } catch (const std::exception& e) {
    fail("all-reduce", e);
  }
}

std::vector<std::string> ProcessGroup::all_gather(const std::string& bytes) {
  try {
    const auto n = static_cast<size_t>(size());
    ++state_->collectives;
    std::vector<at::Tensor> length{at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong)};
    std::vector<std::vector<at::Tensor>> lengths(1);
    for (size_t r = 0; r < n; ++r) lengths[0].push_back(at::empty({1}, at::kLong));
    state_->group->allgather(lengths, length)->wait();
    int64_t longest = 1;
    for (const auto& l : lengths[0]) longest = std::max(longest, l.item<int64_t>());
    ++state_->collectives;
    std::vector<at::Tensor> mine{at::zeros({longest}, at::kByte)};
    std::memcpy(mine[0].data_ptr(), bytes.data(), bytes.size());
    std::vector<std::vector<at::Tensor>> gathered(1);
    for (size_t r = 0; r < n; ++r) gathered[0].push_back(at::empty({longest}, at::kByte));
    state_->group->allgather(gathered, mine)->wait();
    std::vector<std::string> result;
    for (size_t r = 0; r < n; ++r)
      result.emplace_back(static_cast<const char*>(gathered[0][r].data_ptr()),
                          static_cast<size_t>(lengths[0][r].item<int64_t>()));
    return result;
  } catch (const std::exception& e) {
    fail("all-gather", e);
  }
}

void ProcessGroup::barrier() {
  try {
    ++state_->collectives;
    state_->group->barrier()->wait();
  } catch (const std::exception& e) {
    fail("barrier", e);
  }
}

void ProcessGroup::report_failure(const std::string& what) noexcept {
  try {
    state_->watch_store->set(failure_key(rank()), to_bytes(first_line(what).substr(0, 2000)));
  } catch (...) {
  }
}

// ---- gradients -----------------------------------------------------------------

namespace {

// Runs after a parameter's AccumulateGrad node has added this pass's gradient.
class GradientReadyHook : public torch::autograd::FunctionPostHook {
 public:
  GradientReadyHook(std::weak_ptr<GradientAverager*> averager, std::function<void(GradientAverager&)> ready)
      : averager_(std::move(averager)), ready_(std::move(ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto averager = averager_.lock()) ready_(**averager);
    return outputs;
  }

 private:
  std::weak_ptr<GradientAverager*> averager_;
  std::function<void(GradientAverager&)> ready_;
};

}  // namespace

GradientAverager::GradientAverager(std::shared_ptr<ProcessGroup> group, torch::nn::Module& module,
                                   int64_t bucket_bytes)
    : group_(std::move(group)), self_(std::make_shared<GradientAverager*>(this)) {
  for (const auto& p : module.parameters())
    if (p.requires_grad()) parameters_.push_back(p);
  // Reverse order: the last layers' gradients are the first ones ready.
  bucket_of_.resize(parameters_.size());
  int64_t filled = 0;
  for (size_t k = parameters_.size(); k-- > 0;) {
    const at::Tensor& p = parameters_[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool same_kind = !buckets_.empty() && parameters_[buckets_.back().front()].scalar_type() == p.scalar_type() &&
                           parameters_[buckets_.back().front()].device() == p.device();
    if (buckets_.empty() || !same_kind || filled + bytes > bucket_bytes) {
      buckets_.emplace_back();
      filled = 0;
    }
    buckets_.back().push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    filled += bytes;
  }
  for (const auto& bucket : buckets_) {
    int64_t numel = 0;
    for (size_t k : bucket) numel += parameters_[k].numel();
    buffers_.push_back(at::empty({numel}, parameters_[bucket.front()].options()));
  }
  missing_.resize(buckets_.size());
  for (size_t k = 0; k < parameters_.size(); ++k) {
    auto accumulator = torch::autograd::impl::grad_accumulator(parameters_[k]);
    if (!accumulator) continue;  // not a leaf: its bucket is sent by average()
    accumulators_.push_back(accumulator);
    accumulator->add_post_hook(std::make_unique<GradientReadyHook>(
        self_, [k](GradientAverager& averager) { averager.gradient_ready(k); }));
  }
}

GradientAverager::~GradientAverager() { self_.reset(); }

void GradientAverager::expect_final_backward() {
  armed_ = true;
  next_to_send_ = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) missing_[b] = buckets_[b].size();
}

void GradientAverager::gradient_ready(size_t parameter) {
  if (!armed_) return;  // a micro-step that only accumulates
  size_t& missing = missing_[bucket_of_[parameter]];
  if (missing > 0 && --missing == 0) send_ready_buckets();
}

// In bucket order only: every rank must start the same all-reduces in the same order.
void GradientAverager::send_ready_buckets() {
  while (next_to_send_ < buckets_.size() && missing_[next_to_send_] == 0) {
    ++overlapped_;
    send(next_to_send_++);
  }
}

void GradientAverager::send(size_t bucket) {
  auto started = std::chrono::steady_clock::now();
  int64_t offset = 0;
  for (size_t k : buckets_[bucket]) {
    const at::Tensor& p = parameters_[k];
    at::Tensor slice = buffers_[bucket].narrow(0, offset, p.numel());
    if (p.grad().defined()) slice.copy_(p.grad().reshape({-1}));
    else slice.zero_();
    offset += p.numel();
  }
  group_->start_all_reduce_sum(buffers_[bucket]);
  ++sent_;
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

void GradientAverager::average() {
  if (!armed_) expect_final_backward();
  for (; next_to_send_ < buckets_.size(); ++next_to_send_) send(next_to_send_);  // gradients that never came
  armed_ = false;
  auto started = std::chrono::steady_clock::now();
  group_->wait_started();
  const double scale = 1.0 / static_cast<double>(group_->size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    buffers_[b].mul_(scale);
    int64_t offset = 0;
    for (size_t k : buckets_[b]) {
      at::Tensor p = parameters_[k];
      at::Tensor slice = buffers_[b].narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(slice);
      else p.mutable_grad() = slice.clone();
      offset += p.numel();
    }
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace slt
