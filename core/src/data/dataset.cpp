#include "slt/data/dataset.h"

#include <ATen/ATen.h>

#include <cmath>

#include "slt/errors.h"

namespace slt {

void require_finite_features(const float* values, int64_t frames, int64_t dim, const std::string& source) {
  for (int64_t i = 0; i < frames * dim; ++i) {
    if (std::isfinite(values[i])) continue;
    throw UserError("'" + source + "': frame " + std::to_string(i / dim) + ", dimension " + std::to_string(i % dim) +
                    " is not finite (" + (std::isnan(values[i]) ? "nan" : values[i] > 0 ? "inf" : "-inf") +
                    "); re-extract that video's features or remove it from the manifest");
  }
}

FeatureItem FeatureDataset::get(size_t index) const {
  FeatureSource source = open(index);
  FeatureItem item{source.index, source.feature_id, at::empty({source.frames, source.dim}), source.label};
  source.read(item.source.data_ptr<float>());
  return item;
}

}  // namespace slt
