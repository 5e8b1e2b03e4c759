#include <catch2/catch.hpp>
#include <cstdlib>

#include "slt/config/compose.h"
#include "slt/errors.h"
#include "slt/runtime/components.h"
#include "slt/config/run_config.h"
#include "test_helpers.h"

using slt::ComposeRequest;
using slt::ConfigNode;
using slt_test::TempDir;

namespace {

ComposeRequest request_for(const TempDir& dir, const std::string& name, std::vector<std::string> overrides = {}) {
  ComposeRequest r;
  r.search_path = {dir.path()};
  r.config_name = name;
  r.overrides = std::move(overrides);
  return r;
}

ConfigNode compose_one(const ComposeRequest& r) {
  auto runs = slt::compose_runs(r);
  REQUIRE(runs.size() == 1);
  return runs[0].job_config();
}

ComposeRequest shipped(const std::string& name, std::vector<std::string> overrides = {}, bool multirun = false) {
  slt::register_base_config();
  ComposeRequest r;
  r.search_path = {SLT_SOURCE_CONFIG_DIR};
  r.config_name = name;
  r.overrides = std::move(overrides);
  r.multirun = multirun;
  r.command_line = "slt-run test";
  return r;
}

}  // namespace

TEST_CASE("defaults: group options load into their package, _global_ at the root", "[compose]") {
  TempDir dir;
  dir.write("main.yaml", "defaults:\n  - db: small\n  - run: fast\n  - _self_\nname: main\n");
  dir.write("db/small.yaml", "size: 1\n");
  dir.write("db/large.yaml", "size: 100\n");
  dir.write("run/fast.yaml", "# @package _global_\nspeed: 10\n");
  ConfigNode cfg = compose_one(request_for(dir, "main"));
  CHECK(cfg.at("db.size")->as_int() == 1);
  CHECK(cfg.at("speed")->as_int() == 10);
  CHECK(cfg.at("name")->as_string() == "main");
  CHECK(cfg.find("defaults") == nullptr);

  SECTION("a group choice on the command line replaces the default option") {
    ConfigNode big = compose_one(request_for(dir, "main", {"db=large"}));
    CHECK(big.at("db.size")->as_int() == 100);
  }
  SECTION("an unknown option lists the available ones") {
    CHECK_THROWS_WITH(compose_one(request_for(dir, "main", {"db=medium"})),
                      Catch::Contains("no option 'medium'") && Catch::Contains("large, small"));
  }
  SECTION("the chosen options are recorded in hydra.runtime.choices") {
    auto runs = slt::compose_runs(request_for(dir, "main", {"db=large"}));
    CHECK(runs[0].config.at("hydra.runtime.choices.db")->as_string() == "large");
  }
}

TEST_CASE("_self_ position decides who wins", "[compose]") {
  TempDir dir;
  dir.write("self_first.yaml", "defaults:\n  - _self_\n  - opt: a\nx: self\n");
  dir.write("self_last.yaml", "defaults:\n  - opt: a\nx: self\n");  // implicit _self_ last
  dir.write("opt/a.yaml", "# @package _global_\nx: from_a\n");
  CHECK(compose_one(request_for(dir, "self_first")).at("x")->as_string() == "from_a");
  CHECK(compose_one(request_for(dir, "self_last")).at("x")->as_string() == "self");
}

TEST_CASE("structured configs from the ConfigStore", "[compose]") {
  TempDir dir;
  ConfigNode stored = slt::parse_yaml("alpha: 1\nbeta: {gamma: 2}\n", "store");
  slt::ConfigStore::instance().store("test_store_node", stored);
  dir.write("main.yaml", "defaults:\n  - test_store_node\n  - _self_\nalpha: 5\n");
  ConfigNode cfg = compose_one(request_for(dir, "main"));
  CHECK(cfg.at("alpha")->as_int() == 5);
  CHECK(cfg.at("beta.gamma")->as_int() == 2);
}

TEST_CASE("command-line overrides change, add and delete keys", "[compose]") {
  TempDir dir;
  dir.write("main.yaml", "a:\n  b: 1\n  c: keep\n");
  CHECK(compose_one(request_for(dir, "main", {"a.b=2"})).at("a.b")->as_int() == 2);
  CHECK(compose_one(request_for(dir, "main", {"+a.new=x"})).at("a.new")->as_string() == "x");
  CHECK(compose_one(request_for(dir, "main", {"++a.b=3"})).at("a.b")->as_int() == 3);
  CHECK(compose_one(request_for(dir, "main", {"++a.z=3"})).at("a.z")->as_int() == 3);
  CHECK(compose_one(request_for(dir, "main", {"~a.c"})).at("a.c") == nullptr);
  CHECK_THROWS_WITH(compose_one(request_for(dir, "main", {"a.bb=2"})),
                    Catch::Contains("a.bb") && Catch::Contains("did you mean 'a.b'") && Catch::Contains("+a.bb"));
  CHECK_THROWS_WITH(compose_one(request_for(dir, "main", {"+a.b=2"})), Catch::Contains("already exists"));
  CHECK_THROWS_WITH(compose_one(request_for(dir, "main", {"~a.q"})), Catch::Contains("cannot delete 'a.q'"));
  CHECK_THROWS_WITH(compose_one(request_for(dir, "main", {"a.b=1,2"})), Catch::Contains("--multirun"));
}

TEST_CASE("interpolation: node references, env with default, cycles, missing targets", "[compose]") {
  TempDir dir;
  setenv("SLT_TEST_VAR", "from_env", 1);
  unsetenv("SLT_TEST_UNSET");
  dir.write("main.yaml",
            "data: {max: 128, dir: /d}\n"
            "model: {max: '${data.max}', path: '${data.dir}/x', env: '${oc.env:SLT_TEST_VAR}',\n"
            "        fallback: '${oc.env:SLT_TEST_UNSET,/fallback}', none: '${oc.env:SLT_TEST_UNSET,null}'}\n");
  ConfigNode cfg = compose_one(request_for(dir, "main"));
  CHECK(cfg.at("model.max")->as_int() == 128);  // a whole-value reference keeps the type
  CHECK(cfg.at("model.path")->as_string() == "/d/x");
  CHECK(cfg.at("model.env")->as_string() == "from_env");
  CHECK(cfg.at("model.fallback")->as_string() == "/fallback");
  CHECK(cfg.at("model.none")->is_null());
  // Overrides apply before interpolation, as in OmegaConf.
  CHECK(compose_one(request_for(dir, "main", {"data.max=64"})).at("model.max")->as_int() == 64);

  dir.write("cycle.yaml", "a: '${b}'\nb: '${c}'\nc: '${a}'\n");
  CHECK_THROWS_WITH(compose_one(request_for(dir, "cycle")), Catch::Contains("cycle") && Catch::Contains("a -> b -> c -> a"));
  dir.write("dangling.yaml", "a: '${nope.x}'\n");
  CHECK_THROWS_WITH(compose_one(request_for(dir, "dangling")),
                    Catch::Contains("'a'") && Catch::Contains("nope.x") && Catch::Contains("does not exist"));
  dir.write("noenv.yaml", "a: '${oc.env:SLT_TEST_UNSET}'\n");
  CHECK_THROWS_WITH(compose_one(request_for(dir, "noenv")), Catch::Contains("SLT_TEST_UNSET"));
}

TEST_CASE("a missing config name says where slt looked", "[compose]") {
  TempDir dir;
  CHECK_THROWS_WITH(compose_one(request_for(dir, "nope")),
                    Catch::Contains("nope.yaml") && Catch::Contains(dir.path().string()));
}

TEST_CASE("shipped configs compose with every reference default", "[compose][configs]") {
  for (std::string name : {"slt_t5", "slt_bart", "slt_tarres_fairseq"}) {
    ConfigNode cfg = compose_one(shipped(name));
    slt::validate_job(cfg);
    INFO(name);
    // Keys only base_config provides, with the reference defaults.
    CHECK(cfg.at("common.seed")->as_int() == 42);
    CHECK(cfg.at("common.max_checkpoints")->as_int() == 3);
    CHECK(cfg.at("optim.weight_decay")->as_double() == Approx(0.1));
    CHECK(cfg.at("optim.clip_grad")->as_double() == Approx(1.0));
    CHECK(cfg.at("dist.world_size")->as_int() == 1);
    CHECK(cfg.at("model.num_beams")->as_int() == 5);
    CHECK(cfg.at("data.train_data_dirs")->is_missing());
    CHECK(cfg.at("model.max_source_positions")->as_int() == cfg.at("data.max_source_positions")->as_int());
    CHECK(cfg.at("cmd")->as_string() == "slt-run test");
  }
  ConfigNode t5 = compose_one(shipped("slt_t5"));
  CHECK(t5.at("optim.lr")->as_double() == Approx(5e-4));
  CHECK(t5.at("optim.min_lr")->as_double() == Approx(1e-7));
  CHECK(t5.at("optim.gradient_accumulation_steps")->as_int() == 2);
  CHECK(t5.at("model.name_or_path")->as_string() == "google/t5-v1_1-base");
  CHECK(t5.at("common.fp16")->as_bool() == false);
  ConfigNode tarres = compose_one(shipped("slt_tarres_fairseq"));
  CHECK(tarres.at("fairseq")->as_bool());
  CHECK(tarres.at("model.encoder_layers")->as_int() == 6);
  CHECK(tarres.at("model.name_or_path")->is_missing());
  CHECK(tarres.at("common.fp16")->as_bool() == true);  // base default, as in the reference
}

TEST_CASE("run group files describe nodes x GPUs", "[compose][configs]") {
  struct Case { const char* run; int world; int nodes; };
  for (auto c : {Case{"1gpu", 1, 1}, Case{"8gpu", 8, 1}, Case{"16gpu", 16, 2}, Case{"32gpu", 32, 4},
                 Case{"64gpu", 64, 8}, Case{"128gpu", 128, 16}}) {
    INFO(c.run);
    auto runs = slt::compose_runs(shipped("slt_t5", {std::string("run=") + c.run}));
    CHECK(runs[0].config.at("dist.world_size")->as_int() == c.world);
    CHECK(runs[0].config.at("hydra.launcher.nodes")->as_int() == c.nodes);
    CHECK(runs[0].config.at("hydra.runtime.choices.hydra/launcher")->as_string() == "submitit_slurm");
  }
}

TEST_CASE("the reference README sweep expands to 5 runs", "[compose][configs]") {
  auto runs = slt::compose_runs(shipped(
      "slt_t5",
      {"run=64gpu", "hydra.sweep.dir=sweep_t5",
       R"(data.train_data_dirs="/path/to/features/how2sign,/path/to/features/youtube-asl")",
       "data.val_data_dir=/path/to/features/how2sign", "optim.train_batch_size=4",
       "optim.gradient_accumulation_steps=1", "common.eval_steps=500", "common.seed=1,2,3,4,5",
       "wandb.project=t5-sweep"},
      true));
  REQUIRE(runs.size() == 5);
  for (size_t i = 0; i < runs.size(); ++i) {
    ConfigNode job = runs[i].job_config();
    CHECK(job.at("common.seed")->as_int() == static_cast<int64_t>(i + 1));
    CHECK(job.at("data.train_data_dirs")->as_string() ==
          "/path/to/features/how2sign,/path/to/features/youtube-asl");
    CHECK(job.at("dist.world_size")->as_int() == 64);
    CHECK(job.at("wandb.project")->as_string() == "t5-sweep");
    // Hydra's override_dirname with kv_sep '.', item_sep '.', excluded keys dropped, sorted.
    CHECK(job.at("common.output_dir")->as_string() ==
          "sweep_t5/slt_t5/common.eval_steps.500.common.seed." + std::to_string(i + 1) +
              ".optim.gradient_accumulation_steps.1.optim.train_batch_size.4");
    CHECK(runs[i].config.at("hydra.job.num")->as_int() == static_cast<int64_t>(i));
    CHECK(runs[i].config.at("hydra.mode")->as_string() == "MULTIRUN");
  }
}

TEST_CASE("without run-group overrides the sweep subdir defaults to the job number", "[compose]") {
  TempDir dir;
  dir.write("plain.yaml", "x: 1\nout: '${hydra:sweep.dir}/${hydra:sweep.subdir}'\n");
  auto r = request_for(dir, "plain", {"x=1,2,3", "hydra.sweep.dir=/s"});
  r.multirun = true;
  auto runs = slt::compose_runs(r);
  REQUIRE(runs.size() == 3);
  CHECK(runs[2].job_config().at("out")->as_string() == "/s/2");
}
