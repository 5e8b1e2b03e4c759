#pragma once
// The reference's optimisation pieces (create_optimizer_and_loss_scaler):
// AdamW with two parameter groups, and gradient-norm clipping.
#include <memory>
#include <string>
#include <vector>

namespace torch {
namespace nn {
class Module;
}
namespace optim {
class AdamW;
}
}  // namespace torch

namespace slt {

// True for the parameters the reference exempts from weight decay: names
// containing "bias", "LayerNorm.weight" or "layer_norm.weight".
bool is_no_decay_parameter(const std::string& name);

// AdamW(lr) over two groups: decayed parameters with `weight_decay`, the
// no-decay ones with 0 (in named_parameters() order within each group).
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, double lr, double weight_decay);

// torch.nn.utils.clip_grad_norm_: returns the total L2 norm before clipping.
double clip_grad_norm(torch::nn::Module& module, double max_norm);

}  // namespace slt
