// The optimisation pieces the engine uses: LR schedule and fp16 loss scaling.
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include <torch/nn/modules/linear.h>

#include "slt/train/optim.h"

#include <catch2/catch.hpp>

#include <cmath>

TEST_CASE("the learning rate warms up linearly, then decays along a half cosine to min_lr", "[optim]") {
  slt::LrSchedule schedule{1e-3, 1e-4, 10, 200};
  CHECK(schedule.at(0) == 0.0);
  CHECK(schedule.at(5) == Approx(5e-4).epsilon(1e-12));
  CHECK(schedule.at(10) == Approx(1e-3).epsilon(1e-12));
  CHECK(schedule.at(105) == Approx((1e-3 + 1e-4) / 2).epsilon(1e-12));
  CHECK(schedule.at(200) == Approx(1e-4).epsilon(1e-12));
  // Fractional epochs, as the engine passes them (step / steps_per_epoch + epoch).
  CHECK(schedule.at(10.25) == Approx(1e-4 + 9e-4 * 0.5 * (1 + std::cos(M_PI * 0.25 / 190))).epsilon(1e-12));
}

TEST_CASE("loss scaling skips overflowing steps, halves the scale and grows it after clean steps", "[optim]") {
  torch::nn::Linear layer(2, 1);
  slt::LossScaler scaler(true);
  CHECK(scaler.scale_value == 65536.0);
  auto loss = layer(torch::ones({1, 2})).sum();
  CHECK(scaler.scale(loss).item<double>() == Approx(loss.item<double>() * 65536.0));
  scaler.scale(loss).backward();
  CHECK(scaler.unscale(*layer));  // finite gradients come back unscaled
  CHECK(layer->weight.grad()[0][0].item<double>() == Approx(1.0));
  layer->weight.mutable_grad()[0][0].fill_(INFINITY);
  CHECK_FALSE(scaler.unscale(*layer));
  scaler.update(true);
  CHECK(scaler.scale_value == 32768.0);
  for (int64_t i = 0; i < slt::LossScaler::kGrowthInterval - 1; ++i) scaler.update(false);
  CHECK(scaler.scale_value == 32768.0);
  scaler.update(false);
  CHECK(scaler.scale_value == 65536.0);
  CHECK(scaler.growth_tracker == 0);

  slt::LossScaler disabled(false);
  CHECK(disabled.scale(loss).item<double>() == loss.item<double>());
  disabled.update(true);
  CHECK(disabled.scale_value == 65536.0);
}
