#pragma once
// The reference's optimisation pieces (create_optimizer_and_loss_scaler):
// AdamW with two parameter groups, gradient-norm clipping, the learning-rate
// schedule (util/lr_sched.py) and fp16 loss scaling (torch.cuda.amp.GradScaler).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace torch {
namespace nn {
class Module;
}
namespace optim {
class AdamW;
class Optimizer;
}
}  // namespace torch

namespace slt {

// True for the parameters the reference exempts from weight decay: names
// containing "bias", "LayerNorm.weight" or "layer_norm.weight".
bool is_no_decay_parameter(const std::string& name);

// AdamW(lr) over two groups: decayed parameters with `weight_decay`, the
// no-decay ones with 0 (in named_parameters() order within each group). A
// torch::optim::AdamW whose step updates each float32 CPU parameter and its
// moments in one pass (LibTorch's arithmetic, in its order); its state is
// LibTorch's, so checkpoints are unchanged.
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, double lr, double weight_decay);

// optimizer.zero_grad(set_to_none=True): drops every gradient, so that the
// next backward hands its gradients over instead of adding them to zeros
// (LibTorch 1.13's zero_grad writes zeros over every parameter's gradient,
// and each backward then adds to them: two passes over the model saved per
// step). make_adamw's step gives a parameter that has optimizer state but no
// gradient a zero one, as a zeroed gradient would have been stepped.
void release_gradients(torch::optim::Optimizer& optimizer);

// The reference's learning rate at a (fractional) epoch: linear warmup from 0
// over warmup_epochs, then half-cycle cosine from lr down to min_lr at epochs.
struct LrSchedule {
  double lr = 0, min_lr = 0, warmup_epochs = 0, epochs = 1;
  double at(double epoch) const;
};

// torch.nn.utils.clip_grad_norm_: returns the total L2 norm before clipping.
double clip_grad_norm(torch::nn::Module& module, double max_norm);

// torch.cuda.amp.GradScaler's dynamic loss scaling (fp16 training): the loss
// is multiplied by scale() before backward; unscale() divides the gradients
// back and reports whether all are finite; update() halves the scale after an
// overflow (the optimizer step is skipped) and doubles it after
// growth_interval clean steps. Disabled, it is the identity.
class LossScaler {
 public:
  explicit LossScaler(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  at::Tensor scale(const at::Tensor& loss) const;
  bool unscale(torch::nn::Module& module) const;  // true when every gradient is finite
  void update(bool found_inf);

  double scale_value = 65536.0;
  int64_t growth_tracker = 0;
  static constexpr double kGrowthFactor = 2.0, kBackoffFactor = 0.5;
  static constexpr int64_t kGrowthInterval = 2000;

 private:
  bool enabled_;
};

}  // namespace slt
