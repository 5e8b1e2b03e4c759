// The bart plugin against SignBartForConditionalGeneration's outputs on the tiny
// fixture model (../shared/fixtures/models, see its README).
// Torch headers first: glog's CHECK must not replace Catch's.
#include "model_test_support.h"

#include <catch2/catch.hpp>

using namespace slt_test;

TEST_CASE("bart: encoder states, logits and loss match the reference", "[models][bart]") {
  auto model = fixture_model("bart", "tiny_bart");
  auto t = expected_tensors("bart_expected.safetensors");
  auto fixture = expected_outputs()["models"]["bart"]["fixtures"]["forward"];
  at::NoGradGuard no_grad;
  auto out = model->forward({t["inputs_embeds"], t["attention_mask"], t["labels"]});
  CHECK(max_abs_diff(out.encoder_hidden_states, t["encoder_last_hidden_state"]) < 1e-4);
  CHECK(max_abs_diff(out.logits, t["logits"]) < 1e-4);
  CHECK(out.loss.item<double>() == Approx(fixture["loss"].get<double>()).margin(1e-5));
  auto warm = fixture_model("bart", "tiny_bart_warm");
  CHECK(warm->forward({t["inputs_embeds"], t["attention_mask"], t["labels"]}).loss.item<double>() ==
        Approx(expected_outputs()["models"]["bart"]["warm"]["loss"].get<double>()).margin(1e-5));
}

TEST_CASE("bart: parameter count and names are the reference's", "[models][bart]") {
  auto model = fixture_model("bart", "tiny_bart");
  auto fixture = expected_outputs()["models"]["bart"];
  auto [count, names] = summarize_parameters(model->module());
  CHECK(count == fixture["num_parameters"].get<int64_t>());
  for (const auto& key : fixture["safetensors_keys"]) {
    std::string name = key.get<std::string>();
    if (name != "final_logits_bias") CHECK(names.count(name));
  }
}

TEST_CASE("bart: greedy, beam and bart-base-style search equal model.generate's", "[models][bart][generation]") {
  auto inputs = expected_tensors("bart_expected.safetensors");
  struct Case {
    const char* folder;
    const char* file;
    std::string name;
    int64_t beams, max_length;
    bool bartbase_style;
  };
  for (const auto& c : {Case{"tiny_bart", "bart_expected.safetensors", "gen_greedy", 1, 20, false},
                        Case{"tiny_bart", "bart_expected.safetensors", "gen_beam", 5, 20, false},
                        Case{"tiny_bart", "bart_expected.safetensors", "gen_beam_bartbase_style", 5, 20, true},
                        Case{"tiny_bart_warm", "bart_warm_expected.safetensors", "warm_gen_greedy", 1, 20, false},
                        Case{"tiny_bart_warm", "bart_warm_expected.safetensors", "warm_gen_beam", 5, 20, false},
                        Case{"tiny_bart_warm", "bart_warm_expected.safetensors", "warm_gen_greedy_max32", 1, 32, false},
                        Case{"tiny_bart_warm", "bart_warm_expected.safetensors", "warm_gen_beam_max32", 5, 32, false},
                        Case{"tiny_bart_warm", "bart_warm_expected.safetensors", "warm_gen_beam_bartbase_style", 5, 20, true},
                        Case{"tiny_bart_warm", "bart_warm_expected.safetensors", "warm_gen_beam_bartbase_style_max32", 5, 32, true}}) {
    INFO(c.folder << " " << c.name);
    auto model = fixture_model("bart", c.folder);
    auto expected = expected_tensors(c.file);
    slt::GenerationConfig config;
    config.num_beams = c.beams;
    config.max_length = c.max_length;
    config.output_scores = true;
    if (c.bartbase_style) {
      config.no_repeat_ngram_size = 3;
      config.early_stopping = true;
      config.forced_bos_token_id = 0;
    }
    auto out = slt::generate(*model, inputs["inputs_embeds"], inputs["attention_mask"], config);
    // The same with a copy of the encoder row per beam, as a search treats plugins that do not share them.
    EncoderRowPerBeam per_beam(model);
    auto copied = slt::generate(per_beam, inputs["inputs_embeds"], inputs["attention_mask"], config);
    CHECK(copied.sequences.equal(out.sequences));
    auto ids = expected.at(c.name + "_ids");
    REQUIRE(out.sequences.sizes() == ids.sizes());
    CHECK(out.sequences.equal(ids));
    bool warm = std::string(c.folder) == "tiny_bart_warm";
    auto section = warm ? expected_outputs()["models"]["bart"]["warm"]["generate"]
                        : expected_outputs()["models"]["bart"]["fixtures"]["generate"];
    std::string key = c.name.substr(warm ? std::string("warm_gen_").size() : std::string("gen_").size());
    CHECK(decode_rows(out.sequences, "tiny_bart") == section[key]["decoded"].get<std::vector<std::string>>());
    if (c.beams > 1) CHECK(max_abs_diff(out.sequences_scores, expected.at(c.name + "_sequences_scores")) < 1e-4);
    if (c.name == "gen_greedy") {  // the last step carries the forced-EOS mask
      auto steps = expected.at("gen_greedy_step_scores");
      REQUIRE(static_cast<int64_t>(out.scores.size()) == steps.size(0));
      for (size_t s = 0; s < out.scores.size(); ++s) {
        auto finite = steps[static_cast<int64_t>(s)].isfinite();
        CHECK(out.scores[s].isfinite().equal(finite));
        CHECK(max_abs_diff(out.scores[s].masked_select(finite), steps[static_cast<int64_t>(s)].masked_select(finite)) < 1e-4);
      }
    }
  }
}

TEST_CASE("bart: one AdamW step (two groups, clipping) matches the reference train step", "[models][bart][train]") {
  auto model = fixture_model("bart", "tiny_bart");
  auto t = expected_tensors("bart_expected.safetensors");
  auto recipe = expected_outputs()["models"]["bart"]["fixtures"]["train_step"];
  auto step = run_train_step(*model, {t["inputs_embeds"], t["attention_mask"], t["labels"]}, recipe);
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
