// Beam search speed (5 beams, max length 128) on a T5 v1.1-small-shaped model
// with random weights, at batch 1 and 16, with the time split into decoder
// steps, the search's tensor operations and its bookkeeping outside LibTorch.
//   bench_beam_search [--source-length 200] [--repeats 2]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/module.h>

#include <cstdio>

#include "bench_common.h"
#include "slt/model/generation.h"
#include "slt/runtime/log.h"
#include "slt/runtime/threads.h"

namespace {

// Times every decode_step of the wrapped model.
class TimedModel : public slt::Seq2SeqModel {
 public:
  explicit TimedModel(std::shared_ptr<slt::Seq2SeqModel> inner) : inner_(std::move(inner)) {}
  torch::nn::Module& module() override { return inner_->module(); }
  slt::ModelOutput forward(const slt::Batch& b) override { return inner_->forward(b); }
  at::Tensor encode(const at::Tensor& f, const at::Tensor& m) override {
    auto start = std::chrono::steady_clock::now();
    auto out = inner_->encode(f, m);
    model_seconds += slt_bench::seconds_since(start);
    return out;
  }
  at::Tensor decode_step(const at::Tensor& t, const at::Tensor& h, const at::Tensor& m,
                         std::unique_ptr<slt::DecoderCache>& c) override {
    auto start = std::chrono::steady_clock::now();
    auto out = inner_->decode_step(t, h, m, c);
    model_seconds += slt_bench::seconds_since(start);
    ++steps;
    return out;
  }
  slt::SpecialTokens special_tokens() const override { return inner_->special_tokens(); }
  double model_seconds = 0;
  int64_t steps = 0;

 private:
  std::shared_ptr<slt::Seq2SeqModel> inner_;
};

}  // namespace

int main(int argc, char** argv) {
  int64_t source_length = 200, repeats = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--source-length") source_length = std::stoll(argv[i + 1]);
    if (flag == "--repeats") repeats = std::stoll(argv[i + 1]);
  }
  slt::setup_logging("warn");
  slt::configure_threads(std::nullopt);  // as a run: every usable CPU, or OMP_NUM_THREADS
  auto dir = std::filesystem::temp_directory_path() / "slt-bench-t5-small";
  TimedModel model(slt_bench::t5_small(dir));
  model.module().eval();
  slt::GenerationConfig config;
  config.num_beams = 5;
  config.max_length = 128;
  std::printf("T5 v1.1-small shape, random weights, %lld source frames, 5 beams, max length 128, %d threads\n",
              static_cast<long long>(source_length), at::get_num_threads());
  for (int64_t batch : {1, 16}) {
    auto features = at::randn({batch, source_length, 768});
    auto mask = at::ones({batch, source_length});
    slt::generate(model, features.narrow(0, 0, 1), mask.narrow(0, 0, 1), config);  // warm-up
    model.model_seconds = 0;
    model.steps = 0;
    int64_t tokens = 0;
    double bookkeeping = 0;
    auto start = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < repeats; ++r) {
      auto out = slt::generate(model, features, mask, config);
      bookkeeping += out.bookkeeping_seconds;
      tokens += out.sequences.ne(model.special_tokens().pad).sum().item<int64_t>() - batch;  // generated, start excluded
    }
    double total = slt_bench::seconds_since(start);
    std::printf(
        "batch %2lld: %7.1f output tokens/s, %5.1f decoder steps/s; time: %4.1f%% decoder, %4.1f%% search tensor ops "
        "(log-softmax, top-k, cache reordering), %4.1f%% search bookkeeping outside LibTorch\n",
        static_cast<long long>(batch), tokens / total, model.steps / total, 100.0 * model.model_seconds / total,
        100.0 * (total - model.model_seconds - bookkeeping) / total, 100.0 * bookkeeping / total);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
