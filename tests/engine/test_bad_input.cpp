// Bad input and faults, tried as a user would: each gives a clear error
// (exit 2, naming the file, line or key) or the documented behaviour, and
// nothing already written is damaged.
#include "engine_support.h"  // first: torch before Catch

#include <sys/stat.h>

#include <cmath>

#include "slt/io/tensor_io.h"

using namespace engine_test;

namespace {

// The first item of a split's manifest and its feature file.
struct FirstItem {
  std::string line, name;
  fs::path features;
};
FirstItem first_item(const fs::path& data, const std::string& split) {
  std::ifstream manifest(data / "manifests" / (split + "_features.tsv"));
  FirstItem item;
  std::getline(manifest, item.line);
  item.name = item.line.substr(0, item.line.find(".mp4"));
  item.features = data / "features" / "0" / item.name.substr(0, 5) / (item.name + ".pt");
  return item;
}

void append_line(const fs::path& file, const std::string& line) { std::ofstream(file, std::ios::app) << line << "\n"; }

}  // namespace

TEST_CASE("a second slt-run on a folder in use refuses - the lock of a killed run does not block", "[engine][bad-input]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  const std::string command = toy.tarres(run) + "common.eval_steps=null optim.epochs=200 ";
  pid_t first = spawn(command, toy.dir.path() / "first.log");
  // Wait until the first run holds the folder (it writes its log there).
  for (int i = 0; i < 600 && !fs::exists(run / "logs" / "train.log"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(fs::exists(run / "logs" / "train.log"));
  auto second = run_command(command);
  CHECK(second.exit_code == 2);
  CHECK_THAT(second.output, Catch::Contains("is in use by another slt process (pid " + std::to_string(first)));
  kill(first, SIGKILL);
  CHECK(wait_for(first) == -SIGKILL);
  // The kernel dropped the lock with its holder; the file it leaves is no obstacle.
  CHECK(fs::exists(run / ".slt.lock"));
  auto after = run_command(toy.tarres(run) + "common.eval_steps=null optim.epochs=1");
  INFO(after.output);
  CHECK(after.exit_code == 0);
  CHECK(fs::exists(run / "test_results.json"));
}

TEST_CASE("a resume refuses a config that changes what the weights depend on", "[engine][bad-input]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  const std::string command = toy.tarres(run) + "common.eval_steps=null common.eval_best_model_after_training=false ";
  REQUIRE(run_command(command + "optim.epochs=1").exit_code == 0);
  const std::string config = read_file(run / "config.yaml");

  auto reseeded = run_command(command + "optim.epochs=1 common.seed=7 optim.lr=0.002");
  CHECK(reseeded.exit_code == 2);
  CHECK_THAT(reseeded.output, Catch::Contains("common.seed: 42 -> 7") && Catch::Contains("optim.lr: 0.003 -> 0.002") &&
                                  Catch::Contains("common.resume_with_changed_config=true"));
  CHECK(read_file(run / "config.yaml") == config);  // the run's record is left as it was

  // Training longer is the same experiment; so is another evaluation schedule.
  auto longer = run_command(command + "optim.epochs=2 common.print_freq=3");
  INFO(longer.output);
  CHECK(longer.exit_code == 0);
  auto forced = run_command(command + "optim.epochs=2 common.seed=7 common.resume_with_changed_config=true");
  INFO(forced.output);
  CHECK(forced.exit_code == 0);
  CHECK_THAT(forced.output, Catch::Contains("resuming from") && Catch::Contains("common.seed: 42 -> 7"));
}

TEST_CASE("a sweep whose runs share common.output_dir is refused before any run", "[engine][bad-input]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "shared";
  auto r = run_command(toy.tarres(run) + "optim.epochs=1 --multirun common.seed=1,2");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("would both write to common.output_dir=" + run.string()));
  CHECK_FALSE(fs::exists(run / "config.yaml"));
}

TEST_CASE("a run killed between best_model.pth and its checkpoint ends with the same best model", "[engine][bad-input]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run", reference = toy.dir.path() / "reference";
  auto command = [&](const fs::path& folder) { return toy.tarres(folder) + "common.eval_steps=null optim.epochs=4 "; };
  REQUIRE(run_command(command(reference)).exit_code == 0);
  REQUIRE(fs::exists(reference / "best_model.pth"));
  // Killed right after writing its first best_model.pth, before the checkpoint recording it.
  auto killed = run_command("SLT_TEST_KILL_AFTER_BEST=1 " + command(run));
  REQUIRE(killed.exit_code != 0);
  REQUIRE(fs::exists(run / "best_model.pth"));
  auto again = run_command(command(run));
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("loading the best model"));
  check_same_weights(run / "best_model.pth", reference / "best_model.pth");
  CHECK(read_file(run / "test_outputs.tsv") == read_file(reference / "test_outputs.tsv"));

  // Killed before its first checkpoint: the best_model.pth this very config wrote is no earlier run's.
  fs::path early = toy.dir.path() / "early";
  REQUIRE(run_command("SLT_TEST_KILL_AFTER_BEST=1 " + command(early)).exit_code != 0);
  for (const auto& entry : fs::directory_iterator(early))
    if (entry.path().filename().string().rfind("checkpoint-", 0) == 0) fs::remove(entry.path());
  auto restarted = run_command(command(early));
  INFO(restarted.output);
  CHECK(restarted.exit_code == 0);
  CHECK_THAT(restarted.output, Catch::Contains("stopped before its first checkpoint"));
  // A best_model.pth of another config is an earlier run's result: refused as before.
  fs::path other = toy.dir.path() / "other";
  fs::create_directories(other);
  fs::copy_file(reference / "best_model.pth", other / "best_model.pth");
  auto refused = run_command(command(other) + "common.seed=3");
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("holds results of an earlier run"));
}

TEST_CASE("evaluating a checkpoint of another model is refused", "[engine][bad-input]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "t5";
  REQUIRE(run_command(toy.t5(run) + "common.eval_steps=null optim.epochs=1").exit_code == 0);
  auto r = run_command(toy.tarres("") + "common.eval=true common.load_model=" + (run / "checkpoint-00000.pth").string());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("none of its tensors is a weight of the tarres model"));
}

TEST_CASE("bad features are named with their file: NaN, no frames, another width", "[engine][bad-input]") {
  ToyData toy;
  const std::string command = toy.tarres(toy.dir.path() / "run") + "optim.epochs=1 common.overwrite_output_dir=true ";
  FirstItem test = first_item(toy.data, "test");
  const std::string good = read_file(test.features);

  at::Tensor nan = at::ones({12, 32});
  nan[3][5] = std::nan("");
  slt::save_pt(test.features.string(), nan);
  auto not_finite = run_command(command);
  CHECK(not_finite.exit_code == 2);
  CHECK_THAT(not_finite.output, Catch::Contains(test.features.string() + "': frame 3, dimension 5 is not finite (nan)"));
  // The run stopped at its test evaluation; its checkpoint translates.
  auto translated = run_command(std::string(SLT_TRANSLATE_EXE) + " --model " +
                                (toy.dir.path() / "run" / "checkpoint-00000.pth").string() + " " + test.features.string());
  CHECK(translated.exit_code == 2);
  CHECK_THAT(translated.output, Catch::Contains("frame 3, dimension 5 is not finite"));

  slt::save_pt(test.features.string(), at::ones({0, 32}));
  auto empty = run_command(command);
  CHECK(empty.exit_code == 2);
  CHECK_THAT(empty.output, Catch::Contains(test.features.string() + "' holds no features"));

  slt::save_pt(test.features.string(), at::ones({12, 31}));
  auto narrow = run_command(command);
  CHECK(narrow.exit_code == 2);
  CHECK_THAT(narrow.output, Catch::Contains(test.features.string() + "' has 31 values per frame, but model.feature_dim is 32"));
  std::ofstream(test.features, std::ios::binary) << good;

  // A tensor PyTorch saved transposed (non-contiguous) reads as its values.
  auto python = run_command("/usr/bin/python3 -c \"import torch; torch.save(torch.ones(32, 12).t(), '" +
                            test.features.string() + "')\"");
  REQUIRE(python.exit_code == 0);
  auto transposed = run_command(command);
  INFO(transposed.output);
  CHECK(transposed.exit_code == 0);
}

TEST_CASE("manifest lines that are unsafe or malformed are skipped with their line number", "[engine][bad-input]") {
  ToyData toy;
  fs::path manifest = toy.data / "manifests" / "train_features.tsv";
  FirstItem item = first_item(toy.data, "train");
  const std::string label = item.line.substr(item.line.rfind('\t') + 1);
  append_line(manifest, "../../etc/passwd\t12\t" + label);
  append_line(manifest, "/etc/passwd\t12\t" + label);
  append_line(manifest, item.name + ".mp4\t-5\t" + label);
  append_line(manifest, item.name + ".mp4\t9223372036854775807\t" + label);
  append_line(manifest, item.name + ".mp4\t12\tbad \xff label");
  append_line(manifest, item.name + ".mp4\t12.0\t" + label);  // the reference reads int(float(length))
  auto r = run_command(toy.tarres(toy.dir.path() / "run") + "optim.epochs=0");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("train_features.tsv:49: skipped: video name '../../etc/passwd'"));
  CHECK_THAT(r.output, Catch::Contains("train_features.tsv:50: skipped: video name '/etc/passwd'"));
  CHECK_THAT(r.output, Catch::Contains("train_features.tsv:51: skipped: length '-5'"));
  CHECK_THAT(r.output, Catch::Contains("train_features.tsv:52: skipped: length '9223372036854775807'"));
  CHECK_THAT(r.output, Catch::Contains("train_features.tsv:53: skipped: the label is not valid UTF-8"));
  CHECK_THAT(r.output, Catch::Contains("49 items from"));  // 48 good lines and the 12.0 one
}

TEST_CASE("run settings out of range and unusable output folders are named", "[engine][bad-input]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  for (const auto& [setting, message] : std::vector<std::pair<std::string, std::string>>{
           {"optim.epochs=-1", "config key 'optim.epochs': -1 is out of range (at least 0)"},
           {"optim.lr=-0.1", "config key 'optim.lr': -0.1 is out of range (at least 0)"},
           {"model.dropout=1.5", "config key 'model.dropout': 1.5 is out of range (between 0 and 1)"},
           {"model.num_beams=100000", "config key 'model.num_beams': 100000 is out of range (between 1 and 256)"}}) {
    auto r = run_command(toy.tarres(run) + setting);
    INFO(setting << "\n" << r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains(message));
  }
  std::ofstream(toy.dir.path() / "a_file") << "x";
  auto file = run_command(toy.tarres(toy.dir.path() / "a_file") + "optim.epochs=1");
  CHECK(file.exit_code == 2);
  CHECK_THAT(file.output, Catch::Contains("a_file' as an output folder"));
  auto long_name = run_command(toy.tarres(toy.dir.path() / std::string(300, 'x')) + "optim.epochs=1");
  CHECK(long_name.exit_code == 2);
  CHECK_THAT(long_name.output, Catch::Contains("File name too long"));
  auto no_output = run_command(toy.tarres("") + "~common.output_dir optim.epochs=1");
  CHECK(no_output.exit_code == 2);
  CHECK_THAT(no_output.output, Catch::Contains("common.output_dir"));
}

TEST_CASE("a FIFO where a file is expected is refused at once, never read", "[engine][bad-input]") {
  ToyData toy;
  FirstItem test = first_item(toy.data, "test");
  fs::remove(test.features);
  REQUIRE(mkfifo(test.features.c_str(), 0644) == 0);
  for (const std::string& command :
       {toy.tarres(toy.dir.path() / "run") + "optim.epochs=1",
        std::string(SLT_TRANSLATE_EXE) + " --model " + (toy.dir.path() / "run" / "checkpoint-00000.pth").string() + " " +
            test.features.string(),
}) {
    auto r = run_command("timeout 300 " + command);
    INFO(command << "\n" << r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains(test.features.string() + "' is a FIFO (named pipe), not a regular file"));
  }
  // feature-lengths records an unreadable file and goes on, as for any bad item.
  auto lengths = run_command("timeout 300 " + kData + "feature-lengths --manifest " +
                             (toy.data / "manifests" / "test_features.tsv").string() + " --data-dir " +
                             (toy.data / "features" / "0").string() + " --output-dir " + (toy.dir.path() / "lengths").string());
  INFO(lengths.output);
  CHECK(lengths.exit_code == 0);
  CHECK_THAT(lengths.output, Catch::Contains("is a FIFO (named pipe)") && Catch::Contains("1 unreadable with length -1"));
}

TEST_CASE("slt-data synthetic does not overwrite a dataset unless told to", "[engine][bad-input]") {
  ToyData toy;
  const std::string manifest = read_file(toy.data / "manifests" / "train_features.tsv");
  std::ofstream(toy.dir.path() / "other.txt") << "another sentence\n";
  const std::string command =
      kData + "synthetic --sentences " + (toy.dir.path() / "other.txt").string() + " --output-dir " + toy.data.string();
  auto refused = run_command(command);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("already holds a dataset") && Catch::Contains("--overwrite"));
  CHECK(read_file(toy.data / "manifests" / "train_features.tsv") == manifest);
  CHECK(run_command(command + " --overwrite").exit_code == 0);
  CHECK(read_file(toy.data / "manifests" / "train_features.tsv") != manifest);
}

TEST_CASE("slt-translate caps and honours --beams, --max-length and --batch-size for every model", "[engine][bad-input]") {
  ToyData toy;
  fs::path run = toy.dir.path() / "run";
  REQUIRE(run_command(toy.tarres(run) + "common.eval_steps=null optim.epochs=1").exit_code == 0);
  FirstItem test = first_item(toy.data, "test");
  const std::string translate =
      std::string(SLT_TRANSLATE_EXE) + " --model " + (run / "checkpoint-00000.pth").string() + " --ids ";
  auto beams = run_command(translate + "--beams 100000 " + test.features.string());
  CHECK(beams.exit_code == 2);
  CHECK_THAT(beams.output, Catch::Contains("--beams must be from 1 to 256"));
  auto length = run_command(translate + "--max-length 1000000000 " + test.features.string());
  CHECK(length.exit_code == 2);
  CHECK_THAT(length.output, Catch::Contains("--max-length must be from 1 to 65536"));
  auto count_ids = [](const std::string& text) {
    std::istringstream ids(text);
    int count = 0;
    for (std::string id; ids >> id;) ++count;
    return count;
  };
  // A barely trained model rambles; --max-length 3 cuts fairseq's search to 3 tokens and EOS.
  auto free = run_command(translate + test.features.string());
  INFO(free.output);
  REQUIRE(free.exit_code == 0);
  REQUIRE(count_ids(free.output) > 4);
  auto capped = run_command(translate + "--max-length 3 " + test.features.string());
  INFO(capped.output);
  REQUIRE(capped.exit_code == 0);
  CHECK(count_ids(capped.output) <= 4);
  // Inputs of different lengths, grouped by length into batches, translate as they do one at a
  // time, printed in input order.
  auto full = slt::load_pt_tensor(test.features.string());
  std::string inputs;
  for (int64_t frames : {full.size(0), int64_t{3}, full.size(0) / 2, int64_t{1}, int64_t{5}}) {
    fs::path cut = toy.dir.path() / ("cut" + std::to_string(frames) + ".pt");
    slt::save_pt(cut.string(), full.narrow(0, 0, frames).clone());
    inputs += " " + cut.string();
  }
  auto alone = run_command(translate + "--batch-size 1" + inputs);
  auto grouped = run_command(translate + "--batch-size 3" + inputs);
  REQUIRE(alone.exit_code == 0);
  REQUIRE(grouped.exit_code == 0);
  CHECK(std::count(alone.output.begin(), alone.output.end(), '\n') == 5);
  CHECK(grouped.output == alone.output);
  auto zero = run_command(translate + "--batch-size 0" + inputs);
  CHECK(zero.exit_code == 2);
  CHECK_THAT(zero.output, Catch::Contains("--batch-size must be from 1 to"));
}

TEST_CASE("slt-report skips broken metrics lines and names a broken results file", "[engine][bad-input][report]") {
  TempDir dir;
  fs::path run = dir.path() / "run";
  dir.write("run/config.yaml", "common:\n  seed: 1\n");
  dir.write("run/metrics.jsonl", "{\"split\": \"val\", \"step\": 1, \"bleu4\": 5.0}\nnot json\n[1, 2]\n"
                                 "{\"split\": \"val\", \"step\": \"x\"}\n{\"split\": \"train\", \"loss\": \"high\"}\n");
  dir.write("run/test_results.json", "{\"bleu4\": 7.5}");
  auto good = run_command(std::string(SLT_REPORT_EXE) + " " + dir.path().string());
  INFO(good.output);
  CHECK(good.exit_code == 0);
  CHECK_THAT(good.output, Catch::Contains("metrics.jsonl:2: not a metrics record") &&
                              Catch::Contains("metrics.jsonl:3: not a metrics record") &&
                              Catch::Contains("metrics.jsonl:4: not a metrics record"));
  dir.write("run/test_results.json", "{\"bleu4\": ");
  auto broken = run_command(std::string(SLT_REPORT_EXE) + " " + dir.path().string());
  CHECK(broken.exit_code == 2);
  CHECK_THAT(broken.output, Catch::Contains("test_results.json' is not a results JSON object"));
}
