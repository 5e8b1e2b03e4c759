#include "slt/optim.h"

#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

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
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(lr));
}

double clip_grad_norm(torch::nn::Module& module, double max_norm) {
  return torch::nn::utils::clip_grad_norm_(module.parameters(), max_norm);
}

}  // namespace slt
