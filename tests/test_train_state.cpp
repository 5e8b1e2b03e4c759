// The training state on its own: the reference's best-model and early-stopping
// rules, its checkpoint entry (resume), and finding the checkpoint to resume.
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include <ATen/ATen.h>
#include <ATen/core/Dict.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <catch2/catch.hpp>

#include "slt/errors.h"
#include "slt/io/tensor_io.h"
#include "slt/train/checkpoint.h"
#include "slt/train/optim.h"
#include "slt/train/train_state.h"
#include "test_helpers.h"

using slt::TrainState;
using slt_test::TempDir;

namespace {

// Serialised and read back as a checkpoint file would be.
c10::IValue through_file(const c10::IValue& value) {
  TempDir dir;
  auto bytes = slt::serialize_pt(value);
  slt::write_file_atomically((dir.path() / "x.pth").string(), bytes.data(), bytes.size());
  return slt::load_pt((dir.path() / "x.pth").string());
}

c10::IValue checkpoint_with(const std::string& key, const c10::IValue& value) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert(key, value);
  return dict;
}

}  // namespace

TEST_CASE("patience resets on improvement and counts down otherwise - the run stops at 0", "[train]") {
  TrainState state;
  state.patience = 2;
  state.start_epoch();
  auto first = state.close_epoch(5.0, 2, true);
  CHECK(first.is_best);
  CHECK_FALSE(first.stop);
  CHECK(state.best_bleu == 5.0);
  CHECK(state.patience == 2);

  state.start_epoch();
  auto worse = state.close_epoch(4.0, 2, true);
  CHECK_FALSE(worse.is_best);
  CHECK(state.patience == 1);
  CHECK(state.best_bleu == 5.0);

  state.start_epoch();
  auto equal = state.close_epoch(5.0, 2, true);  // equal is no improvement
  CHECK_FALSE(equal.is_best);
  CHECK(equal.stop);
  CHECK(state.stopped_early);
  CHECK(state.patience == 0);

  SECTION("without early stopping the run goes on with patience at 0") {
    TrainState other;
    other.patience = 1;
    other.start_epoch();
    other.close_epoch(1.0, 1, false);
    other.start_epoch();
    auto verdict = other.close_epoch(0.5, 1, false);
    CHECK_FALSE(verdict.stop);
    CHECK_FALSE(other.stopped_early);
    CHECK(other.patience == 0);
  }
}

TEST_CASE("step evaluations count for patience - the epoch's model is best only if it beats them", "[train]") {
  TrainState state;
  state.patience = 3;
  state.best_bleu = 5.0;
  state.start_epoch();
  CHECK(state.best_bleu_at_epoch_start == 5.0);
  CHECK_FALSE(state.record_step_evaluation(4.0));
  CHECK(state.record_step_evaluation(6.0));  // written as best_model.pth by the engine
  CHECK(state.best_bleu == 6.0);
  state.patience = 1;
  auto verdict = state.close_epoch(5.5, 3, true);  // above the epoch's start, below its step evaluation
  CHECK(state.patience == 3);
  CHECK_FALSE(verdict.is_best);
  CHECK(state.best_bleu == 6.0);

  state.start_epoch();
  CHECK(state.record_step_evaluation(6.5));
  CHECK(state.close_epoch(7.0, 3, true).is_best);
  CHECK(state.best_bleu == 7.0);
}

TEST_CASE("a resumed epoch keeps its running averages and the best at its start", "[train]") {
  TrainState state;
  state.best_bleu = 3.0;
  state.best_bleu_at_epoch_start = 2.0;
  state.batches_done = 4;
  state.epoch_loss.update(2.0, 4);
  state.start_epoch();
  CHECK(state.best_bleu_at_epoch_start == 2.0);
  CHECK(state.epoch_loss.count == 4);
  state.batches_done = 0;
  state.start_epoch();
  CHECK(state.best_bleu_at_epoch_start == 3.0);
  CHECK(state.epoch_loss.count == 0);
}

TEST_CASE("the checkpoint's training state restores every field and the random generator", "[train]") {
  TrainState saved;
  saved.epoch = 3;
  saved.batches_done = 7;
  saved.optimizer_steps = 42;
  saved.best_bleu = 12.5;
  saved.best_bleu_at_epoch_start = 11.0;
  saved.patience = 4;
  saved.epoch_loss.update(1.5, 7);
  saved.epoch_acc.update(33.0, 28);
  saved.metrics_bytes = 1234;
  at::manual_seed(7);
  at::randn({3});
  auto entry = slt::train_state_entry(saved, /*epoch_finished=*/false, "some_model", at::kCPU);
  at::Tensor expected_next = at::randn({5});

  at::manual_seed(99);
  TrainState restored;
  CHECK(slt::restore_train_state(through_file(checkpoint_with("slt", entry)), "checkpoint-00003.pth", restored, at::kCPU));
  CHECK(restored.epoch == 3);
  CHECK(restored.batches_done == 7);
  CHECK(restored.optimizer_steps == 42);
  CHECK(restored.best_bleu == 12.5);
  CHECK(restored.best_bleu_at_epoch_start == 11.0);
  CHECK(restored.patience == 4);
  CHECK_FALSE(restored.stopped_early);
  CHECK(restored.epoch_loss.total == saved.epoch_loss.total);
  CHECK(restored.epoch_acc.count == 28);
  CHECK(restored.metrics_bytes == 1234);
  CHECK(at::equal(at::randn({5}), expected_next));

  SECTION("a finished epoch resumes at the next one, from its first batch") {
    TrainState next;
    slt::restore_train_state(through_file(checkpoint_with("slt", slt::train_state_entry(saved, true, "m", at::kCPU))),
                             "x.pth", next, at::kCPU);
    CHECK(next.epoch == 4);
    CHECK(next.batches_done == 0);
  }
}

TEST_CASE("a reference checkpoint resumes after its epoch - a newer state version is refused", "[train]") {
  TrainState state;
  CHECK_FALSE(slt::restore_train_state(checkpoint_with("epoch", int64_t{4}), "best.pth", state, at::kCPU));
  CHECK(state.epoch == 5);
  TrainState by_name;
  CHECK_FALSE(slt::restore_train_state(checkpoint_with("model", int64_t{0}), "checkpoint-00007.pth", by_name, at::kCPU));
  CHECK(by_name.epoch == 8);

  c10::impl::GenericDict future(c10::StringType::get(), c10::AnyType::get());
  future.insert("version", slt::kTrainStateVersion + 1);
  TrainState refused;
  CHECK_THROWS_WITH(slt::restore_train_state(checkpoint_with("slt", future), "new.pth", refused, at::kCPU),
                    Catch::Contains("newer slt"));
}

TEST_CASE("the newest checkpoint is resumed - unfinished writes are removed - common.resume is checked", "[train]") {
  TempDir dir;
  CHECK_FALSE(slt::checkpoint_to_resume(dir.path(), std::nullopt));
  dir.write("checkpoint-00002.pth", "x");
  dir.write("checkpoint-00010.pth", "x");
  dir.write("checkpoint-00011.pth.tmp.123", "half");
  slt::remove_unfinished_writes(dir.path());
  CHECK_FALSE(std::filesystem::exists(dir.path() / "checkpoint-00011.pth.tmp.123"));
  CHECK(slt::checkpoint_to_resume(dir.path(), std::nullopt)->filename() == "checkpoint-00010.pth");
  CHECK(slt::checkpoint_to_resume("/nowhere", (dir.path() / "checkpoint-00002.pth").string())->filename() ==
        "checkpoint-00002.pth");
  TempDir empty;
  CHECK_THROWS_AS(slt::checkpoint_to_resume(dir.path(), empty.path().string()), slt::UserError);
  CHECK_THROWS_WITH(slt::checkpoint_to_resume(dir.path(), (dir.path() / "nope.pth").string()),
                    Catch::Contains("no such checkpoint"));
}

TEST_CASE("AdamW's state survives a checkpoint in PyTorch's layout", "[train]") {
  torch::nn::Linear layer(3, 2);
  auto optimizer = slt::make_adamw(*layer, 0.01, 0.1);
  layer->forward(at::randn({4, 3})).sum().backward();
  optimizer->step();
  auto saved = through_file(slt::adamw_state_dict(*optimizer));
  auto fresh = slt::make_adamw(*layer, 0.5, 0.1);
  slt::load_adamw_state(*fresh, saved, "saved.pth");
  CHECK(static_cast<torch::optim::AdamWOptions&>(fresh->param_groups()[0].options()).lr() == Approx(0.01));
  for (const auto& p : layer->parameters()) {
    auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
    auto& before = static_cast<torch::optim::AdamWParamState&>(*optimizer->state().at(key));
    auto& after = static_cast<torch::optim::AdamWParamState&>(*fresh->state().at(key));
    CHECK(after.step() == before.step());
    CHECK(at::equal(after.exp_avg(), before.exp_avg()));
    CHECK(at::equal(after.exp_avg_sq(), before.exp_avg_sq()));
  }
}

TEST_CASE("make_adamw's fused step follows LibTorch's AdamW over steps, groups and a reloaded state", "[train]") {
  // Sizes that leave vector tails, two groups (decay and none), a parameter
  // without a gradient, and a learning-rate change between steps.
  at::manual_seed(11);
  torch::nn::Linear fused_layer(torch::nn::LinearOptions(37, 19)), plain_layer(torch::nn::LinearOptions(37, 19));
  torch::nn::Linear idle(2, 2);
  fused_layer->register_module("idle", idle);
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : fused_layer->named_parameters(false)) plain_layer->named_parameters()[p.key()].copy_(p.value());
  }
  auto fused = slt::make_adamw(*fused_layer, 0.01, 0.1);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{plain_layer->weight},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.01).weight_decay(0.1)));
  groups.emplace_back(std::vector<at::Tensor>{plain_layer->bias},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.01).weight_decay(0)));
  torch::optim::AdamW plain(groups, torch::optim::AdamWOptions(0.01));
  for (int step = 0; step < 4; ++step) {
    auto x = at::randn({5, 37});
    for (auto [layer, optimizer] : {std::pair{&fused_layer, static_cast<torch::optim::Optimizer*>(fused.get())},
                                    std::pair{&plain_layer, static_cast<torch::optim::Optimizer*>(&plain)}}) {
      optimizer->zero_grad();
      (*layer)->forward(x).pow(2).sum().backward();
      if (step == 2)
        for (auto& group : optimizer->param_groups())
          static_cast<torch::optim::AdamWOptions&>(group.options()).lr(0.003);
      const auto version = (*layer)->weight._version();
      optimizer->step();
      CHECK((*layer)->weight._version() > version);  // an in-place write, as far as anything caching it knows
    }
    INFO("step " << step);
    CHECK((fused_layer->weight - plain_layer->weight).abs().max().item<double>() < 1e-6);
    CHECK((fused_layer->bias - plain_layer->bias).abs().max().item<double>() < 1e-6);
  }
  CHECK(!idle->weight.grad().defined());
  CHECK(fused->state().count(c10::guts::to_string(idle->weight.unsafeGetTensorImpl())) == 0);
  auto& state = static_cast<torch::optim::AdamWParamState&>(
      *fused->state().at(c10::guts::to_string(fused_layer->weight.unsafeGetTensorImpl())));
  auto& expected = static_cast<torch::optim::AdamWParamState&>(
      *plain.state().at(c10::guts::to_string(plain_layer->weight.unsafeGetTensorImpl())));
  CHECK(state.step() == 4);
  CHECK((state.exp_avg() - expected.exp_avg()).abs().max().item<double>() < 1e-6);
  CHECK((state.exp_avg_sq() - expected.exp_avg_sq()).abs().max().item<double>() < 1e-6);
}

TEST_CASE("release_gradients, then make_adamw's step, equals zero_grad then LibTorch's AdamW, for a parameter the backward skips too", "[train]") {
  at::manual_seed(12);
  // A layer with a second one registered inside it; from step 2 the second is
  // left out of the loss, so it gets no gradient.
  struct Net {
    torch::nn::Linear first{6, 4}, second{6, 3};
    Net() { first->register_module("second", second); }
    at::Tensor loss(const at::Tensor& x, int step) {
      auto y = first->forward(x).pow(2).sum();
      return step < 2 ? y + second->forward(x).pow(2).sum() : y;
    }
  };
  Net released, zeroed;
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : released.first->named_parameters()) zeroed.first->named_parameters()[p.key()].copy_(p.value());
  }
  auto fused = slt::make_adamw(*released.first, 0.01, 0.1);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<at::Tensor> weights, biases;
  for (const auto& p : zeroed.first->named_parameters())
    (slt::is_no_decay_parameter(p.key()) ? biases : weights).push_back(p.value());
  groups.emplace_back(weights, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.01).weight_decay(0.1)));
  groups.emplace_back(biases, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.01).weight_decay(0)));
  torch::optim::AdamW plain(groups, torch::optim::AdamWOptions(0.01));
  for (int step = 0; step < 4; ++step) {
    INFO("step " << step);
    auto x = at::randn({5, 6});
    slt::release_gradients(*fused);
    CHECK(!released.first->weight.grad().defined());
    released.loss(x, step).backward();
    fused->step();
    plain.zero_grad();
    zeroed.loss(x, step).backward();
    plain.step();
    auto a = released.first->parameters(), b = zeroed.first->parameters();
    for (size_t i = 0; i < a.size(); ++i) CHECK((a[i] - b[i]).abs().max().item<double>() < 1e-6);
  }
  // The skipped layer was still stepped (weight decay, decaying moments), as with zeroed gradients.
  auto& state = static_cast<torch::optim::AdamWParamState&>(
      *fused->state().at(c10::guts::to_string(released.second->weight.unsafeGetTensorImpl())));
  CHECK(state.step() == 4);
}
