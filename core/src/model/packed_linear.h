#pragma once
// x W^T + b for up to a few hundred rows (one decoding step of a batch's
// beams) from a copy of W packed once for the kernel. GEMM libraries repack
// the weight on every call: at 80 rows OpenBLAS spends a third of its time
// packing and clearing; at 5 rows, more than multiplying. The packed copy is made on
// first use, kept while the weight lives, and remade when the weight is
// written (its version counter or storage changes).
#include <ATen/core/Tensor.h>

namespace slt::detail {

/// Whether x [rows, in] may take packed_linear here: this CPU has AVX-512
/// (x86-64-v4), rows is at most kPackedRowsMax, and enable_packed_linear has
/// not turned the kernel off.
bool takes_packed_kernel(int64_t rows);

/// Above this many rows the GEMM library's blocking wins.
constexpr int64_t kPackedRowsMax = 256;

/// x W^T + b for contiguous float32 x [..., in], weight [out, in] (not an
/// inference tensor), bias [out] or undefined. The caller checks
/// takes_packed_kernel and the dtypes.
at::Tensor packed_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace slt::detail
