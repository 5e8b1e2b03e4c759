#pragma once
// slt-extract's engine: what the reference's FeatureExtractionModule.run does
// (videos of a manifest -> clips -> SignHiera features -> one .pt per video),
// made resumable (finished videos are skipped, files are written atomically)
// and robust (a video that cannot be read is recorded in failed_<split>.tsv).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/config/schema.h"

namespace slt::video {

// The reference's FeatureExtractionConfig (same keys and defaults) plus slt's
// additions: shard, overwrite, launcher.workers, model (hyper-parameters over
// the model_name preset), plugins.paths.
const ConfigSchema& extract_schema();
// Stores `extract_config` in the ConfigStore (configs/extract.yaml names it).
void register_extract_config();
// The schema, then `model.*` against the schema of the video encoder named by
// model_name (unknown keys suggested from it, types checked). Plugins must be loaded.
void validate_extract_job(ConfigNode& job);

struct ManifestItem {
  std::string video_name;  // as in the manifest, with extension
  std::string stem;        // output file name without .pt
};
// <data_dir>/manifests/<split>.tsv: video_name<TAB>duration<TAB>caption; a
// malformed line is reported with its number and skipped.
std::vector<ManifestItem> read_extraction_manifest(const std::filesystem::path& data_dir, const std::string& split);

struct ExtractSummary {
  int64_t done = 0, skipped = 0, failed = 0, feature_frames = 0, clips = 0;
  double seconds = 0;
};

// Extracts the shards this process owns: `shard` when set, else all of them.
ExtractSummary run_extraction(const ConfigNode& job);

// ceil(items / num_items_per_shard).
int64_t count_shards(const ConfigNode& job);

}  // namespace slt::video
