// SignHiera-base (random weights) on one 128-frame 224x224 window, as
// slt-extract runs it: seconds per window, achieved GFLOP/s from an analytic
// FLOP count (patch embedding, projections, attention, MLP), a large matmul's
// GFLOP/s in the same process, their ratio, and peak RSS.
// With --profile, the top-level LibTorch operators' share of the time; with
// --attention-block N, global attention in row blocks of N queries instead of
// flash attention (model.attention_block), for comparing the two.
//   bench_signhiera [--preset hiera_base_128x224] [--windows 1] [--profile 1] [--attention-block 0]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include "slt/config/config.h"
#include "slt/model/video_encoder.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/plugin/registry.h"
#include "slt/runtime/log.h"
#include "slt/runtime/threads.h"
#include "bench_common.h"
#include "operator_timer.h"

namespace {

using slt_bench::seconds_since;

std::vector<int64_t> ints(const slt::ConfigNode& node) {
  std::vector<int64_t> out;
  for (const auto& e : node.elements()) out.push_back(e.as_int());
  return out;
}

// Multiply-adds x2 of one clip through the network described by `c` (the
// preset's section): what the layers compute, independent of how.
double analytic_flops(const slt::ConfigNode& c) {
  auto input = ints(*c.at("input_size")), stride = ints(*c.at("patch_stride")), kernel = ints(*c.at("patch_kernel"));
  auto stages = ints(*c.at("stages")), q_stride = ints(*c.at("q_stride")), mu = ints(*c.at("mask_unit_size"));
  std::vector<bool> mu_attn;
  for (const auto& e : c.at("mask_unit_attn")->elements()) mu_attn.push_back(e.as_bool());
  const int64_t q_pool = c.at("q_pool")->as_int();
  int64_t dim = c.at("embed_dim")->as_int(), heads = c.at("num_heads")->as_int();
  const double mlp_ratio = c.at("mlp_ratio")->as_double(), dim_mul = c.at("dim_mul")->as_double();
  double tokens = 1, flat_q = 1, window = 1;
  for (size_t i = 0; i < 3; ++i) {
    tokens *= static_cast<double>(input[i] / stride[i]);
    flat_q *= static_cast<double>(q_stride[i]);
    window *= static_cast<double>(mu[i]);
  }
  double flops = 2.0 * tokens * static_cast<double>(dim * 3 * kernel[0] * kernel[1] * kernel[2]);
  std::vector<int64_t> ends;
  int64_t sum = 0;
  for (int64_t s : stages) ends.push_back((sum += s) - 1);
  size_t stage = 0;
  for (int64_t i = 0; i <= ends.back(); ++i) {
    int64_t dim_out = dim;
    bool use_mu = mu_attn[stage];
    bool pooling = false;
    for (int64_t k = 0; k < q_pool; ++k) pooling = pooling || ends[static_cast<size_t>(k)] + 1 == i;
    if (std::find(ends.begin(), ends.end(), i - 1) != ends.end()) {
      dim_out = static_cast<int64_t>(static_cast<double>(dim) * dim_mul);
      ++stage;
      if (pooling) window /= flat_q;
    }
    const double n_in = tokens, n_out = pooling ? tokens / flat_q : tokens;
    const double keys = use_mu ? window * (pooling ? flat_q : 1) : n_in;  // keys each query attends to
    flops += 2.0 * n_in * dim * 3 * dim_out;           // qkv
    if (dim != dim_out) flops += 2.0 * n_in * dim * dim_out;  // residual projection
    flops += 2.0 * 2.0 * n_out * keys * dim_out;       // scores and weighted values, all heads
    flops += 2.0 * n_out * dim_out * dim_out;          // output projection
    flops += 2.0 * 2.0 * n_out * dim_out * (mlp_ratio * dim_out);  // MLP
    tokens = n_out;
    dim = dim_out;
  }
  (void)heads;
  return flops;
}

double matmul_gflops(int n) {
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  at::matmul(a, b);
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    auto start = std::chrono::steady_clock::now();
    at::matmul(a, b);
    best = std::min(best, seconds_since(start));
  }
  return 2.0 * n * n * static_cast<double>(n) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "hiera_base_128x224";
  int windows = 1;
  bool profile = false;
  int64_t attention_block = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--preset") preset = argv[i + 1];
    if (arg == "--windows") windows = std::stoi(argv[i + 1]);
    if (arg == "--profile") profile = std::string(argv[i + 1]) != "0";
    if (arg == "--attention-block") attention_block = std::stoll(argv[i + 1]);
  }
  slt::setup_logging("warn");
  slt::configure_threads(std::nullopt);  // as slt-extract: every usable CPU, or OMP_NUM_THREADS
  slt::load_plugins(slt::plugin_search_path({}));
  slt::ConfigNode given = slt::ConfigNode::map();
  given.set("attention_block", attention_block);
  auto encoder = slt::Registry::global().create<slt::VideoEncoder>(slt::kinds::kVideoEncoder, preset, &given);
  slt::ConfigNode section = slt::Registry::global().section_for(slt::kinds::kVideoEncoder, preset, nullptr, "model");
  const double flops = analytic_flops(section);
  at::InferenceMode inference;
  at::Tensor clip = at::randn({1, 3, encoder->clip_frames(), encoder->crop_size(), encoder->crop_size()});
  at::Tensor padding = at::zeros({1}, at::kLong);
  double seconds = 0;
  if (profile) slt_bench::install_operator_timer();
  for (int w = 0; w < windows; ++w) {
    auto start = std::chrono::steady_clock::now();
    at::Tensor features = encoder->extract_features(clip, padding);
    seconds += seconds_since(start);
    if (w == 0) std::printf("%s: features [%lld, %lld]\n", preset.c_str(), static_cast<long long>(features.size(0)),
                            static_cast<long long>(features.size(1)));
  }
  if (profile) at::clearCallbacks();  // the matmul below is not the model's
  seconds /= windows;
  const double achieved = flops / seconds / 1e9, gemm = matmul_gflops(2048);
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("%d threads; %.1f GFLOP per window (analytic)\n", at::get_num_threads(), flops / 1e9);
  std::printf("%.1f s per window, %.1f GFLOP/s; 2048^2 matmul %.1f GFLOP/s; ratio %.2f; peak RSS %.2f GB\n", seconds,
              achieved, gemm, achieved / gemm, usage.ru_maxrss / 1024.0 / 1024.0);
  slt_bench::print_measurement({{"bench", "signhiera"}, {"preset", preset}, {"attention_block", attention_block},
                                 {"seconds_per_window", seconds},
                                 {"gflops", achieved}, {"matmul_2048_gflops", gemm}, {"ratio", achieved / gemm}});
  if (profile) slt_bench::print_operator_times(seconds * windows);
  return 0;
}
