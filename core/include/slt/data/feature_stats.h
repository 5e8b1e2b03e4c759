#pragma once
// Global mean and variance normalisation of input features (fairseq
// speech_to_text's "global CMVN"): x' = (x - mean) / std per dimension, with
// the training set's statistics. Features whose scale or common offset dwarfs
// what varies between frames (a randomly initialised extractor's, say) train
// far better normalised. Chosen with data.feature_stats=PATH; the statistics
// come from `slt-data feature-stats`.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace slt {

struct FeatureStats {
  std::vector<float> mean, std;

  /// Reads {"mean": [D], "std": [D]} (float tensors) from a .pt file.
  static FeatureStats load(const std::filesystem::path& path);
  void save(const std::filesystem::path& path) const;

  int64_t dim() const { return static_cast<int64_t>(mean.size()); }
  /// Normalises `frames` rows of `dim` floats in place; `what` names them in
  /// the error when the dimension differs.
  void apply(float* rows, int64_t frames, int64_t dim, const std::string& what) const;
  /// The same for a [frames, dim] float tensor (a copy).
  at::Tensor apply(const at::Tensor& features, const std::string& what) const;
};

/// Accumulates per-dimension mean and std over every frame of the files
/// (float64 sums; std with the population formula, floored at 1e-5).
FeatureStats compute_feature_stats(const std::vector<std::filesystem::path>& files);

}  // namespace slt
