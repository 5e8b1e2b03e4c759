#include "slt/data/dataset.h"

#include <ATen/ATen.h>

namespace slt {

FeatureItem FeatureDataset::get(size_t index) const {
  FeatureSource source = open(index);
  FeatureItem item{source.index, source.feature_id, at::empty({source.frames, source.dim}), source.label};
  source.read(item.source.data_ptr<float>());
  return item;
}

}  // namespace slt
