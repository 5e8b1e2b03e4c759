#pragma once
// LibTorch's AdamW with its per-parameter update done in one pass over the
// parameter, its gradient and both moments (LibTorch's step runs seven
// tensor operations per parameter, each a pass over memory, three of them
// allocating). Same state objects, keys and options as torch::optim::AdamW,
// so checkpoints, learning-rate changes and load_adamw_state are unchanged.
#include <torch/optim/adamw.h>

namespace slt::detail {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  /// One AdamW step. Contiguous float32 CPU parameters with dense float32
  /// gradients take the fused pass (the arithmetic of LibTorch's operations,
  /// in their order, in float); anything else (another device or dtype,
  /// amsgrad) runs LibTorch's step.
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace slt::detail
