// One training step (batch 8, 256 source frames, 32 target tokens) split into
// data (batch assembly), forward, backward and optimizer time, for the
// T5 v1.1-small shape and the Tarrés shape.
//   bench_train_step [--steps 3] [--profile 1: time per LibTorch operator, full-length steps]
//                    [--only t5-small or tarres]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "bench_common.h"
#include "operator_timer.h"
#include "slt/data/loader.h"
#include "slt/runtime/log.h"
#include "slt/runtime/threads.h"
#include "slt/train/optim.h"

int main(int argc, char** argv) {
  int steps = 3;
  bool profile = false;
  std::string only;  // t5-small or tarres: one model (for profilers); default both
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--steps") steps = std::stoi(argv[i + 1]);
    if (std::string(argv[i]) == "--only") only = slt_bench::only_flag(argv[i + 1], {"t5-small", "tarres"});
    if (std::string(argv[i]) == "--profile") profile = std::string(argv[i + 1]) != "0";
  }
  slt::setup_logging("warn");
  slt::configure_threads(std::nullopt);  // as a run: every usable CPU, or OMP_NUM_THREADS
  const int64_t batch = 8, source = 256, target = 32;
  std::printf("batch %lld, %lld source frames (768-d), %lld target tokens, %d steps, %d threads\n",
              static_cast<long long>(batch), static_cast<long long>(source), static_cast<long long>(target), steps,
              at::get_num_threads());
  for (const std::string name : {"t5-small", "tarres"}) {
    if (!only.empty() && name != only) continue;
    auto dir = std::filesystem::temp_directory_path() / ("slt-bench-" + name);
    auto model = name == "t5-small" ? slt_bench::t5_small(dir) : slt_bench::tarres(dir);
    model->module().train();
    auto optimizer = slt::make_adamw(model->module(), 5e-4, 0.1);
    int64_t vocab = model->special_tokens().vocab_size;
    // Full length (every item 256 frames, as the reference's benchmark) and mixed lengths (256 down to 200).
    for (const bool full_length : {true, false}) {
      std::vector<slt::FeatureItem> items;
      for (int64_t i = 0; i < batch; ++i)
        items.push_back({i, "item", at::randn({full_length ? source : source - 8 * i, 768}), "label"});
      double data = 0, forward = 0, backward = 0, step = 0;
      std::vector<double> step_seconds;
      for (int s = 0; s <= steps; ++s) {  // step 0 warms up
        auto t0 = std::chrono::steady_clock::now();
        slt::FeatureBatch fb = slt::FeatureLoader::collate(items, nullptr, -1);
        slt::Batch b{fb.features, fb.attention_mask, at::randint(4, vocab, {batch, target}, at::kLong)};
        auto t1 = std::chrono::steady_clock::now();
        auto loss = model->forward(b).loss;
        auto t2 = std::chrono::steady_clock::now();
        slt::release_gradients(*optimizer);
        loss.backward();
        auto t3 = std::chrono::steady_clock::now();
        slt::clip_grad_norm(model->module(), 1.0);
        optimizer->step();
        auto t4 = std::chrono::steady_clock::now();
        if (s == 0) {
          if (profile && full_length) slt_bench::install_operator_timer();
          continue;
        }
        data += std::chrono::duration<double>(t1 - t0).count();
        forward += std::chrono::duration<double>(t2 - t1).count();
        backward += std::chrono::duration<double>(t3 - t2).count();
        step += std::chrono::duration<double>(t4 - t3).count();
        step_seconds.push_back(std::chrono::duration<double>(t4 - t0).count());
      }
      double total = data + forward + backward + step;
      if (profile && full_length) {
        at::clearCallbacks();
        slt_bench::print_operator_times(total, 16);
        slt_bench::g_times.by_name.clear();
      }
      // The median step, as the reference's benchmark reports: one step slowed by
      // another tenant of a shared machine does not move it.
      std::sort(step_seconds.begin(), step_seconds.end());
      const size_t n = step_seconds.size();
      const double median = n % 2 ? step_seconds[n / 2] : (step_seconds[n / 2 - 1] + step_seconds[n / 2]) / 2;
      std::printf("%-9s %-5s %7.3f s/step (median; mean %.3f): data %5.1f%%, forward %5.1f%%, backward %5.1f%%, "
                  "optimizer %5.1f%%\n",
                  name.c_str(), full_length ? "full" : "mixed", median, total / steps, 100 * data / total,
                  100 * forward / total, 100 * backward / total, 100 * step / total);
      slt_bench::print_measurement({{"bench", "train_step"}, {"model", name}, {"batch", batch},
                                    {"full_length", full_length}, {"seconds", median}, {"mean_seconds", total / steps},
                                    {"tokens_per_s", static_cast<double>(batch * target) / median}});
    }
    std::filesystem::remove_all(dir);
  }
  return 0;
}
