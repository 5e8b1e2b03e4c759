// SynthSign: the generated corpus behind the demo (slt/synthsign/).
#include <ATen/ATen.h>  // before Catch: glog's CHECK must not replace Catch's

#include "slt/synthsign/corpus.h"
#include "slt/synthsign/grammar.h"
#include "slt/synthsign/render.h"
#include "slt/text/text.h"
#include "slt/video/reader.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "test_helpers.h"

namespace fs = std::filesystem;
using namespace slt::synthsign;
using slt_test::TempDir;

namespace {

struct ManifestRow {
  std::string name, caption;
  double duration = 0;
};

std::vector<ManifestRow> read_manifest(const fs::path& path) {
  std::vector<ManifestRow> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto fields = slt::split(line, '\t');
    REQUIRE(fields.size() == 3);
    rows.push_back({fields[0], fields[2], std::stod(fields[1])});
  }
  return rows;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("SynthSign's lexicon has 40+ glosses and its grammar reorders them in English", "[synthsign]") {
  const auto& words = lexicon();
  CHECK(words.size() >= 40);
  CHECK(std::set<std::string>(words.begin(), words.end()).size() == words.size());

  std::mt19937_64 a(7), b(7);
  bool saw_reordering = false, saw_multiword = false;
  for (int i = 0; i < 200; ++i) {
    Sentence s = sample_sentence(a), t = sample_sentence(b);
    CHECK(s.caption == t.caption);  // a function of the seed
    CHECK(s.glosses == t.glosses);
    CHECK(s.caption.back() == '.');
    CHECK(std::isupper(static_cast<unsigned char>(s.caption[0])));
    const std::string glosses = gloss_text(s);
    // Signed: ... NOUN ADJECTIVE NUMBER VERB; said: verb number adjective noun.
    if (glosses.find(" BIG TWO ") != std::string::npos) {
      CHECK(s.caption.find("two big") != std::string::npos);
      saw_reordering = true;
    }
    if (glosses.find("EVERY-DAY") != std::string::npos) {
      CHECK(s.caption.find("every day") != std::string::npos);
      saw_multiword = true;
    }
  }
  CHECK(saw_multiword);
  (void)saw_reordering;  // a rare combination; checked whenever it occurs
}

TEST_CASE("every SynthSign gloss is drawn differently", "[synthsign]") {
  constexpr int kSize = 96;
  VideoStyle style;
  std::vector<std::vector<uint8_t>> frames;
  for (int g = 0; g < static_cast<int>(lexicon().size()); ++g) {
    SignedSentence video({g}, style, 25, kSize);
    // At least 0.3 s of rest, transitions and a 0.3 - 0.7 s sign at speed 1.
    CHECK(video.frames() >= 25 * (0.24 * 2 + 0.16 * 2 + 0.3));
    std::vector<uint8_t> rgb(kSize * kSize * 3);
    video.render(video.frames() / 2, rgb.data());
    frames.push_back(rgb);
  }
  for (size_t i = 0; i < frames.size(); ++i)
    for (size_t j = i + 1; j < frames.size(); ++j) {
      INFO(lexicon()[i] << " vs " << lexicon()[j]);
      CHECK(frames[i] != frames[j]);
    }
}

TEST_CASE("slt-data synthsign's corpus: reference layout, distinct splits, decodable H.264, resumable",
          "[synthsign]") {
  TempDir dir;
  CorpusOptions options;
  options.output = dir.path() / "synthsign";
  options.train = 6;
  options.val = 2;
  options.test = 3;
  options.seed = 3;
  options.threads = 2;
  CorpusSummary first = write_corpus(options);
  CHECK(first.written == 11);
  CHECK_FALSE(first.complete_before);

  std::map<std::string, std::vector<ManifestRow>> splits;
  std::set<std::string> captions;
  for (const char* split : {"train", "val", "test"}) {
    splits[split] = read_manifest(options.output / "manifests" / (std::string(split) + ".tsv"));
    for (const auto& row : splits[split]) CHECK(captions.insert(row.caption).second);  // no sentence twice
  }
  CHECK(splits["train"].size() == 6);
  CHECK(splits["val"].size() == 2);
  CHECK(splits["test"].size() == 3);

  for (const auto& row : splits["test"]) {
    const fs::path video = options.output / "videos" / row.name.substr(0, 5) / row.name;
    slt::video::VideoReader reader(video);
    CHECK(reader.info().width == 224);
    CHECK(reader.info().height == 224);
    CHECK(reader.info().fps == Approx(25.0));
    slt::video::RgbFrame frame;
    int64_t decoded = 0;
    while (reader.next(frame)) ++decoded;
    CHECK(decoded == static_cast<int64_t>(std::lround(row.duration * 25)));
  }

  // The same seed again: nothing to do. The same folder with another seed: refused.
  CHECK(write_corpus(options).complete_before);
  CorpusOptions other = options;
  other.seed = 4;
  CHECK_THROWS_WITH(write_corpus(other), Catch::Contains("different SynthSign corpus"));
  // A file where the folder should be, or more videos than the grammar is meant for: refused.
  CorpusOptions onto_file = options;
  onto_file.output = options.output / "manifests" / "train.tsv";
  CHECK_THROWS_WITH(write_corpus(onto_file), Catch::Contains("is not a folder"));
  CorpusOptions huge = options;
  huge.output = dir.path() / "huge";
  huge.train = 100000000;
  CHECK_THROWS_WITH(write_corpus(huge), Catch::Contains("at most"));
  CHECK_FALSE(fs::exists(huge.output));

  // A second copy made from scratch has the same sentences; a deleted video is remade, the rest kept.
  CorpusOptions copy = options;
  copy.output = dir.path() / "copy";
  write_corpus(copy);
  CHECK(slurp(copy.output / "manifests" / "train.tsv") == slurp(options.output / "manifests" / "train.tsv"));
  fs::remove(copy.output / "synthsign.json");
  fs::remove(copy.output / "videos" / "test-" / splits["test"][0].name);
  CorpusSummary resumed = write_corpus(copy);
  CHECK(resumed.written == 1);
  CHECK(resumed.reused == 10);
}
