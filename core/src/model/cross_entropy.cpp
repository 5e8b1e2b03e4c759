// Label-smoothed cross-entropy as one autograd function. Over T5's 32k
// vocabulary, ATen's cross_entropy writes the [N, C] log-probabilities, and
// its backward the one-hot gradient, the smoothing term's expansion and the
// log-softmax gradient, each a pass over a [N, C] tensor; here the forward
// keeps one log-sum-exp per row, and the backward writes the gradient in one
// pass from the logits.
#include "slt/model/cross_entropy.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>

#include "kernel_support.h"

namespace slt {

using namespace detail;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// Rows of at least this many logits each make a parallel task.
constexpr int64_t kGrainElements = 32768;

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) RowLogSumExp row_terms(const float* x,
                                                                                                        int64_t n) {
  return row_log_sum_exp(x, n);
}

// d loss / d x for one row: scale · (softmax(x) - smoothing / C), less
// scale · (1 - smoothing) at the target.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void row_gradient(
    const float* x, float log_sum_exp, float scale, float uniform, float* dx, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) store16(dx + i, scale * (exp16(load16(x + i) - log_sum_exp) - uniform));
  for (; i < n; ++i) dx[i] = scale * (std::exp(x[i] - log_sum_exp) - uniform);
}

struct CrossEntropyFunction : torch::autograd::Function<CrossEntropyFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                            int64_t ignore_index, double smoothing) {
    const int64_t rows = logits.size(0), n = logits.size(1);
    const float* x = logits.data_ptr<float>();
    const int64_t* t = targets.data_ptr<int64_t>();
    for (int64_t r = 0; r < rows; ++r)
      TORCH_CHECK(t[r] == ignore_index || (t[r] >= 0 && t[r] < n), "cross_entropy: target ", t[r],
                  " is out of bounds for ", n, " classes");
    at::Tensor log_sum_exp = at::empty({rows}, logits.options());
    at::Tensor per_row = at::zeros({rows}, logits.options().dtype(at::kDouble));
    float* lse = log_sum_exp.data_ptr<float>();
    double* loss = per_row.data_ptr<double>();
    at::parallel_for(0, rows, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(n, 1)),
                     [&](int64_t begin, int64_t end) {
                       for (int64_t r = begin; r < end; ++r) {
                         if (t[r] == ignore_index) continue;
                         const float* xr = x + r * n;
                         const RowLogSumExp terms = row_terms(xr, n);
                         lse[r] = terms.max + terms.log_sum;
                         const double nll = static_cast<double>(lse[r]) - xr[t[r]];
                         const double smooth = static_cast<double>(lse[r]) - terms.sum / static_cast<double>(n);
                         loss[r] = (1 - smoothing) * nll + smoothing * smooth;
                       }
                     });
    int64_t counted = 0;
    double total = 0;
    for (int64_t r = 0; r < rows; ++r) {
      if (t[r] == ignore_index) continue;
      ++counted;
      total += loss[r];
    }
    ctx->save_for_backward({logits, targets, log_sum_exp});
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["smoothing"] = smoothing;
    ctx->saved_data["counted"] = counted;
    // No target counted: 0 / 0, NaN, as ATen's mean reduction gives.
    return at::scalar_tensor(static_cast<float>(total / static_cast<double>(counted)), logits.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &logits = saved[0], &targets = saved[1], &log_sum_exp = saved[2];
    const int64_t ignore_index = ctx->saved_data["ignore_index"].toInt();
    const double smoothing = ctx->saved_data["smoothing"].toDouble();
    const int64_t counted = ctx->saved_data["counted"].toInt();
    const int64_t rows = logits.size(0), n = logits.size(1);
    at::Tensor dx = at::empty_like(logits);
    const float scale = grads[0].item<float>() / static_cast<float>(counted);
    const float uniform = static_cast<float>(smoothing / static_cast<double>(n));
    const float at_target = scale * static_cast<float>(1 - smoothing);
    const float* x = logits.data_ptr<float>();
    const int64_t* t = targets.data_ptr<int64_t>();
    const float* lse = log_sum_exp.data_ptr<float>();
    float* d = dx.data_ptr<float>();
    at::parallel_for(0, rows, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(n, 1)),
                     [&](int64_t begin, int64_t end) {
                       for (int64_t r = begin; r < end; ++r) {
                         float* dr = d + r * n;
                         if (t[r] == ignore_index) {
                           std::fill_n(dr, n, 0.0f);
                           continue;
                         }
                         row_gradient(x + r * n, lse[r], scale, uniform, dr, n);
                         dr[t[r]] -= at_target;
                       }
                     });
    return {dx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index, double smoothing) {
  const bool own = cpu_float({&logits}) && logits.dim() == 2 && logits.size(1) > 0 && targets.dim() == 1 &&
                   targets.size(0) == logits.size(0) && targets.scalar_type() == at::kLong &&
                   targets.device().is_cpu() && targets.is_contiguous() && !targets.requires_grad();
  if (!own)
    return at::cross_entropy_loss(logits, targets, {}, at::Reduction::Mean, ignore_index, smoothing);
  return CrossEntropyFunction::apply(logits, targets, ignore_index, smoothing);
}

}  // namespace slt
