// Feature loader throughput against the raw rate of reading the same files.
//
//   bench_loader [--items N] [--workers W] [--batch B] [--dir DIR]
//
// Generates N items (768-d float32 features, 50-400 frames) as a sign-features
// dataset, then measures (1) reading every file once on one thread and (2) the
// FeatureLoader delivering shuffled training batches with W workers. Both read
// the same (page-cached) files; the figure of merit is their ratio.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "slt/data/loader.h"
#include "slt/runtime/log.h"
#include "slt/plugin/plugin_loader.h"
#include "slt/io/tensor_io.h"

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int items = 2000, workers = 2, batch = 8;
  fs::path dir = fs::temp_directory_path() / "slt-bench-loader";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--items") items = std::stoi(argv[i + 1]);
    else if (flag == "--workers") workers = std::stoi(argv[i + 1]);
    else if (flag == "--batch") batch = std::stoi(argv[i + 1]);
    else if (flag == "--dir") dir = argv[i + 1];
  }
  bool keep = std::getenv("SLT_BENCH_KEEP") != nullptr;  // keep the generated dataset for profiling
  slt::setup_logging("warn");
  fs::remove_all(dir);
  fs::create_directories(dir / "manifests");
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> frames(50, 400);
  std::vector<fs::path> files;
  {
    std::ofstream manifest(dir / "manifests" / "train_features.tsv");
    for (int i = 0; i < items; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "%07d-bench", i);
      int length = frames(rng);
      fs::path folder = dir / "features" / "0" / std::string(name).substr(0, 5);
      fs::create_directories(folder);
      files.push_back(folder / (std::string(name) + ".pt"));
      slt::save_pt(files.back().string(), at::randn({length, 768}));
      manifest << name << ".mp4\t" << length << "\tsentence " << i << "\n";
    }
  }

  // Warm the page cache, then time raw reads two ways: (a) every tensor freed
  // at once, so the allocator hands the same cache-hot buffer back each time
  // (an upper bound no consumer reaches); (b) the tensors of a batch kept until
  // the next batch, as anything that uses the data must. (b) is the baseline.
  for (const auto& f : files) slt::load_pt_tensor(f.string());
  auto start = std::chrono::steady_clock::now();
  for (const auto& f : files) slt::load_pt_tensor(f.string());
  double hot_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  {
    std::vector<at::Tensor> held;
    for (const auto& f : files) {
      if (held.size() == static_cast<size_t>(batch)) held.clear();
      held.push_back(slt::load_pt_tensor(f.string()));
    }
  }
  double raw_seconds = seconds_since(start);

  slt::load_plugins(slt::plugin_search_path({}));
  slt::ConfigNode config = slt::ConfigNode::map();
  config.set("data.min_source_positions", 0);
  config.set("data.max_source_positions", 1024);
  config.set("data.num_epochs_extracted", 1);
  auto dataset = slt::open_dataset(config, dir, "train");
  slt::LoaderOptions options;
  options.batch_size = batch;
  options.shuffle = true;
  options.drop_last = true;
  options.num_workers = workers;
  slt::FeatureLoader loader(std::vector<std::shared_ptr<slt::FeatureDataset>>{dataset}, nullptr, options);
  start = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  slt::FeatureBatch b;
  size_t delivered = 0;
  while (loader.next(b)) delivered += b.indices.size();
  double loader_seconds = seconds_since(start);

  double raw_rate = items / raw_seconds, loader_rate = delivered / loader_seconds;
  std::printf("items %d (768-d float32, 50-400 frames), batch %d, workers %d\n", items, batch, workers);
  std::printf("raw reads, buffer reused     %8.1f items/s (cache-hot upper bound)\n", items / hot_seconds);
  std::printf("raw reads, a batch held      %8.1f items/s (baseline)\n", raw_rate);
  std::printf("loader (shuffled, collated)  %8.1f items/s\n", loader_rate);
  std::printf("loader / baseline            %8.2f (target >= 0.80)\n", loader_rate / raw_rate);
  if (!keep) fs::remove_all(dir);
  return 0;
}
