// slt-run as a user runs it: exit codes and messages.
// Torch headers before Catch: glog's CHECK must not replace Catch's.
#include <ATen/ATen.h>

#include "slt/io/tensor_io.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "slt/config/config.h"
#include "test_helpers.h"

using slt_test::run_command;
using slt_test::TempDir;

namespace {
const std::string kRun = std::string(SLT_RUN_EXE) + " ";
const std::string kReadmeSweep =
    "--config-name slt_t5 --multirun run=64gpu hydra.sweep.dir=sweep_t5 "
    "'data.train_data_dirs=\"/path/to/features/how2sign,/path/to/features/youtube-asl\"' "
    "data.val_data_dir=/path/to/features/how2sign optim.train_batch_size=4 "
    "optim.gradient_accumulation_steps=1 common.eval_steps=500 common.seed=1,2,3,4,5 wandb.project=t5-sweep";
}  // namespace

TEST_CASE("slt-run --list-plugins lists the example", "[cli]") {
  auto r = run_command(kRun + "--list-plugins");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("hello_model 1.0.0") && Catch::Contains("model.hello_model"));
}

TEST_CASE("slt-run --describe prints a component's schema", "[cli]") {
  auto r = run_command(kRun + "--describe model.hello_model");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("hidden_dim (int) = 32") && Catch::Contains("Width of the pooled summary"));
  auto unknown = run_command(kRun + "--describe model.helo_model");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output, Catch::Contains("Did you mean 'hello_model'"));
}

TEST_CASE("slt-run --help with a config shows options and groups", "[cli]") {
  auto r = run_command(kRun + "--config-name slt_t5 --help");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("--multirun") && Catch::Contains("--cfg") &&
                           Catch::Contains("run: 128gpu, 16gpu, 1gpu, 32gpu, 64gpu, 8gpu, local") &&
                           Catch::Contains("name_or_path: google/t5-v1_1-base"));
}

TEST_CASE("cfg job with multirun prints one document per run in sweep order", "[cli]") {
  auto r = run_command(kRun + kReadmeSweep + " --cfg job");
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> documents;
  size_t start = 0;
  while (true) {
    size_t sep = r.output.find("---\n", start);
    documents.push_back(r.output.substr(start, sep - start));
    if (sep == std::string::npos) break;
    start = sep + 4;
  }
  REQUIRE(documents.size() == 5);
  for (size_t i = 0; i < documents.size(); ++i) {
    auto doc = slt::parse_yaml(documents[i], "run " + std::to_string(i));
    CHECK(doc.at("common.seed")->as_int() == static_cast<int64_t>(i + 1));
    CHECK(doc.at("data.train_data_dirs")->as_string() ==
          "/path/to/features/how2sign,/path/to/features/youtube-asl");
    CHECK(doc.find("hydra") == nullptr);
  }
}

TEST_CASE("user errors exit with code 2 and a clear message", "[cli]") {
  TempDir dir;
  std::string common = kRun + "--config-name slt_t5 hydra.sweep.dir=" + dir.path().string() + " ";
  SECTION("a missing ??? value names the key") {
    auto r = run_command(common + "data.val_data_dir=/v");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("missing mandatory value") && Catch::Contains("data.train_data_dirs"));
  }
  SECTION("an unknown key suggests the closest") {
    auto r = run_command(common + "optim.lrr=0.1");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("optim.lrr") && Catch::Contains("did you mean 'optim.lr'"));
  }
  SECTION("a bad type names key, expected type and value") {
    auto r = run_command(common + "optim.epochs=many --cfg job");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("optim.epochs") && Catch::Contains("expected int") &&
                             Catch::Contains("'many'"));
  }
  SECTION("a sweep without --multirun is ambiguous") {
    auto r = run_command(common + "common.seed=1,2");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("--multirun"));
  }
  SECTION("an unknown option") {
    auto r = run_command(kRun + "--no-such-flag");
    CHECK(r.exit_code == 2);
  }
}

TEST_CASE("a run writes its resolved config, then fails fast and offline on a model absent from the cache", "[cli]") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "hf");
  auto started = std::chrono::steady_clock::now();
  auto r = run_command("cd " + dir.path().string() + " && HF_HOME=" + (dir.path() / "hf").string() + " " + kRun +
                       "--config-name slt_t5 data.train_data_dirs=/t data.val_data_dir=/v common.seed=7");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("'google/t5-v1_1-base' not found") && Catch::Contains("downloads nothing") &&
                           Catch::Contains((dir.path() / "hf" / "hub" / "models--google--t5-v1_1-base").string()));
  CHECK(seconds < 10);  // a guard against hangs; the figure (under 1 s) is in docs/PERFORMANCE.md
  auto config = dir.path() / "debug" / "slt_t5" / "common.seed.7" / "config.yaml";
  REQUIRE(std::filesystem::exists(config));
  auto written = slt::load_yaml_file(config.string());
  CHECK(written.at("common.seed")->as_int() == 7);
  CHECK(written.at("data.train_data_dirs")->as_string() == "/t");
  CHECK_THAT(written.at("cmd")->as_string(), Catch::Contains("common.seed=7") && Catch::StartsWith("slt-run"));
}

TEST_CASE("slt-score reproduces the reference corpus metrics from a TSV and from two files", "[cli][metrics]") {
  const std::string score = std::string(SLT_SCORE_EXE) + " ";
  const std::string tsv = std::string(SLT_FIXTURES_DIR) + "/metrics/dev040_mixed.tsv";
  auto expected = slt::load_yaml_file(std::string(SLT_FIXTURES_DIR) + "/metrics/dev040_mixed.expected.json");
  auto check = [&](const std::string& output) {
    auto got = slt::parse_yaml(output, "slt-score --json");  // JSON is YAML
    for (const char* key : {"bleu1", "bleu2", "bleu3", "bleu4"})
      CHECK(got.at(key)->as_double() == expected.at(key)->as_double());
    for (const char* key : {"chrf", "rouge1", "rouge2", "rougeL", "rougeLsum"})
      CHECK(got.at(key)->as_double() == Approx(expected.at(key)->as_double()).margin(1e-6));
    CHECK(got.at("meteor")->as_double() == Approx(expected.at("meteor")->as_double()).margin(1e-4));
    CHECK(got.at("signature")->as_string() == expected.at("bleu_signature")->as_string());
  };
  auto r = run_command(score + "--json " + tsv);
  REQUIRE(r.exit_code == 0);
  check(r.output);

  // The same pairs as an evaluation output (with header) and as two files.
  TempDir dir;
  std::ifstream in(tsv);
  std::string line, with_header = "Prediction\tReference\n", hyps, refs;
  while (std::getline(in, line)) {
    with_header += line + "\n";
    hyps += line.substr(0, line.find('\t')) + "\n";
    refs += line.substr(line.find('\t') + 1) + "\n";
  }
  auto outputs = dir.write("test_outputs.tsv", with_header);
  check(run_command(score + "--json " + outputs.string()).output);
  auto h = dir.write("h.txt", hyps), rf = dir.write("r.txt", refs);
  check(run_command(score + "--json --hyps " + h.string() + " --refs " + rf.string()).output);

  SECTION("user errors") {
    auto short_refs = dir.write("short.txt", "one line\n");
    auto mismatch = run_command(score + "--hyps " + h.string() + " --refs " + short_refs.string());
    CHECK(mismatch.exit_code == 2);
    CHECK_THAT(mismatch.output, Catch::Contains("has 40 lines") && Catch::Contains("has 1"));
    auto missing = run_command(score + dir.path().string() + "/nope.tsv");
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.output, Catch::Contains("nope.tsv"));
    auto latin1 = dir.write("latin1.tsv", "caf\xe9\tcafe\n");
    auto encoding = run_command(score + latin1.string());
    CHECK(encoding.exit_code == 2);
    CHECK_THAT(encoding.output, Catch::Contains("latin1.tsv:1") && Catch::Contains("UTF-8"));
    auto one_column = dir.write("one.tsv", "just one column\n");
    CHECK_THAT(run_command(score + one_column.string()).output, Catch::Contains("one.tsv:1"));
  }
}

TEST_CASE("slt-tokenize encodes like the collator and decodes like evaluation", "[cli][tokenizers]") {
  const std::string tokenize = std::string(SLT_TOKENIZE_EXE) + " ";
  TempDir dir;
  auto captions = dir.write("captions.txt",
                            "Now I'm going to show you how to fold the paper in half.\nThanks for watching!\n");
  for (const char* name : {"t5", "bart"}) {
    INFO(name);
    std::string folder = std::string(SLT_FIXTURES_DIR) + "/models/tiny_" + name;
    auto fixture = slt::load_yaml_file(std::string(SLT_FIXTURES_DIR) + "/models/tokenizer_cases_" + name + ".json");
    const auto& rows = fixture.at("batch_captions.input_ids")->elements();
    auto pad = fixture.at("pad_token_id")->as_int();
    std::string expected;
    for (size_t row : {size_t{0}, size_t{2}}) {
      std::string line;
      for (const auto& id : rows[row].elements())
        if (id.as_int() != pad) line += (line.empty() ? "" : " ") + std::to_string(id.as_int());
      expected += line + "\n";
    }
    auto encoded = run_command(tokenize + "--tokenizer " + folder + " < " + captions.string());
    REQUIRE(encoded.exit_code == 0);
    CHECK(encoded.output == expected);
    auto ids = dir.write("ids.txt", expected);
    auto decoded = run_command(tokenize + "--decode --tokenizer " + folder + " < " + ids.string());
    CHECK(decoded.output == "Now I'm going to show you how to fold the paper in half.\nThanks for watching!\n");
  }
  auto bad = dir.write("bad_ids.txt", "1 2 x3\n");
  auto r = run_command(tokenize + "--decode --tokenizer " + std::string(SLT_FIXTURES_DIR) + "/models/tiny_t5 < " + bad.string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("line 1") && Catch::Contains("x3"));
}

TEST_CASE("slt-data feature-lengths reads each features file's frame count", "[cli][data]") {
  const std::string data = std::string(SLT_DATA_EXE) + " ";
  TempDir dir;
  std::string fixtures = std::string(SLT_FIXTURES_DIR) + "/hiera";
  auto r = run_command(data + "feature-lengths --manifest " + fixtures + "/DATASET/manifests/test.tsv --data-dir " +
                       fixtures + "/pipeline/features/0 --output-dir " + dir.path().string() + " --num-procs 2");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::ifstream written(dir.path() / "test_features.tsv");
  REQUIRE(written);
  // Python (torch.load) as the oracle for the lengths.
  auto oracle = run_command(
      "cd " + fixtures + " && /usr/bin/python3 -c \"import torch,os\n"
      "for l in open('DATASET/manifests/test.tsv'):\n"
      "  n=l.split('\\t')[0]; p=os.path.join('pipeline/features/0', n[:5], n.replace('.mp4','.pt'))\n"
      "  print(len(torch.load(p)) if os.path.exists(p) else -1)\"");
  REQUIRE(oracle.exit_code == 0);
  std::istringstream expected(oracle.output);
  std::string line, length;
  size_t rows = 0;
  while (std::getline(written, line)) {
    std::getline(expected, length);
    auto first_tab = line.find('\t'), second_tab = line.find('\t', first_tab + 1);
    CHECK(line.substr(first_tab + 1, second_tab - first_tab - 1) == length);
    ++rows;
  }
  CHECK(rows == 10);
  CHECK_THAT(r.output, Catch::Contains("1 unreadable with length -1"));  // the 160x160 video has no features
}

TEST_CASE("slt-data video-durations probes containers with FFmpeg", "[cli][data]") {
  const std::string data = std::string(SLT_DATA_EXE) + " ";
  TempDir dir;
  std::string videos = std::string(SLT_FIXTURES_DIR) + "/hiera/DATASET/videos";
  auto manifest = dir.write("raw.tsv",
                            "video_name\tstart\tend\tcaption\n"
                            "tsrc2-25fps-0s50\t0\t1\tThe weather will be sunny tomorrow.\n"
                            "mandel-25fps-4s00\t0\t1\tI would like a cup of coffee, please.\n"
                            "tsrc2-25fps-10s24\t0\t1\tShe went to the library after school.\n");
  auto output = dir.path() / "train.tsv";
  auto r = run_command(data + "video-durations --manifest " + manifest.string() + " --data-dir " + videos +
                       " --output " + output.string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::ifstream written(output), reference(std::string(SLT_FIXTURES_DIR) + "/hiera/DATASET/manifests/test.tsv");
  std::string line, ref;
  std::getline(written, line);
  CHECK(line == "video_name\tduration\tcaption");
  for (int i = 0; i < 3; ++i) {
    std::getline(written, line);
    std::getline(reference, ref);
    CHECK(line == ref);  // numbered name, duration with 3 decimals, caption
  }
  auto missing = dir.write("missing.tsv", "video_name\tstart\tend\tcaption\nnope\t0\t1\tx\n");
  auto failed = run_command(data + "video-durations --manifest " + missing.string() + " --data-dir " + videos +
                            " --output " + (dir.path() / "m.tsv").string());
  CHECK(failed.exit_code == 1);
  CHECK_THAT(failed.output, Catch::Contains("0000001-nope.mp4"));
}

TEST_CASE("slt-data train-tokenizer reproduces the reference dictionary", "[cli][data]") {
  const std::string data = std::string(SLT_DATA_EXE) + " ";
  TempDir dir;
  std::string fixtures = std::string(SLT_FIXTURES_DIR) + "/hiera/tarres";
  std::ifstream sentences(fixtures + "/spm_train_sentences.txt");
  std::string manifest, line;
  for (int i = 0; std::getline(sentences, line); ++i) manifest += "v" + std::to_string(i) + ".mp4\t1.0\t" + line + "\n";
  auto tsv = dir.write("train.tsv", manifest);
  auto r = run_command(data + "train-tokenizer --tsv-file " + tsv.string() + " --output-dir " +
                       (dir.path() / "spm").string() + " --vocab-size 180 --num-threads 1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::ifstream ours(dir.path() / "spm" / "dictionary.txt"), theirs(fixtures + "/dictionary.txt");
  std::string a((std::istreambuf_iterator<char>(ours)), {}), b((std::istreambuf_iterator<char>(theirs)), {});
  CHECK(a == b);
  CHECK(std::filesystem::exists(dir.path() / "spm" / "sentencepiece.model"));
  auto bad = dir.write("bad.tsv", "only two\tcolumns\n");
  auto failed = run_command(data + "train-tokenizer --tsv-file " + bad.string() + " --output-dir " +
                            (dir.path() / "x").string() + " --vocab-size 10");
  CHECK(failed.exit_code == 2);
  CHECK_THAT(failed.output, Catch::Contains("bad.tsv:1"));
}

TEST_CASE("slt-translate turns a features file into the reference model's sentence", "[cli][models]") {
  TempDir dir;
  auto inputs = slt::load_safetensors(std::string(SLT_FIXTURES_DIR) + "/models/t5_expected.safetensors");
  at::Tensor embeds;
  for (auto& [name, t] : inputs)
    if (name == "inputs_embeds") embeds = t;
  REQUIRE(embeds.defined());
  auto features = (dir.path() / "sample.pt").string();
  slt::save_pt(features, embeds[2].narrow(0, 0, 5).contiguous());  // the third caption, 5 frames
  std::string models = std::string(SLT_FIXTURES_DIR) + "/models";
  std::string base = std::string(SLT_TRANSLATE_EXE) + " --model " + models + "/tiny_t5_warm --tokenizer " + models +
                     "/tiny_t5 --beams 5 --max-length 20 ";
  auto text = run_command(base + features);
  INFO(text.output);
  REQUIRE(text.exit_code == 0);
  CHECK(text.output == "Thanks for watching!\n");
  auto json = run_command(base + "--json " + features);
  auto parsed = slt::parse_yaml(json.output, "slt-translate --json");
  CHECK(parsed.at("text")->as_string() == "Thanks for watching!");
  auto expected_ids = slt::load_safetensors(models + "/t5_warm_expected.safetensors");
  for (auto& [name, t] : expected_ids) {
    if (name != "warm_gen_beam_ids") continue;
    const auto& ids = parsed.at("ids")->elements();
    for (size_t j = 0; j < ids.size(); ++j) CHECK(ids[j].as_int() == t[2][static_cast<int64_t>(j)].item<int64_t>());
  }
  auto video = run_command(std::string(SLT_TRANSLATE_EXE) + " --model " + models + "/tiny_t5_warm clip.mp4");
  CHECK(video.exit_code == 2);
  auto missing = run_command(std::string(SLT_TRANSLATE_EXE) + " --model /nonexistent/model " + features);
  CHECK(missing.exit_code == 2);
}

TEST_CASE("slt-translate runs a run folder: config.yaml + a reference-style best_model.pth", "[cli][models]") {
  TempDir dir;
  std::string tarres = std::string(SLT_FIXTURES_DIR) + "/hiera/tarres";
  auto fixture = slt::load_yaml_file(tarres + "/tarres.json");
  // A run folder as the reference leaves it: the resolved config and the checkpoint.
  slt::ConfigNode config = slt::ConfigNode::map();
  for (const auto& [key, value] : fixture.at("cfg_model")->items()) config.set("model." + key, value);
  config.set("model.name_or_path", tarres);
  config.set("fairseq", true);
  std::ofstream(dir.path() / "config.yaml") << config.to_yaml();
  std::filesystem::copy_file(tarres + "/tarres_tiny_checkpoint.pth", dir.path() / "best_model.pth");
  // The fourth evaluation sample, alone with its own length.
  auto inputs = slt::load_pt(tarres + "/tarres_inputs.pt").toGenericDict();
  int64_t length = fixture.at("source_lengths")->elements()[3].as_int();
  auto features = (dir.path() / "sample.pt").string();
  slt::save_pt(features, inputs.at("source").toTensor()[3].narrow(0, 0, length).contiguous());
  auto r = run_command(std::string(SLT_TRANSLATE_EXE) + " --model " + dir.path().string() + " --json " + features);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto parsed = slt::parse_yaml(r.output, "slt-translate --json");
  const auto& ids = parsed.at("ids")->elements();
  const auto& expected = fixture.at("generated_tokens")->elements()[3].elements();
  REQUIRE(ids.size() == expected.size());
  for (size_t j = 0; j < ids.size(); ++j) CHECK(ids[j].as_int() == expected[j].as_int());
  // Lower-cased model: the decoded text is the reference's batch_decode.
  CHECK(parsed.at("text")->as_string() == fixture.at("decoded")->elements()[3].as_string());
}

TEST_CASE("slt-run --cfg job of the reference configs prints what it printed before the plugin boundary", "[cli][configs]") {
  const std::filesystem::path golden = std::filesystem::path(SLT_TESTS_DIR) / "golden" / "cfg_job";
  std::ifstream commands(golden / "commands.tsv");
  REQUIRE(commands);
  int checked = 0;
  for (std::string line; std::getline(commands, line);) {
    size_t tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    std::string name = line.substr(0, tab), args = line.substr(tab + 1);
    INFO(name << ": slt-run " << args);
    TempDir cwd;
    auto r = run_command("cd " + cwd.path().string() + " && " + kRun + args + " --cfg job");
    REQUIRE(r.exit_code == 0);
    std::string printed = r.output;
    for (size_t at; (at = printed.find(cwd.path().string())) != std::string::npos;)
      printed.replace(at, cwd.path().string().size(), "@CWD@");
    std::ifstream in(golden / (name + ".yaml"));
    std::stringstream expected;
    expected << in.rdbuf();
    CHECK(printed == expected.str());
    ++checked;
  }
  CHECK(checked == 6);
}

TEST_CASE("a plugin's keys are set without +, checked against its schema, and named in errors", "[cli][plugins]") {
  const std::string hello = kRun + "--config-name slt_t5 model.name_or_path=" + SLT_FIXTURES_DIR +
                            "/models/tiny_t5 data.train_data_dirs=/d data.val_data_dir=/d model.arch=hello_model ";
  SECTION("declared keys are accepted and written with the component's defaults") {
    auto r = run_command(hello + "model.hidden_dim=4 --cfg job");
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("arch: hello_model") && Catch::Contains("hidden_dim: 4") &&
                             Catch::Contains("vocab_size: null"));
  }
  SECTION("a key neither the run nor the component declares: exit 2 with a suggestion from both") {
    auto r = run_command(hello + "model.hiden_dim=4 --cfg job");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("model.hiden_dim") && Catch::Contains("did you mean 'model.hidden_dim'"));
    auto run_key = run_command(hello + "model.num_beam=4 --cfg job");
    CHECK(run_key.exit_code == 2);
    CHECK_THAT(run_key.output, Catch::Contains("did you mean 'model.num_beams'"));
  }
  SECTION("a declared key of the wrong type names the key, the expected type and the value") {
    auto r = run_command(hello + "model.hidden_dim=wide --cfg job");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("model.hidden_dim") && Catch::Contains("expected int") &&
                             Catch::Contains("'wide'"));
  }
  SECTION("a key of another component is unknown to the chosen one") {
    auto r = run_command(kRun + "--config-name slt_t5 model.name_or_path=" + SLT_FIXTURES_DIR +
                         "/models/tiny_t5 data.train_data_dirs=/d data.val_data_dir=/d model.hidden_dim=4 --cfg job");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("unknown config key 'model.hidden_dim'"));
  }
  SECTION("an unknown component name lists the registered ones with the closest") {
    auto r = run_command(hello + "model.arch=helo_model --cfg job");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("unknown model 'helo_model'") && Catch::Contains("Did you mean 'hello_model'"));
  }
}

TEST_CASE("tokenizer files that are absurd or misplaced are named, never crash or hang", "[cli][tokenizers][bad-input]") {
  const std::string tokenize = std::string(SLT_TOKENIZE_EXE) + " ";
  const std::filesystem::path tiny_t5 = std::string(SLT_FIXTURES_DIR) + "/models/tiny_t5";
  TempDir dir;
  auto ids = dir.write("ids.txt", "5 6\n-1 5\n");
  auto negative = run_command(tokenize + "--decode --tokenizer " + tiny_t5.string() + " < " + ids.string());
  CHECK(negative.exit_code == 2);
  CHECK_THAT(negative.output, Catch::Contains("line 2: token id -1 is outside the vocabulary"));

  // A copy of the tokenizer with spiece.model as a folder, then with a billion extra ids.
  auto copy = dir.path() / "t5";
  std::filesystem::create_directories(copy);
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json", "config.json", "added_tokens.json"})
    std::filesystem::copy_file(tiny_t5 / name, copy / name);
  std::filesystem::create_directories(copy / "spiece.model");
  auto folder = run_command(tokenize + "--tokenizer " + copy.string() + " < " + ids.string());
  CHECK(folder.exit_code == 2);
  CHECK_THAT(folder.output, Catch::Contains("spiece.model' is a folder, not a regular file"));
  std::filesystem::remove(copy / "spiece.model");
  std::filesystem::copy_file(tiny_t5 / "spiece.model", copy / "spiece.model");
  std::ofstream(copy / "tokenizer_config.json") << R"({"extra_ids": 1000000000, "eos_token": "</s>"})";
  auto extra = run_command("timeout 60 " + tokenize + "--tokenizer " + copy.string() + " < " + ids.string());
  CHECK(extra.exit_code == 2);
  CHECK_THAT(extra.output, Catch::Contains("extra_ids is 1000000000, expected 0 to 100000"));
  std::ofstream(copy / "tokenizer_config.json") << R"({"added_tokens_decoder": {"x": {"content": "<a>"}}})";
  auto bad_id = run_command(tokenize + "--tokenizer " + copy.string() + " < " + ids.string());
  CHECK(bad_id.exit_code == 2);
  CHECK_THAT(bad_id.output, Catch::Contains("tokenizer_config.json': added_tokens_decoder has a key that is not a token id"));
}

TEST_CASE("slt-score: a BOM is no sentence, and a 200,000-word line is scored", "[cli][metrics][bad-input]") {
  TempDir dir;
  auto plain = dir.write("plain.tsv", "the cat sat\tthe cat sat down\n");
  auto bom = dir.write("bom.tsv", "\xef\xbb\xbfthe cat sat\tthe cat sat down\n");
  auto a = run_command(std::string(SLT_SCORE_EXE) + " --json " + plain.string());
  auto b = run_command(std::string(SLT_SCORE_EXE) + " --json " + bom.string());
  REQUIRE(a.exit_code == 0);
  CHECK(b.output == a.output);
  std::string hyp, ref;
  for (int i = 0; i < 200000; ++i) {
    hyp += "word" + std::to_string(i % 997) + " ";
    ref += "word" + std::to_string(i % 1009) + " ";
  }
  auto long_line = dir.write("long.tsv", hyp + "\t" + ref + "\n");
  auto r = run_command("timeout 300 " + std::string(SLT_SCORE_EXE) + " --json " + long_line.string());
  INFO(r.output.substr(0, 2000));
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("\"bleu4\""));
}

TEST_CASE("slt-data takes any --num-procs without exhausting threads", "[cli][data][bad-input]") {
  TempDir dir;
  auto features = dir.path() / "features" / "aaaaa";
  std::filesystem::create_directories(features);
  slt::save_pt((features / "aaaaa1.pt").string(), at::ones({3, 4}));
  auto manifest = dir.write("m.tsv", "aaaaa1.mp4\t0\tx\n");
  const std::string command = std::string(SLT_DATA_EXE) + " feature-lengths --manifest " + manifest.string() +
                              " --data-dir " + (dir.path() / "features").string() + " --output-dir " +
                              (dir.path() / "out").string();
  auto many = run_command(command + " --num-procs 100000");
  INFO(many.output);
  CHECK(many.exit_code == 0);
  auto none = run_command(command + " --num-procs 0");
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.output, Catch::Contains("--num-procs must be at least 1"));
}

TEST_CASE("config files and overrides that would exhaust memory or stack are refused", "[cli][bad-input]") {
  TempDir dir;
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    std::string prev = "*a" + std::to_string(level - 1);
    bomb += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [" + prev + std::string(", ") + prev + ", " +
            prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev + "]\n";
  }
  auto file = dir.write("bomb.yaml", bomb);
  auto r = run_command("timeout 120 " + kRun + "--config " + file.string() + " --cfg job");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("more than 1000000 values"));
  auto deep = run_command(kRun + "--config-name slt_t5 --cfg job 'a=" + std::string(40000, '[') + "'");
  CHECK(deep.exit_code == 2);
  CHECK_THAT(deep.output, Catch::Contains("levels of nested"));
  auto sweep = run_command("timeout 120 " + kRun + "--config-name slt_t5 --cfg job --multirun common.seed=0,1,2,3,4,5,6,7,8,9 "
                           "optim.lr=1,2,3,4,5,6,7,8,9,10 optim.epochs=0,1,2,3,4,5,6,7,8,9 common.print_freq=1,2,3,4,5,6,7,8,9,10 "
                           "optim.patience=0,1,2,3,4,5,6,7,8,9 optim.warmup_epochs=0,1,2,3,4,5,6,7,8,9");
  CHECK(sweep.exit_code == 2);
  CHECK_THAT(sweep.output, Catch::Contains("more than 100000 runs"));
}
