#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "slt/errors.h"
#include "slt/model/model.h"
#include "slt/plugin/plugin.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/plugin/registry.h"

namespace fs = std::filesystem;

namespace {
fs::path bad(const std::string& name) { return fs::path(SLT_BAD_PLUGIN_DIR) / name; }
fs::path only_library_in(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".so") return entry.path();
  FAIL("no library in " << dir);
  return {};
}

slt::ConfigNode hello_config() {
  slt::ConfigNode cfg = slt::ConfigNode::map();
  cfg.set("model.feature_dim", 8);
  cfg.set("model.hidden_dim", 4);
  cfg.set("model.vocab_size", 11);
  return cfg;
}
}  // namespace

TEST_CASE("the example plugin loads, registers and creates a working model", "[plugins]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  loader.load_directory(SLT_BUILD_PLUGIN_DIR);
  REQUIRE(registry.contains("model", "hello_model"));
  const auto& info = registry.get("model", "hello_model");
  CHECK(info.plugin_name == "hello_model");
  CHECK(info.schema.find("hidden_dim") != nullptr);
  CHECK(fs::path(info.plugin_path).filename() == "libslt_hello_model.so");

  slt::ConfigNode config = hello_config();
  auto model = registry.create<slt::TranslationModel>("model", "hello_model", config.at("model"));
  slt::Batch batch;
  batch.features = at::randn({2, 5, 8});
  batch.attention_mask = at::ones({2, 5});
  batch.labels = at::randint(0, 11, {2, 3}, at::kLong);
  auto out = model->forward(batch);
  CHECK(out.logits.sizes() == at::IntArrayRef({2, 3, 11}));
  CHECK(out.loss.dim() == 0);
  CHECK(std::isfinite(out.loss.item<float>()));

  SECTION("loading the same folder again is a no-op") {
    size_t before = loader.plugins().size();
    loader.load_directory(SLT_BUILD_PLUGIN_DIR);
    CHECK(loader.plugins().size() == before);
  }
}

TEST_CASE("a library without the entry point is rejected", "[plugins][bad]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  auto path = only_library_in(bad("not_a_plugin"));
  CHECK_THROWS_WITH(loader.load_file(path),
                    Catch::Contains(path.string()) && Catch::Contains("not an slt plugin") &&
                        Catch::Contains("slt_plugin_info"));
}

TEST_CASE("an ABI version mismatch prints path and both versions", "[plugins][bad]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  auto path = only_library_in(bad("abi_mismatch"));
  CHECK_THROWS_WITH(loader.load_file(path),
                    Catch::Contains(path.string()) &&
                        Catch::Contains("ABI version " + std::to_string(SLT_PLUGIN_ABI_VERSION + 41)) &&
                        Catch::Contains("uses ABI version " + std::to_string(SLT_PLUGIN_ABI_VERSION)));
}

TEST_CASE("a build fingerprint mismatch prints both fingerprints", "[plugins][bad]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  CHECK_THROWS_WITH(loader.load_directory(bad("fingerprint_mismatch")),
                    Catch::Contains("compiler=gcc-4.8.5;cxx11abi=0") &&
                        Catch::Contains(slt::host_build_fingerprint()));
}

TEST_CASE("a duplicate component name names both files", "[plugins][bad]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  CHECK_THROWS_WITH(loader.load_directory(bad("duplicate")),
                    Catch::Contains("tokenizer.same_name") && Catch::Contains("libslt_bad_duplicate_a.so") &&
                        Catch::Contains("libslt_bad_duplicate_b.so"));
}

TEST_CASE("a registration that throws becomes a plugin error naming the file", "[plugins][bad]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  CHECK_THROWS_AS(loader.load_directory(bad("throws_on_register")), slt::PluginError);
  CHECK_THROWS_WITH(loader.load_directory(bad("throws_on_register")),
                    Catch::Contains("libslt_bad_throws_on_register.so") && Catch::Contains("vocabulary file missing"));
}

TEST_CASE("an unknown component lists the registered names and the closest one", "[plugins]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  loader.load_directory(SLT_BUILD_PLUGIN_DIR);
  CHECK_THROWS_AS(registry.get("model", "helo_model"), slt::UnknownComponentError);
  CHECK_THROWS_WITH(registry.get("model", "helo_model"),
                    Catch::Contains("Registered models: ") && Catch::Contains("hello_model, ") && Catch::Contains("Did you mean 'hello_model'"));
  CHECK_THROWS_WITH(registry.get("video_encoder", "hiera"), Catch::Contains("Did you mean 'hiera_base_128x224'"));
  slt::Registry empty;  // a kind nothing registered says so, and where to look
  CHECK_THROWS_WITH(empty.get("video_encoder", "hiera"),
                    Catch::Contains("Registered video_encoders: none") && Catch::Contains("--list-plugins"));
}

TEST_CASE("a missing file or folder is handled clearly", "[plugins]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  CHECK_THROWS_WITH(loader.load_file("/nonexistent/libx.so"), Catch::Contains("/nonexistent/libx.so"));
  CHECK_NOTHROW(loader.load_directory("/nonexistent/folder"));
}

TEST_CASE("plugin search path order: flag, environment, config, default", "[plugins]") {
  setenv("SLT_PLUGIN_PATH", "/env/a:/env/b", 1);
  slt::ConfigNode cfg = slt::ConfigNode::map();
  slt::ConfigNode paths = slt::ConfigNode::list();
  paths.elements().emplace_back("/cfg/c");
  cfg.set("plugins.paths", paths);
  auto dirs = slt::plugin_search_path({"/flag/x"}, &cfg);
  unsetenv("SLT_PLUGIN_PATH");
  REQUIRE(dirs.size() == 5);
  CHECK(dirs[0] == "/flag/x");
  CHECK(dirs[1] == "/env/a");
  CHECK(dirs[2] == "/env/b");
  CHECK(dirs[3] == "/cfg/c");
  CHECK(dirs[4] == slt::default_plugin_dir());
  CHECK(fs::equivalent(slt::default_plugin_dir(), SLT_BUILD_PLUGIN_DIR));
}

// Core and the apps choose components through the registry (names from the
// config, or claims); none of them may know a built-in plugin by name.
TEST_CASE("no source file under core/ or apps/ names a component registered by plugins/", "[plugins][boundary]") {
  slt::Registry registry;
  slt::PluginLoader loader(registry);
  loader.load_directory(SLT_BUILD_PLUGIN_DIR);
  std::vector<std::string> names;
  for (const slt::ComponentInfo* info : registry.list()) names.push_back("\"" + info->name + "\"");
  REQUIRE(names.size() >= 9);  // models, tokenizers, datasets
  const fs::path source = fs::path(SLT_TESTS_DIR).parent_path();
  int files = 0;
  for (const char* top : {"core", "apps"}) {
    for (const auto& entry : fs::recursive_directory_iterator(source / top)) {
      std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".h" && ext != ".in")) continue;
      ++files;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      for (const auto& name : names) {
        INFO(entry.path().string() << " names " << name);
        CHECK(text.str().find(name) == std::string::npos);
      }
    }
  }
  CHECK(files > 40);
}
