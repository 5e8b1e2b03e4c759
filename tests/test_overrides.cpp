#include <catch2/catch.hpp>

#include "slt/errors.h"
#include "slt/config/overrides.h"

using slt::Override;
using Type = slt::ConfigNode::Type;

TEST_CASE("a.b=value changes a key with a typed value", "[overrides]") {
  Override o = slt::parse_override("optim.lr=5e-4");
  CHECK(o.kind == Override::Kind::Change);
  CHECK(o.key == "optim.lr");
  REQUIRE(o.values.size() == 1);
  CHECK(o.values[0].type() == Type::Float);
  CHECK(slt::parse_override("common.seed=3").values[0].as_int() == 3);
  CHECK(slt::parse_override("common.fp16=false").values[0].as_bool() == false);
  CHECK(slt::parse_override("common.load_model=null").values[0].is_null());
  CHECK(slt::parse_override("model.name_or_path=google/t5-v1_1-base").values[0].as_string() ==
        "google/t5-v1_1-base");
  CHECK(slt::parse_override("common.output_dir=").values[0].as_string().empty());
}

TEST_CASE("+, ++ and ~ prefixes", "[overrides]") {
  CHECK(slt::parse_override("+a.b=1").kind == Override::Kind::Add);
  CHECK(slt::parse_override("++a.b=1").kind == Override::Kind::ForceAdd);
  Override del = slt::parse_override("~common.resume");
  CHECK(del.kind == Override::Kind::Delete);
  CHECK(del.values.empty());
  CHECK(slt::parse_override("~common.seed=3").values[0].as_int() == 3);
  CHECK(slt::parse_override("+a.b=1").key_element() == "+a.b");
}

TEST_CASE("quoted values are strings and a quoted comma is not a sweep", "[overrides]") {
  Override o = slt::parse_override(R"(data.train_data_dirs="/p/a,/p/b")");
  REQUIRE(o.values.size() == 1);
  CHECK_FALSE(o.is_sweep());
  CHECK(o.values[0].as_string() == "/p/a,/p/b");
  CHECK(slt::parse_override("a='1'").values[0].is_string());
  CHECK(slt::parse_override(R"(a='x\'y')").values[0].as_string() == "x'y");
}

TEST_CASE("unquoted commas make a sweep", "[overrides]") {
  Override o = slt::parse_override("common.seed=1,2,3,4,5");
  REQUIRE(o.is_sweep());
  REQUIRE(o.values.size() == 5);
  CHECK(o.values[4].as_int() == 5);
  CHECK(o.value_texts[2] == "3");
  Override mixed = slt::parse_override("a=x,'y,z',[1,2]");
  REQUIRE(mixed.values.size() == 3);
  CHECK(mixed.values[1].as_string() == "y,z");
  CHECK(mixed.values[2].is_list());
}

TEST_CASE("lists, maps and interpolations", "[overrides]") {
  auto list = slt::parse_override("a=[1, 2.5, x, 'q', null]").values.at(0);
  REQUIRE(list.is_list());
  REQUIRE(list.elements().size() == 5);
  CHECK(list.elements()[0].as_int() == 1);
  CHECK(list.elements()[1].as_double() == Approx(2.5));
  CHECK(list.elements()[2].as_string() == "x");
  CHECK(list.elements()[4].is_null());
  CHECK(slt::parse_override("a=[]").values.at(0).elements().empty());
  auto nested = slt::parse_override("a=[[1,2],[3]]").values.at(0);
  CHECK(nested.elements()[0].elements().size() == 2);
  auto map = slt::parse_override("a={x: 1, y: [2]}").values.at(0);
  CHECK(map.at("x")->as_int() == 1);
  CHECK(map.at("y")->is_list());
  CHECK(slt::parse_override("a=${oc.env:HOME,/tmp}").values.at(0).as_string() == "${oc.env:HOME,/tmp}");
}

TEST_CASE("group choices parse like plain overrides", "[overrides]") {
  Override o = slt::parse_override("run=64gpu");
  CHECK(o.key == "run");
  CHECK(o.values.at(0).as_string() == "64gpu");
}

TEST_CASE("malformed overrides are errors naming the argument", "[overrides]") {
  CHECK_THROWS_WITH(slt::parse_override("noequals"), Catch::Contains("noequals") && Catch::Contains("no value"));
  CHECK_THROWS_WITH(slt::parse_override("a=[1,2"), Catch::Contains("a=[1,2"));
  CHECK_THROWS_WITH(slt::parse_override("a='open"), Catch::Contains("closing '"));
  CHECK_THROWS_AS(slt::parse_override("=3"), slt::ConfigError);
  CHECK_THROWS_AS(slt::parse_override("a..b=3"), slt::ConfigError);
}

TEST_CASE("sweeps expand to the cartesian product, last varying fastest", "[overrides]") {
  std::vector<Override> overrides = {slt::parse_override("a=1,2"), slt::parse_override("b=x"),
                                     slt::parse_override("c=p,q,r")};
  auto runs = slt::expand_sweeps(overrides);
  REQUIRE(runs.size() == 6);
  CHECK(runs[0][0].values[0].as_int() == 1);
  CHECK(runs[0][2].values[0].as_string() == "p");
  CHECK(runs[1][2].values[0].as_string() == "q");
  CHECK(runs[3][0].values[0].as_int() == 2);
  CHECK(runs[5][2].values[0].as_string() == "r");
  for (const auto& run : runs)
    for (const auto& o : run) CHECK(o.values.size() == 1);
}

TEST_CASE("overrides and sweeps are bounded: nesting, key depth, sweep size", "[overrides]") {
  std::string deep = "a=" + std::string(40000, '[') + "1" + std::string(40000, ']');
  CHECK_THROWS_WITH(slt::parse_override(deep), Catch::Contains("at most 64 levels of nested"));
  std::string long_key;
  for (int i = 0; i < 40000; ++i) long_key += "a.";
  CHECK_THROWS_WITH(slt::parse_override(long_key + "b=1"), Catch::Contains("at most 64 dotted parts"));
  CHECK(slt::parse_override("a=" + std::string(60, '[') + "1" + std::string(60, ']')).values.size() == 1);
  // 10^6 runs are refused before any is composed.
  std::vector<Override> sweep;
  for (int i = 0; i < 6; ++i) sweep.push_back(slt::parse_override("k" + std::to_string(i) + "=0,1,2,3,4,5,6,7,8,9"));
  CHECK_THROWS_WITH(slt::expand_sweeps(sweep), Catch::Contains("more than 100000 runs"));
}
