#include "slt/dataset.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "slt/errors.h"
#include "slt/tokenizer.h"

namespace fs = std::filesystem;

namespace slt {

ConfigSchema dataset_schema() {
  ConfigSchema s;
  s.add_required("path", ValueType::String, "Dataset folder (with manifests/ and features/)");
  s.add("split", ValueType::String, "train", "Which manifest to read", {"train", "val", "test"});
  s.add("seed", ValueType::Int, 0, "Seed for replacing unreadable items in train/val");
  return s;
}

ConfigNode dataset_config(const ConfigNode& run_config, const fs::path& path, const std::string& split) {
  ConfigNode config = run_config;
  config.set("dataset.path", path.string());
  config.set("dataset.split", split);
  const ConfigNode* seed = run_config.at("common.seed");
  config.set("dataset.seed", seed && seed->type() == ConfigNode::Type::Int ? seed->as_int() : int64_t{0});
  return config;
}

std::string infer_dataset_kind(const ConfigNode& run_config, const fs::path& path) {
  if (const ConfigNode* kind = run_config.at("data.dataset"); kind && kind->is_string()) return kind->as_string();
  std::string name = fs::path(path).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(path).lexically_normal().parent_path().filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("youtube") != std::string::npos) return "youtube_asl";
  if (name.find("how2sign") != std::string::npos) return "how2sign";
  return "sign_features";
}

FeatureBatch FeatureLoader::collate(const std::vector<FeatureItem>& items, const Tokenizer* tokenizer,
                                    int64_t max_target_length) {
  FeatureBatch batch;
  if (items.empty()) return batch;
  int64_t longest = 0;
  for (const auto& item : items) longest = std::max(longest, item.source.size(0));
  std::vector<int64_t> shape = {static_cast<int64_t>(items.size()), longest};
  for (int64_t d = 1; d < items[0].source.dim(); ++d) shape.push_back(items[0].source.size(d));
  batch.features = at::zeros(shape, items[0].source.options());
  batch.attention_mask = at::ones({static_cast<int64_t>(items.size()), longest});
  std::vector<std::vector<int64_t>> ids;
  size_t longest_label = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    int64_t length = items[i].source.size(0);
    batch.features[static_cast<int64_t>(i)].narrow(0, 0, length).copy_(items[i].source);
    batch.attention_mask[static_cast<int64_t>(i)].narrow(0, length, longest - length).zero_();
    batch.labels_text.push_back(items[i].label);
    batch.indices.push_back(items[i].index);
    batch.feature_ids.push_back(items[i].feature_id);
    if (tokenizer) {
      ids.push_back(tokenizer->encode(items[i].label, true, max_target_length));
      longest_label = std::max(longest_label, ids.back().size());
    }
  }
  if (tokenizer) {
    batch.labels = at::full({static_cast<int64_t>(items.size()), static_cast<int64_t>(longest_label)},
                            tokenizer->pad_id(), at::kLong);
    auto accessor = batch.labels.accessor<int64_t, 2>();
    for (size_t i = 0; i < ids.size(); ++i)
      for (size_t j = 0; j < ids[i].size(); ++j) accessor[i][j] = ids[i][j];
  }
  return batch;
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

size_t FeatureLoader::num_batches() const {
  size_t b = static_cast<size_t>(options_.batch_size);
  return options_.drop_last ? total_ / b : (total_ + b - 1) / b;
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
  size_t b = static_cast<size_t>(options_.batch_size);
  for (size_t start = 0; start < total_; start += b) {
    if (start + b > total_ && options_.drop_last) break;
    state_->order.emplace_back(indices.begin() + start, indices.begin() + std::min(total_, start + b));
  }
  state_->next_to_build = state_->next_to_deliver = std::min(skip_batches, state_->order.size());

  auto build = [this](const std::vector<size_t>& batch_indices) {
    std::vector<FeatureItem> items;
    for (size_t global : batch_indices) {
      size_t local = global;
      for (const auto& d : datasets_) {
        if (local < d->size()) {
          FeatureItem item = d->get(local);
          item.index += static_cast<int64_t>(global - local);  // back to a global position
          items.push_back(std::move(item));
          break;
        }
        local -= d->size();
      }
    }
    return collate(items, tokenizer_.get(), options_.max_target_length);
  };
  int workers = std::max(0, options_.num_workers);
  size_t capacity = options_.prefetch_batches > 0 ? options_.prefetch_batches : std::max(2, 2 * workers);
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
