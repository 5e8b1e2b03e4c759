#pragma once
// The multiply at the heart of slt's two GEMMs (packed_linear.cpp: weights
// packed once; strided_gemm.cpp: attention's per-head products): b cut into
// panels of kPanelWidth columns stored [k][kPanelWidth], so that the kernel
// reads one contiguous stream, and up to kRowsPerPass rows of a multiplied
// against a panel at a time. For kernel .cpp files compiled with
// -ffp-contract=fast (a*b+c as one instruction), called from AVX-512 code.
#include <algorithm>
#include <cstdint>

#include "kernel_support.h"
#include "strided_gemm.h"

namespace slt::detail {

// Output columns per panel: two AVX-512 registers.
constexpr int64_t kPanelWidth = 32;
// Rows per pass over a panel: 8 rows x 2 registers of accumulators leave room
// for the panel's two registers and keep K = 1024 panels streaming from L2.
constexpr int kRowsPerPass = 8;

/// Columns [col0, col0 + cols) of b, every l < k, into out as [k][kPanelWidth];
/// the columns past `cols` are zeros.
inline void pack_panel(MatrixView b, int64_t col0, int64_t cols, int64_t k, float* out) {
  if (cols < kPanelWidth) std::fill(out, out + k * kPanelWidth, 0.0f);
  const float* first = b.data + col0 * b.col_stride;
  if (b.col_stride == 1) {  // rows of b are contiguous: copy them
    for (int64_t l = 0; l < k; ++l) std::copy_n(first + l * b.row_stride, cols, out + l * kPanelWidth);
    return;
  }
  for (int64_t j = 0; j < cols; ++j)  // read along l, where b is a transposed view
    for (int64_t l = 0; l < k; ++l) out[l * kPanelWidth + j] = first[j * b.col_stride + l * b.row_stride];
}

/// c[r, j] = bias[j] + sum over l < k of a(r, l) * panel[l, j], for r < kRows
/// and j < cols (bias may be null): an outer product per l, each value of a
/// broadcast against the panel's row.
template <int kRows>
__attribute__((always_inline)) inline void rows_times_panel(MatrixView a, int64_t k, const float* panel,
                                                            const float* bias, float* c, int64_t ldc, int64_t cols) {
  Vec16 lo[kRows], hi[kRows];
  for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = Vec16{};
  for (int64_t l = 0; l < k; ++l) {
    const Vec16 b0 = load16(panel + l * kPanelWidth), b1 = load16(panel + l * kPanelWidth + 16);
    for (int r = 0; r < kRows; ++r) {
      // A scalar operand: one broadcast load, where `Vec16{} + x` added 0 first
      // (0 + x is not x for x = -0.0), an extra instruction per broadcast.
      const float x = a.data[r * a.row_stride + l * a.col_stride];
      lo[r] += x * b0;
      hi[r] += x * b1;
    }
  }
  if (cols == kPanelWidth) {
    const Vec16 bias_lo = bias ? load16(bias) : Vec16{}, bias_hi = bias ? load16(bias + 16) : Vec16{};
    for (int r = 0; r < kRows; ++r) {
      store16(c + r * ldc, lo[r] + bias_lo);
      store16(c + r * ldc + 16, hi[r] + bias_hi);
    }
    return;
  }
  for (int r = 0; r < kRows; ++r) {
    float row[kPanelWidth];
    store16(row, lo[r]);
    store16(row + 16, hi[r]);
    for (int64_t j = 0; j < cols; ++j) c[r * ldc + j] = bias ? row[j] + bias[j] : row[j];
  }
}

/// Rows [0, m) of a times one panel into c (columns [0, cols)), kRowsPerPass
/// rows at a time.
__attribute__((always_inline)) inline void rows_times_one_panel(MatrixView a, int64_t m, int64_t k,
                                                                const float* panel, const float* bias, float* c,
                                                                int64_t ldc, int64_t cols) {
  for (int64_t r = 0; r < m; r += kRowsPerPass) {
    const MatrixView rows{a.data + r * a.row_stride, a.row_stride, a.col_stride};
    with_row_count<kRowsPerPass>(m - r, [&](auto count) __attribute__((always_inline)) {
      rows_times_panel<decltype(count)::value>(rows, k, panel, bias, c + r * ldc, ldc, cols);
    });
  }
}

}  // namespace slt::detail
