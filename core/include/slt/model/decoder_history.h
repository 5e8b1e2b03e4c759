#pragma once
// The self-attention keys and values of every decoder layer while decoding
// step by step, for rows that beam search reorders between steps.
//
// Nothing is copied when rows are reordered. Each position's keys and values
// are written once, into storage preallocated for many steps; a table of
// ancestors records, for each row and each earlier position, which row's
// entry holds that row's history. Reordering rows only reorders that table
// (one integer per row and position, shared by all layers), where Hugging
// Face's cache copies every layer's keys and values at every step.
#include <ATen/core/Tensor.h>

#include <vector>

#include "slt/model/model.h"

namespace slt {

class DecoderHistory {
 public:
  /// Appends this step's `keys` and `values` [rows, heads, 1, head_dim] of
  /// `layer` at position length(), then returns the attention of `queries`
  /// [rows, heads, 1, head_dim] over every position so far: softmax(q·kᵀ +
  /// bias)·v, [rows, heads, 1, head_dim]. Layers are numbered from 0 and may
  /// differ in width. `bias` [1, heads, 1, length()+1] is
  /// added to the scores (undefined: none); queries come scaled as the model
  /// wants. Softmax is taken in float32.
  at::Tensor attend(int64_t layer, const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& values,
                    const at::Tensor& bias);

  /// Ends a step: every layer has appended its entries.
  void advance() { ++length_; }

  /// Row i continues the history of row indices[i] from now on (beam search's
  /// pruning; fewer indices than rows drops rows).
  void reorder(const at::Tensor& indices);

  int64_t length() const { return length_; }
  int64_t rows() const { return rows_; }  // 0 before the first step

 private:
  // Room for position length() in `layer`'s storage and in the ancestors.
  void reserve(int64_t layer, int64_t rows, int64_t width, const at::Tensor& like);

  std::vector<at::Tensor> keys_, values_;  // per layer [capacity, max rows, heads * head_dim]
  at::Tensor ancestors_;                   // [rows, capacity] int64: the row holding each position of each row's history
  int64_t length_ = 0, rows_ = 0, storage_rows_ = 0;
};

/// The decoder cache of an encoder-decoder transformer: the self-attention
/// history, and each layer's cross-attention keys and values, computed once
/// per input. Those are never reordered: beam search moves rows only among
/// the beams of one input (Seq2SeqModel::decode_step); they only shrink when
/// the search drops inputs it has finished.
struct TransformerDecoderCache : DecoderCache {
  DecoderHistory self;
  // Per layer [inputs, heads, source length, head_dim], contiguous: attention
  // multiplies them in place, where a transposed view would be copied per step.
  std::vector<at::Tensor> cross_keys, cross_values;
  // The next layer's cross-attention keys and values (stored contiguous).
  void add_cross_layer(const at::Tensor& keys, const at::Tensor& values) {
    cross_keys.push_back(keys.contiguous());
    cross_values.push_back(values.contiguous());
  }
  // Rows move within their input; when whole inputs leave (fewer indices than
  // rows), their cross-attention rows go too.
  void reorder(const at::Tensor& indices) override;
};

}  // namespace slt
