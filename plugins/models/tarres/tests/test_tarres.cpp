// The tarres plugin against the reference fairseq code's outputs
// (../shared/fixtures/hiera/tarres, see the README there).
#include "model_test_support.h"

#include <catch2/catch.hpp>

using namespace slt_test;
namespace fs = std::filesystem;

namespace {

const fs::path kTarres = fs::path(SLT_FIXTURES_DIR) / "hiera" / "tarres";

nlohmann::json tarres_json() {
  std::ifstream in(kTarres / "tarres.json");
  return nlohmann::json::parse(in);
}

// The fixture model: its cfg_model as the run config, weights from the reference checkpoint.
std::shared_ptr<slt::Seq2SeqModel> tarres_model() {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  auto fixture = tarres_json();
  slt::ConfigNode config = slt::ConfigNode::map();
  for (auto& [key, value] : fixture["cfg_model"].items()) {
    if (value.is_boolean()) config.set("model." + key, value.get<bool>());
    else if (value.is_number_integer()) config.set("model." + key, value.get<int64_t>());
    else if (value.is_number()) config.set("model." + key, value.get<double>());
    else if (value.is_string()) config.set("model." + key, value.get<std::string>());
  }
  config.set("model.name_or_path", kTarres.string());
  config.set("criterion.label_smoothing", fixture["criterion_label_smoothing"].get<double>());
  config.set("model.arch", "tarres");
  auto model = slt::open_model(config);
  auto weights = slt::load_checkpoint_weights((kTarres / "tarres_tiny_checkpoint.pth").string());
  auto report = slt::load_state_dict(model->module(), weights, "tarres_tiny_checkpoint.pth");
  CHECK(report.missing.empty());
  model->module().eval();
  return model;
}

c10::impl::GenericDict load_dict(const std::string& file) { return slt::load_pt((kTarres / file).string()).toGenericDict(); }

}  // namespace

TEST_CASE("tarres: encoder output, logits and loss match fairseq", "[models][tarres]") {
  auto model = tarres_model();
  auto inputs = load_dict("tarres_inputs.pt");
  auto outputs = load_dict("tarres_outputs.pt");
  auto source = inputs.at("source").toTensor();
  auto mask = inputs.at("padding_mask").toTensor().logical_not().to(at::kFloat);
  auto target = inputs.at("target").toTensor();
  at::NoGradGuard no_grad;
  auto out = model->forward({source, mask, target});
  CHECK(max_abs_diff(out.encoder_hidden_states.transpose(0, 1), outputs.at("encoder_out").toTensor()) < 1e-4);
  CHECK(max_abs_diff(out.logits, outputs.at("decoder_logits").toTensor()) < 1e-4);
  CHECK(out.loss.item<double>() == Approx(outputs.at("loss").toTensor().item<double>()).margin(1e-5));
}

TEST_CASE("tarres: beam search returns fairseq's hypotheses and scores", "[models][tarres][generation]") {
  auto model = tarres_model();
  auto inputs = load_dict("tarres_inputs.pt");
  auto fixture = tarres_json();
  auto source = inputs.at("source").toTensor();
  auto mask = inputs.at("padding_mask").toTensor().logical_not().to(at::kFloat);
  slt::FairseqGenerationConfig config;
  config.beam = fixture["generation_args"]["beam"].get<int64_t>();
  config.lenpen = fixture["generation_args"]["lenpen"].get<double>();
  auto nbest = slt::generate_fairseq(*model, source, mask, config);
  REQUIRE(nbest.size() == 4);
  REQUIRE(model->shares_encoder_rows());
  // The same with a copy of the encoder row per beam, as the search treats plugins that do not share them.
  EncoderRowPerBeam per_beam(model);
  auto copied = slt::generate_fairseq(per_beam, source, mask, config);
  for (size_t i = 0; i < nbest.size(); ++i) {
    REQUIRE(copied[i].size() == nbest[i].size());
    for (size_t h = 0; h < nbest[i].size(); ++h) {
      CHECK(copied[i][h].tokens == nbest[i][h].tokens);
      CHECK(copied[i][h].score == Approx(nbest[i][h].score).margin(1e-5));
    }
  }
  for (size_t i = 0; i < nbest.size(); ++i) {
    INFO("sample " << i);
    CHECK(nbest[i][0].tokens == fixture["generated_tokens"][i].get<std::vector<int64_t>>());
    const auto& expected = fixture["nbest"][i];
    REQUIRE(nbest[i].size() == expected.size());
    for (size_t h = 0; h < expected.size(); ++h) {
      CHECK(nbest[i][h].tokens == expected[h]["tokens"].get<std::vector<int64_t>>());
      CHECK(nbest[i][h].score == Approx(expected[h]["score"].get<double>()).margin(1e-4));
    }
    // Alone, with its own length, the sample translates the same.
    int64_t length = fixture["source_lengths"][i].get<int64_t>();
    auto alone = slt::generate_fairseq(*model, source.narrow(0, static_cast<int64_t>(i), 1).narrow(1, 0, length),
                                       at::ones({1, length}), config);
    CHECK(alone[0][0].tokens == nbest[i][0].tokens);
  }
}
