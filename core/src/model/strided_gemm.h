#pragma once
// A single-threaded float32 GEMM over matrices given by any strides, for many
// small products run side by side (attention's per-head products). OpenBLAS
// runs such a batch as one multi-threaded call per head, after ATen copies
// each transposed head view contiguous: at T5-small's 256 x 256 x 64 heads,
// 3-8x slower than this kernel on threads of its own.
#include <cstdint>

namespace slt::detail {

/// Element (i, j) at data[i * row_stride + j * col_stride].
struct MatrixView {
  const float* data;
  int64_t row_stride, col_stride;

  MatrixView transposed() const { return {data, col_stride, row_stride}; }
};

/// Whether strided_gemm runs here (a CPU with AVX-512, x86-64-v4).
bool strided_gemm_available();

/// c[i * ldc + j] = sum over l < k of a(i, l) * b(l, j), for i < m and j < n.
/// Packs b into a thread-local buffer of 32-column panels, then multiplies
/// eight rows of a at a time against each panel.
void strided_gemm(MatrixView a, MatrixView b, float* c, int64_t ldc, int64_t m, int64_t n, int64_t k);

}  // namespace slt::detail
