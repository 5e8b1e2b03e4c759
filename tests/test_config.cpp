#include <catch2/catch.hpp>

#include "slt/config/config.h"
#include "slt/errors.h"

using slt::ConfigNode;
using Type = ConfigNode::Type;

TEST_CASE("plain YAML scalars get OmegaConf's types", "[config]") {
  CHECK(slt::parse_plain_scalar("null").is_null());
  CHECK(slt::parse_plain_scalar("~").is_null());
  CHECK(slt::parse_plain_scalar("true").as_bool() == true);
  CHECK(slt::parse_plain_scalar("False").as_bool() == false);
  CHECK(slt::parse_plain_scalar("yes").as_bool() == true);
  CHECK(slt::parse_plain_scalar("42").as_int() == 42);
  CHECK(slt::parse_plain_scalar("-7").as_int() == -7);
  CHECK(slt::parse_plain_scalar("1_000").as_int() == 1000);
  // OmegaConf reads exponent floats without a dot, unlike plain YAML 1.1.
  CHECK(slt::parse_plain_scalar("5e-4").type() == Type::Float);
  CHECK(slt::parse_plain_scalar("5e-4").as_double() == Approx(5e-4));
  CHECK(slt::parse_plain_scalar("1e-7").as_double() == Approx(1e-7));
  CHECK(slt::parse_plain_scalar("0.3").as_double() == Approx(0.3));
  CHECK(slt::parse_plain_scalar(".inf").as_double() == std::numeric_limits<double>::infinity());
  CHECK(slt::parse_plain_scalar("google/t5-v1_1-base").as_string() == "google/t5-v1_1-base");
  CHECK(slt::parse_plain_scalar("???").is_missing());
  CHECK(slt::parse_plain_scalar("y").is_string());
}

TEST_CASE("floats print like Python's repr through PyYAML", "[config]") {
  CHECK(slt::format_float(5e-4) == "0.0005");
  CHECK(slt::format_float(1e-7) == "1.0e-07");
  CHECK(slt::format_float(1e-4) == "0.0001");
  CHECK(slt::format_float(0.3) == "0.3");
  CHECK(slt::format_float(100.0) == "100.0");
  CHECK(slt::format_float(-2.5) == "-2.5");
  CHECK(slt::format_float(1e16) == "1.0e+16");
  CHECK(slt::format_float(123456.789) == "123456.789");
}

TEST_CASE("YAML text parses into an ordered tree", "[config]") {
  ConfigNode root = slt::parse_yaml(
      "b: 1\na:\n  x: [1, 2]\n  y: 'quoted: 5'\n  z: \"5\"\nlist:\n  - name: one\n  - two\n", "inline");
  REQUIRE(root.is_map());
  CHECK(root.items()[0].first == "b");
  CHECK(root.items()[1].first == "a");
  CHECK(root.at("a.x")->elements().size() == 2);
  CHECK(root.at("a.y")->as_string() == "quoted: 5");
  CHECK(root.at("a.z")->is_string());  // quoted numbers stay strings
  CHECK(root.at("list")->elements()[0].at("name")->as_string() == "one");
}

TEST_CASE("printed YAML reads back to the same tree", "[config]") {
  ConfigNode root = slt::parse_yaml(
      "s: '123'\nt: 'true'\nempty: ''\nm: ???\nn: null\nf: 1.0e-07\nlst: []\nmp: {}\n"
      "nested:\n  deep:\n    k: v # comment\n  items:\n  - a: 1\n    b: 2\n  - [1, 2]\n"
      "text: \"line\\nbreak\"\ncolon: 'a: b'\n",
      "inline");
  std::string yaml = root.to_yaml();
  ConfigNode again = slt::parse_yaml(yaml, "printed");
  CHECK(again == root);
  CHECK(yaml.find("m: ???") != std::string::npos);
}

TEST_CASE("dotted paths set, find and erase", "[config]") {
  ConfigNode root = ConfigNode::map();
  root.set("optim.lr", 0.1);
  root.set("optim.epochs", 3);
  CHECK(root.at("optim.lr")->as_double() == Approx(0.1));
  CHECK(root.at("optim.missing") == nullptr);
  CHECK(root.erase_path("optim.lr"));
  CHECK(root.at("optim.lr") == nullptr);
  root.set("x", 1);
  CHECK_THROWS_AS(root.set("x.y", 2), slt::ConfigError);
}

TEST_CASE("deep merge replaces leaves and keeps other keys", "[config]") {
  ConfigNode a = slt::parse_yaml("common: {seed: 1, device: cuda}\nlist: [1, 2]\n", "a");
  ConfigNode b = slt::parse_yaml("common: {seed: 2}\nlist: [3]\nnew: x\n", "b");
  a.merge(b);
  CHECK(a.at("common.seed")->as_int() == 2);
  CHECK(a.at("common.device")->as_string() == "cuda");
  CHECK(a.at("list")->elements().size() == 1);
  CHECK(a.at("new")->as_string() == "x");
}

TEST_CASE("YAML errors name the file and line", "[config]") {
  try {
    slt::parse_yaml("a: 1\nb: [1, 2\n", "broken.yaml");
    FAIL("no error");
  } catch (const slt::ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("broken.yaml:"));
  }
  CHECK_THROWS_WITH(slt::parse_yaml("a: 1\na: 2\n", "dup.yaml"),
                    Catch::Contains("dup.yaml:2") && Catch::Contains("duplicate key 'a'"));
  CHECK_THROWS_WITH(slt::load_yaml_file("/nonexistent/x.yaml"), Catch::Contains("/nonexistent/x.yaml"));
}

TEST_CASE("typed access names the key on a mismatch", "[config]") {
  ConfigNode n("abc");
  CHECK_THROWS_WITH(n.as_int("common.seed"),
                    Catch::Contains("common.seed") && Catch::Contains("expected int") &&
                        Catch::Contains("'abc'"));
}

TEST_CASE("YAML aliases cannot expand without bound", "[config]") {
  // Nine levels of ten aliases each: 10^9 values once expanded.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    std::string prev = "*a" + std::to_string(level - 1);
    bomb += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [" + prev;
    for (int i = 1; i < 10; ++i) bomb += ", " + prev;
    bomb += "]\n";
  }
  CHECK_THROWS_WITH(slt::parse_yaml(bomb, "bomb.yaml"), Catch::Contains("bomb.yaml: more than 1000000 values"));
  std::string nested = "a: " + std::string(100, '[') + std::string(100, ']') + "\n";
  CHECK_THROWS_WITH(slt::parse_yaml(nested, "deep.yaml"), Catch::Contains("deep.yaml:1: nested deeper than 64"));
}
