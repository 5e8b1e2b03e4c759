#include "slt/model/decoder_history.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "slt/model/decoding_kernels.h"

namespace slt {

namespace {

constexpr int64_t kFirstCapacity = 32;  // positions; doubled when full

bool fused_kernel_applies(const at::Tensor& storage, const at::Tensor& queries, const at::Tensor& bias) {
  auto cpu_float = [](const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; };
  return cpu_float(storage) && cpu_float(queries) && (!bias.defined() || cpu_float(bias));
}

}  // namespace

void DecoderHistory::reserve(int64_t layer, int64_t rows, int64_t width, const at::Tensor& like) {
  if (!ancestors_.defined()) {
    rows_ = storage_rows_ = rows;
    ancestors_ = at::empty({rows, kFirstCapacity}, like.options().dtype(at::kLong));
  }
  if (length_ >= ancestors_.size(1)) {
    auto grown = at::empty({rows_, 2 * ancestors_.size(1)}, ancestors_.options());
    grown.narrow(1, 0, length_).copy_(ancestors_.narrow(1, 0, length_));
    ancestors_ = grown;
  }
  if (layer >= static_cast<int64_t>(keys_.size())) {
    keys_.resize(static_cast<size_t>(layer) + 1);
    values_.resize(static_cast<size_t>(layer) + 1);
  }
  const int64_t capacity = ancestors_.size(1);
  for (auto* storage : {&keys_[layer], &values_[layer]}) {
    if (storage->defined() && storage->size(0) >= capacity) continue;
    // Storage keeps the row count of the first step: positions written before
    // reorder() dropped rows still hold them.
    auto grown = at::empty({capacity, storage_rows_, width}, like.options());
    if (storage->defined() && length_ > 0) grown.narrow(0, 0, length_).copy_(storage->narrow(0, 0, length_));
    *storage = grown;
  }
}

at::Tensor DecoderHistory::attend(int64_t layer, const at::Tensor& queries, const at::Tensor& keys,
                                  const at::Tensor& values, const at::Tensor& bias) {
  const int64_t rows = queries.size(0), heads = queries.size(1), head_dim = queries.size(3);
  const int64_t width = heads * head_dim, position = length_, length = length_ + 1;
  if (ancestors_.defined() && rows != rows_)
    throw std::invalid_argument("DecoderHistory::attend: " + std::to_string(rows) + " rows after reorder() left " +
                                std::to_string(rows_));
  if (layer < 0) throw std::invalid_argument("DecoderHistory::attend: negative layer");
  reserve(layer, rows, width, keys);
  at::Tensor& key_store = keys_[layer];
  at::Tensor& value_store = values_[layer];
  key_store.select(0, position).narrow(0, 0, rows).copy_(keys.reshape({rows, width}));
  value_store.select(0, position).narrow(0, 0, rows).copy_(values.reshape({rows, width}));
  // Each row's newest entry is its own.
  ancestors_.select(1, position).copy_(at::arange(rows, ancestors_.options()));

  at::Tensor bias_rows;  // [heads, length]
  if (bias.defined()) bias_rows = bias.to(at::kFloat).reshape({heads, length}).contiguous();
  if (fused_kernel_applies(key_store, queries, bias_rows)) {
    auto q = queries.contiguous();
    auto out = at::empty({rows, heads, 1, head_dim}, queries.options());
    attend_over_ancestors({q.data_ptr<float>(), key_store.data_ptr<float>(), value_store.data_ptr<float>(),
                           ancestors_.data_ptr<int64_t>(), ancestors_.size(1),
                           bias_rows.defined() ? bias_rows.data_ptr<float>() : nullptr, out.data_ptr<float>(), rows,
                           heads, head_dim, length, key_store.size(1)});
    return out;
  }
  // Elsewhere (GPU, half precision): gather each row's history, then attend as usual.
  const int64_t storage_rows = key_store.size(1);
  auto positions = at::arange(length, ancestors_.options()).unsqueeze(0);
  auto flat = (positions * storage_rows + ancestors_.narrow(1, 0, length)).reshape({-1});
  auto gather = [&](const at::Tensor& store) {
    return store.reshape({-1, width}).index_select(0, flat).view({rows, length, heads, head_dim}).transpose(1, 2);
  };
  auto scores = at::matmul(queries, gather(key_store).transpose(2, 3));
  if (bias_rows.defined()) scores = scores + bias_rows.view({1, heads, 1, length}).to(scores.scalar_type());
  auto weights = at::softmax(scores.to(at::kFloat), -1).to(queries.scalar_type());
  return at::matmul(weights, gather(value_store));
}

void DecoderHistory::reorder(const at::Tensor& indices) {
  if (!ancestors_.defined()) return;
  ancestors_ = ancestors_.index_select(0, indices.to(ancestors_.device(), at::kLong));
  rows_ = ancestors_.size(0);
}

void TransformerDecoderCache::reorder(const at::Tensor& indices) {
  const int64_t rows_before = self.rows();
  self.reorder(indices);
  if (cross_keys.empty() || rows_before == 0 || indices.size(0) == rows_before) return;
  // Whole inputs left: each kept group of rows still continues one input, so
  // its first row names that input (rows_before / inputs rows per input).
  const int64_t per_input = rows_before / cross_keys[0].size(0);
  auto long_indices = indices.to(cross_keys[0].device(), at::kLong);
  auto inputs_left = long_indices.slice(0, 0, indices.size(0), per_input).div(per_input, "floor");
  for (auto* list : {&cross_keys, &cross_values})
    for (auto& t : *list) t = t.index_select(0, inputs_left);
}

}  // namespace slt
