// SignHiera against the reference's outputs (../shared/fixtures/hiera/signhiera,
// see the README there): a tiny model with perturbed weights on fixed inputs.
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include "sign_hiera.h"
#include "slt/io/tensor_io.h"
#include "slt/model/model.h"
#include "slt/model/video_encoder.h"
#include "slt/plugin/plugin_loader.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

const fs::path kSignHiera = fs::path(SLT_FIXTURES_DIR) / "hiera" / "signhiera";

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

slt::ConfigNode to_config(const nlohmann::json& j) {
  if (j.is_boolean()) return slt::ConfigNode(j.get<bool>());
  if (j.is_number_integer()) return slt::ConfigNode(j.get<int64_t>());
  if (j.is_number()) return slt::ConfigNode(j.get<double>());
  if (j.is_string()) return slt::ConfigNode(j.get<std::string>());
  if (j.is_array()) {
    slt::ConfigNode list = slt::ConfigNode::list();
    for (const auto& e : j) list.elements().push_back(to_config(e));
    return list;
  }
  slt::ConfigNode map = slt::ConfigNode::map();
  for (const auto& [k, v] : j.items()) map.set(k, to_config(v));
  return map;
}

slt::ConfigNode tiny_section() { return to_config(read_json(kSignHiera / "tiny_signhiera.json")["model_config"]); }

c10::impl::GenericDict load_dict(const std::string& file) { return slt::load_pt((kSignHiera / file).string()).toGenericDict(); }

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct TinyCase {
  at::Tensor x, padding;
  c10::impl::GenericDict outputs = load_dict("tiny_outputs.pt");
  TinyCase() {
    auto inputs = load_dict("tiny_inputs.pt");
    x = inputs.at("x_q8").toTensor().to(at::kFloat) / 8;
    padding = inputs.at("padding").toTensor();
  }
  at::Tensor out(const char* key) const { return outputs.at(key).toTensor(); }
};

// The module itself, for what the encoder interface does not expose (intermediates, logits).
slt::hiera::SignHiera tiny_module() {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode given = tiny_section();
  slt::ConfigNode section =
      slt::Registry::global().section_for(slt::kinds::kVideoEncoder, "hiera_base_16x224", &given, "model");
  slt::hiera::SignHiera net(slt::hiera::HieraConfig::from_section(section));
  auto report = slt::load_state_dict(*net, slt::load_checkpoint_weights((kSignHiera / "tiny_signhiera.pth").string()),
                                     "tiny_signhiera.pth");
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  net->eval();
  return net;
}

}  // namespace

TEST_CASE("hiera: features of padded clips match extract_features", "[models][hiera]") {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode section = tiny_section();
  auto encoder = slt::Registry::global().create<slt::VideoEncoder>(slt::kinds::kVideoEncoder, "hiera_base_16x224", &section);
  encoder->load_weights((kSignHiera / "tiny_signhiera.pth").string());
  CHECK(encoder->feature_dim() == 128);
  CHECK(encoder->clip_frames() == 16);
  TinyCase t;
  at::InferenceMode inference;
  at::Tensor features = encoder->extract_features(t.x, t.padding);
  REQUIRE(features.sizes() == t.out("features").sizes());
  CHECK(max_abs_diff(features, t.out("features")) < 1e-4);
  // Two clips at a time, as the extractor shards with max_batch_size=2.
  at::Tensor sharded = at::cat({encoder->extract_features(t.x.narrow(0, 0, 2), t.padding.narrow(0, 0, 2)),
                                encoder->extract_features(t.x.narrow(0, 2, 1), t.padding.narrow(0, 2, 1))});
  CHECK(max_abs_diff(sharded, t.out("features_sharded")) < 1e-4);
}

TEST_CASE("hiera: attention mask, intermediates and logits match the reference", "[models][hiera]") {
  auto net = tiny_module();
  TinyCase t;
  at::InferenceMode inference;
  at::Tensor mask = net->attention_mask(t.padding);
  CHECK(at::equal(mask, t.out("attn_mask")));
  std::vector<at::Tensor> intermediates;
  at::Tensor logits_masked = net->forward(t.x, mask, &intermediates);
  auto expected = t.outputs.at("intermediates").toList();
  REQUIRE(intermediates.size() == expected.size());
  for (size_t i = 0; i < intermediates.size(); ++i) {
    INFO("stage " << i);
    at::Tensor e = expected.get(i).toTensor();
    REQUIRE(intermediates[i].sizes() == e.sizes());
    CHECK(max_abs_diff(intermediates[i], e) < 1e-4);
  }
  CHECK(max_abs_diff(logits_masked, t.out("forward_logits_with_attn_mask")) < 1e-4);
  at::Tensor logits = net->forward(t.x);
  CHECK(max_abs_diff(logits, t.out("forward_logits")) < 1e-4);
  CHECK(max_abs_diff(logits.softmax(-1), t.out("forward_probs")) < 1e-4);
  CHECK(max_abs_diff(net->extract_features(t.x), t.out("features_no_padding_arg")) < 1e-4);
}

TEST_CASE("hiera: global attention in query blocks gives the same features", "[models][hiera]") {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode section = tiny_section();
  section.set("attention_block", int64_t{3});  // far below the 128 and 32 query rows of the global blocks
  auto encoder = slt::Registry::global().create<slt::VideoEncoder>(slt::kinds::kVideoEncoder, "hiera_base_16x224", &section);
  encoder->load_weights((kSignHiera / "tiny_signhiera.pth").string());
  TinyCase t;
  at::InferenceMode inference;
  CHECK(max_abs_diff(encoder->extract_features(t.x, t.padding), t.out("features")) < 1e-4);
}

TEST_CASE("hiera: the presets have the reference's parameter names and shapes", "[models][hiera]") {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  auto layout = read_json(kSignHiera / "hiera_base_state_dict_layout.json");
  for (const char* preset : {"hiera_base_128x224", "hiera_base_16x224"}) {
    INFO(preset);
    auto encoder = slt::Registry::global().create<slt::VideoEncoder>(slt::kinds::kVideoEncoder, preset, nullptr);
    std::map<std::string, std::vector<int64_t>> ours, reference;
    int64_t count = 0;
    for (const auto& p : encoder->module().named_parameters()) {
      ours[p.key()] = p.value().sizes().vec();
      count += p.value().numel();
    }
    for (const auto& entry : layout[preset]["state_dict"])
      reference[entry["key"].get<std::string>()] = entry["shape"].get<std::vector<int64_t>>();
    CHECK(ours == reference);
    CHECK(count == layout[preset]["num_params"].get<int64_t>());
  }
}

TEST_CASE("hiera: hyper-parameters come from the section - bad ones are named errors", "[models][hiera]") {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode section = tiny_section();
  section.set("embed_dim", int64_t{8});
  section.set("stages", to_config(nlohmann::json::parse("[1,1,1,1]")));
  auto encoder = slt::Registry::global().create<slt::VideoEncoder>(slt::kinds::kVideoEncoder, "hiera_base_16x224", &section);
  CHECK(encoder->feature_dim() == 64);
  section.set("q_stride", to_config(nlohmann::json::parse("[2,2]")));
  CHECK_THROWS_WITH(slt::Registry::global().create<slt::VideoEncoder>(slt::kinds::kVideoEncoder, "hiera_base_16x224", &section),
                    Catch::Contains("3 entries"));
  section.set("embed_dim", "wide");
  CHECK_THROWS_WITH(slt::Registry::global().create<slt::VideoEncoder>(slt::kinds::kVideoEncoder, "hiera_base_16x224", &section),
                    Catch::Contains("model.embed_dim") && Catch::Contains("expected int"));
}
