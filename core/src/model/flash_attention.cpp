#include "slt/model/flash_attention.h"

#include <ATen/ATen.h>

#include <limits>
#include <vector>

#include "panel_kernel.h"

namespace slt {

namespace {

using detail::exp16;
using detail::kPanelWidth;
using detail::load16;
using detail::MatrixView;
using detail::store16;
using detail::sum16;
using detail::Vec16;
using detail::with_row_count;

// Query rows per task, and keys per step of the recurrence: one block's scores
// (64 x 256 floats, 64 KB) stay in L2 between the three passes over them.
constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 256;
// Rows of probabilities per pass over the values, and value vectors per row
// (96 floats): 4 x 6 accumulators and the 6 value registers fit in 32.
constexpr int kProbabilityRows = 4;
constexpr int kValueVectors = 6;
constexpr float kInf = std::numeric_limits<float>::infinity();

// One (batch, head)'s keys as kPanelWidth-key panels [D][32], its values as
// contiguous rows, and an additive bias per key: 0, or -inf for keys that are
// padding (given, or past Nk up to the panel boundary).
struct PackedHead {
  std::vector<float> key_panels, values, key_bias;
};

PackedHead pack_head(const at::Tensor& k, const at::Tensor& v, const bool* padded, int64_t keys_padded) {
  const int64_t keys = k.size(0), dim = k.size(1);
  PackedHead head;
  head.key_panels.resize(static_cast<size_t>(keys_padded * dim));
  const MatrixView keys_transposed{k.data_ptr<float>(), 1, k.stride(0)};
  for (int64_t col = 0; col < keys_padded; col += kPanelWidth)
    detail::pack_panel(keys_transposed, col, std::min(kPanelWidth, keys - col), dim,
                       head.key_panels.data() + col * dim);
  head.values.assign(static_cast<size_t>(keys_padded * dim), 0.0f);
  const float* vp = v.data_ptr<float>();
  for (int64_t j = 0; j < keys; ++j) std::copy_n(vp + j * v.stride(0), dim, head.values.data() + j * dim);
  head.key_bias.assign(static_cast<size_t>(keys_padded), -kInf);
  for (int64_t j = 0; j < keys; ++j) head.key_bias[static_cast<size_t>(j)] = padded && padded[j] ? -kInf : 0.0f;
  return head;
}

// Turns one block's scores (rows x cols, row stride kKeyBlock) into exp(s -
// running max), and updates each row's running maximum and sum; `rescale`
// gets the factor the row's earlier output must be multiplied by.
__attribute__((target("arch=x86-64-v4"))) void block_softmax(float* scores, int64_t rows, int64_t cols,
                                                            float* row_max, float* row_sum, float* rescale) {
  for (int64_t r = 0; r < rows; ++r) {
    float* s = scores + r * kKeyBlock;
    Vec16 most = Vec16{} - kInf;
    for (int64_t j = 0; j < cols; j += 16) {
      const Vec16 x = load16(s + j);
      most = x > most ? x : most;
    }
    float block_max = most[0];
    for (int lane = 1; lane < 16; ++lane) block_max = std::max(block_max, most[lane]);
    const float new_max = std::max(row_max[r], block_max);
    if (new_max == -kInf) {  // every key so far is padding: nothing to weigh yet
      std::fill(s, s + cols, 0.0f);
      rescale[r] = 1.0f;
      continue;
    }
    Vec16 total{};
    for (int64_t j = 0; j < cols; j += 16) {
      const Vec16 e = exp16(load16(s + j) - new_max);
      store16(s + j, e);
      total += e;
    }
    rescale[r] = std::exp(row_max[r] - new_max);  // 0 for the first block
    row_sum[r] = row_sum[r] * rescale[r] + sum16(total);
    row_max[r] = new_max;
  }
}

// out[r, c] = out[r, c] * rescale[r] + sum over j < cols of p[r, j] * v[j, c]
// for r < kRows and the kVectors * 16 columns from c0.
template <int kRows, int kVectors>
__attribute__((always_inline)) inline void probabilities_times_values(const float* p, int64_t cols, const float* v,
                                                                      int64_t dim, float* out,
                                                                      const float* rescale) {
  Vec16 acc[kRows][kVectors];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kVectors; ++c) acc[r][c] = load16(out + r * dim + 16 * c) * rescale[r];
  for (int64_t j = 0; j < cols; ++j) {
    Vec16 values[kVectors];
    for (int c = 0; c < kVectors; ++c) values[c] = load16(v + j * dim + 16 * c);
    for (int r = 0; r < kRows; ++r) {
      // A scalar operand: one broadcast load, where `Vec16{} + x` added 0 first
      // (0 + x is not x for x = -0.0), an extra instruction per broadcast.
      const float weight = p[r * kKeyBlock + j];
      for (int c = 0; c < kVectors; ++c) acc[r][c] += weight * values[c];
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kVectors; ++c) store16(out + r * dim + 16 * c, acc[r][c]);
}

// Query rows [first, first + rows) of one head against all its keys; out
// points at row `first` of the head's [Nq, D] output.
__attribute__((target("arch=x86-64-v4"))) void attend_block(const float* q, int64_t q_stride, int64_t rows,
                                                           const PackedHead& head, int64_t keys_padded,
                                                           int64_t dim, float* out) {
  thread_local std::vector<float> scratch;  // kept: a thread takes block after block
  scratch.resize(static_cast<size_t>(kQueryBlock * (kKeyBlock + dim + 3)));
  float* scores = scratch.data();
  float* acc = scores + kQueryBlock * kKeyBlock;
  float* row_max = acc + kQueryBlock * dim;
  float* row_sum = row_max + kQueryBlock;
  float* rescale = row_sum + kQueryBlock;
  std::fill(acc, acc + rows * dim, 0.0f);
  std::fill(row_max, row_max + rows, -kInf);
  std::fill(row_sum, row_sum + rows, 0.0f);
  const MatrixView queries{q, q_stride, 1};
  for (int64_t key0 = 0; key0 < keys_padded; key0 += kKeyBlock) {
    const int64_t cols = std::min(kKeyBlock, keys_padded - key0);
    for (int64_t col = 0; col < cols; col += kPanelWidth)
      detail::rows_times_one_panel(queries, rows, dim, head.key_panels.data() + (key0 + col) * dim,
                                   head.key_bias.data() + key0 + col, scores + col, kKeyBlock, kPanelWidth);
    block_softmax(scores, rows, cols, row_max, row_sum, rescale);
    const float* values = head.values.data() + key0 * dim;
    for (int64_t r = 0; r < rows; r += kProbabilityRows)
      for (int64_t c0 = 0; c0 < dim; c0 += 16 * kValueVectors)
        with_row_count<kProbabilityRows>(rows - r, [&](auto row_count) __attribute__((always_inline)) {
          with_row_count<kValueVectors>((dim - c0) / 16, [&](auto vectors) __attribute__((always_inline)) {
            probabilities_times_values<decltype(row_count)::value, decltype(vectors)::value>(
                scores + r * kKeyBlock, cols, values + c0, dim, acc + r * dim + c0, rescale + r);
          });
        });
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float inverse = 1.0f / row_sum[r];
    for (int64_t c = 0; c < dim; ++c) out[r * dim + c] = acc[r * dim + c] * inverse;
  }
}

}  // namespace

bool flash_attention_supported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  static const bool avx512 = __builtin_cpu_supports("x86-64-v4");
  if (!avx512 || q.dim() != 4 || k.dim() != 4 || k.sizes() != v.sizes()) return false;
  for (const at::Tensor* t : {&q, &k, &v})
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || t->stride(3) != 1) return false;
  const int64_t dim = q.size(3);
  return k.size(0) == q.size(0) && k.size(1) == q.size(1) && k.size(3) == dim && dim % 16 == 0 && dim > 0 &&
         dim <= 256 && k.size(2) > 0;
}

at::Tensor flash_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& key_padding) {
  TORCH_CHECK(flash_attention_supported(q, k, v), "flash_attention: unsupported tensors");
  const int64_t batch = q.size(0), heads = q.size(1), queries = q.size(2), keys = k.size(2), dim = q.size(3);
  const int64_t keys_padded = (keys + kPanelWidth - 1) / kPanelWidth * kPanelWidth;
  at::Tensor padded;
  if (key_padding.defined()) {
    TORCH_CHECK(key_padding.dim() == 2 && key_padding.size(0) == batch && key_padding.size(1) == keys,
                "flash_attention: key_padding must be [B, Nk]");
    padded = key_padding.to(at::kBool).contiguous();
  }
  std::vector<PackedHead> packed(static_cast<size_t>(batch * heads));
  detail::for_each_task(batch * heads, [&](int64_t t) {
    const int64_t b = t / heads, h = t % heads;
    packed[static_cast<size_t>(t)] =
        pack_head(k[b][h], v[b][h], padded.defined() ? padded[b].data_ptr<bool>() : nullptr, keys_padded);
  });
  at::Tensor out = at::empty({batch, heads, queries, dim}, q.options());
  const int64_t blocks = (queries + kQueryBlock - 1) / kQueryBlock;
  float* op = out.data_ptr<float>();
  const float* qp = q.data_ptr<float>();
  detail::for_each_task(batch * heads * blocks, [&](int64_t task) {
    const int64_t head = task / blocks, first = (task % blocks) * kQueryBlock;
    const int64_t b = head / heads, h = head % heads;
    attend_block(qp + b * q.stride(0) + h * q.stride(1) + first * q.stride(2), q.stride(2),
                 std::min(kQueryBlock, queries - first), packed[static_cast<size_t>(head)], keys_padded, dim,
                 op + (head * queries + first) * dim);
  });
  return out;
}

}  // namespace slt
