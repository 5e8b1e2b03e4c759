// slt::dropout: torch's dropout semantics with a parallel counter-based mask.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <catch2/catch.hpp>

#include "slt/model/dropout.h"

TEST_CASE("dropout keeps 1 - p of the elements, scaled by 1 / (1 - p), and passes gradients through the mask",
          "[dropout]") {
  at::manual_seed(11);
  auto x = at::ones({1000, 1001}).requires_grad_();  // an odd count: the last hash is half used
  auto y = slt::dropout(x, 0.1, true);
  auto kept = y.ne(0);
  double kept_share = kept.to(at::kDouble).mean().item<double>();
  CHECK(kept_share == Approx(0.9).margin(0.002));  // 1e6 draws: the standard error is 3e-4
  CHECK(y.masked_select(kept).eq(1.0f / 0.9f).all().item<bool>());
  y.sum().backward();
  CHECK(x.grad().equal(y.detach()));  // d(x * noise)/dx = noise
  // Neighbouring elements are independent: both halves of each 64-bit hash are used.
  auto pairs = kept.view({-1}).narrow(0, 0, 1000000).view({-1, 2}).to(at::kDouble);
  double both = (pairs.select(1, 0) * pairs.select(1, 1)).mean().item<double>();
  CHECK(both == Approx(0.81).margin(0.003));
}

TEST_CASE("dropout masks follow the default generator's seed, whatever the thread count", "[dropout]") {
  auto x = at::randn({300, 300});
  const int threads = at::get_num_threads();
  at::manual_seed(5);
  at::set_num_threads(1);
  auto one_thread = slt::dropout(x, 0.3, true);
  auto next = slt::dropout(x, 0.3, true);
  at::manual_seed(5);
  at::set_num_threads(2);
  auto two_threads = slt::dropout(x, 0.3, true);
  at::set_num_threads(threads);
  CHECK(one_thread.equal(two_threads));
  CHECK(!next.equal(one_thread));  // each call draws a new seed
}

TEST_CASE("dropout is the identity outside training or at p = 0, and zero at p = 1", "[dropout]") {
  auto x = at::randn({4, 5});
  CHECK(slt::dropout(x, 0.5, false).is_same(x));
  CHECK(slt::dropout(x, 0.0, true).is_same(x));
  CHECK(slt::dropout(x, 1.0, true).eq(0).all().item<bool>());
  auto d = at::randn({64, 64}, at::kDouble);
  auto y = slt::dropout(d, 0.5, true);
  CHECK(y.scalar_type() == at::kDouble);
  CHECK((y.eq(0) | y.eq(2 * d)).all().item<bool>());
}
