#pragma once
// Writes a SynthSign dataset in the reference layout:
//   <output>/manifests/{train,val,test}.tsv   video_name, duration (s), caption
//   <output>/videos/<first 5 chars>/<name>.mp4 H.264, `size` x `size`, `fps`
//   <output>/glosses/{train,val,test}.tsv     video_name, gloss sequence (for reading; not an input)
//   <output>/synthsign.json                   the options; written last, so its presence means complete
// Deterministic for a seed; every caption occurs once, so no test sentence is in train.
#include <cstdint>
#include <filesystem>

namespace slt::synthsign {

struct CorpusOptions {
  std::filesystem::path output;
  int64_t train = 400, val = 50, test = 50;  // videos per split
  uint64_t seed = 0;
  int fps = 25;
  int size = 224;
  int threads = 0;  // 0: every core
};

struct CorpusSummary {
  int64_t written = 0, reused = 0, frames = 0;
  bool complete_before = false;  // the same corpus was already there: nothing done
};

/// Writes (or finishes) the corpus; videos already written are kept.
CorpusSummary write_corpus(const CorpusOptions& options);

}  // namespace slt::synthsign
