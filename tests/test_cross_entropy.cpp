// slt::cross_entropy against ATen's cross_entropy: the loss and its gradient,
// with padding rows, label smoothing and a vocabulary that is not a multiple
// of the vector width.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <catch2/catch.hpp>

#include <cmath>

#include "slt/model/cross_entropy.h"

namespace {

constexpr int64_t kPad = 1;

// Logits with a spread like a trained model's (a few large values per row)
// and targets with some rows of padding.
std::pair<at::Tensor, at::Tensor> batch(int64_t rows, int64_t vocab) {
  at::manual_seed(7);
  auto logits = (at::randn({rows, vocab}) * 4).requires_grad_();
  auto targets = at::randint(0, vocab, {rows}, at::kLong);
  for (int64_t r = 0; r < rows; r += 3) targets[r] = kPad;
  return {logits, targets};
}

}  // namespace

TEST_CASE("cross_entropy equals ATen's, loss and gradient, with padding and label smoothing", "[loss]") {
  const int64_t vocab = GENERATE(7, 32, 1003);
  const double smoothing = GENERATE(0.0, 0.2);
  INFO("vocabulary " << vocab << ", smoothing " << smoothing);
  auto [logits, targets] = batch(23, vocab);
  auto loss = slt::cross_entropy(logits, targets, kPad, smoothing);
  auto expected = at::cross_entropy_loss(logits, targets, {}, at::Reduction::Mean, kPad, smoothing);
  CHECK(std::abs(loss.item<double>() - expected.item<double>()) < 1e-5 * std::abs(expected.item<double>()));
  auto grad = torch::autograd::grad({loss * 3}, {logits})[0];
  auto want = torch::autograd::grad({expected * 3}, {logits})[0];
  CHECK((grad - want).abs().max().item<double>() < 1e-6);
  CHECK(grad.select(0, 0).abs().max().item<double>() == 0);  // a padding row
}

TEST_CASE("cross_entropy with no target counted is NaN as ATen's mean, and a target out of range is an error", "[loss]") {
  auto [logits, targets] = batch(4, 9);
  CHECK(std::isnan(slt::cross_entropy(logits, at::full({4}, kPad, at::kLong), kPad, 0.1).item<double>()));
  targets[2] = 9;
  CHECK_THROWS_WITH(slt::cross_entropy(logits, targets, kPad, 0.1), Catch::Contains("out of bounds"));
}
