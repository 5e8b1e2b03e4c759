#include "slt/data/feature_stats.h"

#include <ATen/ATen.h>
#include <ATen/core/Dict.h>

#include <algorithm>
#include <cmath>

#include "slt/data/dataset.h"
#include "slt/errors.h"
#include "slt/io/tensor_io.h"

namespace slt {

namespace {

constexpr double kStdFloor = 1e-5;

std::vector<float> to_floats(const at::Tensor& t) {
  at::Tensor flat = t.to(at::kFloat).contiguous().view({-1});
  return std::vector<float>(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
}

at::Tensor to_tensor(const std::vector<float>& values) {
  return at::tensor(at::ArrayRef<float>(values.data(), values.size()), at::kFloat);
}

}  // namespace

FeatureStats FeatureStats::load(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    throw UserError("data.feature_stats='" + path.string() + "' is not a file (make it with slt-data feature-stats)");
  c10::IValue value = load_pt(path.string());
  if (!value.isGenericDict()) throw UserError("'" + path.string() + "' is not a {\"mean\", \"std\"} dict");
  auto dict = value.toGenericDict();
  if (!dict.contains("mean") || !dict.contains("std") || !dict.at("mean").isTensor() || !dict.at("std").isTensor())
    throw UserError("'" + path.string() + "' lacks the \"mean\" and \"std\" tensors");
  FeatureStats stats;
  stats.mean = to_floats(dict.at("mean").toTensor());
  stats.std = to_floats(dict.at("std").toTensor());
  if (stats.mean.size() != stats.std.size() || stats.mean.empty())
    throw UserError("'" + path.string() + "': mean and std must be non-empty and of one length");
  for (size_t d = 0; d < stats.mean.size(); ++d)
    if (!std::isfinite(stats.mean[d]) || !std::isfinite(stats.std[d]))
      throw UserError("'" + path.string() + "': mean or std of dimension " + std::to_string(d) + " is not finite");
  return stats;
}

void FeatureStats::save(const std::filesystem::path& path) const {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("mean", to_tensor(mean));
  dict.insert("std", to_tensor(std));
  save_pt(path.string(), dict);
}

void FeatureStats::apply(float* rows, int64_t frames, int64_t dim, const std::string& what) const {
  if (dim != this->dim())
    throw UserError("'" + what + "' has " + std::to_string(dim) + "-dimensional features, data.feature_stats " +
                    std::to_string(this->dim()) + "-dimensional ones");
  std::vector<float> scale(std.size());
  for (size_t d = 0; d < std.size(); ++d) scale[d] = 1.0f / std::max(std[d], static_cast<float>(kStdFloor));
  for (int64_t t = 0; t < frames; ++t) {
    float* row = rows + t * dim;
    for (int64_t d = 0; d < dim; ++d) row[d] = (row[d] - mean[static_cast<size_t>(d)]) * scale[static_cast<size_t>(d)];
  }
}

at::Tensor FeatureStats::apply(const at::Tensor& features, const std::string& what) const {
  at::Tensor out = features.to(at::kFloat).contiguous().clone();
  apply(out.data_ptr<float>(), out.size(0), out.numel() / std::max<int64_t>(1, out.size(0)), what);
  return out;
}

FeatureStats compute_feature_stats(const std::vector<std::filesystem::path>& files) {
  std::vector<double> sum, squares;
  int64_t frames = 0;
  for (const auto& file : files) {
    at::Tensor loaded = load_pt_tensor(file.string());
    if (loaded.dim() != 2) throw UserError("'" + file.string() + "' is not a [frames, dim] tensor");
    const at::Tensor as_float = loaded.to(at::kFloat).contiguous();
    require_finite_features(as_float.data_ptr<float>(), as_float.size(0), as_float.size(1), file.string());
    at::Tensor x = loaded.to(at::kDouble).contiguous();
    const int64_t dim = x.size(1);
    if (sum.empty()) sum.assign(static_cast<size_t>(dim), 0.0), squares.assign(static_cast<size_t>(dim), 0.0);
    if (static_cast<size_t>(dim) != sum.size())
      throw UserError("'" + file.string() + "' has dimension " + std::to_string(dim) + ", the files before it " +
                      std::to_string(sum.size()));
    const double* p = x.data_ptr<double>();
    for (int64_t t = 0; t < x.size(0); ++t)
      for (int64_t d = 0; d < dim; ++d) {
        const double v = p[t * dim + d];
        sum[static_cast<size_t>(d)] += v;
        squares[static_cast<size_t>(d)] += v * v;
      }
    frames += x.size(0);
  }
  if (frames == 0) throw UserError("no feature frames to compute statistics from");
  FeatureStats stats;
  for (size_t d = 0; d < sum.size(); ++d) {
    const double mean = sum[d] / static_cast<double>(frames);
    const double variance = std::max(0.0, squares[d] / static_cast<double>(frames) - mean * mean);
    stats.mean.push_back(static_cast<float>(mean));
    stats.std.push_back(static_cast<float>(std::max(std::sqrt(variance), kStdFloor)));
  }
  return stats;
}

}  // namespace slt
