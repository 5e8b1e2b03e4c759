#include "slt/train/optim.h"

#include "fused_adamw.h"

#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <cmath>

namespace slt {

bool is_no_decay_parameter(const std::string& name) {
  for (const char* marker : {"bias", "LayerNorm.weight", "layer_norm.weight"})
    if (name.find(marker) != std::string::npos) return true;
  return false;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, double lr, double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : module.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    (is_no_decay_parameter(p.key()) ? no_decay : decay).push_back(p.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto options = [&](double wd) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(lr);
    o->weight_decay(wd);
    return o;
  };
  groups.emplace_back(decay, options(weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<detail::FusedAdamW>(groups, torch::optim::AdamWOptions(lr));
}

void release_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

double clip_grad_norm(torch::nn::Module& module, double max_norm) {
  return torch::nn::utils::clip_grad_norm_(module.parameters(), max_norm);
}

double LrSchedule::at(double epoch) const {
  if (epoch < warmup_epochs) return lr * epoch / warmup_epochs;
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * (epoch - warmup_epochs) / (epochs - warmup_epochs)));
}

at::Tensor LossScaler::scale(const at::Tensor& loss) const { return enabled_ ? loss * scale_value : loss; }

bool LossScaler::unscale(torch::nn::Module& module) const {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> finite;  // one flag per gradient, read back once (one device sync, not one per tensor)
  for (auto& p : module.parameters()) {
    if (!p.grad().defined()) continue;
    p.grad().mul_(1.0 / scale_value);
    finite.push_back(p.grad().isfinite().all());
  }
  return finite.empty() || at::stack(finite).all().item<bool>();
}

void LossScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_value *= kBackoffFactor;
    growth_tracker = 0;
  } else if (++growth_tracker == kGrowthInterval) {
    scale_value *= kGrowthFactor;
    growth_tracker = 0;
  }
}

}  // namespace slt
