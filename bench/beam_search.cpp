// Beam search speed at full length (5 beams, 127 new tokens) on a T5
// v1.1-small-shaped model with random weights, at batch 1 and 16, with the
// time split into decoder steps, the search's tensor operations and its
// bookkeeping outside LibTorch; then the Tarrés model with fairseq's search
// (beam 5, 128 tokens, batch 16). One JSON line per measurement.
//   bench_beam_search [--source-length 200] [--repeats 2] [--only t5|tarres] [--batch N (T5)]
//                     [--profile 1: time per LibTorch operator]
//                     [--packed 0: slt::linear without its packed kernel]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/module.h>

#include <cstdio>

#include "bench_common.h"
#include "operator_timer.h"
#include "slt/model/decoding_kernels.h"
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
  bool shares_encoder_rows() const override { return inner_->shares_encoder_rows(); }
  double model_seconds = 0;
  int64_t steps = 0;

 private:
  std::shared_ptr<slt::Seq2SeqModel> inner_;
};

}  // namespace

int main(int argc, char** argv) {
  int64_t source_length = 200, repeats = 2;
  std::string only;
  bool profile = false;
  std::vector<int64_t> t5_batches = {1, 16};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--source-length") source_length = std::stoll(argv[i + 1]);
    if (flag == "--repeats") repeats = std::stoll(argv[i + 1]);
    if (flag == "--only") only = slt_bench::only_flag(argv[i + 1], {"t5", "tarres"});
    if (flag == "--batch") t5_batches = {std::stoll(argv[i + 1])};
    if (flag == "--profile") profile = std::string(argv[i + 1]) != "0";
    if (flag == "--packed") slt::enable_packed_linear(std::string(argv[i + 1]) != "0");
  }
  slt::setup_logging("warn");
  slt::configure_threads(std::nullopt);  // as a run: every usable CPU, or OMP_NUM_THREADS
  auto dir = std::filesystem::temp_directory_path() / "slt-bench-t5-small";
  TimedModel model(slt_bench::t5_small(dir));
  model.module().eval();
  slt::GenerationConfig config;
  config.num_beams = 5;
  config.max_length = 128;
  config.min_length = 128;  // every row runs to full length, as the reference benchmark forces it
  std::printf("T5 v1.1-small shape, random weights, %lld source frames, 5 beams, 127 new tokens, %d threads\n",
              static_cast<long long>(source_length), at::get_num_threads());
  for (int64_t batch : only == "tarres" ? std::vector<int64_t>{} : t5_batches) {
    auto features = at::randn({batch, source_length, 768});
    auto mask = at::ones({batch, source_length});
    slt::generate(model, features.narrow(0, 0, 1), mask.narrow(0, 0, 1), config);  // warm-up
    model.model_seconds = 0;
    model.steps = 0;
    int64_t tokens = 0;
    double bookkeeping = 0;
    if (profile) slt_bench::install_operator_timer();
    auto start = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < repeats; ++r) {
      auto out = slt::generate(model, features, mask, config);
      bookkeeping += out.bookkeeping_seconds;
      // Generated tokens: everything after the decoder start token that is not padding.
      tokens += out.sequences.narrow(1, 1, out.sequences.size(1) - 1).ne(model.special_tokens().pad).sum().item<int64_t>();
    }
    double total = slt_bench::seconds_since(start);
    if (profile) {
      at::clearCallbacks();
      slt_bench::print_operator_times(total, 20);
      slt_bench::g_times.by_name.clear();
    }
    std::printf(
        "batch %2lld: %7.1f output tokens/s, %5.1f decoder steps/s; time: %4.1f%% decoder, %4.1f%% search tensor ops "
        "(log-softmax, top-k, cache reordering), %4.1f%% search bookkeeping outside LibTorch\n",
        static_cast<long long>(batch), tokens / total, model.steps / total, 100.0 * model.model_seconds / total,
        100.0 * (total - model.model_seconds - bookkeeping) / total, 100.0 * bookkeeping / total);
    slt_bench::print_measurement({{"bench", "beam_search"}, {"model", "t5-small"}, {"batch", batch},
                                  {"full_length", true}, {"seconds", total / repeats},
                                  {"tokens_per_s", tokens / total}, {"tokens", tokens / repeats}});
  }
  if (only == "t5") return 0;
  // The Tarrés transformer with fairseq's SequenceGenerator: beam 5, 128 tokens, batch 16.
  auto tarres_dir = std::filesystem::temp_directory_path() / "slt-bench-tarres-beam";
  auto tarres = slt_bench::tarres(tarres_dir);
  tarres->module().eval();
  slt::FairseqGenerationConfig fairseq;
  fairseq.beam = 5;
  fairseq.max_len_a = 0;
  fairseq.max_len_b = 128;
  fairseq.min_len = 128;
  {
    const int64_t batch = 16;
    auto features = at::randn({batch, source_length, 768});
    auto mask = at::ones({batch, source_length});
    slt::generate_fairseq(*tarres, features.narrow(0, 0, 1), mask.narrow(0, 0, 1), fairseq);  // warm-up
    int64_t tokens = 0;
    auto start = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < repeats; ++r)
      for (const auto& nbest : slt::generate_fairseq(*tarres, features, mask, fairseq))
        tokens += nbest.empty() ? 0 : static_cast<int64_t>(nbest.front().tokens.size());  // EOS included
    double total = slt_bench::seconds_since(start);
    std::printf("tarres, fairseq search, batch 16: %7.1f output tokens/s\n", tokens / total);
    slt_bench::print_measurement({{"bench", "beam_search"}, {"model", "tarres"}, {"batch", batch},
                                  {"full_length", true}, {"seconds", total / repeats},
                                  {"tokens_per_s", tokens / total}, {"tokens", tokens / repeats}});
  }
  std::filesystem::remove_all(tarres_dir);
  std::filesystem::remove_all(dir);
  return 0;
}
