#include <catch2/catch.hpp>

#include <cmath>

#include "slt/errors.h"
#include "slt/runtime/components.h"
#include "slt/config/run_config.h"
#include "slt/config/schema.h"

using slt::ConfigNode;
using slt::ValueType;

namespace {
slt::ConfigSchema sample_schema() {
  slt::ConfigSchema s;
  s.add("seed", ValueType::Int, 42, "Random seed");
  s.add("lr", ValueType::Float, 0.001, "Learning rate");
  s.add("device", ValueType::String, "cuda", "Device", {"cpu", "cuda"});
  s.add_optional("resume", ValueType::String, nullptr, "Checkpoint");
  s.add_required("name_or_path", ValueType::String, "Model folder");
  s.add("sub.flag", ValueType::Bool, false, "A nested flag");
  return s;
}
}  // namespace

TEST_CASE("a schema's defaults form a config tree", "[schema]") {
  ConfigNode d = sample_schema().defaults();
  CHECK(d.at("seed")->as_int() == 42);
  CHECK(d.at("sub.flag")->as_bool() == false);
  CHECK(d.at("name_or_path")->is_missing());
  CHECK(d.at("resume")->is_null());
}

TEST_CASE("validation accepts well-typed values and widens ints to floats", "[schema]") {
  ConfigNode cfg = sample_schema().defaults();
  cfg.set("lr", 1);
  sample_schema().validate(cfg, "model");
  CHECK(cfg.at("lr")->type() == ConfigNode::Type::Float);
}

TEST_CASE("an unknown key is an error with a did-you-mean", "[schema]") {
  ConfigNode cfg = sample_schema().defaults();
  cfg.set("sedd", 3);
  CHECK_THROWS_WITH(sample_schema().validate(cfg, "model"),
                    Catch::Contains("unknown config key 'model.sedd'") &&
                        Catch::Contains("did you mean 'model.seed'"));
  ConfigNode nested = sample_schema().defaults();
  nested.set("sub.flga", true);
  CHECK_THROWS_WITH(sample_schema().validate(nested, "model"), Catch::Contains("model.sub.flag"));
}

TEST_CASE("a wrong type names key, expected type and value", "[schema]") {
  ConfigNode cfg = sample_schema().defaults();
  cfg.set("seed", "abc");
  CHECK_THROWS_WITH(sample_schema().validate(cfg, "common"),
                    Catch::Contains("common.seed") && Catch::Contains("expected int") &&
                        Catch::Contains("'abc'"));
  ConfigNode null_int = sample_schema().defaults();
  null_int.set("seed", nullptr);
  CHECK_THROWS_WITH(sample_schema().validate(null_int, "common"), Catch::Contains("cannot be null"));
  ConfigNode bad_choice = sample_schema().defaults();
  bad_choice.set("device", "tpu");
  CHECK_THROWS_WITH(sample_schema().validate(bad_choice, "common"),
                    Catch::Contains("'tpu' is not one of: cpu, cuda"));
}

TEST_CASE("missing_keys lists every ??? with its dotted name", "[schema]") {
  ConfigNode cfg = slt::parse_yaml("data:\n  train: ???\n  val: ???\nmodel: {x: 1}\n", "t");
  auto missing = slt::missing_keys(cfg);
  REQUIRE(missing.size() == 2);
  CHECK(missing[0] == "data.train");
  CHECK(missing[1] == "data.val");
}

TEST_CASE("the run schema knows every reference section", "[schema]") {
  const auto& schema = slt::run_schema();
  for (const char* key : {"common.seed", "common.eval_steps", "model.name_or_path", "model.encoder_layers",
                          "data.train_data_dirs", "criterion.label_smoothing", "optim.patience",
                          "dist.world_size", "wandb.project", "sweep.dir", "debug", "fairseq", "cmd"}) {
    INFO(key);
    const slt::ConfigField* field = schema.find(key);
    REQUIRE(field != nullptr);
    CHECK_FALSE(field->help.empty());
  }
  ConfigNode cfg = schema.defaults();
  cfg.set("optim.lrr", 0.1);
  CHECK_THROWS_WITH(slt::validate_job(cfg), Catch::Contains("did you mean 'optim.lr'"));
}

TEST_CASE("bounded fields refuse values outside their range, naming key and bounds", "[schema]") {
  slt::ConfigSchema s;
  s.add("dropout", ValueType::Float, 0.1, "Dropout").between(0, 1);
  s.add("epochs", ValueType::Int, 10, "Epochs").at_least(0);
  ConfigNode ok = s.defaults();
  ok.set("dropout", 1);
  ok.set("epochs", 0);
  CHECK_NOTHROW(s.validate(ok, "optim"));
  ConfigNode high = s.defaults();
  high.set("dropout", 1.5);
  CHECK_THROWS_WITH(s.validate(high, "model"),
                    Catch::Contains("config key 'model.dropout': 1.5 is out of range (between 0 and 1)"));
  ConfigNode negative = s.defaults();
  negative.set("epochs", -1);
  CHECK_THROWS_WITH(s.validate(negative, "optim"), Catch::Contains("'optim.epochs': -1 is out of range (at least 0)"));
  ConfigNode nan = s.defaults();
  nan.set("dropout", std::nan(""));
  CHECK_THROWS_WITH(s.validate(nan, "model"), Catch::Contains("out of range"));
  CHECK(slt::describe_bounds(s.fields()[1]) == "at least 0");
}
