// The t5 plugin against SignT5ForConditionalGeneration's outputs on the tiny
// fixture model (../shared/fixtures/models, see its README).
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "slt/model.h"
#include "slt/plugin_loader.h"
#include "slt/tensor_io.h"

namespace fs = std::filesystem;

namespace {

const fs::path kModels = fs::path(SLT_FIXTURES_DIR) / "models";

std::map<std::string, at::Tensor> expected_tensors(const std::string& file) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : slt::load_safetensors((kModels / file).string())) out[name] = t;
  return out;
}

nlohmann::json expected_outputs() {
  std::ifstream in(kModels / "expected_outputs.json");
  return nlohmann::json::parse(in);
}

std::shared_ptr<slt::Seq2SeqModel> tiny_t5(const std::string& folder = "tiny_t5") {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode config = slt::ConfigNode::map();
  config.set("model.name_or_path", (kModels / folder).string());
  config.set("model.feature_dim", 32);
  config.set("model.dropout", 0.0);
  config.set("criterion.label_smoothing", 0.2);
  return slt::Registry::global().create<slt::Seq2SeqModel>(slt::kinds::kModel, "t5", config);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("t5: encoder states, logits and loss match the reference", "[models][t5]") {
  auto model = tiny_t5();
  model->module().eval();
  auto t = expected_tensors("t5_expected.safetensors");
  auto fixture = expected_outputs()["models"]["t5"]["fixtures"]["forward"];
  slt::Batch batch{t["inputs_embeds"], t["attention_mask"], t["labels"]};
  at::NoGradGuard no_grad;
  auto out = model->forward(batch);
  CHECK(max_abs_diff(out.encoder_hidden_states, t["encoder_last_hidden_state"]) < 1e-4);
  CHECK(max_abs_diff(out.logits, t["logits"]) < 1e-4);
  CHECK(out.loss.item<double>() == Approx(fixture["loss"].get<double>()).margin(1e-5));
}

TEST_CASE("t5: incremental decoding equals the teacher-forced decoder", "[models][t5]") {
  auto model = tiny_t5();
  model->module().eval();
  auto t = expected_tensors("t5_expected.safetensors");
  at::NoGradGuard no_grad;
  auto encoded = model->encode(t["inputs_embeds"], t["attention_mask"]);
  auto full = model->forward({t["inputs_embeds"], t["attention_mask"], t["labels"]}).logits;
  std::unique_ptr<slt::DecoderCache> cache;
  auto decoder_inputs = t["decoder_input_ids"];
  for (int64_t step = 0; step < decoder_inputs.size(1); ++step) {
    auto logits = model->decode_step(decoder_inputs.select(1, step), encoded, t["attention_mask"], cache);
    CHECK(max_abs_diff(logits, full.select(1, step)) < 1e-4);
  }
}

TEST_CASE("t5: parameter names and count are the reference's", "[models][t5]") {
  auto model = tiny_t5();
  auto fixture = expected_outputs()["models"]["t5"];
  int64_t count = 0;
  std::set<std::string> names;
  for (const auto& p : model->module().named_parameters()) {
    count += p.value().numel();
    names.insert(p.key());
  }
  CHECK(count == fixture["num_parameters"].get<int64_t>());
  for (const auto& key : fixture["safetensors_keys"]) {
    std::string name = key.get<std::string>();
    if (name.find("feature_projection") == std::string::npos) CHECK(names.count(name));
  }
}

TEST_CASE("t5: a missing model folder says where slt looked", "[models][t5]") {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode config = slt::ConfigNode::map();
  config.set("model.name_or_path", "google/t5-v1_1-nonexistent");
  config.set("model.feature_dim", 32);
  CHECK_THROWS_WITH(slt::Registry::global().create<slt::Seq2SeqModel>(slt::kinds::kModel, "t5", config),
                    Catch::Contains("models--google--t5-v1_1-nonexistent") && Catch::Contains("downloads nothing"));
}
