#pragma once
// slt-extract's engine: what the reference's FeatureExtractionModule.run does
// (videos of a manifest -> clips -> SignHiera features -> one .pt per video),
// made resumable (finished videos are skipped, files are written atomically)
// and robust (a video that cannot be read is recorded in failed_<split>.tsv).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slt/config/config.h"
#include "slt/config/schema.h"
#include "slt/video/sampling.h"

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
// Where an item's features go: <output_dir>/<epoch>/<first 5 chars>/<stem>.pt.
std::filesystem::path feature_file(const std::filesystem::path& output_dir, int64_t epoch, const ManifestItem& item);

}  // namespace slt::video
namespace slt {
class VideoEncoder;
}
namespace slt::video {

// How a video becomes clips and clips become features.
struct VideoFeatureOptions {
  SamplingOptions sampling;
  int64_t max_batch_size = 2;  // clips per encoder call
  bool fp16 = false;           // autocast, on CUDA only
  bool cuda_decoding = false;  // NVDEC (video_backend=cuda where it is available)
  // do_aug: the seed of this video's augmentation (augment.h), or none.
  std::optional<uint64_t> augment_seed;
};

// The features [T, D] of one video: clips through `encoder`, max_batch_size
// at a time. VideoError when the video cannot be read or has no frames.
at::Tensor extract_video_features(VideoEncoder& encoder, const std::filesystem::path& video,
                                  const VideoFeatureOptions& options, int64_t* clip_count = nullptr);

// An extraction job's encoder (model_name with the model.* keys) with its
// pretrained weights, and its sampling options. Plugins must be loaded.
std::shared_ptr<VideoEncoder> open_video_encoder(const ConfigNode& job);
SamplingOptions sampling_options(const ConfigNode& job);
// The job's sampling, batch, fp16 and video_backend keys; video_backend=cuda
// where NVDEC is not available warns once and decodes on the CPU.
VideoFeatureOptions video_feature_options(const ConfigNode& job);

// run_extraction leaves <output_dir>/extractor.yaml: the encoder (model_name,
// model.*, absolute weights path) and sampling keys that made the features.
// slt-run copies it into the run folder, so slt-translate --model RUN turns
// videos into the features the model was trained on without --extractor.
inline constexpr char kExtractorRecord[] = "extractor.yaml";
// An extraction job (slt-extract's defaults) with a record's keys applied.
ConfigNode read_extractor_record(const std::filesystem::path& path);

// The encoder `model_name` + `model.*` describe, randomly initialised from
// `seed` (SignHiera: as model.init says), saved as {"model": state_dict} (the
// reference's checkpoint layout) to `path`: the weights of a demo without pretraining.
void write_initial_weights(const ConfigNode& job, const std::filesystem::path& path, uint64_t seed);

struct ExtractSummary {
  int64_t done = 0, skipped = 0, failed = 0, feature_frames = 0, clips = 0;
  double seconds = 0;
};

// Extracts the shards this process owns: `shard` when set, else all of them.
ExtractSummary run_extraction(const ConfigNode& job);

// ceil(items / num_items_per_shard).
int64_t count_shards(const ConfigNode& job, size_t items);

// What the output folder holds for this job: feature files present of the
// manifest's items x epochs, and lines in failed_<split>.tsv. Taken before
// and after shard processes run, it gives their combined summary.
struct OutputTally {
  int64_t expected = 0, present = 0, failed_lines = 0;
};
OutputTally tally_outputs(const ConfigNode& job, const std::vector<ManifestItem>& items);

// The shards with an item whose feature file is missing for some epoch (all
// shards with overwrite=true): what a cluster submission still has to run.
std::vector<int64_t> unfinished_shards(const ConfigNode& job, const std::vector<ManifestItem>& items);

}  // namespace slt::video
