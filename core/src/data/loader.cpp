#include "slt/data/loader.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "slt/runtime/components.h"
#include "slt/errors.h"
#include "slt/io/tensor_io.h"
#include "slt/text/text.h"
#include "slt/data/feature_stats.h"
#include "slt/data/tokenizer.h"

namespace fs = std::filesystem;

namespace slt {

std::shared_ptr<FeatureDataset> open_dataset(const ConfigNode& job, const fs::path& folder, const std::string& split) {
  ComponentContext context;
  context.data_path = folder;
  context.split = split;
  context.seed = static_cast<uint64_t>(job.get_or<int64_t>("common.seed", 0));
  context.debug = job.get_or<bool>("debug", false);
  return Registry::global().create<FeatureDataset>(kinds::kDataset, choose_dataset(job, folder), job.at("data"), context);
}

std::shared_ptr<const FeatureStats> feature_normalization(const ConfigNode& job) {
  auto path = job.get<std::string>("data.feature_stats");
  if (!path || path->empty()) return nullptr;
  return std::make_shared<const FeatureStats>(FeatureStats::load(*path));
}

Batch to_device(const FeatureBatch& batch, const at::Device& device) {
  return {batch.features.to(device), batch.attention_mask.to(device), batch.labels.to(device)};
}

std::vector<fs::path> split_data_dirs(const ConfigNode& run_config, const std::string& split) {
  std::vector<fs::path> dirs;
  if (split == "train") {
    for (const auto& dir : slt::split(run_config.require<std::string>("data.train_data_dirs"), ','))
      if (!trim(dir).empty()) dirs.emplace_back(trim(dir));
  } else {
    dirs.emplace_back(run_config.require<std::string>("data.val_data_dir"));
  }
  return dirs;
}

std::vector<std::shared_ptr<FeatureDataset>> open_split_datasets(const ConfigNode& run_config, const std::string& split) {
  std::vector<std::shared_ptr<FeatureDataset>> datasets;
  for (const auto& dir : split_data_dirs(run_config, split)) datasets.push_back(open_dataset(run_config, dir, split));
  return datasets;
}

// Batch buffers are recycled: a fresh multi-megabyte allocation per batch is
// a fresh mmap (page faults, and TLB shootdowns when another thread frees it),
// which made loading three times slower than plain reads.
class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  explicit BufferPool(size_t max_free) : max_free_(max_free) {}
  ~BufferPool() {
    for (auto& [capacity, buffer] : free_) std::free(buffer);
  }

  at::Tensor tensor(const std::vector<int64_t>& shape) {
    size_t elements = 1;
    for (int64_t d : shape) elements *= static_cast<size_t>(d);
    size_t bytes = std::max<size_t>(64, elements * sizeof(float));
    void* buffer = nullptr;
    size_t capacity = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end()) {
        capacity = it->first;
        buffer = it->second;
        free_.erase(it);
      }
    }
    if (!buffer) {
      capacity = bytes + bytes / 4;  // headroom so that later, longer batches fit
      buffer = std::malloc(capacity);
      if (!buffer) throw std::bad_alloc();
    }
    auto self = shared_from_this();
    return at::from_blob(buffer, shape, [self, capacity](void* p) { self->release(p, capacity); },
                         at::TensorOptions().dtype(at::kFloat));
  }

 private:
  void release(void* buffer, size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() >= max_free_) {
      // Keep the largest buffers: they fit every batch.
      auto smallest = free_.begin();
      if (smallest->first >= capacity) {
        std::free(buffer);
        return;
      }
      std::free(smallest->second);
      free_.erase(smallest);
    }
    free_.emplace(capacity, buffer);
  }

  size_t max_free_;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
};


namespace {

std::string describe_source(const FeatureSource& source) {
  return source.origin.empty() ? "features '" + source.feature_id + "'" : "'" + source.origin + "'";
}

// The collator: rows of `frames[i] x dim` floats written by fill(i, row) into a
// zero-padded [B, T, dim] batch, a float mask, and tokenised, padded labels.
struct BatchPlan {
  std::vector<int64_t> frames;
  std::vector<std::string> labels;
  std::vector<int64_t> indices;
  std::vector<std::string> feature_ids;
  int64_t dim = 0;
};

FeatureBatch assemble(const BatchPlan& plan, const std::function<void(size_t, float*)>& fill, BufferPool* pool,
                      const Tokenizer* tokenizer, int64_t max_target_length, const FeatureStats* normalize = nullptr) {
  FeatureBatch batch;
  const size_t n = plan.frames.size();
  if (n == 0) return batch;
  const int64_t longest = *std::max_element(plan.frames.begin(), plan.frames.end());
  std::vector<int64_t> shape = {static_cast<int64_t>(n), longest, plan.dim};
  batch.features = pool ? pool->tensor(shape) : at::empty(shape);
  batch.attention_mask = at::empty({static_cast<int64_t>(n), longest});
  float* features = batch.features.data_ptr<float>();
  float* mask = batch.attention_mask.data_ptr<float>();
  std::vector<std::vector<int64_t>> ids;
  size_t longest_label = 0;
  for (size_t i = 0; i < n; ++i) {
    // Plain memory writes: ATen's parallel kernels, called from several loader
    // threads at once, would oversubscribe the OpenMP pool for tiny work.
    float* row = features + static_cast<int64_t>(i) * longest * plan.dim;
    fill(i, row);
    if (normalize) normalize->apply(row, plan.frames[i], plan.dim, plan.feature_ids[i]);
    std::memset(row + plan.frames[i] * plan.dim, 0, sizeof(float) * (longest - plan.frames[i]) * plan.dim);
    std::fill(mask + i * longest, mask + i * longest + plan.frames[i], 1.0f);
    std::fill(mask + i * longest + plan.frames[i], mask + (i + 1) * longest, 0.0f);
    if (tokenizer) {
      ids.push_back(tokenizer->encode(plan.labels[i], true, max_target_length));
      longest_label = std::max(longest_label, ids.back().size());
    }
  }
  batch.labels_text = plan.labels;
  batch.indices = plan.indices;
  batch.feature_ids = plan.feature_ids;
  if (tokenizer) {
    batch.labels = at::full({static_cast<int64_t>(n), static_cast<int64_t>(longest_label)}, tokenizer->pad_id(), at::kLong);
    auto accessor = batch.labels.accessor<int64_t, 2>();
    for (size_t i = 0; i < ids.size(); ++i)
      for (size_t j = 0; j < ids[i].size(); ++j) accessor[i][j] = ids[i][j];
  }
  return batch;
}

}  // namespace

FeatureBatch FeatureLoader::collate(const std::vector<FeatureItem>& items, const Tokenizer* tokenizer,
                                    int64_t max_target_length) {
  BatchPlan plan;
  std::vector<at::Tensor> sources;
  for (const auto& item : items) {
    sources.push_back(item.source.to(at::kFloat).contiguous().view({item.source.size(0), -1}));
    plan.frames.push_back(item.source.size(0));
    plan.dim = sources.back().size(1);
    plan.labels.push_back(item.label);
    plan.indices.push_back(item.index);
    plan.feature_ids.push_back(item.feature_id);
  }
  auto fill = [&](size_t i, float* row) {
    std::memcpy(row, sources[i].data_ptr<float>(), sizeof(float) * sources[i].numel());
  };
  return assemble(plan, fill, nullptr, tokenizer, max_target_length);
}

// Worker threads build batches ahead of the consumer, at most `capacity` ahead.
struct FeatureLoader::State {
  std::vector<std::vector<size_t>> order;  // the epoch's batches of global indices
  size_t next_to_build = 0, next_to_deliver = 0;
  std::map<size_t, FeatureBatch> ready;
  std::map<size_t, std::exception_ptr> failed;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::thread> workers;
  bool stopping = false;
};


FeatureLoader::FeatureLoader(std::vector<std::shared_ptr<FeatureDataset>> datasets,
                             std::shared_ptr<const Tokenizer> tokenizer, LoaderOptions options)
    : datasets_(std::move(datasets)), tokenizer_(std::move(tokenizer)), options_(options) {
  if (options_.batch_size < 1) throw UserError("batch size must be at least 1, got " + std::to_string(options_.batch_size));
  for (const auto& d : datasets_) total_ += d->size();
}

FeatureLoader::~FeatureLoader() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->changed.notify_all();
  for (auto& t : state_->workers) t.join();
}

size_t FeatureLoader::replica_size() const {
  const auto replicas = static_cast<size_t>(std::max(1, options_.replicas));
  const auto replica = static_cast<size_t>(options_.replica);
  if (options_.pad_replicas) return (total_ + replicas - 1) / replicas;
  return total_ / replicas + (replica < total_ % replicas ? 1 : 0);
}

size_t FeatureLoader::num_batches() const {
  size_t b = static_cast<size_t>(options_.batch_size);
  const size_t items = replica_size();
  return options_.drop_last ? items / b : (items + b - 1) / b;
}

void FeatureLoader::start_epoch(int64_t epoch, size_t skip_batches) {
  if (state_) {  // stop the previous epoch's workers
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stopping = true;
    }
    state_->changed.notify_all();
    for (auto& t : state_->workers) t.join();
  }
  state_ = std::make_unique<State>();
  for (auto& d : datasets_) d->set_epoch(epoch);
  std::vector<size_t> indices(total_);
  for (size_t i = 0; i < total_; ++i) indices[i] = i;
  if (options_.shuffle) {
    // The order depends only on (seed, epoch): a resumed run sees the same batches.
    std::mt19937_64 rng(options_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
    std::shuffle(indices.begin(), indices.end(), rng);
  }
  if (options_.replicas > 1) {
    const auto replicas = static_cast<size_t>(options_.replicas);
    if (options_.pad_replicas && total_ > 0)
      for (size_t i = 0; indices.size() % replicas != 0; ++i) indices.push_back(indices[i % total_]);
    std::vector<size_t> mine;
    for (size_t i = static_cast<size_t>(options_.replica); i < indices.size(); i += replicas) mine.push_back(indices[i]);
    indices = std::move(mine);
  }
  const size_t items = indices.size();
  size_t b = static_cast<size_t>(options_.batch_size);
  for (size_t start = 0; start < items; start += b) {
    if (start + b > items && options_.drop_last) break;
    state_->order.emplace_back(indices.begin() + start, indices.begin() + std::min(items, start + b));
  }
  state_->next_to_build = state_->next_to_deliver = std::min(skip_batches, state_->order.size());

  int workers = std::max(0, options_.num_workers);
  size_t capacity = options_.prefetch_batches > 0 ? options_.prefetch_batches : std::max(2, 2 * workers);
  if (!pool_) pool_ = std::make_shared<BufferPool>(capacity + 4);
  // Each batch reads its files straight into its rows: one copy, as a plain read.
  auto build = [this](const std::vector<size_t>& batch_indices) {
    std::vector<FeatureSource> sources;
    BatchPlan plan;
    for (size_t global : batch_indices) {
      size_t local = global;
      for (const auto& d : datasets_) {
        if (local < d->size()) {
          FeatureSource source = d->open(local);
          source.index += static_cast<int64_t>(global - local);  // back to a global position
          if (options_.feature_dim > 0 && source.dim != options_.feature_dim)
            throw UserError(describe_source(source) + " has " + std::to_string(source.dim) +
                            " values per frame, but model.feature_dim is " + std::to_string(options_.feature_dim));
          if (!sources.empty() && source.dim != plan.dim)
            throw UserError(describe_source(source) + " has " + std::to_string(source.dim) + " values per frame, " +
                            describe_source(sources.front()) + " in the same batch " + std::to_string(plan.dim));
          plan.dim = source.dim;
          plan.frames.push_back(source.frames);
          plan.labels.push_back(source.label);
          plan.indices.push_back(source.index);
          plan.feature_ids.push_back(source.feature_id);
          sources.push_back(std::move(source));
          break;
        }
        local -= d->size();
      }
    }
    return assemble(plan, [&](size_t i, float* row) {
                      sources[i].read(row);
                      const FeatureSource& source = sources[i];
                      require_finite_features(row, source.frames, source.dim,
                                              source.origin.empty() ? source.feature_id : source.origin);
                    }, pool_.get(), tokenizer_.get(),
                    options_.max_target_length, options_.normalize.get());
  };
  State* s = state_.get();
  for (int w = 0; w < workers; ++w) {
    s->workers.emplace_back([s, capacity, build] {
      while (true) {
        size_t job;
        {
          std::unique_lock<std::mutex> lock(s->mutex);
          s->changed.wait(lock, [&] {
            return s->stopping || (s->next_to_build < s->order.size() && s->next_to_build < s->next_to_deliver + capacity);
          });
          if (s->stopping) return;
          job = s->next_to_build++;
        }
        try {
          FeatureBatch batch = build(s->order[job]);
          std::lock_guard<std::mutex> lock(s->mutex);
          s->ready.emplace(job, std::move(batch));
        } catch (...) {
          std::lock_guard<std::mutex> lock(s->mutex);
          s->failed.emplace(job, std::current_exception());
        }
        s->changed.notify_all();
      }
    });
  }
  if (workers == 0) state_->next_to_build = state_->order.size();  // built on demand in next()
  build_inline_ = workers == 0 ? std::function<FeatureBatch(size_t)>([s, build](size_t job) { return build(s->order[job]); })
                               : nullptr;
}

bool FeatureLoader::next(FeatureBatch& batch) {
  if (!state_) throw Error("FeatureLoader::next called before start_epoch");
  State* s = state_.get();
  std::unique_lock<std::mutex> lock(s->mutex);
  if (s->next_to_deliver >= s->order.size()) return false;
  size_t job = s->next_to_deliver;
  if (build_inline_) {
    lock.unlock();
    batch = build_inline_(job);
    lock.lock();
    ++s->next_to_deliver;
    return true;
  }
  s->changed.wait(lock, [&] { return s->ready.count(job) || s->failed.count(job); });
  if (auto f = s->failed.find(job); f != s->failed.end()) std::rethrow_exception(f->second);
  batch = std::move(s->ready.at(job));
  s->ready.erase(job);
  ++s->next_to_deliver;
  lock.unlock();
  s->changed.notify_all();
  return true;
}

}  // namespace slt
