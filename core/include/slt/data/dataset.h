#pragma once
// The interface of `dataset` components (what a dataset plugin implements).
//
// A dataset yields items of [frames, dim] float features with a label; where
// the features come from (.pt files, decoded video, ...) is its own business:
// it hands the loader a FeatureSource that knows its shape and how to read
// itself. Ordering, batching and collation are host code (data/loader.h).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/plugin/registry.h"
#include "slt/config/schema.h"

namespace slt {


// An opened item: shape known, data not read yet, so that the loader can
// size the padded batch first and read every item straight into its row.
struct FeatureSource {
  int64_t index = 0;       // position in the dataset (after a replacement: the replacement's)
  std::string feature_id;  // file name without extension
  std::string label;
  int64_t frames = 0;      // rows to read (already truncated to data.max_source_positions)
  int64_t dim = 0;
  std::string origin;      // where the values come from (a file path), for messages; may be empty
  // Writes frames x dim float32 values to `destination` (thread-safe).
  std::function<void(float* destination)> read;
};

struct FeatureItem {
  int64_t index = 0;       // position in the dataset (after a replacement: the replacement's)
  std::string feature_id;  // file name without extension
  at::Tensor source;       // [T, D] float32, T <= data.max_source_positions
  std::string label;
};

/// NaN or infinite features turn into a NaN loss or an empty translation far
/// from their cause: UserError naming `source` and the first such value's frame
/// and dimension. `values` holds `frames` rows of `dim` floats.
void require_finite_features(const float* values, int64_t frames, int64_t dim, const std::string& source);

class FeatureDataset : public Component {
 public:
  virtual size_t size() const = 0;
  // Thread-safe. In train/val a missing or corrupt file is logged and replaced
  // by a random other item (up to 10 tries); in test it throws naming the file.
  virtual FeatureSource open(size_t index) const = 0;
  // open() and read() into a fresh [frames, dim] float32 tensor.
  FeatureItem get(size_t index) const;
  virtual const std::string& label(size_t index) const = 0;
  virtual int64_t length(size_t index) const = 0;  // the manifest's length column
  // Selects the features of a training epoch (extracted datasets: features/<epoch % N>/).
  virtual void set_epoch(int64_t epoch) = 0;
  virtual const std::string& split() const = 0;
};

}  // namespace slt
