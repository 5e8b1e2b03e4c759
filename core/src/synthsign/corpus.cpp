#include "slt/synthsign/corpus.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "slt/errors.h"
#include "slt/synthsign/grammar.h"
#include "slt/synthsign/render.h"
#include "slt/video/writer.h"

namespace fs = std::filesystem;

namespace slt::synthsign {

namespace {

struct Item {
  std::string split, name;
  Sentence sentence;
  uint64_t seed = 0;
  int64_t frames = 0;
};

constexpr int64_t kMaxVideos = 100000;

nlohmann::ordered_json stamp_of(const CorpusOptions& o) {
  return {{"generator", "synthsign"}, {"version", 1},        {"seed", o.seed}, {"train", o.train},
          {"val", o.val},             {"test", o.test},      {"fps", o.fps},   {"size", o.size}};
}

void write_atomically(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary);
    out << text;
    if (!out.flush()) throw UserError("cannot write '" + temporary.string() + "'");
  }
  fs::rename(temporary, path);
}

// Distinct sentences for every video: test first, then val, then train.
std::vector<Item> plan(const CorpusOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::vector<Item> items;
  std::set<std::string> seen;
  const int64_t total = o.train + o.val + o.test;
  // The grammar makes several hundred thousand sentences; long before they run
  // out, new ones become rare: stop when none came in a long stretch of draws.
  constexpr int64_t kStall = 100000;
  for (int64_t since_new = 0; static_cast<int64_t>(items.size()) < total;) {
    Sentence s = sample_sentence(rng);
    if (!seen.insert(s.caption).second) {
      if (++since_new > kStall)
        throw UserError("SynthSign: the grammar makes too few distinct sentences for " + std::to_string(total) +
                        " videos (found " + std::to_string(items.size()) + "); ask for fewer");
      continue;
    }
    since_new = 0;
    const int64_t i = static_cast<int64_t>(items.size());
    Item item;
    item.split = i < o.test ? "test" : i < o.test + o.val ? "val" : "train";
    const int64_t index = item.split == "test" ? i : item.split == "val" ? i - o.test : i - o.test - o.val;
    std::ostringstream name;
    name << item.split << '-' << std::setw(5) << std::setfill('0') << index << ".mp4";
    item.name = name.str();
    item.sentence = std::move(s);
    item.seed = rng();
    items.push_back(std::move(item));
  }
  return items;
}

fs::path video_path(const fs::path& root, const std::string& name) { return root / "videos" / name.substr(0, 5) / name; }

}  // namespace

CorpusSummary write_corpus(const CorpusOptions& o) {
  if (o.train < 1 || o.val < 1 || o.test < 1) throw UserError("SynthSign: every split needs at least one video");
  if (o.size < 32 || o.size % 2 != 0) throw UserError("SynthSign: size must be an even number of pixels >= 32");
  if (o.fps < 1) throw UserError("SynthSign: fps must be positive");
  if (o.train + o.val + o.test > kMaxVideos)
    throw UserError("SynthSign: at most " + std::to_string(kMaxVideos) + " videos (--train + --val + --test)");
  if (fs::exists(o.output) && !fs::is_directory(o.output))
    throw UserError("SynthSign: '" + o.output.string() + "' exists and is not a folder");
  CorpusSummary summary;
  const fs::path stamp_path = o.output / "synthsign.json";
  const auto stamp = stamp_of(o);
  if (fs::exists(stamp_path)) {
    std::ifstream in(stamp_path);
    nlohmann::ordered_json existing = nlohmann::ordered_json::parse(in, nullptr, false);
    if (existing == stamp) {
      summary.complete_before = true;
      return summary;
    }
    throw UserError("'" + o.output.string() + "' holds a different SynthSign corpus (" + stamp_path.string() +
                    "); choose another folder or delete it");
  }

  std::vector<Item> items = plan(o);
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::atomic<size_t> next{0}, done{0};
  std::atomic<int64_t> written{0}, reused{0}, frames{0};
  std::mutex failure_mutex;
  std::string failure;
  const auto started = std::chrono::steady_clock::now();
  spdlog::info("SynthSign: {} videos ({} train, {} val, {} test) into {} on {} threads", items.size(), o.train, o.val,
               o.test, o.output.string(), threads);

  auto work = [&] {
    std::vector<uint8_t> frame(static_cast<size_t>(o.size) * static_cast<size_t>(o.size) * 3);
    for (size_t i; (i = next++) < items.size();) {
      Item& item = items[i];
      std::mt19937_64 rng(item.seed);
      const SignedSentence video(item.sentence.glosses, sample_style(rng), o.fps, o.size);
      item.frames = video.frames();
      const fs::path path = video_path(o.output, item.name);
      try {
        if (fs::exists(path)) {
          ++reused;
        } else {
          fs::create_directories(path.parent_path());
          const fs::path temporary = path.string() + ".tmp";
          {
            video::VideoWriterOptions format;
            format.width = format.height = o.size;
            format.fps = o.fps;
            video::VideoWriter writer(temporary, format);
            for (int64_t f = 0; f < video.frames(); ++f) {
              video.render(f, frame.data());
              writer.write(frame.data());
            }
            writer.finish();
          }
          fs::rename(temporary, path);
          ++written;
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (failure.empty()) failure = e.what();
        next = items.size();
      }
      frames += item.frames;
      const size_t finished = ++done;
      if (finished % std::max<size_t>(1, items.size() / 10) == 0 || finished == items.size()) {
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const double rate = static_cast<double>(finished) / std::max(seconds, 1e-3);
        spdlog::info("SynthSign: {}/{} videos, {:.1f} videos/s, ETA {:.0f} s", finished, items.size(), rate,
                     static_cast<double>(items.size() - finished) / rate);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (!failure.empty()) throw Error(failure);

  for (const char* split : {"train", "val", "test"}) {
    std::ostringstream manifest, glosses;
    for (const Item& item : items) {
      if (item.split != split) continue;
      manifest << item.name << '\t' << std::fixed << std::setprecision(3)
               << static_cast<double>(item.frames) / o.fps << '\t' << item.sentence.caption << '\n';
      glosses << item.name << '\t' << gloss_text(item.sentence) << '\n';
    }
    write_atomically(o.output / "manifests" / (std::string(split) + ".tsv"), manifest.str());
    write_atomically(o.output / "glosses" / (std::string(split) + ".tsv"), glosses.str());
  }
  write_atomically(stamp_path, stamp.dump(2) + "\n");
  summary.written = written;
  summary.reused = reused;
  summary.frames = frames;
  return summary;
}

}  // namespace slt::synthsign
