#include "fused_adamw.h"

#include <ATen/Parallel.h>
#include <c10/util/string_utils.h>

#include <cmath>

namespace slt::detail {

namespace {

// The scalars of one parameter's step, as LibTorch's AdamW hands them to
// ATen (which casts double scalars to the tensor's float).
struct StepScalars {
  float decay;         // 1 - lr * weight_decay
  bool decays;         // weight_decay != 0
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bias_correction2_sqrt, eps, negative_step_size;
};

// p.mul_(decay); m.mul_(b1).add_(g, 1 - b1); v.mul_(b2).addcmul_(g, g, 1 - b2);
// p.addcdiv_(m, v.sqrt() / sqrt(bc2) + eps, -step_size) — element by element.
// ATen's vectorised add with alpha is one fused multiply-add (fmadd(g, alpha,
// m)); addcmul and addcdiv are plain products and quotients.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void adamw_span(
    float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t begin, int64_t end,
    const StepScalars& s) {
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i];
    const float p = s.decays ? param[i] * s.decay : param[i];
    const float m = std::fma(g, s.one_minus_beta1, exp_avg[i] * s.beta1);
    const float v = exp_avg_sq[i] * s.beta2 + s.one_minus_beta2 * g * g;
    const float denom = std::sqrt(v) / s.bias_correction2_sqrt + s.eps;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = p + s.negative_step_size * m / denom;
  }
}

// LibTorch's key for a parameter's state: its TensorImpl's address.
std::string state_key(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

bool fusable(const at::Tensor& p) {
  const at::Tensor& g = p.grad();
  return p.device().is_cpu() && p.scalar_type() == at::kFloat && p.is_contiguous() && !g.is_sparse() &&
         g.device().is_cpu() && g.scalar_type() == at::kFloat && g.is_contiguous();
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  // After release_gradients, a parameter the last backward did not reach has
  // no gradient; with zero_grad's zeros it would have been stepped (its
  // moments decayed, its weight decayed) once it had state.
  for (auto& group : param_groups_)
    for (auto& p : group.params())
      if (!p.grad().defined() && state_.count(state_key(p)))
        p.mutable_grad() = torch::zeros_like(p);
  for (const auto& group : param_groups_) {
    if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad())
      return torch::optim::AdamW::step(closure);
    for (const auto& p : group.params())
      if (p.grad().defined() && !fusable(p)) return torch::optim::AdamW::step(closure);
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state_[state_key(p)];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
      state.step(state.step() + 1);
      const auto [beta1, beta2] = options.betas();
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      const StepScalars s{static_cast<float>(1 - options.lr() * options.weight_decay()),
                          options.weight_decay() != 0,
                          static_cast<float>(beta1),
                          static_cast<float>(1 - beta1),
                          static_cast<float>(beta2),
                          static_cast<float>(1 - beta2),
                          static_cast<float>(std::sqrt(bias_correction2)),
                          static_cast<float>(options.eps()),
                          static_cast<float>(-options.lr() / bias_correction1)};
      float* param = p.data_ptr<float>();
      const float* grad = p.grad().data_ptr<float>();
      float* exp_avg = state.exp_avg().data_ptr<float>();
      float* exp_avg_sq = state.exp_avg_sq().data_ptr<float>();
      at::parallel_for(0, p.numel(), 32768, [&](int64_t begin, int64_t end) {
        adamw_span(param, grad, exp_avg, exp_avg_sq, begin, end, s);
      });
      // Written through raw pointers: tell the version counter, as an in-place
      // operator would (the packed copies of slt::linear rely on it).
      p.unsafeGetTensorImpl()->bump_version();
      state.exp_avg().unsafeGetTensorImpl()->bump_version();
      state.exp_avg_sq().unsafeGetTensorImpl()->bump_version();
    }
  }
  return loss;
}

}  // namespace slt::detail
