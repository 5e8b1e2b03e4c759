#include "slt/model/decoding_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention.h"
#include "kernel_support.h"
#include "packed_linear.h"
#include "slt/model/dropout.h"

namespace slt {

using namespace detail;

namespace {

// y[r, n] = bias[n] + x[r, :] . w[n, :] for r < kRows and n in [begin, end).
// Two weight rows per pass, so each x vector loaded serves two dot products.
// Always inlined, so that each target clone of the caller compiles it for its
// own vector registers.
template <int kRows>
__attribute__((always_inline)) inline void rows_times_weight(const float* x, const float* w, const float* bias, float* y, int64_t in, int64_t out,
                              int64_t begin, int64_t end) {
  int64_t n = begin;
  for (; n + 2 <= end; n += 2) {
    const float* w0 = w + n * in;
    const float* w1 = w0 + in;
    Vec16 acc0[kRows] = {}, acc1[kRows] = {};
    int64_t k = 0;
    for (; k + 16 <= in; k += 16) {
      __builtin_prefetch(w0 + 4 * in + k);
      __builtin_prefetch(w1 + 4 * in + k);
      Vec16 a = load16(w0 + k), b = load16(w1 + k);
      for (int r = 0; r < kRows; ++r) {
        Vec16 xv = load16(x + r * in + k);
        acc0[r] += a * xv;
        acc1[r] += b * xv;
      }
    }
    for (int r = 0; r < kRows; ++r) {
      float s0 = sum16(acc0[r]), s1 = sum16(acc1[r]);
      for (int64_t t = k; t < in; ++t) {
        s0 += x[r * in + t] * w0[t];
        s1 += x[r * in + t] * w1[t];
      }
      y[r * out + n] = bias ? s0 + bias[n] : s0;
      y[r * out + n + 1] = bias ? s1 + bias[n + 1] : s1;
    }
  }
  for (; n < end; ++n) {
    const float* w0 = w + n * in;
    Vec16 acc[kRows] = {};
    int64_t k = 0;
    for (; k + 16 <= in; k += 16) {
      Vec16 a = load16(w0 + k);
      for (int r = 0; r < kRows; ++r) acc[r] += a * load16(x + r * in + k);
    }
    for (int r = 0; r < kRows; ++r) {
      float s = sum16(acc[r]);
      for (int64_t t = k; t < in; ++t) s += x[r * in + t] * w0[t];
      y[r * out + n] = bias ? s + bias[n] : s;
    }
  }
}

// Up to eight rows per pass over the weight (the accumulators of eight rows
// and two weight rows fill the 32 AVX-512 registers).
constexpr int64_t kRowsPerPass = 8;

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void few_rows_times_weight(
    const float* x, int64_t rows, const float* w, const float* bias, float* y, int64_t in, int64_t out, int64_t begin,
    int64_t end) {
  for (int64_t r0 = 0; r0 < rows; r0 += kRowsPerPass) {
    const float* xr = x + r0 * in;
    float* yr = y + r0 * out;
    switch (std::min(rows - r0, kRowsPerPass)) {
      case 1: rows_times_weight<1>(xr, w, bias, yr, in, out, begin, end); break;
      case 2: rows_times_weight<2>(xr, w, bias, yr, in, out, begin, end); break;
      case 3: rows_times_weight<3>(xr, w, bias, yr, in, out, begin, end); break;
      case 4: rows_times_weight<4>(xr, w, bias, yr, in, out, begin, end); break;
      case 5: rows_times_weight<5>(xr, w, bias, yr, in, out, begin, end); break;
      case 6: rows_times_weight<6>(xr, w, bias, yr, in, out, begin, end); break;
      case 7: rows_times_weight<7>(xr, w, bias, yr, in, out, begin, end); break;
      default: rows_times_weight<8>(xr, w, bias, yr, in, out, begin, end); break;
    }
  }
}

// A dot product of two float rows of any length.
__attribute__((always_inline)) inline float dot(const float* a, const float* b, int64_t n) {
  Vec16 acc = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc += load16(a + i) * load16(b + i);
  float s = sum16(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// out += w * v over n floats.
__attribute__((always_inline)) inline void add_scaled(float* out, float w, const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += w * v[i];
}

// The attention kernels run in two passes around ATen's softmax (vectorised,
// and the very softmax the reference takes): scores, then weighted values.

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void ancestor_scores(
    const AncestorAttention& a, int64_t begin, int64_t end, float* scores) {
  const int64_t width = a.heads * a.head_dim;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t r = task / a.heads, h = task % a.heads;
    const float* q = a.queries + task * a.head_dim;
    const int64_t* ancestry = a.ancestors + r * a.ancestor_stride;
    const float* bias = a.bias ? a.bias + h * a.length : nullptr;
    float* row = scores + task * a.length;
    for (int64_t j = 0; j < a.length; ++j) {
      const float* k = a.keys + (j * a.storage_rows + ancestry[j]) * width + h * a.head_dim;
      row[j] = dot(q, k, a.head_dim) + (bias ? bias[j] : 0.0f);
    }
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void ancestor_values(
    const AncestorAttention& a, int64_t begin, int64_t end, const float* weights) {
  const int64_t width = a.heads * a.head_dim;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t r = task / a.heads, h = task % a.heads;
    const int64_t* ancestry = a.ancestors + r * a.ancestor_stride;
    const float* row = weights + task * a.length;
    float* out = a.out + task * a.head_dim;
    std::fill(out, out + a.head_dim, 0.0f);
    for (int64_t j = 0; j < a.length; ++j) {
      const float* v = a.values + (j * a.storage_rows + ancestry[j]) * width + h * a.head_dim;
      add_scaled(out, row[j], v, a.head_dim);
    }
  }
}

// Scores [G, S] of G queries against one (input, head)'s keys: each key row
// is loaded once for all G queries.
template <int kQueries>
__attribute__((always_inline)) inline void query_group_scores(const float* q, const float* k, const float* bias,
                                                              float* scores, int64_t keys, int64_t dim) {
  for (int64_t j = 0; j < keys; ++j) {
    const float* key = k + j * dim;
    for (int g = 0; g < kQueries; ++g) scores[g * keys + j] = dot(q + g * dim, key, dim) + (bias ? bias[j] : 0.0f);
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void few_query_scores(
    const float* q, const float* k, const float* bias, float* scores, int64_t queries, int64_t keys, int64_t dim) {
  switch (queries) {
    case 1: query_group_scores<1>(q, k, bias, scores, keys, dim); break;
    case 2: query_group_scores<2>(q, k, bias, scores, keys, dim); break;
    case 3: query_group_scores<3>(q, k, bias, scores, keys, dim); break;
    case 4: query_group_scores<4>(q, k, bias, scores, keys, dim); break;
    case 5: query_group_scores<5>(q, k, bias, scores, keys, dim); break;
    case 6: query_group_scores<6>(q, k, bias, scores, keys, dim); break;
    case 7: query_group_scores<7>(q, k, bias, scores, keys, dim); break;
    default: query_group_scores<8>(q, k, bias, scores, keys, dim); break;
  }
}

// out[g] = sum_j weights[g, j] * v[j] for G queries, each value row loaded once.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void few_query_values(
    const float* weights, const float* v, float* out, int64_t queries, int64_t keys, int64_t dim) {
  std::fill(out, out + queries * dim, 0.0f);
  for (int64_t j = 0; j < keys; ++j)
    for (int64_t g = 0; g < queries; ++g) add_scaled(out + g * dim, weights[g * keys + j], v + j * dim, dim);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void log_softmax_row(float* x, int64_t n) {
  const RowLogSumExp row = row_log_sum_exp(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = (x[i] - row.max) - row.log_sum;
}

// The k largest of one row, largest first; equal values in column order.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void top_k_row(
    const float* x, int64_t n, int64_t k, float* values, int64_t* indices) {
  int64_t held = 0;
  float threshold = -std::numeric_limits<float>::infinity();  // the k-th value once k are held
  auto offer = [&](int64_t j) {
    const float v = x[j];
    if (held == k && !(v > threshold)) return;
    int64_t at = held < k ? held++ : k - 1;
    while (at > 0 && values[at - 1] < v) {
      values[at] = values[at - 1];
      indices[at] = indices[at - 1];
      --at;
    }
    values[at] = v;
    indices[at] = j;
    if (held == k) threshold = values[k - 1];
  };
  int64_t j = 0;
  for (; j < n && held < k; ++j) offer(j);
  for (; j + 16 <= n; j += 16) {
    // Most blocks hold nothing above the k-th value: one vector compare skips them.
    VecI16 above = load16(x + j) > threshold;
    bool any = false;
    for (int lane = 0; lane < 16; ++lane) any |= above[lane] != 0;
    if (!any) continue;
    for (int64_t t = j; t < j + 16; ++t) offer(t);
  }
  for (; j < n; ++j) offer(j);
}

// Whether x W^T + b may leave at::linear for one of the kernels here.
bool takes_own_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (!inference_float({&x, &weight, &bias})) return false;
  return x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1) && x.size(-1) > 0;
}

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (!takes_own_linear(x, weight, bias)) return at::linear(x, weight, bias);
  const int64_t in = weight.size(1), out = weight.size(0), rows = x.numel() / in;
  // Inference tensors have no version counter, so a packed copy could not tell when they change.
  if (detail::takes_packed_kernel(rows) && !weight.is_inference()) return detail::packed_linear(x, weight, bias);
  if (rows > kFewRows) return at::linear(x, weight, bias);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  at::Tensor y = at::empty(shape, x.options());
  const float* xp = x.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  // Each task streams at least ~64 KB of weights, so small layers stay on one thread.
  const int64_t grain = std::max<int64_t>(2, (64 * 1024 / 4) / in);
  at::parallel_for(0, out, grain, [&](int64_t begin, int64_t end) {
    few_rows_times_weight(xp, rows, wp, bp, yp, in, out, begin, end);
  });
  return y;
}

void attend_over_ancestors(const AncestorAttention& a) {
  const int64_t tasks = a.rows * a.heads;
  at::Tensor scores = at::empty({tasks, a.length}, at::kFloat);
  float* sp = scores.data_ptr<float>();
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) { ancestor_scores(a, begin, end, sp); });
  at::Tensor weights = at::softmax(scores, -1);
  const float* wp = weights.data_ptr<float>();
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) { ancestor_values(a, begin, end, wp); });
}

at::Tensor attention(const at::Tensor& queries, const at::Tensor& keys, const at::Tensor& values,
                     const at::Tensor& bias, double dropout_p, bool train) {
  const bool mask_only = !bias.defined() || (bias.dim() == 4 && bias.size(1) == 1 && bias.size(2) == 1 &&
                                             (bias.size(0) == 1 || bias.size(0) == queries.size(0)));
  if ((train && dropout_p > 0) || !inference_float({&keys, &values}) || !inference_float({&queries, &bias}, false) ||
      queries.dim() != 4 || !mask_only || queries.size(2) > kFewRows || keys.sizes() != values.sizes() ||
      keys.size(0) != queries.size(0) ||
      keys.size(1) != queries.size(1) || keys.size(3) != queries.size(3)) {
    if (detail::takes_head_attention(queries, keys, values, bias, dropout_p, train))
      return detail::head_attention(queries, keys, values, bias, dropout_p, train);
    auto scores = at::matmul(queries, keys.transpose(-2, -1));
    if (bias.defined()) scores = scores + bias;
    auto weights = at::softmax(scores.to(at::kFloat), -1).to(queries.scalar_type());
    return at::matmul(slt::dropout(weights, dropout_p, train), values);
  }
  const int64_t batch = queries.size(0), heads = queries.size(1), group = queries.size(2), length = keys.size(2),
                dim = queries.size(3);
  auto q = queries.contiguous();
  auto mask = bias.defined() ? bias.reshape({bias.size(0), length}).contiguous() : at::Tensor();
  auto out = at::empty({batch, heads, group, dim}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = keys.data_ptr<float>();
  const float* vp = values.data_ptr<float>();
  const float* mp = mask.defined() ? mask.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  const int64_t tasks = batch * heads;
  at::Tensor scores = at::empty({tasks, group, length}, at::kFloat);
  float* sp = scores.data_ptr<float>();
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const float* row_bias = mp ? mp + (mask.size(0) == 1 ? 0 : task / heads) * length : nullptr;
      few_query_scores(qp + task * group * dim, kp + task * length * dim, row_bias, sp + task * group * length, group,
                       length, dim);
    }
  });
  at::Tensor weights = at::softmax(scores, -1);
  const float* wp = weights.data_ptr<float>();
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task)
      few_query_values(wp + task * group * length, vp + task * length * dim, op + task * group * dim, group, length,
                       dim);
  });
  return out;
}

at::Tensor log_softmax_rows(at::Tensor logits) {
  if (!inference_float({&logits}) || logits.dim() != 2) return at::log_softmax(logits, -1);
  const int64_t n = logits.size(1);
  float* p = logits.data_ptr<float>();
  at::parallel_for(0, logits.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) log_softmax_row(p + r * n, n);
  });
  return logits;
}

std::pair<at::Tensor, at::Tensor> top_k_per_row(const at::Tensor& x, int64_t k) {
  if (!(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 2 && k >= 1 && k <= x.size(1))) {
    auto top = at::topk(x, k, 1, true, true);
    return {std::get<0>(top), std::get<1>(top)};
  }
  auto rows = x.contiguous();
  const int64_t n = rows.size(1);
  auto values = at::empty({rows.size(0), k}, rows.options());
  auto indices = at::empty({rows.size(0), k}, rows.options().dtype(at::kLong));
  const float* xp = rows.data_ptr<float>();
  float* vp = values.data_ptr<float>();
  int64_t* ip = indices.data_ptr<int64_t>();
  at::parallel_for(0, rows.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) top_k_row(xp + r * n, n, k, vp + r * k, ip + r * k);
  });
  return {values, indices};
}

at::Tensor linear(const torch::nn::LinearImpl& layer, const at::Tensor& x) { return linear(x, layer.weight, layer.bias); }

}  // namespace slt
