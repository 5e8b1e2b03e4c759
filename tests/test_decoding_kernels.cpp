// The decoding kernels against plain ATen: the few-row and packed linear
// layers, row log-softmax and top-k, attention, and the self-attention history
// (in-place storage read through ancestors) against a cache that is
// concatenated and reordered row by row, as Hugging Face does.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <catch2/catch.hpp>

#include <limits>

#include "slt/model/decoder_history.h"
#include "slt/model/decoding_kernels.h"
#include "slt/model/dropout.h"

namespace {

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// The history the old way: keys/values concatenated per step, index_select on reorder.
struct ConcatenatedHistory {
  std::vector<at::Tensor> keys, values;
  at::Tensor attend(size_t layer, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
    if (keys.size() <= layer) {
      keys.resize(layer + 1);
      values.resize(layer + 1);
    }
    keys[layer] = keys[layer].defined() ? at::cat({keys[layer], k}, 2) : k;
    values[layer] = values[layer].defined() ? at::cat({values[layer], v}, 2) : v;
    auto scores = at::matmul(q, keys[layer].transpose(2, 3));
    if (bias.defined()) scores = scores + bias;
    return at::matmul(at::softmax(scores.to(at::kFloat), -1).to(q.scalar_type()), values[layer]);
  }
  void reorder(const at::Tensor& indices) {
    for (auto* list : {&keys, &values})
      for (auto& t : *list) t = t.index_select(0, indices);
  }
};

}  // namespace

TEST_CASE("few-row and packed linear equal at::linear for 1 to 9 rows, any width, with and without bias",
          "[decoding]") {
  at::manual_seed(3);
  at::NoGradGuard no_grad;
  const bool packed = GENERATE(false, true);
  slt::enable_packed_linear(packed);
  INFO("packed kernel " << (packed ? "on" : "off"));
  for (int64_t rows : {1, 2, 3, 5, 8, 9}) {
    for (int64_t in : {7, 16, 100}) {
      auto x = at::randn({rows, 1, in});
      auto weight = at::randn({37, in});
      auto bias = at::randn({37});
      CHECK(max_abs_diff(slt::linear(x, weight, bias), at::linear(x, weight, bias)) < 1e-4);
      CHECK(max_abs_diff(slt::linear(x, weight, {}), at::linear(x, weight)) < 1e-4);
      CHECK(slt::linear(x, weight, {}).sizes() == at::IntArrayRef({rows, 1, 37}));
    }
  }
}

TEST_CASE("packed linear equals at::linear for a few dozen rows, any width, and follows writes to the weight",
          "[decoding]") {
  at::manual_seed(5);
  at::NoGradGuard no_grad;
  for (int64_t rows : {9, 13, 80, 256}) {
    for (int64_t in : {7, 64, 515}) {
      auto x = at::randn({rows, 1, in});
      auto weight = at::randn({70, in});  // two full panels and a partial one
      auto bias = at::randn({70});
      CHECK(max_abs_diff(slt::linear(x, weight, bias), at::linear(x, weight, bias)) < 1e-4);
      CHECK(max_abs_diff(slt::linear(x, weight, {}), at::linear(x, weight)) < 1e-4);
      CHECK(slt::linear(x, weight, {}).sizes() == at::IntArrayRef({rows, 1, 70}));
    }
  }
  // A weight written after its first use (an optimizer step between
  // evaluations) is multiplied as it is now, not as it was packed.
  auto x = at::randn({40, 32});
  auto weight = at::randn({48, 32});
  CHECK(max_abs_diff(slt::linear(x, weight, {}), at::linear(x, weight)) < 1e-4);
  weight.mul_(-2);
  CHECK(max_abs_diff(slt::linear(x, weight, {}), at::linear(x, weight)) < 1e-4);
  weight.set_(at::randn({48, 32}));
  CHECK(max_abs_diff(slt::linear(x, weight, {}), at::linear(x, weight)) < 1e-4);
  // Tensors that die and are replaced by new ones at any address.
  for (int i = 0; i < 20; ++i) {
    auto w = at::randn({33, 32});
    CHECK(max_abs_diff(slt::linear(x, w, {}), at::linear(x, w)) < 1e-4);
  }
}

TEST_CASE("few-row linear leaves autograd, other dtypes and strided inputs to at::linear", "[decoding]") {
  at::manual_seed(4);
  auto x = at::randn({2, 16});
  auto weight = at::randn({8, 16}).requires_grad_();
  auto y = slt::linear(x, weight, {});
  REQUIRE(y.requires_grad());
  y.sum().backward();
  CHECK(max_abs_diff(weight.grad(), x.sum(0).unsqueeze(0).expand({8, 16})) < 1e-5);
  at::NoGradGuard no_grad;
  auto xd = x.to(at::kDouble), wd = weight.detach().to(at::kDouble);
  CHECK(slt::linear(xd, wd, {}).equal(at::linear(xd, wd)));
  auto strided = at::randn({16, 2}).t();
  CHECK(slt::linear(strided, weight.detach(), {}).equal(at::linear(strided, weight.detach())));
}

TEST_CASE("decoder history equals a concatenated, reordered cache, through growth, shrinking rows and bias",
          "[decoding]") {
  at::manual_seed(5);
  at::NoGradGuard no_grad;
  // Two layers of different widths; 70 steps outgrow the first capacity twice.
  const int64_t heads[2] = {3, 2}, head_dims[2] = {5, 16};
  for (auto dtype : {at::kFloat, at::kDouble}) {  // the fused kernel, and the gather path every other type takes
    INFO("dtype " << dtype);
    slt::DecoderHistory history;
    ConcatenatedHistory reference;
    int64_t rows = 6;
    for (int64_t step = 0; step < 70; ++step) {
      for (size_t layer = 0; layer < 2; ++layer) {
        auto opts = at::TensorOptions().dtype(dtype);
        auto q = at::randn({rows, heads[layer], 1, head_dims[layer]}, opts);
        auto k = at::randn({rows, heads[layer], 1, head_dims[layer]}, opts);
        auto v = at::randn({rows, heads[layer], 1, head_dims[layer]}, opts);
        at::Tensor bias;
        if (layer == 0) bias = at::randn({1, heads[layer], 1, step + 1}, opts);
        auto got = history.attend(static_cast<int64_t>(layer), q, k, v, bias);
        auto want = reference.attend(layer, q, k, v, bias);
        REQUIRE(got.sizes() == want.sizes());
        REQUIRE(max_abs_diff(got, want) < 1e-5);
      }
      history.advance();
      CHECK(history.length() == step + 1);
      // Rows pick their histories as beam search does (repeats allowed); at
      // step 40 two rows are dropped.
      if (step == 40) rows -= 2;
      auto indices = at::randint(0, step == 40 ? rows + 2 : rows, {rows}, at::kLong);
      history.reorder(indices);
      reference.reorder(indices);
    }
  }
}

TEST_CASE("decoder history refuses a step with another row count than the reorder left", "[decoding]") {
  slt::DecoderHistory history;
  auto t = at::zeros({4, 1, 1, 8});
  history.attend(0, t, t, t, {});
  history.advance();
  history.reorder(at::tensor({0, 1, 2}, at::kLong));
  CHECK_THROWS_WITH(history.attend(0, t, t, t, {}), Catch::Contains("4 rows") && Catch::Contains("left 3"));
}

TEST_CASE("row log-softmax equals at::log_softmax, with extreme and masked values", "[decoding]") {
  at::manual_seed(6);
  for (int64_t n : {1, 15, 16, 17, 1000, 32128}) {
    auto logits = at::randn({4, n}) * 20;
    if (n > 3) {
      logits[1][2] = -std::numeric_limits<float>::infinity();  // a masked entry
      logits[2].fill_(-1e30);                                    // far below exp's range
      logits[3][0] = 1e4;                                        // one entry dominates
    }
    auto want = at::log_softmax(logits, -1);
    auto got = slt::log_softmax_rows(logits.clone());
    auto finite = want.isfinite();
    CHECK(got.isfinite().equal(finite));
    CHECK(max_abs_diff(got.masked_select(finite), want.masked_select(finite)) < 1e-5);
  }
  // Other types are at::log_softmax's.
  auto doubles = at::randn({2, 50}, at::kDouble);
  CHECK(slt::log_softmax_rows(doubles.clone()).equal(at::log_softmax(doubles, -1)));
}

TEST_CASE("per-row top-k equals at::topk, ties in column order", "[decoding]") {
  at::manual_seed(7);
  for (int64_t n : {3, 16, 40, 5000}) {
    for (int64_t k : {1, 3, 10}) {
      if (k > n) continue;
      auto x = at::randn({5, n});
      auto [values, indices] = slt::top_k_per_row(x, k);
      auto want = at::topk(x, k, 1, true, true);
      CHECK(values.equal(std::get<0>(want)));
      CHECK(indices.equal(std::get<1>(want)));
    }
  }
  auto ties = at::tensor({1.0f, 3.0f, 3.0f, -std::numeric_limits<float>::infinity(), 3.0f, 2.0f}).unsqueeze(0);
  auto [values, indices] = slt::top_k_per_row(ties, 4);
  CHECK(indices.equal(at::tensor({1L, 2L, 4L, 5L}).unsqueeze(0)));
  CHECK(values.equal(at::tensor({3.0f, 3.0f, 3.0f, 2.0f}).unsqueeze(0)));
}

TEST_CASE("few-query attention equals matmul-softmax-matmul, with per-input, shared or no mask", "[decoding]") {
  at::manual_seed(8);
  at::NoGradGuard no_grad;
  auto reference = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
    auto scores = at::matmul(q, k.transpose(-2, -1));
    if (bias.defined()) scores = scores + bias;
    return at::matmul(at::softmax(scores, -1), v);
  };
  for (int64_t group : {1, 5, 8, 9}) {
    for (int64_t dim : {7, 64}) {
      auto q = at::randn({3, 2, group, dim}), k = at::randn({3, 2, 40, dim}), v = at::randn({3, 2, 40, dim});
      auto padding = at::zeros({3, 1, 1, 40});
      padding.narrow(3, 30, 10).fill_(std::numeric_limits<float>::lowest());  // padded frames, as mask_bias makes them
      for (const auto& bias : {padding, padding.narrow(0, 0, 1), at::Tensor()}) {
        INFO("group " << group << " dim " << dim << " bias " << (bias.defined() ? bias.size(0) : 0));
        CHECK(max_abs_diff(slt::attention(q, k, v, bias), reference(q, k, v, bias)) < 1e-5);
      }
    }
  }
}

TEST_CASE("fused RMS norm and gated gelu_new equal their ATen formulas", "[decoding]") {
  at::manual_seed(9);
  at::NoGradGuard no_grad;
  for (int64_t n : {5, 16, 512, 1030}) {
    auto x = at::randn({3, 2, n}) * 3, w = at::randn({n});
    auto variance = x.pow(2).mean(-1, true);
    CHECK(max_abs_diff(slt::rms_norm(x, w, 1e-6), w * (x * at::rsqrt(variance + 1e-6))) < 1e-5);
    auto a = at::randn({3, n}) * 4, b = at::randn({3, n});
    a[0][0] = 30;  // tanh saturates
    a[1][0] = -30;
    a[2][0] = 1e-5;  // tanh(u) ~ u
    auto gelu = 0.5 * a * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (a + 0.044715 * at::pow(a, 3.0))));
    CHECK(max_abs_diff(slt::gated_gelu_new(a, b), gelu * b) < 1e-5);
  }
}

TEST_CASE("fused RMS norm and gated gelu_new give autograd's gradients of their ATen formulas", "[decoding]") {
  at::manual_seed(10);
  for (int64_t n : {5, 16, 512, 1030}) {
    INFO("width " << n);
    auto x = (at::randn({3, 2, n}) * 3).requires_grad_(), w = at::randn({n}).requires_grad_();
    auto dy = at::randn({3, 2, n});
    auto fused = slt::rms_norm(x, w, 1e-6);
    auto got = torch::autograd::grad({fused}, {x, w}, {dy});
    auto formula = w * (x * at::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
    auto want = torch::autograd::grad({formula}, {x, w}, {dy});
    CHECK(max_abs_diff(fused, formula) < 1e-5);
    CHECK(max_abs_diff(got[0], want[0]) < 1e-4);
    CHECK(max_abs_diff(got[1], want[1]) < 1e-4);

    auto a = (at::randn({3, n}) * 4).requires_grad_(), b = at::randn({3, n}).requires_grad_();
    {
      at::NoGradGuard no_grad;
      a[0][0] = 30;
      a[1][0] = -30;
      a[2][0] = 1e-5;
    }
    auto dz = at::randn({3, n});
    auto gated = slt::gated_gelu_new(a, b);
    auto gated_grads = torch::autograd::grad({gated}, {a, b}, {dz});
    auto reference = 0.5 * a * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (a + 0.044715 * at::pow(a, 3.0)))) * b;
    auto reference_grads = torch::autograd::grad({reference}, {a, b}, {dz});
    CHECK(max_abs_diff(gated, reference) < 1e-5);
    CHECK(max_abs_diff(gated_grads[0], reference_grads[0]) < 1e-4);
    CHECK(max_abs_diff(gated_grads[1], reference_grads[1]) < 1e-5);
  }
}

TEST_CASE("attention over many queries equals matmul-softmax-matmul, values and gradients, with dropout", "[decoding]") {
  at::manual_seed(12);
  const int64_t batch = 2, heads = 3, queries = 13, keys = 37, dim = 20;
  // Heads as views of [B, S, H, d] tensors, as the models make them.
  auto view = [&](int64_t length) { return at::randn({batch, length, heads, dim}).transpose(1, 2).requires_grad_(); };
  auto reference = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                      const at::Tensor& noise) {
    auto scores = at::matmul(q, k.transpose(-2, -1));
    if (bias.defined()) scores = scores + bias;
    auto weights = at::softmax(scores, -1);
    return at::matmul(noise.defined() ? weights * noise : weights, v);
  };
  auto mask = at::zeros({batch, 1, 1, keys});
  mask[1][0][0].narrow(0, 30, 7).fill_(-1e9);
  const std::vector<std::pair<std::string, at::Tensor>> biases = {
      {"no bias", at::Tensor()},
      {"padding mask", mask},
      {"learned bias", (at::randn({1, heads, queries, keys}) + mask).detach().requires_grad_()}};
  for (const auto& [name, bias] : biases) {
    for (const double p : {0.0, 0.3}) {
      INFO(name << ", dropout " << p);
      auto q = view(queries), k = view(keys), v = view(keys);
      at::manual_seed(40);
      auto out = slt::attention(q, k, v, bias, p, true);
      at::Tensor noise;
      if (p > 0) {
        at::manual_seed(40);  // the same seed draw: slt::dropout's mask over the probabilities
        noise = slt::dropout(at::ones({batch, heads, queries, keys}), p, true);
      }
      auto expected = reference(q, k, v, bias, noise);
      CHECK(max_abs_diff(out, expected) < 1e-5);
      auto d_out = at::randn_like(expected);
      std::vector<at::Tensor> inputs = {q, k, v};
      if (bias.defined() && bias.requires_grad()) inputs.push_back(bias);
      auto got = torch::autograd::grad({out}, inputs, {d_out});
      auto want = torch::autograd::grad({expected}, inputs, {d_out});
      for (size_t i = 0; i < inputs.size(); ++i) {
        INFO("gradient " << i);
        CHECK(max_abs_diff(got[i], want[i]) < 1e-4);
      }
    }
  }
  at::NoGradGuard no_grad;  // the encoder at evaluation
  auto q = view(queries), k = view(keys), v = view(keys);
  CHECK(max_abs_diff(slt::attention(q, k, v, mask, 0.1, false), reference(q, k, v, mask, {})) < 1e-5);
}
