// T5's RMS norm and gated gelu_new as one pass each, forward and backward.
// Autograd over the ATen formulas records six operations for the norm and
// nine for the activation, each a pass over memory with a saved temporary;
// the functions here save their inputs only and run one pass each way.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "kernel_support.h"
#include "slt/model/decoding_kernels.h"

namespace slt {

using namespace detail;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

// 1 / sqrt(mean(x²) + eps) of one row.
__attribute__((always_inline)) inline float inverse_rms(const float* x, int64_t n, float eps) {
  Vec16 squares = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Vec16 v = load16(x + i);
    squares += v * v;
  }
  float sum = sum16(squares);
  for (; i < n; ++i) sum += x[i] * x[i];
  return 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void rms_norm_rows(
    const float* x, const float* w, float* y, float* inverse, int64_t begin, int64_t end, int64_t n, float eps) {
  for (int64_t r = begin; r < end; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const float scale = inverse_rms(xr, n, eps);
    if (inverse) inverse[r] = scale;
    for (int64_t i = 0; i < n; ++i) yr[i] = w[i] * (xr[i] * scale);
  }
}

// With y = w · x · s and s = (mean(x²) + eps)^-1/2:
//   dx = s · (w · dy) - x · s³ · mean(w · dy · x),
//   and the weight's gradient per row, dy · x · s, summed over rows by the caller.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void rms_norm_backward_rows(
    const float* x, const float* w, const float* inverse, const float* dy, float* dx, float* dw_rows, int64_t begin,
    int64_t end, int64_t n) {
  for (int64_t r = begin; r < end; ++r) {
    const float* xr = x + r * n;
    const float* dyr = dy + r * n;
    const float s = inverse[r];
    float dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += w[i] * dyr[i] * xr[i];
    const float correction = s * s * s * dot / static_cast<float>(n);
    for (int64_t i = 0; i < n; ++i) {
      dx[r * n + i] = s * (w[i] * dyr[i]) - xr[i] * correction;
      dw_rows[r * n + i] = dyr[i] * xr[i] * s;
    }
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void gated_gelu_new_span(
    const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Vec16 x = load16(a + i);
    Vec16 tanh_u = tanh16(kSqrtTwoOverPi * (x + kCubic * (x * x * x)));
    store16(y + i, 0.5f * x * (1.0f + tanh_u) * load16(b + i));
  }
  for (; i < n; ++i) {
    const float x = a[i];
    y[i] = 0.5f * x * (1.0f + std::tanh(kSqrtTwoOverPi * (x + kCubic * (x * x * x)))) * b[i];
  }
}

// d/da [gelu_new(a) · b] = b · (½(1 + t) + ½a(1 - t²)·√(2/π)(1 + 3·0.044715·a²)),
// d/db = gelu_new(a), with t = tanh(√(2/π)(a + 0.044715·a³)).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void gated_gelu_new_backward_span(
    const float* a, const float* b, const float* dy, float* da, float* db, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Vec16 x = load16(a + i), g = load16(dy + i);
    Vec16 t = tanh16(kSqrtTwoOverPi * (x + kCubic * (x * x * x)));
    Vec16 slope = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrtTwoOverPi * (1.0f + 3.0f * kCubic * x * x);
    store16(db + i, g * (0.5f * x * (1.0f + t)));
    store16(da + i, g * load16(b + i) * slope);
  }
  for (; i < n; ++i) {
    const float x = a[i], g = dy[i];
    const float t = std::tanh(kSqrtTwoOverPi * (x + kCubic * (x * x * x)));
    const float slope = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrtTwoOverPi * (1.0f + 3.0f * kCubic * x * x);
    db[i] = g * (0.5f * x * (1.0f + t));
    da[i] = g * b[i] * slope;
  }
}

// x [rows, n] normalised into a new tensor; the per-row scales go to
// `inverse` when defined (the backward needs them).
at::Tensor rms_norm_forward(const at::Tensor& x, const at::Tensor& weight, double eps, const at::Tensor& inverse) {
  const int64_t n = x.size(-1), rows = x.numel() / n;
  auto y = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  float* ip = inverse.defined() ? inverse.data_ptr<float>() : nullptr;
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
    rms_norm_rows(xp, wp, yp, ip, begin, end, n, static_cast<float>(eps));
  });
  return y;
}

at::Tensor gated_gelu_new_forward(const at::Tensor& a, const at::Tensor& b) {
  auto y = at::empty_like(a);
  const float* ap = a.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, a.numel(), 16384, [&](int64_t begin, int64_t end) {
    gated_gelu_new_span(ap + begin, bp + begin, yp + begin, end - begin);
  });
  return y;
}

struct RmsNormFunction : torch::autograd::Function<RmsNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps) {
    auto inverse = at::empty({x.numel() / x.size(-1)}, x.options());
    auto y = rms_norm_forward(x, weight, eps, inverse);
    ctx->save_for_backward({x, weight, inverse});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &inverse = saved[2];
    const at::Tensor dy = grads[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    auto dx = at::empty_like(x);
    auto dw_rows = at::empty({rows, n}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = weight.data_ptr<float>();
    const float* ip = inverse.data_ptr<float>();
    const float* gp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* dwp = dw_rows.data_ptr<float>();
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
      rms_norm_backward_rows(xp, wp, ip, gp, dxp, dwp, begin, end, n);
    });
    return {dx, dw_rows.sum(0).view(weight.sizes()), at::Tensor()};
  }
};

struct GatedGeluNewFunction : torch::autograd::Function<GatedGeluNewFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return gated_gelu_new_forward(a, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &a = saved[0], &b = saved[1];
    const at::Tensor dy = grads[0].contiguous();
    auto da = at::empty_like(a), db = at::empty_like(b);
    const float* ap = a.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    const float* gp = dy.data_ptr<float>();
    float* dap = da.data_ptr<float>();
    float* dbp = db.data_ptr<float>();
    at::parallel_for(0, a.numel(), 16384, [&](int64_t begin, int64_t end) {
      gated_gelu_new_backward_span(ap + begin, bp + begin, gp + begin, dap + begin, dbp + begin, end - begin);
    });
    return {da, db};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (!cpu_float({&x, &weight}) || x.dim() < 1 || weight.numel() != x.size(-1) || x.size(-1) == 0) {
    auto variance = x.to(at::kFloat).pow(2).mean(-1, true);
    return weight * (x * at::rsqrt(variance + eps));
  }
  if (inference_float({&x, &weight})) return rms_norm_forward(x, weight, eps, {});
  return RmsNormFunction::apply(x, weight, eps);
}

at::Tensor gated_gelu_new(const at::Tensor& a, const at::Tensor& b) {
  if (!cpu_float({&a, &b}) || a.sizes() != b.sizes()) {
    auto gelu = 0.5 * a * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (a + 0.044715 * at::pow(a, 3.0))));
    return gelu * b;
  }
  if (inference_float({&a, &b})) return gated_gelu_new_forward(a, b);
  return GatedGeluNewFunction::apply(a, b);
}

}  // namespace slt
