#include "strided_gemm.h"

#include <algorithm>
#include <vector>

#include "kernel_support.h"

namespace slt::detail {

namespace {

constexpr int64_t kPanelWidth = 32;  // two AVX-512 registers of output columns
constexpr int kRowsPerPass = 8;

// Rows [r0, r0 + kRows) of c for one panel: an outer product per l.
template <int kRows>
__attribute__((always_inline)) inline void rows_times_panel(MatrixView a, int64_t r0, int64_t k, const float* panel,
                                                            float* c, int64_t ldc, int64_t cols) {
  Vec16 lo[kRows], hi[kRows];
  const float* row[kRows];
  for (int r = 0; r < kRows; ++r) {
    lo[r] = hi[r] = Vec16{};
    row[r] = a.data + (r0 + r) * a.row_stride;
  }
  for (int64_t l = 0; l < k; ++l) {
    const Vec16 b0 = load16(panel + l * kPanelWidth), b1 = load16(panel + l * kPanelWidth + 16);
    for (int r = 0; r < kRows; ++r) {
      const Vec16 x = Vec16{} + row[r][l * a.col_stride];
      lo[r] += x * b0;
      hi[r] += x * b1;
    }
  }
  for (int r = 0; r < kRows; ++r) {
    float* out = c + (r0 + r) * ldc;
    if (cols == kPanelWidth) {
      store16(out, lo[r]);
      store16(out + 16, hi[r]);
      continue;
    }
    float full[kPanelWidth];
    store16(full, lo[r]);
    store16(full + 16, hi[r]);
    std::copy(full, full + cols, out);
  }
}

__attribute__((target("arch=x86-64-v4"))) void gemm_avx512(MatrixView a, MatrixView b, float* c, int64_t ldc,
                                                          int64_t m, int64_t n, int64_t k) {
  thread_local std::vector<float> packed;
  const int64_t panels = (n + kPanelWidth - 1) / kPanelWidth;
  packed.assign(static_cast<size_t>(panels * k * kPanelWidth), 0.0f);
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t cols = std::min(kPanelWidth, n - p * kPanelWidth);
    float* panel = packed.data() + p * k * kPanelWidth;
    for (int64_t l = 0; l < k; ++l) {
      const float* src = b.data + l * b.row_stride + p * kPanelWidth * b.col_stride;
      for (int64_t j = 0; j < cols; ++j) panel[l * kPanelWidth + j] = src[j * b.col_stride];
    }
  }
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t cols = std::min(kPanelWidth, n - p * kPanelWidth);
    const float* panel = packed.data() + p * k * kPanelWidth;
    float* cp = c + p * kPanelWidth;
    for (int64_t r = 0; r < m; r += kRowsPerPass) {
      with_row_count<kRowsPerPass>(m - r, [&](auto count) __attribute__((always_inline)) {
        rows_times_panel<decltype(count)::value>(a, r, k, panel, cp, ldc, cols);
      });
    }
  }
}

}  // namespace

bool strided_gemm_available() {
  static const bool avx512 = __builtin_cpu_supports("x86-64-v4");
  return avx512;
}

void strided_gemm(MatrixView a, MatrixView b, float* c, int64_t ldc, int64_t m, int64_t n, int64_t k) {
  gemm_avx512(a, b, c, ldc, m, n, k);
}

}  // namespace slt::detail
