#pragma once
// What the CPU kernels of core/src/model share: the tests of whether a kernel
// may take a tensor, and sixteen-float vectors. For kernel .cpp files only:
// it silences, for the rest of the file, GCC's warning that passing 64-byte
// vectors has another ABI without AVX-512, which never applies because every
// function taking them is always inlined.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <initializer_list>
#include <type_traits>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace slt::detail {

/// Whether the kernels may read these tensors directly: float32 on the CPU,
/// contiguous where `contiguous`. Undefined tensors (no bias) pass.
inline bool cpu_float(std::initializer_list<const at::Tensor*> tensors, bool contiguous = true) {
  for (const at::Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || (contiguous && !t->is_contiguous())) return false;
  }
  return true;
}

/// cpu_float, and outside autograd: the inference-only kernels may take them.
inline bool inference_float(std::initializer_list<const at::Tensor*> tensors, bool contiguous = true) {
  if (!cpu_float(tensors, contiguous)) return false;
  if (!at::GradMode::is_enabled()) return true;
  for (const at::Tensor* t : tensors)
    if (t->defined() && t->requires_grad()) return false;
  return true;
}

/// Runs task(t) for every t < tasks on ATen's threads, each thread taking the
/// next task as it finishes one: on a shared machine one core often runs
/// slower for a while, and parallel_for's fixed split then leaves the other
/// waiting at the end (15% of flash attention's samples were that wait).
template <class Task>
void for_each_task(int64_t tasks, const Task& task) {
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(tasks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) task(t);
  });
}

/// Calls body(std::integral_constant<int, R>{}) with R = min(count, kMax), so
/// that a kernel templated on its row count gets that count as a constant:
///   with_row_count<8>(rows - r, [&](auto n) { rows_times_panel<decltype(n)::value>(...); });
template <int kMax, class Body>
__attribute__((always_inline)) inline void with_row_count(int64_t count, Body&& body) {
  if constexpr (kMax > 1) {
    if (count < kMax) return with_row_count<kMax - 1>(count, body);
  }
  body(std::integral_constant<int, kMax>{});
}

// Sixteen floats; the compiler splits it into the vector registers each
// target has (one AVX-512, two AVX2, four SSE registers).
typedef float Vec16 __attribute__((vector_size(64)));
typedef int32_t VecI16 __attribute__((vector_size(64)));

__attribute__((always_inline)) inline Vec16 load16(const float* p) {
  Vec16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

__attribute__((always_inline)) inline void store16(float* p, Vec16 v) { __builtin_memcpy(p, &v, sizeof v); }

// Halving tree of vector adds (a scalar loop would be 15 dependent adds).
__attribute__((always_inline)) inline float sum16(Vec16 v) {
  typedef float Vec8 __attribute__((vector_size(32)));
  typedef float Vec4 __attribute__((vector_size(16)));
  Vec8 h8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
            __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  Vec4 h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

// exp of 16 floats: Cephes' expf (range reduction by ln 2, degree-6
// polynomial, 2^n from the exponent bits); inputs below -87.3 give 0.
__attribute__((always_inline)) inline Vec16 exp16(Vec16 x) {
  const Vec16 low = x < -87.3f ? (Vec16){} + 1.0f : (Vec16){};
  x = x < -87.3f ? (Vec16){} - 87.3f : x;
  x = x > 88.3f ? (Vec16){} + 88.3f : x;
  Vec16 fx = x * 1.44269504088896341f + 0.5f;
  VecI16 n = __builtin_convertvector(fx, VecI16);
  n -= __builtin_convertvector(__builtin_convertvector(n, Vec16) > fx, VecI16) & 1;  // floor
  fx = __builtin_convertvector(n, Vec16);
  x = x - fx * 0.693359375f - fx * -2.12194440e-4f;
  Vec16 y = ((((1.9875691500e-4f * x + 1.3981999507e-3f) * x + 8.3334519073e-3f) * x + 4.1665795894e-2f) * x +
             1.6666665459e-1f) * x + 5.0000001201e-1f;
  y = y * x * x + x + 1.0f;
  Vec16 scale;
  VecI16 bits = (n + 127) << 23;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return low > 0.0f ? (Vec16){} : y * scale;
}

/// What a log-softmax over one row needs: its largest value, log(sum of
/// exp(x - max)) (the vectorised exp16 over whole vectors, expf over the
/// tail), and the plain sum of the row, which costs nothing in the max pass
/// (the label-smoothing term; dropped by callers that do not read it).
struct RowLogSumExp {
  float max, log_sum, sum;
};

__attribute__((always_inline)) inline RowLogSumExp row_log_sum_exp(const float* x, int64_t n) {
  Vec16 most = (Vec16){} - std::numeric_limits<float>::infinity(), total = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const Vec16 v = load16(x + i);
    most = v > most ? v : most;
    total += v;
  }
  float max = most[0];
  for (int lane = 1; lane < 16; ++lane) max = std::max(max, most[lane]);
  float sum = sum16(total);
  for (; i < n; ++i) {
    max = std::max(max, x[i]);
    sum += x[i];
  }
  Vec16 exps = {};
  for (i = 0; i + 16 <= n; i += 16) exps += exp16(load16(x + i) - max);
  float exp_sum = sum16(exps);
  for (; i < n; ++i) exp_sum += std::exp(x[i] - max);
  return {max, std::log(exp_sum), sum};
}

// tanh of 16 floats through exp16: 1 - 2 / (exp(2u) + 1), exact in the limits.
__attribute__((always_inline)) inline Vec16 tanh16(Vec16 u) { return 1.0f - 2.0f / (exp16(2.0f * u) + 1.0f); }

}  // namespace slt::detail
