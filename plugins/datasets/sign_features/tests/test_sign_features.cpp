// Sign-feature datasets and the loader, on small generated datasets.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "slt/runtime/components.h"
#include "slt/data/loader.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/io/tensor_io.h"
#include "slt/data/tokenizer.h"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("slt-dataset-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Item i has i+3 frames of dimension 4, every value equal to i + 100 * epoch.
void write_item(const fs::path& root, const std::string& name, int64_t frames, float value, int epoch = 0) {
  fs::path dir = root / "features" / std::to_string(epoch) / name.substr(0, 5);
  fs::create_directories(dir);
  slt::save_pt((dir / (fs::path(name).stem().string() + ".pt")).string(), at::full({frames, 4}, value));
}

fs::path make_dataset(const fs::path& root, const std::string& split, int items, int epochs = 1,
                      const std::string& extra_lines = "") {
  fs::create_directories(root / "manifests");
  std::ofstream manifest(root / "manifests" / (split + "_features.tsv"), std::ios::app);
  for (int i = 0; i < items; ++i) {
    std::string name = "vid" + std::to_string(1000 + i) + "-" + split + ".mp4";
    for (int e = 0; e < epochs; ++e) write_item(root, name, i + 3, static_cast<float>(i + 100 * e), e);
    manifest << name << "\t" << i + 3 << "\tsentence number " << i << "\n";
  }
  manifest << extra_lines;
  return root;
}

slt::ConfigNode run_config(int64_t min_len = 0, int64_t max_len = 1024, int64_t epochs = 1) {
  slt::ConfigNode c = slt::ConfigNode::map();
  c.set("data.min_source_positions", min_len);
  c.set("data.max_source_positions", max_len);
  c.set("data.num_epochs_extracted", epochs);
  c.set("common.seed", 7);
  return c;
}

std::shared_ptr<slt::FeatureDataset> open(const std::string& kind, const fs::path& root, const std::string& split,
                                          const slt::ConfigNode& config = run_config()) {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode job = config;
  job.set("data.dataset", kind);
  return slt::open_dataset(job, root, split);
}

std::shared_ptr<const slt::Tokenizer> t5_tokenizer() {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  return slt::open_tokenizer(fs::path(SLT_FIXTURES_DIR) / "models" / "tiny_t5", "sentencepiece");
}

}  // namespace

TEST_CASE("items load from features/<epoch>/<first 5 chars>/<stem>.pt", "[datasets]") {
  TempDir tmp;
  make_dataset(tmp.path, "val", 4);
  auto ds = open("sign_features", tmp.path, "val");
  REQUIRE(ds->size() == 4);
  auto item = ds->get(2);
  CHECK(item.feature_id == "vid1002-val");
  CHECK(item.label == "sentence number 2");
  CHECK(item.source.sizes() == at::IntArrayRef({5, 4}));
  CHECK(item.source[0][0].item<float>() == 2.0f);
  CHECK(ds->length(2) == 5);
}

TEST_CASE("manifest rules: bad lines skipped, short train items dropped, long items truncated", "[datasets]") {
  TempDir tmp;
  make_dataset(tmp.path, "train", 6, 1, "broken line without tabs\nname\tnot-a-number\tlabel\n");
  auto ds = open("sign_features", tmp.path, "train", run_config(/*min*/ 5, /*max*/ 6));
  CHECK(ds->size() == 4);  // lengths 3 and 4 are below 5; two bad lines
  CHECK(ds->label(0) == "sentence number 2");
  CHECK(ds->get(3).source.size(0) == 6);  // length 8 truncated to 6
  // Outside train, short items stay.
  make_dataset(tmp.path, "val", 6);
  CHECK(open("sign_features", tmp.path, "val", run_config(5, 6))->size() == 6);
}

TEST_CASE("set_epoch reads features/<epoch % num_epochs_extracted>", "[datasets]") {
  TempDir tmp;
  make_dataset(tmp.path, "train", 3, /*epochs*/ 2);
  auto ds = open("sign_features", tmp.path, "train", run_config(0, 1024, 2));
  CHECK(ds->get(1).source[0][0].item<float>() == 1.0f);
  ds->set_epoch(1);
  CHECK(ds->get(1).source[0][0].item<float>() == 101.0f);
  ds->set_epoch(4);
  CHECK(ds->get(1).source[0][0].item<float>() == 1.0f);
}

TEST_CASE("a missing or corrupt file is replaced in train/val and an error in test", "[datasets]") {
  TempDir tmp;
  for (const std::string split : {"train", "val", "test"}) make_dataset(tmp.path / split, split, 5);
  fs::remove(tmp.path / "train" / "features" / "0" / "vid10" / "vid1001-train.pt");
  std::ofstream(tmp.path / "val" / "features" / "0" / "vid10" / "vid1001-val.pt") << "corrupt";
  fs::remove(tmp.path / "test" / "features" / "0" / "vid10" / "vid1001-test.pt");
  auto train_item = open("sign_features", tmp.path / "train", "train")->get(1);
  CHECK(train_item.label != "sentence number 1");
  CHECK(train_item.source.size(0) == train_item.index + 3);  // a consistent replacement
  CHECK(open("sign_features", tmp.path / "val", "val")->get(1).label != "sentence number 1");
  CHECK_THROWS_WITH(open("sign_features", tmp.path / "test", "test")->get(1),
                    Catch::Contains("vid1001-test.pt"));
}

TEST_CASE("an empty split names its manifest - YouTube-ASL has only train", "[datasets]") {
  TempDir tmp;
  make_dataset(tmp.path, "val", 0, 1, "only\tbad\n");
  CHECK_THROWS_WITH(open("how2sign", tmp.path, "val"), Catch::Contains("val_features.tsv") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(open("sign_features", tmp.path, "test"), Catch::Contains("test_features.tsv"));
  make_dataset(tmp.path, "train", 2);
  CHECK(open("youtube_asl", tmp.path, "train")->size() == 2);
  CHECK_THROWS_WITH(open("youtube_asl", tmp.path, "val"), Catch::Contains("youtube_asl has no 'val' split"));
}

TEST_CASE("dataset kinds are inferred from folder names unless data.dataset says", "[datasets]") {
  slt::load_plugins({SLT_BUILD_PLUGIN_DIR});
  slt::ConfigNode c = run_config();
  CHECK(slt::choose_dataset(c, "/data/features/youtube-asl") == "youtube_asl");
  CHECK(slt::choose_dataset(c, "/data/How2Sign/") == "how2sign");
  CHECK(slt::choose_dataset(c, "/data/mine") == "sign_features");
  c.set("data.dataset", "how2sign");
  CHECK(slt::choose_dataset(c, "/data/mine") == "how2sign");
}

TEST_CASE("debug=true keeps the first 100 manifest lines", "[datasets]") {
  TempDir tmp;
  make_dataset(tmp.path, "val", 120);
  slt::ConfigNode c = run_config();
  c.set("debug", true);
  CHECK(open("sign_features", tmp.path, "val", c)->size() == 100);
}

TEST_CASE("the loader concatenates, pads, masks and tokenises like the reference collator", "[datasets][loader]") {
  TempDir tmp;
  make_dataset(tmp.path / "a", "val", 3);
  make_dataset(tmp.path / "b", "val", 2);
  auto tokenizer = t5_tokenizer();
  slt::LoaderOptions options;
  options.batch_size = 2;
  options.max_target_length = 128;
  slt::FeatureLoader loader({open("sign_features", tmp.path / "a", "val"), open("sign_features", tmp.path / "b", "val")},
                            tokenizer, options);
  CHECK(loader.size() == 5);
  CHECK(loader.num_batches() == 3);  // the last, incomplete batch is kept outside train
  loader.start_epoch(0);
  slt::FeatureBatch batch;
  std::vector<std::string> labels;
  size_t batches = 0;
  while (loader.next(batch)) {
    ++batches;
    for (const auto& l : batch.labels_text) labels.push_back(l);
    if (batches == 2) {  // a/2 (5 frames) and b/0 (3 frames)
      CHECK(batch.features.sizes() == at::IntArrayRef({2, 5, 4}));
      CHECK(batch.attention_mask[1].sum().item<float>() == 3.0f);
      CHECK(batch.features[1][4].abs().sum().item<float>() == 0.0f);
      CHECK(batch.indices == std::vector<int64_t>{2, 3});
      auto expected0 = tokenizer->encode("sentence number 2", true, 128);
      auto expected1 = tokenizer->encode("sentence number 0", true, 128);
      int64_t width = static_cast<int64_t>(std::max(expected0.size(), expected1.size()));
      CHECK(batch.labels.size(1) == width);
      for (size_t j = 0; j < expected1.size(); ++j) CHECK(batch.labels[1][j].item<int64_t>() == expected1[j]);
    }
  }
  CHECK(batches == 3);
  CHECK(labels == std::vector<std::string>{"sentence number 0", "sentence number 1", "sentence number 2",
                                           "sentence number 0", "sentence number 1"});
}

TEST_CASE("train order: seeded shuffle per epoch, last incomplete batch dropped, resumable", "[datasets][loader]") {
  TempDir tmp;
  make_dataset(tmp.path, "train", 11);
  auto ds = open("sign_features", tmp.path, "train");
  auto order = [&](int workers, int64_t epoch, size_t skip = 0) {
    slt::LoaderOptions options;
    options.batch_size = 3;
    options.shuffle = true;
    options.drop_last = true;
    options.seed = 42;
    options.num_workers = workers;
    slt::FeatureLoader loader({ds}, nullptr, options);
    loader.start_epoch(epoch, skip);
    std::vector<int64_t> seen;
    slt::FeatureBatch batch;
    while (loader.next(batch)) seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
    return seen;
  };
  auto epoch0 = order(2, 0);
  CHECK(epoch0.size() == 9);  // 11 items, batches of 3, last 2 dropped
  CHECK(order(0, 0) == epoch0);  // workers change nothing
  CHECK(order(2, 0) == epoch0);  // same seed, same epoch, same order
  CHECK(order(2, 1) != epoch0);  // a new epoch reshuffles
  auto resumed = order(2, 0, /*skip*/ 2);
  CHECK(resumed == std::vector<int64_t>(epoch0.begin() + 6, epoch0.end()));
}

TEST_CASE("a loader error surfaces on the consumer's thread", "[datasets][loader]") {
  TempDir tmp;
  make_dataset(tmp.path, "test", 4);
  fs::remove(tmp.path / "features" / "0" / "vid10" / "vid1003-test.pt");
  slt::LoaderOptions options;
  options.batch_size = 2;
  slt::FeatureLoader loader({open("sign_features", tmp.path, "test")}, nullptr, options);
  loader.start_epoch(0);
  slt::FeatureBatch batch;
  CHECK(loader.next(batch));
  CHECK_THROWS_WITH(loader.next(batch), Catch::Contains("vid1003-test.pt"));
}
