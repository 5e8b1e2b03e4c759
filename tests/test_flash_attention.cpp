// slt::flash_attention against the plain computation softmax(q kᵀ + mask) v in
// double precision: sizes that are and are not multiples of the kernel's
// blocks, strided inputs as a fused qkv projection leaves them, padded keys.
// The tolerance is float rounding: ATen's float path is off by 2-5e-6 here too.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include "slt/model/flash_attention.h"

namespace {

at::Tensor plain_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& padded) {
  auto scores = at::matmul(q.to(at::kDouble), k.to(at::kDouble).transpose(-1, -2));
  if (padded.defined())
    scores = scores.masked_fill(padded.view({padded.size(0), 1, 1, padded.size(1)}),
                                -std::numeric_limits<double>::infinity());
  return at::matmul(at::softmax(scores, -1), v.to(at::kDouble));
}

}  // namespace

TEST_CASE("flash_attention equals softmax(q k^T) v row by row", "[attention]") {
  at::manual_seed(3);
  const auto [batch, heads, queries, keys, dim] = GENERATE(std::make_tuple(1, 1, 5, 7, 16),
                                                             std::make_tuple(2, 3, 64, 256, 96),
                                                             std::make_tuple(2, 2, 130, 300, 96),
                                                             std::make_tuple(1, 2, 70, 33, 128),
                                                             std::make_tuple(1, 1, 3, 1000, 48));
  INFO(batch << "x" << heads << " heads, " << queries << " queries, " << keys << " keys, dim " << dim);
  // q, k and v as views of one [B, N, 3, H, D] projection, with scores of a
  // trained model's spread (a few keys stand out).
  auto qkv = at::randn({batch, std::max(queries, keys), 3, heads, dim}) * 0.6;
  auto q = qkv.select(2, 0).narrow(1, 0, queries).transpose(1, 2);
  auto k = qkv.select(2, 1).narrow(1, 0, keys).transpose(1, 2);
  auto v = qkv.select(2, 2).narrow(1, 0, keys).transpose(1, 2);
  if (!slt::flash_attention_supported(q, k, v)) {
    WARN("no AVX-512 here: flash_attention is not used");
    return;
  }
  auto got = slt::flash_attention(q, k, v);
  CHECK(got.is_contiguous());
  CHECK((got.to(at::kDouble) - plain_attention(q, k, v, {})).abs().max().item<double>() < 1e-5);

  // Padded keys: a different number at the end of each batch item, and one in the middle.
  auto padded = at::zeros({batch, keys}, at::kBool);
  for (int64_t b = 0; b < batch; ++b) padded[b].narrow(0, keys - 1 - b * (keys / 3), 1 + b * (keys / 3)).fill_(true);
  padded[0][keys / 2] = true;
  if (keys > 2) {
    auto masked = slt::flash_attention(q, k, v, padded);
    CHECK((masked.to(at::kDouble) - plain_attention(q, k, v, padded)).abs().max().item<double>() < 1e-5);
    CHECK(!at::allclose(masked, got));
  }
}

TEST_CASE("flash_attention refuses what it cannot take", "[attention]") {
  auto q = at::randn({1, 1, 4, 20});  // head size not a multiple of 16
  CHECK(!slt::flash_attention_supported(q, q, q));
  auto d = at::randn({1, 1, 4, 16}, at::kDouble);
  CHECK(!slt::flash_attention_supported(d, d, d));
}
