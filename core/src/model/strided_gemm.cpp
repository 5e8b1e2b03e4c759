#include "strided_gemm.h"

#include <algorithm>
#include <vector>

#include "panel_kernel.h"

namespace slt::detail {

namespace {

__attribute__((target("arch=x86-64-v4"))) void gemm_avx512(MatrixView a, MatrixView b, float* c, int64_t ldc,
                                                          int64_t m, int64_t n, int64_t k) {
  thread_local std::vector<float> panel;  // kept: the heads of attention follow one another on a thread
  panel.resize(static_cast<size_t>(k * kPanelWidth));
  for (int64_t col = 0; col < n; col += kPanelWidth) {
    const int64_t cols = std::min(kPanelWidth, n - col);
    pack_panel(b, col, cols, k, panel.data());
    rows_times_one_panel(a, m, k, panel.data(), nullptr, c + col, ldc, cols);
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
