#pragma once
// Host code around dataset components: opening the datasets of a run, and the
// loader that orders, batches, pads and tokenises their items in the
// background (the reference's DataLoader + collator).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/data/dataset.h"
#include "slt/model/model.h"

namespace slt {

class Tokenizer;
struct FeatureStats;
class BufferPool;  // recycles batch memory (loader.cpp)

// The dataset of one folder: data.dataset, or the component claiming it,
// built from the job's `data` section with the folder, split, seed and
// debug flag in its context. Plugins must be loaded.
std::shared_ptr<FeatureDataset> open_dataset(const ConfigNode& job, const std::filesystem::path& folder,
                                             const std::string& split);
// The folders of a split as the reference's create_dataloader reads them:
// data.train_data_dirs (comma-separated) for "train", data.val_data_dir for
// "val" and "test".
std::vector<std::filesystem::path> split_data_dirs(const ConfigNode& run_config, const std::string& split);
// One dataset per folder of split_data_dirs. Plugins must be loaded.
std::vector<std::shared_ptr<FeatureDataset>> open_split_datasets(const ConfigNode& run_config, const std::string& split);

// One padded batch, as the reference collator builds it.
struct FeatureBatch {
  at::Tensor features;        // [B, T, D], zero-padded
  at::Tensor attention_mask;  // [B, T] float32, 1 = frame, 0 = padding
  at::Tensor labels;          // [B, L] int64, padded with the tokenizer's pad id
  std::vector<std::string> labels_text;  // original (not lower-cased) labels
  std::vector<int64_t> indices;          // positions in the concatenated dataset
  std::vector<std::string> feature_ids;
};

// The batch as a model takes it, on `device`.
Batch to_device(const FeatureBatch& batch, const at::Device& device);

struct LoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;    // train: random order from (seed, epoch)
  bool drop_last = false;  // train: drop the last incomplete batch
  uint64_t seed = 0;
  int num_workers = 2;     // background threads; 0 loads on the caller's thread
  int64_t max_target_length = -1;  // labels truncated to this many ids (special tokens included)
  int prefetch_batches = 0;  // 0: 2 per worker
  std::shared_ptr<const FeatureStats> normalize;  // data.feature_stats; null: features as read
  int64_t feature_dim = 0;  // model.feature_dim: the width every item must have (0: any, one per batch)
  // Data-parallel ranks, as torch's DistributedSampler: every rank orders the
  // items alike (seed, epoch) and takes positions replica, replica + replicas,
  // ...; with pad_replicas the order is first extended cyclically to a
  // multiple of replicas (training: every rank makes the same number of steps).
  int replicas = 1;
  int replica = 0;
  bool pad_replicas = false;
};

// The job's data.feature_stats, loaded; null when it names none.
std::shared_ptr<const FeatureStats> feature_normalization(const ConfigNode& job);

// Several datasets concatenated in order (data.train_data_dirs), batched with
// background prefetching so the training step does not wait on disk.
class FeatureLoader {
 public:
  FeatureLoader(std::vector<std::shared_ptr<FeatureDataset>> datasets, std::shared_ptr<const Tokenizer> tokenizer,
                LoaderOptions options);
  ~FeatureLoader();
  FeatureLoader(const FeatureLoader&) = delete;
  FeatureLoader& operator=(const FeatureLoader&) = delete;

  size_t size() const { return total_; }  // items, over all replicas
  size_t replica_size() const;              // items this replica reads an epoch
  size_t num_batches() const;
  int64_t batch_size() const { return options_.batch_size; }
  // Starts epoch `epoch` (sets it on the datasets and fixes the order),
  // skipping the first `skip_batches` batches (resuming mid-epoch).
  void start_epoch(int64_t epoch, size_t skip_batches = 0);
  // The next batch of the epoch in order; false at the end.
  bool next(FeatureBatch& batch);

  // Pads and tokenises items into a batch (the collator). Lower-casing of
  // labels, when the model wants it, is the tokenizer's job (tokenizer.lower_case).
  static FeatureBatch collate(const std::vector<FeatureItem>& items, const Tokenizer* tokenizer,
                              int64_t max_target_length);

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::function<FeatureBatch(size_t)> build_inline_;  // num_workers == 0
  std::shared_ptr<BufferPool> pool_;
  std::vector<std::shared_ptr<FeatureDataset>> datasets_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  LoaderOptions options_;
  size_t total_ = 0;
};

}  // namespace slt
