#include "slt/video/extractor.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <utility>

#include "slt/config/compose.h"
#include "slt/errors.h"
#include "slt/io/tensor_io.h"
#include "slt/model/video_encoder.h"
#include "slt/plugin/registry.h"
#include "slt/text/text.h"
#include "slt/train/precision.h"
#include "slt/video/augment.h"
#include "slt/video/clips.h"

namespace fs = std::filesystem;

namespace slt::video {

namespace {

ConfigSchema build_extract_schema() {
  using V = ValueType;
  ConfigSchema s;
  s.add_required("data_dir", V::String, "Folder on disk containing manifests and videos");
  s.add_required("output_dir", V::String, "Folder on disk where features will be saved");
  s.add_required("model_name", V::String, "Hiera model identifier, e.g. hiera_base_128x224");
  s.add_required("pretrained_model_path", V::String, "Path to trained feature extractor weights");
  s.add("from_clip", V::Bool, false, "Whether to initialize weights from a trained CLIP model");
  s.add("split", V::String, "test", "Dataset split, i.e. train, val or test");
  s.add("fp16", V::Bool, false, "Whether to extract features in fp16 rather than fp32");
  s.add("do_aug", V::Bool, false, "Whether to perform data augmentation");
  s.add("seed", V::Int, 0,
        "Seed of the do_aug augmentations: each video's are drawn from (seed, epoch, video name), so reruns and any "
        "shard split reproduce them").at_least(0);
  s.add("epochs", V::Int, 1, "Number of epochs to extract (useful when performing augmentation)").between(1, 100000);
  s.add("num_frames", V::Int, 128, "Number of video frames per clip").at_least(1);
  s.add("sampling_rate", V::Int, 2, "Sample every n-th frame").at_least(1);
  s.add("target_fps", V::Int, 25, "Target framerate in frames per second").at_least(1);
  s.add("num_items_per_shard", V::Int, 50, "Number of videos that will be processed sequentially in each shard").at_least(1);
  s.add("max_batch_size", V::Int, 2,
        "Maximum batch size (in 128-frame clips). Videos longer than this will be processed in shards.").at_least(1);
  s.add("video_backend", V::String, "pyav", "Video backend. Should match the video backend used during pretraining.",
        {"pyav", "ffmpeg", "cuda"});
  s.add("launcher.cluster", V::String, "slurm", "Cluster to use by stopes launcher, e.g. 'slurm' or 'local'");
  s.add("launcher.partition", V::String, "gpu", "Partition to use in slurm environment");
  s.add("launcher.max_jobarray_jobs", V::Int, 128, "Maximum number of jobs to launch in parallel").at_least(1);
  // slt additions; the SLURM requirements default to the reference module's.
  s.add("launcher.gpus_per_node", V::Int, 1, "SLURM: GPUs per array task (0 on CPU-only partitions)").between(0, 64);
  s.add("launcher.cpus_per_task", V::Int, 1, "SLURM: CPUs per array task").between(1, 1024);
  s.add("launcher.mem_gb", V::Int, 6, "SLURM: memory per array task in GB (0: the partition's default)").between(0, 1 << 20);
  s.add("launcher.timeout_min", V::Int, 4320, "SLURM: time limit of an array task in minutes").between(1, 1 << 24);
  s.add("launcher.setup", V::List, ConfigNode::list(),
        "SLURM: shell lines the batch script runs before slt-extract (module loads, exports)");
  s.add_optional("launcher.log_dir", V::String, nullptr,
                 "SLURM: folder for the batch script and the tasks' logs (null: <output_dir>/slurm)");
  s.add("launcher.wait", V::Bool, true,
        "SLURM: wait for the job array and report its shards (false: return once it is submitted)");
  s.add("launcher.poll_seconds", V::Int, 15, "SLURM: seconds between queue checks while waiting").between(1, 3600);
  s.add_optional("launcher.workers", V::Int, nullptr,
                 "Local processes running shards side by side, the cores divided between them (null: one per usable CPU, "
                 "at most one per shard and per 2 GB of available memory; 1 with CUDA)").between(1, 1024);
  s.add_optional("shard", V::Int, nullptr, "Run only this shard (0-based), as a cluster array task does").at_least(0);
  s.add("overwrite", V::Bool, false, "Recompute features that already exist (default: skip them)");
  s.add("model", V::Map, ConfigNode::map(), "SignHiera hyper-parameters over the model_name preset, e.g. model.embed_dim=8");
  s.add("plugins.paths", V::List, ConfigNode::list(), "Extra folders searched for plugin libraries");
  return s;
}

// Appends one line with a single write(2) on an O_APPEND descriptor, so that
// lines from parallel shard processes do not interleave.
void append_line(const fs::path& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) throw Error("cannot write '" + path.string() + "'");
  std::string text = line + "\n";
  ssize_t written = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) throw Error("cannot write '" + path.string() + "'");
}

// One status line on a terminal, redrawn after each video: videos done,
// windows per second, time left. Off a terminal the per-video log lines are the progress.
class ExtractionProgress {
 public:
  explicit ExtractionProgress(int64_t total) : total_(total), enabled_(::isatty(STDERR_FILENO) == 1) {}
  bool enabled() const { return enabled_; }
  void update(int64_t finished, int64_t clips, double seconds) {
    if (!enabled_) return;
    const double rate = seconds > 0 ? static_cast<double>(finished) / seconds : 0;
    const int64_t eta = rate > 0 ? static_cast<int64_t>(static_cast<double>(total_ - finished) / rate) : 0;
    std::fprintf(stderr, "\r\033[Kextracting: %lld/%lld videos, %.2f windows/s, ETA %02lld:%02lld:%02lld",
                 static_cast<long long>(finished), static_cast<long long>(total_),
                 seconds > 0 ? static_cast<double>(clips) / seconds : 0.0, static_cast<long long>(eta / 3600),
                 static_cast<long long>(eta / 60 % 60), static_cast<long long>(eta % 60));
    std::fflush(stderr);
  }
  // Clears the line before a log message.
  void clear() {
    if (enabled_) std::fprintf(stderr, "\r\033[K");
  }
  void finish() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  int64_t total_;
  bool enabled_;
};

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  return text;
}

}  // namespace

const ConfigSchema& extract_schema() {
  static const ConfigSchema schema = build_extract_schema();
  return schema;
}

void register_extract_config() { ConfigStore::instance().store("extract_config", extract_schema().defaults()); }

void validate_extract_job(ConfigNode& job) {
  extract_schema().validate(job, "");
  const ConfigNode* name = job.at("model_name");
  if (!name || name->is_missing()) return;  // reported with the other missing values
  const ComponentInfo& info = Registry::global().get(kinds::kVideoEncoder, name->as_string("model_name"));
  info.schema.validate(job["model"], "model");
}

at::Tensor extract_video_features(VideoEncoder& encoder, const fs::path& video, const VideoFeatureOptions& options,
                                  int64_t* clip_count) {
  const at::Device device = encoder.module().parameters().front().device();
  VideoReader reader(video, 0, options.cuda_decoding);
  ClipStream::PlanForFrames augment;
  if (options.augment_seed)
    augment = [&](int64_t height, int64_t width) {
      return draw_augment_plan(*options.augment_seed, height, width, encoder.crop_size());
    };
  ClipStream stream(reader, options.sampling, encoder.crop_size(), std::move(augment));
  std::vector<at::Tensor> parts, batch;
  std::vector<int64_t> padding;
  auto flush = [&] {
    if (batch.empty()) return;
    at::Tensor clips = at::stack(batch).to(device);
    at::Tensor pad = at::tensor(padding, at::kLong).to(device);
    Precision precision;
    precision.autocast = options.fp16 && device.is_cuda();
    precision.dtype = at::kHalf;
    at::Tensor features;
    {
      AutocastScope autocast(precision, device);
      features = encoder.extract_features(clips, pad);
    }
    parts.push_back(features.to(at::kFloat).cpu());
    batch.clear();
    padding.clear();
  };
  for (Clip clip; stream.next(clip);) {
    batch.push_back(clip.frames);
    padding.push_back(clip.padding);
    if (clip_count) ++*clip_count;
    if (static_cast<int64_t>(batch.size()) == std::max<int64_t>(1, options.max_batch_size)) flush();
  }
  flush();
  if (stream.frames_decoded() == 0) throw VideoError("'" + video.string() + "' has no frames");
  return at::cat(parts, 0).contiguous();
}

namespace {

// A dict entry of a checkpoint, or nullopt.
std::optional<c10::IValue> entry(const c10::IValue& value, const std::string& key) {
  if (!value.isGenericDict()) return std::nullopt;
  auto dict = value.toGenericDict();
  auto it = dict.find(c10::IValue(key));
  if (it == dict.end()) return std::nullopt;
  return it->value();
}

// The encoder preset a checkpoint's layout and from_clip call for. The
// reference's CLIP checkpoints are {"clip": CLIP state_dict, "cfg": {"model":
// {"vision_model_name": ...}}} with SignHiera under visual.transformer.;
// pretraining checkpoints hold "model" or "model_state".
std::string preset_for_weights(const ConfigNode& job, const std::string& weights) {
  const std::string model_name = job.require<std::string>("model_name");
  const bool from_clip = job.require<bool>("from_clip");
  c10::IValue checkpoint = load_pt(weights);
  const bool clip = entry(checkpoint, "clip").has_value();
  const bool pretraining = entry(checkpoint, "model") || entry(checkpoint, "model_state");
  if (from_clip && !clip)
    throw UserError("from_clip=true but '" + weights + "' has no \"clip\" entry (a CLIP checkpoint holds {\"clip\": "
                    "state_dict, \"cfg\": ...}); for a SignHiera pretraining checkpoint leave from_clip=false");
  if (!from_clip && clip && !pretraining)
    throw UserError("'" + weights + "' is a CLIP checkpoint (a \"clip\" entry, no \"model\"): pass from_clip=true");
  if (!from_clip) return model_name;
  std::optional<c10::IValue> cfg = entry(checkpoint, "cfg");
  std::optional<c10::IValue> model = cfg ? entry(*cfg, "model") : std::nullopt;
  std::optional<c10::IValue> vision = model ? entry(*model, "vision_model_name") : std::nullopt;
  if (!vision || !vision->isString()) return model_name;
  const std::string recorded = vision->toStringRef();
  if (!Registry::global().contains(kinds::kVideoEncoder, recorded))
    throw UserError("'" + weights + "' records cfg.model.vision_model_name=" + recorded +
                    ", which is no video_encoder here (slt-run --list-plugins)");
  if (recorded != model_name)
    spdlog::warn("from_clip: {} records vision_model_name={}; building that preset, not model_name={}", weights,
                 recorded, model_name);
  return recorded;
}

}  // namespace

std::shared_ptr<VideoEncoder> open_video_encoder(const ConfigNode& job) {
  const std::string weights = job.require<std::string>("pretrained_model_path");
  if (!fs::exists(weights)) throw UserError("pretrained_model_path='" + weights + "' does not exist");
  const std::string model_name = preset_for_weights(job, weights);
  auto encoder = Registry::global().create<VideoEncoder>(kinds::kVideoEncoder, model_name, job.at("model"));
  encoder->load_weights(weights);
  encoder->module().eval();
  const int64_t num_frames = job.require<int64_t>("num_frames");
  if (num_frames != encoder->clip_frames())
    throw UserError("num_frames=" + std::to_string(num_frames) + " but " + model_name + " takes clips of " +
                    std::to_string(encoder->clip_frames()) + " frames (model.input_size)");
  return encoder;
}

void write_initial_weights(const ConfigNode& job, const fs::path& path, uint64_t seed) {
  const std::string model_name = job.require<std::string>("model_name");
  at::manual_seed(seed);
  auto encoder = Registry::global().create<VideoEncoder>(kinds::kVideoEncoder, model_name, job.at("model"));
  c10::impl::GenericDict state(c10::StringType::get(), c10::AnyType::get());
  for (const auto& p : encoder->module().named_parameters()) state.insert(p.key(), p.value().detach());
  for (const auto& b : encoder->module().named_buffers()) state.insert(b.key(), b.value().detach());
  c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
  checkpoint.insert("model", state);
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  save_pt(path.string(), checkpoint);
}

SamplingOptions sampling_options(const ConfigNode& job) {
  SamplingOptions sampling;
  sampling.num_frames = job.require<int64_t>("num_frames");
  sampling.sampling_rate = job.require<int64_t>("sampling_rate");
  sampling.target_fps = static_cast<double>(job.require<int64_t>("target_fps"));
  return sampling;
}

VideoFeatureOptions video_feature_options(const ConfigNode& job) {
  VideoFeatureOptions options;
  options.sampling = sampling_options(job);
  options.max_batch_size = std::max<int64_t>(1, job.require<int64_t>("max_batch_size"));
  options.fp16 = job.require<bool>("fp16");
  if (job.require<std::string>("video_backend") == "cuda") {
    options.cuda_decoding = cuda_decoding_available();
    static bool told = false;  // once per process, not per video
    if (std::exchange(told, true)) return options;
    if (options.cuda_decoding)
      spdlog::info("video_backend=cuda: decoding on the GPU (NVDEC) where the codec has it");
    else
      spdlog::warn("video_backend=cuda: libavcodec cannot open a CUDA device here (no GPU, or an FFmpeg built "
                   "without NVDEC); decoding on the CPU");
  }
  return options;
}

std::vector<ManifestItem> read_extraction_manifest(const fs::path& data_dir, const std::string& split) {
  fs::path manifest = data_dir / "manifests" / (split + ".tsv");
  std::ifstream in(manifest);
  if (!in || !fs::is_regular_file(manifest))
    throw UserError("cannot open the manifest '" + manifest.string() + "' (data_dir/manifests/<split>.tsv, a file)");
  std::vector<ManifestItem> items;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    auto fields = slt::split(line, '\t');
    if (fields.size() != 3 || trim(fields[0]).empty()) {
      spdlog::warn("{}:{}: skipped (expected video_name<TAB>duration<TAB>caption)", manifest.string(), number);
      continue;
    }
    std::string video = std::string(trim(fields[0]));
    items.push_back({video, fs::path(video).stem().string()});
  }
  if (items.empty()) throw UserError("the manifest '" + manifest.string() + "' lists no videos");
  return items;
}

fs::path feature_file(const fs::path& output_dir, int64_t epoch, const ManifestItem& item) {
  return output_dir / std::to_string(epoch) / item.stem.substr(0, 5) / (item.stem + ".pt");
}

int64_t count_shards(const ConfigNode& job, size_t items) {
  const int64_t per_shard = std::max<int64_t>(1, job.require<int64_t>("num_items_per_shard"));
  return (static_cast<int64_t>(items) + per_shard - 1) / per_shard;
}

OutputTally tally_outputs(const ConfigNode& job, const std::vector<ManifestItem>& items) {
  const fs::path output_dir = job.require<std::string>("output_dir");
  const std::string split = job.require<std::string>("split");
  const int64_t epochs = job.require<int64_t>("epochs");
  OutputTally tally;
  for (const ManifestItem& item : items) {
    for (int64_t epoch = 0; epoch < epochs; ++epoch) {
      ++tally.expected;
      if (fs::exists(feature_file(output_dir, epoch, item))) ++tally.present;
    }
  }
  std::ifstream failed(output_dir / ("failed_" + split + ".tsv"));
  for (std::string line; std::getline(failed, line);) ++tally.failed_lines;
  return tally;
}

std::vector<int64_t> unfinished_shards(const ConfigNode& job, const std::vector<ManifestItem>& items) {
  const fs::path output_dir = job.require<std::string>("output_dir");
  const int64_t epochs = job.require<int64_t>("epochs");
  const auto per_shard = static_cast<size_t>(job.require<int64_t>("num_items_per_shard"));
  const bool overwrite = job.require<bool>("overwrite");
  std::vector<int64_t> shards;
  for (int64_t shard = 0; shard < count_shards(job, items.size()); ++shard) {
    bool missing = overwrite;
    for (size_t i = static_cast<size_t>(shard) * per_shard; !missing && i < std::min(items.size(), (shard + 1) * per_shard); ++i)
      for (int64_t epoch = 0; !missing && epoch < epochs; ++epoch)
        missing = !fs::exists(feature_file(output_dir, epoch, items[i]));
    if (missing) shards.push_back(shard);
  }
  return shards;
}

// What turns a video into these features, for slt-translate (a copy of the
// keys that matter; the weights path made absolute).
void write_extractor_record(const ConfigNode& job, const fs::path& path) {
  ConfigNode record = ConfigNode::map();
  for (const char* key : {"model_name", "pretrained_model_path", "from_clip", "fp16", "num_frames", "sampling_rate",
                          "target_fps", "max_batch_size", "video_backend", "model"})
    record.set(key, *job.at(key));
  record.set("pretrained_model_path", fs::absolute(job.require<std::string>("pretrained_model_path")).string());
  const std::string text = "# slt-extract's encoder and sampling for the features in this folder\n" + record.to_yaml();
  write_file_atomically(path.string(), text.data(), text.size());
}

ConfigNode read_extractor_record(const fs::path& path) {
  ConfigNode job = extract_schema().defaults();
  ConfigNode record = load_yaml_file(path.string());
  for (const auto& [key, value] : record.items()) job.set(key, value);
  validate_extract_job(job);
  return job;
}

ExtractSummary run_extraction(const ConfigNode& job) {
  const fs::path data_dir = job.require<std::string>("data_dir"), output_dir = job.require<std::string>("output_dir");
  const std::string split = job.require<std::string>("split");
  const auto items = read_extraction_manifest(data_dir, split);
  const int64_t per_shard = std::max<int64_t>(1, job.require<int64_t>("num_items_per_shard"));
  const int64_t shards = count_shards(job, items.size());
  auto only = job.get<int64_t>("shard");
  if (only && (*only < 0 || *only >= shards))
    throw UserError("shard=" + std::to_string(*only) + ": the manifest has " + std::to_string(items.size()) +
                    " videos, that is shards 0.." + std::to_string(shards - 1) + " of " + std::to_string(per_shard));

  const at::Device device = at::hasCUDA() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  auto encoder = open_video_encoder(job);
  encoder->module().to(device);
  const VideoFeatureOptions options = video_feature_options(job);
  const bool augment = job.require<bool>("do_aug");
  const auto seed = static_cast<uint64_t>(job.require<int64_t>("seed"));
  const bool overwrite = job.require<bool>("overwrite");
  const fs::path failed_file = output_dir / ("failed_" + split + ".tsv");
  fs::create_directories(output_dir);
  write_extractor_record(job, output_dir / kExtractorRecord);

  ExtractSummary summary;
  auto started = std::chrono::steady_clock::now();
  const int64_t epochs = job.require<int64_t>("epochs");
  int64_t owned = 0;
  for (int64_t shard = only.value_or(0); shard < (only ? *only + 1 : shards); ++shard)
    owned += std::min<int64_t>(per_shard, static_cast<int64_t>(items.size()) - shard * per_shard) * epochs;
  ExtractionProgress progress(owned);
  int64_t finished = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  at::InferenceMode inference;
  for (int64_t shard = only.value_or(0); shard < (only ? *only + 1 : shards); ++shard) {
    const size_t first = static_cast<size_t>(shard * per_shard);
    const size_t last = std::min(items.size(), first + static_cast<size_t>(per_shard));
    for (int64_t epoch = 0; epoch < epochs; ++epoch) {
      for (size_t i = first; i < last; ++i) {
        const ManifestItem& item = items[i];
        const fs::path target = feature_file(output_dir, epoch, item);
        if (!overwrite && fs::exists(target)) {
          ++summary.skipped;
          progress.update(++finished, summary.clips, elapsed());
          continue;
        }
        fs::path video = data_dir / "videos" / item.video_name.substr(0, 5) / item.video_name;
        auto video_started = std::chrono::steady_clock::now();
        try {
          int64_t clips = 0;
          VideoFeatureOptions video_options = options;
          if (augment) video_options.augment_seed = augment_seed(seed, epoch, item.video_name);
          at::Tensor features = extract_video_features(*encoder, video, video_options, &clips);
          fs::create_directories(target.parent_path());
          save_pt(target.string(), features);
          ++summary.done;
          summary.clips += clips;
          summary.feature_frames += features.size(0);
          // On a terminal the status line is the progress; the per-video lines go to debug.
          spdlog::log(progress.enabled() ? spdlog::level::debug : spdlog::level::info,
                      "[shard {}/{}, {}/{}] {}: {} clips -> [{}, {}] in {:.1f} s", shard, shards, i - first + 1,
                      last - first, item.video_name, clips, features.size(0), features.size(1),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - video_started).count());
        } catch (const VideoError& e) {
          ++summary.failed;
          progress.clear();
          spdlog::warn("{}: {}", item.video_name, e.what());
          append_line(failed_file, item.video_name + "\t" + one_line(e.what()));
        }
        progress.update(++finished, summary.clips, elapsed());
      }
    }
  }
  progress.finish();
  summary.seconds = elapsed();
  return summary;
}

}  // namespace slt::video
