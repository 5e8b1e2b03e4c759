// The t5 plugin against SignT5ForConditionalGeneration's outputs on the tiny
// fixture model (../shared/fixtures/models, see its README).
#include "model_test_support.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "slt/runtime/components.h"
#include "slt/model/generation.h"
#include "slt/model/model.h"
#include "slt/train/optim.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/io/tensor_io.h"

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
  config.set("model.arch", "t5");
  return slt::open_model(config);
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
  auto [count, names] = slt_test::summarize_parameters(model->module());
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
  config.set("model.arch", "t5");
  CHECK_THROWS_WITH(slt::open_model(config),
                    Catch::Contains("models--google--t5-v1_1-nonexistent") && Catch::Contains("downloads nothing"));
}

namespace {

struct GenerationCase {
  const char* folder;
  const char* tensors;
  const char* prefix;  // tensor name prefix in the expected file
  int64_t beams, max_length;
};

void check_generation(slt::Seq2SeqModel& model, const GenerationCase& c) {
  INFO(c.folder << " " << c.prefix << " beams=" << c.beams << " max_length=" << c.max_length);
  auto inputs = expected_tensors("t5_expected.safetensors");
  auto expected = expected_tensors(c.tensors);
  slt::GenerationConfig config;
  config.num_beams = c.beams;
  config.max_length = c.max_length;
  config.output_scores = true;
  auto out = slt::generate(model, inputs["inputs_embeds"], inputs["attention_mask"], config);
  std::string name = std::string(c.prefix) + (c.max_length == 32 ? "_max32" : "") + "_ids";
  auto ids = expected.at(name);
  CHECK(out.sequences.sizes() == ids.sizes());
  if (out.sequences.sizes() == ids.sizes()) CHECK(out.sequences.equal(ids));
  // The decoded strings of model.generate + batch_decode.
  auto section = std::string(c.folder) == "tiny_t5" ? expected_outputs()["models"]["t5"]["fixtures"]["generate"]
                                                    : expected_outputs()["models"]["t5"]["warm"]["generate"];
  std::string key = std::string(c.beams > 1 ? "beam" : "greedy") + (c.max_length == 32 ? "_max32" : "");
  CHECK(slt_test::decode_rows(out.sequences, "tiny_t5") == section[key]["decoded"].get<std::vector<std::string>>());
  if (c.beams > 1) {
    std::string scores = std::string(c.prefix) + (c.max_length == 32 ? "_max32" : "") + "_sequences_scores";
    CHECK(max_abs_diff(out.sequences_scores, expected.at(scores)) < 1e-4);
  }
}

void check_generation(const GenerationCase& c) {
  auto model = tiny_t5(c.folder);
  model->module().eval();
  REQUIRE(model->shares_encoder_rows());
  check_generation(*model, c);
  INFO("with a copy of the encoder row per beam");
  slt_test::EncoderRowPerBeam per_beam(model);
  check_generation(per_beam, c);
}

}  // namespace

TEST_CASE("t5: greedy and beam search ids equal model.generate's", "[models][t5][generation]") {
  for (const auto& c : {GenerationCase{"tiny_t5", "t5_expected.safetensors", "gen_greedy", 1, 20},
                        GenerationCase{"tiny_t5", "t5_expected.safetensors", "gen_beam", 5, 20},
                        GenerationCase{"tiny_t5_warm", "t5_warm_expected.safetensors", "warm_gen_greedy", 1, 20},
                        GenerationCase{"tiny_t5_warm", "t5_warm_expected.safetensors", "warm_gen_beam", 5, 20},
                        GenerationCase{"tiny_t5_warm", "t5_warm_expected.safetensors", "warm_gen_greedy", 1, 32},
                        GenerationCase{"tiny_t5_warm", "t5_warm_expected.safetensors", "warm_gen_beam", 5, 32}})
    check_generation(c);
}

TEST_CASE("t5: greedy step scores equal output_scores", "[models][t5][generation]") {
  auto model = tiny_t5();
  model->module().eval();
  auto t = expected_tensors("t5_expected.safetensors");
  slt::GenerationConfig config;
  config.max_length = 20;
  config.output_scores = true;
  auto out = slt::generate(*model, t["inputs_embeds"], t["attention_mask"], config);
  auto expected = t["gen_greedy_step_scores"];
  REQUIRE(static_cast<int64_t>(out.scores.size()) == expected.size(0));
  for (size_t step = 0; step < out.scores.size(); ++step)
    CHECK(max_abs_diff(out.scores[step], expected[static_cast<int64_t>(step)]) < 1e-4);
}

TEST_CASE("t5: a translation does not depend on the rest of its batch", "[models][t5][generation]") {
  auto model = tiny_t5("tiny_t5_warm");
  model->module().eval();
  auto t = expected_tensors("t5_expected.safetensors");
  slt::GenerationConfig config;
  config.num_beams = 5;
  config.max_length = 20;
  auto batched = slt::generate(*model, t["inputs_embeds"], t["attention_mask"], config).sequences;
  for (int64_t i = 0; i < 3; ++i) {
    int64_t length = t["attention_mask"][i].sum().item<int64_t>();
    auto alone_features = t["inputs_embeds"].narrow(0, i, 1).narrow(1, 0, length);
    auto alone = slt::generate(*model, alone_features, at::ones({1, length}), config).sequences[0];
    auto row = batched[i].narrow(0, 0, alone.size(0));
    CHECK(row.equal(alone));
    // At another batch position, next to a longer item.
    auto reversed = slt::generate(*model, t["inputs_embeds"].flip(0), t["attention_mask"].flip(0), config).sequences;
    CHECK(reversed[2 - i].narrow(0, 0, alone.size(0)).equal(alone));
  }
}

TEST_CASE("t5: one AdamW step (two groups, clipping) matches the reference train step", "[models][t5][train]") {
  auto model = tiny_t5();
  auto t = expected_tensors("t5_expected.safetensors");
  auto recipe = expected_outputs()["models"]["t5"]["fixtures"]["train_step"];
  std::set<std::string> decay_expected;
  for (const auto& n : recipe["decay_param_names"]) decay_expected.insert(n.get<std::string>());
  for (const auto& p : model->module().named_parameters()) {
    INFO(p.key());
    CHECK(slt::is_no_decay_parameter(p.key()) == !decay_expected.count(p.key()));
  }
  auto step = slt_test::run_train_step(*model, {t["inputs_embeds"], t["attention_mask"], t["labels"]}, recipe);
  CHECK(step.loss == Approx(recipe["loss"].get<double>()).margin(1e-5));
  CHECK(step.grad_norm == Approx(recipe["grad_norm_before_clip"].get<double>()).epsilon(1e-5));
  CHECK(step.loss_after == Approx(recipe["loss_after_step"].get<double>()).margin(1e-5));
  auto params = model->module().named_parameters();
  for (const auto& [name, expected] : t) {
    if (name.rfind("train_step_after.", 0) != 0) continue;
    std::string param = name.substr(std::string("train_step_after.").size());
    INFO(param);
    REQUIRE(params.contains(param));
    CHECK(max_abs_diff(params[param], expected) < 1e-5);
  }
}
