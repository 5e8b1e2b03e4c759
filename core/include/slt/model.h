#pragma once
// The interface of `model` components: padded features in, loss and logits out.
// Parameter names (module().named_parameters()) follow the reference Python
// modules' state_dict() names so checkpoints move between slt and PyTorch.
#include <ATen/core/Tensor.h>

#include "slt/registry.h"

namespace torch::nn {
class Module;
}

namespace slt {

struct Batch {
  at::Tensor features;        // [B, T, feature_dim] float, zero-padded on the right
  at::Tensor attention_mask;  // [B, T], 1 = frame, 0 = padding
  at::Tensor labels;          // [B, L] int64 target ids, padded with the tokenizer's pad id
};

struct ModelOutput {
  at::Tensor loss;    // scalar, when labels were given
  at::Tensor logits;  // [B, L, vocab]
};

class TranslationModel : public Component {
 public:
  // The torch module holding the parameters (for the optimizer, devices, checkpoints).
  virtual torch::nn::Module& module() = 0;
  virtual ModelOutput forward(const Batch& batch) = 0;
};

}  // namespace slt
